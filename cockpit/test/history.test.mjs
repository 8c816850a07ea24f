// SPDX-License-Identifier: MIT
import assert from "node:assert/strict";
import { test } from "node:test";
import { MINUTE_MS, RateHistory } from "../src/history.js";

const stats = (succeeded, failed, cancelled = 0) => ({ queued: 0, running: 0, succeeded, failed, cancelled });

test("runs and failures per minute from growing counts; no data before the page opened", () => {
    const h = new RateHistory(5);
    const t0 = 100 * MINUTE_MS;
    h.add(t0, stats(10, 2));
    h.add(t0 + 20000, stats(13, 3));
    h.add(t0 + 40000, stats(14, 3, 1));
    h.add(t0 + MINUTE_MS + 5000, stats(16, 5, 1));
    const s = h.series(t0 + MINUTE_MS + 10000);
    assert.deepEqual(s.finished, [null, null, null, 6, 4]);
    assert.deepEqual(s.failed, [null, null, null, 1, 2]);
    assert.equal(s.since, t0);
});

test("counts that drop (forget, retry, purge) count as nothing", () => {
    const h = new RateHistory(3);
    const t0 = 50 * MINUTE_MS;
    h.add(t0, stats(10, 5));
    h.add(t0 + 1000, stats(10, 0)); // retry of every failed task
    h.add(t0 + 2000, stats(11, 1));
    assert.deepEqual(h.series(t0 + 3000).finished, [null, null, 2]);
    assert.deepEqual(h.series(t0 + 3000).failed, [null, null, 1]);
});

test("minutes older than the window are dropped", () => {
    const h = new RateHistory(2);
    const t0 = 10 * MINUTE_MS;
    h.add(t0, stats(0, 0));
    h.add(t0 + 1000, stats(1, 0));
    h.add(t0 + 3 * MINUTE_MS, stats(2, 0));
    assert.deepEqual(h.series(t0 + 3 * MINUTE_MS).finished, [0, 1]);
    assert.equal(h.buckets.size, 1);
});
