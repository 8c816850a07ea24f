// SPDX-License-Identifier: MIT
import assert from "node:assert/strict";
import { test } from "node:test";
import * as fmt from "../src/format.js";

test("durations", () => {
    assert.equal(fmt.duration(null), "—");
    assert.equal(fmt.duration(45.4), "45 s");
    assert.equal(fmt.duration(200), "3 min 20 s");
    assert.equal(fmt.duration(7500), "2 h 5 min");
    assert.equal(fmt.duration(3 * 86400 + 4 * 3600 + 59), "3 d 4 h");
});

test("times in the table: today's as a time, older ones as day and minute", () => {
    const now = Date.parse("2026-11-26T17:00:00Z");
    const today = fmt.timestamp("2026-11-26T16:59:58.123Z");
    assert.equal(fmt.shortTimestamp("2026-11-26T16:59:58.123Z", now), today.slice(11));
    assert.equal(fmt.shortTimestamp("2026-10-01T12:00:00Z", now), fmt.timestamp("2026-10-01T12:00:00Z").slice(0, 16));
    assert.equal(fmt.shortTimestamp(null, now), "—");
});

test("records in words", () => {
    assert.equal(fmt.taskTitle({ task: null, cmd: 'echo "hello world"' }), 'echo "hello world"');
    assert.equal(fmt.argsText(["a.png", "two words", "it's"]), "a.png 'two words' 'it'\\''s'");
    assert.equal(fmt.resultText({ result: "exit-code", exit_status: 3 }), "exit-code 3");
    assert.equal(fmt.resultText({ result: "signal", signal: 9 }), "signal 9");
    assert.equal(fmt.resultText({ result: null }), "—");
    assert.equal(fmt.unitName({ unit: "asynctask-17.service" }), "asynctask-17.service");
    assert.equal(fmt.unitName({ unit: "pid:123" }), null);
    assert.equal(fmt.progressPercent("40% resized"), 40);
    assert.equal(fmt.progressPercent("step 3 of 5"), null);
    assert.equal(fmt.progressPercent(140), 100);
});

test("the table shows the progress of running tasks only", () => {
    assert.equal(fmt.runningProgress({ state: "running", progress: "40% resized 4 of 10" }), "40% resized 4 of 10");
    assert.equal(fmt.runningProgress({ state: "running", progress: null }), null);
    assert.equal(fmt.runningProgress({ state: "running", progress: "  " }), null);
    assert.equal(fmt.runningProgress({ state: "succeeded", progress: "100% done" }), null);
    assert.equal(fmt.runningProgress({ state: "queued" }), null);
});
