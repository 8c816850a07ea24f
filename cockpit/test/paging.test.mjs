// SPDX-License-Identifier: MIT
import assert from "node:assert/strict";
import { test } from "node:test";
import { CursorPager, clientPage, matchesTask } from "../src/paging.js";

const records = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, task: i % 3 ? "resize" : null, cmd: i % 3 ? null : "echo hi" }));

test("client-side pages: newest first, filtered by task name or command", () => {
    const p = clientPage(records, { page: 0, pageSize: 10 });
    assert.deepEqual(p.rows.map(r => r.id), [30, 29, 28, 27, 26, 25, 24, 23, 22, 21]);
    assert.equal(p.total, 30);
    assert.equal(p.pages, 3);
    const echo = clientPage(records, { task: "ECHO", pageSize: 4, page: 2 });
    assert.deepEqual(echo.rows.map(r => r.id), [4, 1]);
    assert.equal(echo.first, 9);
    assert.equal(clientPage(records, { page: 99, pageSize: 25 }).page, 1);
    assert.equal(clientPage([], {}).first, 0);
    assert.equal(matchesTask({ task: "resize" }, "siz"), true);
    assert.equal(matchesTask({ task: null, cmd: null }, "x"), false);
});

test("after_id pages: each page starts after the last id of the one before", () => {
    const pager = new CursorPager(2);
    assert.deepEqual(pager.request("failed"), { op: "list", limit: 2, state: "failed" });
    pager.next([{ id: 4 }, { id: 9 }]);
    assert.deepEqual(pager.request(), { op: "list", limit: 2, after_id: 9 });
    assert.equal(pager.page, 1);
    pager.next([{ id: 12 }]); // a short page is the last
    assert.equal(pager.page, 1);
    pager.previous();
    pager.previous();
    assert.deepEqual(pager.request(), { op: "list", limit: 2 });
});
