// SPDX-License-Identifier: MIT
// asynctask's wire protocol (docs/protocol.md) over a Cockpit stream channel: one JSON object per
// line out, one answer line back for each, in order. Nothing here touches the page, so the tests
// run it under node with a channel of their own.

export const SOCKET_PATH = "/run/asynctask/asynctask.sock";

// Splits a byte stream into lines. Chunks may end anywhere, also inside a line or inside a UTF-8
// sequence: the rest waits for the next chunk.
export class LineSplitter {
    constructor(onLine) {
        this.onLine = onLine;
        this.decoder = new TextDecoder("utf-8");
        this.pending = "";
    }

    push(chunk) {
        const text = typeof chunk === "string" ? chunk : this.decoder.decode(chunk, { stream: true });
        this.pending += text;
        let start = 0;
        for (;;) {
            const end = this.pending.indexOf("\n", start);
            if (end < 0)
                break;
            let line = this.pending.slice(start, end);
            if (line.endsWith("\r"))
                line = line.slice(0, -1);
            start = end + 1;
            if (line !== "")
                this.onLine(line);
        }
        this.pending = this.pending.slice(start);
    }
}

// An answer with "ok": false, kept as the daemon sent it: the page shows code and error as they are.
export class Refusal extends Error {
    constructor(answer) {
        super(`${answer.code}: ${answer.error}`);
        this.name = "Refusal";
        this.code = answer.code;
        this.answer = answer;
    }
}

// The channel closed (daemon gone, socket missing, session ended) before the answer came.
export class ConnectionLost extends Error {
    constructor(problem, message) {
        super(message || problem || "connection closed");
        this.name = "ConnectionLost";
        this.problem = problem || "disconnected";
    }
}

// One connection to the front. openChannel() returns something shaped like a Cockpit channel:
// send(bytes), close(), and "message" and "close" events through addEventListener.
export class AsynctaskClient {
    constructor(openChannel) {
        this.waiting = [];
        this.closed = null;
        this.encoder = new TextEncoder();
        this.splitter = new LineSplitter(line => this.answer(line));
        this.channel = openChannel();
        this.channel.addEventListener("message", (event, data) => this.splitter.push(data));
        this.channel.addEventListener("close", (event, options) => {
            this.fail(new ConnectionLost(options && options.problem, options && options.message));
        });
    }

    // Sends one request; resolves with the answer object, whether "ok" is true or false.
    send(request) {
        if (this.closed)
            return Promise.reject(this.closed);
        return new Promise((resolve, reject) => {
            this.waiting.push({ resolve, reject });
            this.channel.send(this.encoder.encode(JSON.stringify(request) + "\n"));
        });
    }

    // Like send(), but an answer with "ok": false rejects with a Refusal.
    async call(request) {
        const answer = await this.send(request);
        if (answer.ok !== true)
            throw new Refusal(answer);
        return answer;
    }

    answer(line) {
        const next = this.waiting.shift();
        let parsed;
        try {
            parsed = JSON.parse(line);
        } catch (e) {
            this.fail(new ConnectionLost("protocol-error", "the daemon sent a line that is not JSON"));
            this.channel.close();
            if (next)
                next.reject(this.closed);
            return;
        }
        if (next)
            next.resolve(parsed);
    }

    fail(error) {
        if (!this.closed)
            this.closed = error;
        for (const w of this.waiting.splice(0))
            w.reject(this.closed);
    }

    close() {
        if (!this.closed) {
            this.fail(new ConnectionLost("closed", "closed by the page"));
            this.channel.close();
        }
    }
}

// Opens the stream channel the page uses. superuser "try": with Cockpit's administrative access
// on, the bridge connects as root (an admin of asynctask); otherwise as the logged-in user.
export function cockpitChannelOpener(cockpit) {
    return () => cockpit.channel({ payload: "stream", unix: SOCKET_PATH, binary: true, superuser: "try" });
}
