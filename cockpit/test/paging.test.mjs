// SPDX-License-Identifier: MIT
import assert from "node:assert/strict";
import { test } from "node:test";
import { CursorPager, SCAN_BATCH, SCAN_MAX, clientPage, matchesTask, readPage } from "../src/paging.js";

const records = Array.from({ length: 30 }, (_, i) => ({ id: i + 1, task: i % 3 ? "resize" : null, cmd: i % 3 ? null : "echo hi" }));

// "list" as protocol.md says it answers: the records of the state above after_id, ascending, at
// most limit (1 to 10000, 100 when absent). Each request is kept, to check what the page asked.
function lister(all) {
    const requests = [];
    const call = async request => {
        requests.push(request);
        const limit = request.limit === undefined ? 100 : request.limit;
        assert.ok(Number.isInteger(limit) && limit >= 1 && limit <= 10000, `limit ${limit}`);
        const tasks = all.filter(r => r.id > (request.after_id || 0) && (!request.state || r.state === request.state))
            .sort((a, b) => a.id - b.id).slice(0, limit);
        return { ok: true, tasks };
    };
    return { call, requests };
}

test("a submitter's known tasks: newest first, filtered by task name or command", () => {
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

test("pages of the table: one list request each, starting after the last id of the page before", async () => {
    const all = Array.from({ length: 250 }, (_, i) => ({ id: 3 * i + 1, state: i % 2 ? "failed" : "succeeded", task: "t" }));
    const { call, requests } = lister(all);
    const pager = new CursorPager(100);
    const seen = [];
    for (;;) {
        const page = await readPage(call, { after: pager.after, pageSize: pager.pageSize });
        seen.push(...page.rows.map(r => r.id));
        if (page.next === null)
            break;
        pager.next(page.next);
    }
    assert.deepEqual(seen, all.map(r => r.id), "every record once, in id order");
    assert.deepEqual(requests, [
        { op: "list", after_id: 0, limit: 100 },
        { op: "list", after_id: 298, limit: 100 },
        { op: "list", after_id: 598, limit: 100 },
    ]);
    assert.equal(pager.page, 2);
    pager.previous();
    assert.equal(pager.after, 298, "Previous goes back to where the page before started");
    pager.previous();
    pager.previous();
    assert.equal(pager.after, 0);
    assert.equal(pager.page, 0);

    const failed = await readPage(call, { state: "failed", pageSize: 100 });
    assert.equal(failed.rows.length, 100);
    assert.ok(failed.rows.every(r => r.state === "failed"));
    assert.deepEqual(requests.at(-1), { op: "list", after_id: 0, limit: 100, state: "failed" });
    const rest = await readPage(call, { state: "failed", after: failed.next, pageSize: 100 });
    assert.equal(rest.rows.length, 25);
    assert.equal(rest.next, null, "a short page is the last");
});

test("a full last page: Next leads to an empty page, not past it", async () => {
    const { call } = lister(Array.from({ length: 4 }, (_, i) => ({ id: i + 1, state: "queued" })));
    const page = await readPage(call, { pageSize: 4 });
    assert.equal(page.next, 4);
    const after = await readPage(call, { after: page.next, pageSize: 4 });
    assert.deepEqual(after, { rows: [], next: null, read: 0 });
});

test("a task name is looked for through the pages until the page is full", async () => {
    // Three "needle" records among 5000 others: all on one page, found in five batches.
    const all = Array.from({ length: 5003 }, (_, i) => ({ id: i + 1, state: "failed", task: [17, 2500, 4999].includes(i) ? "needle" : "hay" }));
    const { call, requests } = lister(all);
    const page = await readPage(call, { task: "needle", pageSize: 100 });
    assert.deepEqual(page.rows.map(r => r.id), [18, 2501, 5000]);
    assert.equal(page.next, null);
    assert.equal(requests.length, Math.ceil(all.length / SCAN_BATCH));
    assert.ok(requests.every(r => r.limit === SCAN_BATCH));

    // A full page stops at its last match; the next one starts after it.
    const two = await readPage(call, { task: "needle", pageSize: 2 });
    assert.deepEqual(two.rows.map(r => r.id), [18, 2501]);
    assert.equal(two.next, 2501);
    const last = await readPage(call, { task: "needle", after: two.next, pageSize: 2 });
    assert.deepEqual(last.rows.map(r => r.id), [5000]);
});

test("a search reads at most SCAN_MAX records a page, and Next reads on from there", async () => {
    const all = Array.from({ length: SCAN_MAX + 1500 }, (_, i) => ({ id: i + 1, task: i === SCAN_MAX + 700 ? "rare" : "common" }));
    const { call, requests } = lister(all);
    const first = await readPage(call, { task: "rare", pageSize: 100 });
    assert.deepEqual(first.rows, []);
    assert.equal(first.read, SCAN_MAX);
    assert.equal(first.next, SCAN_MAX, "Next is offered: the records are not read to their end");
    assert.equal(requests.length, SCAN_MAX / SCAN_BATCH);
    const second = await readPage(call, { task: "rare", after: first.next, pageSize: 100 });
    assert.deepEqual(second.rows.map(r => r.id), [SCAN_MAX + 701]);
    assert.equal(second.next, null);
});
