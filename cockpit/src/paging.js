// SPDX-License-Identifier: MIT
// Paging the task table through "list" as the protocol pages it: records in ascending id order,
// those above "after_id", at most "limit" of them. The page keeps the after_id that started each
// page it showed, so that Previous goes back to it and a poll reads the page shown again.

export const SCAN_BATCH = 1000; // records per request while looking for a task name
export const SCAN_MAX = 20000; // records one page's search reads at most, so that a poll stays short

// Whether a record matches the task-name filter (a part of its task name or raw command).
export function matchesTask(record, text) {
    if (!text)
        return true;
    const needle = text.toLowerCase();
    return [record.task, record.cmd].some(v => typeof v === "string" && v.toLowerCase().includes(needle));
}

// One page of records paged here, newest first: the tasks a submitter knows of by id.
export function clientPage(records, { task = "", page = 0, pageSize = 25 } = {}) {
    const rows = records.filter(r => matchesTask(r, task)).sort((a, b) => b.id - a.id);
    const pages = Math.max(1, Math.ceil(rows.length / pageSize));
    const current = Math.min(Math.max(0, page), pages - 1);
    return {
        rows: rows.slice(current * pageSize, (current + 1) * pageSize),
        total: rows.length,
        page: current,
        pages,
        first: rows.length ? current * pageSize + 1 : 0,
    };
}

function listRequest(state, after, limit) {
    const request = { op: "list", after_id: after, limit };
    if (state)
        request.state = state;
    return request;
}

// Reads one page of the table: the records of `state` (all if none) above `after`, at most
// `pageSize` of them matching the task-name filter. `call` sends a request and resolves to its
// answer. "list" filters by state only: with a task name the page reads on in batches of
// SCAN_BATCH until the page is full, the records end, or SCAN_MAX were read (then the page is
// short, and Next reads on from where it stopped). Returns the rows, the after_id of the page
// after it (null: none), and how many records were read.
export async function readPage(call, { state = "", task = "", after = 0, pageSize = 100 }) {
    if (!task) {
        const { tasks } = await call(listRequest(state, after, pageSize));
        const full = tasks.length === pageSize;
        return { rows: tasks, next: full ? tasks[tasks.length - 1].id : null, read: tasks.length };
    }
    const rows = [];
    let cursor = after;
    let read = 0;
    for (;;) {
        const { tasks } = await call(listRequest(state, cursor, SCAN_BATCH));
        read += tasks.length;
        for (const record of tasks) {
            if (!matchesTask(record, task))
                continue;
            rows.push(record);
            if (rows.length === pageSize)
                return { rows, next: record.id, read };
        }
        if (tasks.length < SCAN_BATCH)
            return { rows, next: null, read };
        cursor = tasks[tasks.length - 1].id;
        if (read >= SCAN_MAX)
            return { rows, next: cursor, read };
    }
}

// Where each page the user went through started: Next pushes the after_id of the page after the
// one shown, Previous pops back to the one before.
export class CursorPager {
    constructor(pageSize = 100) {
        this.pageSize = pageSize;
        this.starts = [0]; // after_id of each page; 0: from the first record
    }

    get page() {
        return this.starts.length - 1;
    }

    get after() {
        return this.starts[this.starts.length - 1];
    }

    next(nextAfter) {
        if (nextAfter !== null && nextAfter !== undefined)
            this.starts.push(nextAfter);
    }

    previous() {
        if (this.starts.length > 1)
            this.starts.pop();
    }

    reset(pageSize = this.pageSize) {
        this.pageSize = pageSize;
        this.starts = [0];
    }
}
