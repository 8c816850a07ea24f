// SPDX-License-Identifier: MIT
// How the page writes times, durations and task names; no DOM here.

export const STATES = ["queued", "running", "succeeded", "failed", "cancelled"];
export const FINAL_STATES = ["succeeded", "failed", "cancelled"];

// A duration in seconds as people read it: "45 s", "3 min 20 s", "2 h 5 min", "3 d 4 h".
export function duration(seconds) {
    if (seconds === null || seconds === undefined || !isFinite(seconds))
        return "—";
    let s = Math.max(0, Math.round(seconds));
    if (s < 60)
        return `${s} s`;
    const parts = [];
    for (const [unit, size] of [["d", 86400], ["h", 3600], ["min", 60], ["s", 1]]) {
        if (s >= size || parts.length) {
            parts.push(`${Math.floor(s / size)} ${unit}`);
            s %= size;
        }
        if (parts.length === 2)
            break;
    }
    return parts.join(" ");
}

// The record's ISO 8601 UTC time in the browser's time zone, "2026-11-26 18:00:00".
export function timestamp(iso) {
    if (!iso)
        return "—";
    const date = new Date(iso);
    if (isNaN(date))
        return String(iso);
    const pad = n => String(n).padStart(2, "0");
    return `${date.getFullYear()}-${pad(date.getMonth() + 1)}-${pad(date.getDate())} ` +
        `${pad(date.getHours())}:${pad(date.getMinutes())}:${pad(date.getSeconds())}`;
}

// The same, shorter for the table: the time alone when it is today (nowMs's day), else day and minute.
export function shortTimestamp(iso, nowMs) {
    const full = timestamp(iso);
    if (!iso || full.length !== 19)
        return full;
    return full.slice(0, 10) === timestamp(new Date(nowMs).toISOString()).slice(0, 10) ? full.slice(11) : full.slice(0, 16);
}

// Seconds from an ISO time to nowMs.
export function ageSeconds(iso, nowMs) {
    const t = Date.parse(iso);
    return isNaN(t) ? null : (nowMs - t) / 1000;
}

// What a record ran: the task's name, or the raw command.
export function taskTitle(record) {
    if (record.task)
        return record.task;
    if (record.cmd)
        return record.cmd;
    return "—";
}

// The client arguments, each quoted where it needs to be, as a shell user would write them.
export function argsText(args) {
    if (!Array.isArray(args) || args.length === 0)
        return "";
    return args.map(a => (/^[A-Za-z0-9_@%+=:,./-]+$/.test(a) ? a : "'" + a.replace(/'/g, "'\\''") + "'")).join(" ");
}

// The outcome in a few words: "success", "exit-code 3", "signal 9", "timeout".
export function resultText(record) {
    if (!record.result)
        return "—";
    if (record.result === "exit-code" && record.exit_status !== null && record.exit_status !== undefined)
        return `exit-code ${record.exit_status}`;
    if (record.result === "signal" && record.signal !== null && record.signal !== undefined)
        return `signal ${record.signal}`;
    return record.result;
}

// A record's "progress" (the task's latest STATUS=): a number from 0 to 100 where the text starts
// with one ("40%", "40 % done"), else null; the text itself is shown as it is.
export function progressPercent(progress) {
    if (typeof progress === "number")
        return Math.min(100, Math.max(0, progress));
    if (typeof progress !== "string")
        return null;
    const m = /^\s*(\d+(?:\.\d+)?)\s*%/.exec(progress);
    return m ? Math.min(100, Number(m[1])) : null;
}

// What a running task last said of itself (its "progress"), or null: the table shows it in place
// of the result it does not have yet.
export function runningProgress(record) {
    if (record.state !== "running" || typeof record.progress !== "string" || record.progress.trim() === "")
        return null;
    return record.progress;
}

// The systemd unit of a record's last run, when it ran as one ("pid:N" is the direct executor's).
export function unitName(record) {
    const unit = record.unit;
    return typeof unit === "string" && /^asynctask-[0-9]+\.service$/.test(unit) ? unit : null;
}
