// SPDX-License-Identifier: MIT
// Paging the task table. A daemon whose "list" takes "after_id" pages by id on its side, oldest
// first, as the protocol does; one without it answers at most LIST_FETCH_LIMIT records, which the
// page filters and pages itself, newest first.

export const LIST_FETCH_LIMIT = 10000; // the largest "limit" that "list" accepts

// Whether a record matches the task-name filter (a part of its task name or raw command).
export function matchesTask(record, text) {
    if (!text)
        return true;
    const needle = text.toLowerCase();
    return [record.task, record.cmd].some(v => typeof v === "string" && v.toLowerCase().includes(needle));
}

// One page of records paged here: newest first.
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

// Pages through "list" with after_id: remembers where each page it has shown started.
export class CursorPager {
    constructor(pageSize = 25) {
        this.pageSize = pageSize;
        this.starts = [0]; // after_id of each page; 0: from the first record
    }

    get page() {
        return this.starts.length - 1;
    }

    request(state) {
        const request = { op: "list", limit: this.pageSize };
        const after = this.starts[this.starts.length - 1];
        if (after > 0)
            request.after_id = after;
        if (state)
            request.state = state;
        return request;
    }

    // A full page may have more behind it; a short one is the last.
    hasNext(rows) {
        return rows.length === this.pageSize;
    }

    next(rows) {
        if (this.hasNext(rows))
            this.starts.push(rows[rows.length - 1].id);
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
