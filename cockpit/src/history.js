// SPDX-License-Identifier: MIT
// Runs and failures per minute, kept by the page from the counts that "stats" answers. The daemon
// keeps no history, so it starts when the page opens, and it is lost when the page is closed.

export const MINUTE_MS = 60 * 1000;

// The tasks that reached a final state, from one "stats" answer.
function finishedCount(stats) {
    return (stats.succeeded || 0) + (stats.failed || 0) + (stats.cancelled || 0);
}

export class RateHistory {
    constructor(minutes = 60) {
        this.minutes = minutes;
        this.since = null;
        this.previous = null;
        this.buckets = new Map(); // minute number -> { finished, failed }
    }

    // Adds one "stats" answer taken at timeMs. Counts only grow between two answers unless
    // records went away (forget, purge after retention_days, a retry moving failed tasks back to
    // queued, a restart that lost the memory ledger): such a drop counts as nothing, not as a
    // negative rate.
    add(timeMs, stats) {
        if (this.since === null)
            this.since = timeMs;
        const sample = { finished: finishedCount(stats), failed: stats.failed || 0 };
        if (this.previous) {
            const minute = Math.floor(timeMs / MINUTE_MS);
            const bucket = this.buckets.get(minute) || { finished: 0, failed: 0 };
            bucket.finished += Math.max(0, sample.finished - this.previous.finished);
            bucket.failed += Math.max(0, sample.failed - this.previous.failed);
            this.buckets.set(minute, bucket);
            for (const key of this.buckets.keys()) {
                if (key <= minute - this.minutes)
                    this.buckets.delete(key);
            }
        }
        this.previous = sample;
    }

    // The last `minutes` minutes up to nowMs, oldest first; the last entry is the current minute.
    // Minutes before the page opened are null (no data), not zero.
    series(nowMs) {
        const now = Math.floor(nowMs / MINUTE_MS);
        const first = this.since === null ? null : Math.floor(this.since / MINUTE_MS);
        const finished = [];
        const failed = [];
        for (let m = now - this.minutes + 1; m <= now; m++) {
            const bucket = this.buckets.get(m);
            const known = first !== null && m >= first;
            finished.push(known ? (bucket ? bucket.finished : 0) : null);
            failed.push(known ? (bucket ? bucket.failed : 0) : null);
        }
        return { finished, failed, since: this.since };
    }
}
