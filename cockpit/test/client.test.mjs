// SPDX-License-Identifier: MIT
// The protocol client against a channel of our own: answers split anywhere, pipelining, refusals,
// and a channel that closes with requests outstanding.
import assert from "node:assert/strict";
import { test } from "node:test";
import { AsynctaskClient, ConnectionLost, LineSplitter, Refusal } from "../src/client.js";

class FakeChannel {
    constructor() {
        this.sent = [];
        this.listeners = { message: [], close: [] };
        this.closed = false;
    }

    addEventListener(type, fn) {
        this.listeners[type].push(fn);
    }

    send(bytes) {
        this.sent.push(new TextDecoder().decode(bytes));
    }

    close() {
        this.closed = true;
    }

    deliver(data) {
        const bytes = typeof data === "string" ? new TextEncoder().encode(data) : data;
        for (const fn of this.listeners.message)
            fn({}, bytes);
    }

    end(options = {}) {
        for (const fn of this.listeners.close)
            fn({}, options);
    }
}

function client() {
    const channel = new FakeChannel();
    return { channel, client: new AsynctaskClient(() => channel) };
}

test("lines split across chunks, CRLF and empty lines", () => {
    const lines = [];
    const splitter = new LineSplitter(line => lines.push(line));
    splitter.push(new TextEncoder().encode('{"a":'));
    splitter.push(new TextEncoder().encode('1}\r\n\n{"b"'));
    assert.deepEqual(lines, ['{"a":1}']);
    splitter.push(new TextEncoder().encode(":2}\n"));
    assert.deepEqual(lines, ['{"a":1}', '{"b":2}']);
});

test("a UTF-8 character split between two chunks arrives whole", () => {
    const lines = [];
    const splitter = new LineSplitter(line => lines.push(line));
    const bytes = new TextEncoder().encode('{"task":"é€"}\n');
    for (const b of bytes)
        splitter.push(Uint8Array.of(b));
    assert.deepEqual(lines, ['{"task":"é€"}']);
});

test("pipelined requests get their answers in order, one line each", async () => {
    const { channel, client: c } = client();
    const first = c.call({ op: "ping" });
    const second = c.send({ op: "list", limit: 1 });
    const third = c.call({ op: "stats" });
    assert.deepEqual(channel.sent, ['{"op":"ping"}\n', '{"op":"list","limit":1}\n', '{"op":"stats"}\n']);
    channel.deliver('{"ok":true,"pong":true,"version":"0.1.0"}\n{"ok":false,"code":"forbidden","error":"adm');
    channel.deliver('ins only"}\n{"ok":true,"queued":1}\n');
    assert.equal((await first).version, "0.1.0");
    assert.deepEqual(await second, { ok: false, code: "forbidden", error: "admins only" });
    assert.equal((await third).queued, 1);
});

test("call() rejects a refusal with the daemon's code and words", async () => {
    const { channel, client: c } = client();
    const answer = c.call({ op: "retry", id: 3 });
    channel.deliver('{"ok":false,"code":"forbidden","error":"\'retry\' is for admins"}\n');
    await assert.rejects(answer, e => e instanceof Refusal && e.code === "forbidden" && e.message === "forbidden: 'retry' is for admins");
});

test("a closed channel fails what is outstanding and what comes after", async () => {
    const { channel, client: c } = client();
    const pending = c.call({ op: "stats" });
    channel.end({ problem: "not-found" });
    await assert.rejects(pending, e => e instanceof ConnectionLost && e.problem === "not-found");
    await assert.rejects(c.call({ op: "ping" }), ConnectionLost);
});

test("a line that is not JSON ends the connection", async () => {
    const { channel, client: c } = client();
    const pending = c.call({ op: "stats" });
    channel.deliver("garbage\n");
    await assert.rejects(pending, e => e instanceof ConnectionLost && e.problem === "protocol-error");
    assert.equal(channel.closed, true);
});
