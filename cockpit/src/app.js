// SPDX-License-Identifier: MIT
// The asynctask page in Cockpit. It speaks only asynctask's protocol, through the bridge, as the
// logged-in user (or root with Cockpit's administrative access on), so it works the same with the
// memory and MySQL stores and the systemd and direct executors. Plain DOM and PatternFly's CSS:
// the page needs no framework and no bundler.

import { AsynctaskClient, ConnectionLost, Refusal, SOCKET_PATH, cockpitChannelOpener } from "./client.js";
import { RateHistory } from "./history.js";
import { CursorPager, clientPage, matchesTask, readPage } from "./paging.js";
import * as fmt from "./format.js";

const cockpit = window.cockpit;
const POLL_MS = 3000;
const KNOWN_IDS_MAX = 200;
const OUTPUT_MAX_CHARS = 1 << 20;
const UNIT_PROPERTIES = ["Id", "LoadState", "ActiveState", "SubState", "Result", "User", "Slice", "ExecMainPID",
    "ExecMainStatus", "ExecMainStartTimestamp", "ExecMainExitTimestamp", "MemoryCurrent", "CPUUsageNSec"];

const app = {
    client: null,
    connecting: null,
    connectionError: null,
    user: null,
    admin: null, // null until the daemon has said (by answering or refusing "list")
    version: null,
    stats: null,
    history: new RateHistory(60),
    oldestQueuedAge: null,
    filter: { state: "", task: "" },
    page: 0, // of a submitter's known tasks, paged here
    pageSize: 100,
    pager: new CursorPager(100), // of an admin's table, paged by "list"
    records: [],
    nextAfter: null, // after_id of the page after the one shown; null: it is the last
    listError: null,
    knownIds: [],
    knownRecords: new Map(),
    taskId: null,
    taskRecord: null,
    taskError: null,
    output: null,
    polling: null,
};

// ---------------------------------------------------------------------------------------------
// DOM

const SVG_TAGS = new Set(["svg", "rect", "line", "text", "title", "g", "path", "circle"]);

function h(tag, props, ...children) {
    const el = SVG_TAGS.has(tag)
        ? document.createElementNS("http://www.w3.org/2000/svg", tag)
        : document.createElement(tag);
    for (const [key, value] of Object.entries(props || {})) {
        if (value === null || value === undefined || value === false)
            continue;
        if (key.startsWith("on"))
            el.addEventListener(key.slice(2), value);
        else if (key === "style")
            Object.assign(el.style, value);
        else
            el.setAttribute(key, value === true ? "" : value);
    }
    for (const child of children.flat(Infinity)) {
        if (child !== null && child !== undefined && child !== false)
            el.append(child instanceof Node ? child : String(child));
    }
    return el;
}

const $ = id => document.getElementById(id);

function replace(id, ...children) {
    $(id).replaceChildren(...children.flat(Infinity).filter(c => c !== null && c !== undefined && c !== false));
}

// Rebuilds a part of the page only when what it shows changed: a poll that brings nothing new
// must not take away a button under the mouse or a list that is open.
const shownKeys = new Map();
function replaceIfChanged(id, key, build) {
    const text = JSON.stringify(key);
    if (shownKeys.get(id) === text)
        return;
    shownKeys.set(id, text);
    replace(id, build());
}

const STATE_COLORS = { queued: "", running: "pf-m-blue", succeeded: "pf-m-green", failed: "pf-m-red", cancelled: "pf-m-orange" };

function stateLabel(state) {
    return h("span", { class: `pf-c-label ${STATE_COLORS[state] || ""} at-state`, "data-state": state },
        h("span", { class: "pf-c-label__content" }, state || "—"));
}

function button(text, props) {
    const variant = props.variant || "secondary";
    delete props.variant;
    return h("button", { type: "button", class: `pf-c-button pf-m-${variant}`, ...props }, text);
}

// A small circle with a mark: enough of an icon for alerts, drawn here (no icon font is shipped).
function alertIcon(variant) {
    const mark = variant === "success"
        ? h("path", { d: "M4.5 8.2l2.3 2.3 4.7-4.8", fill: "none", stroke: "#fff", "stroke-width": "1.8" })
        : h("g", null, h("rect", { x: "7.1", y: "3.6", width: "1.8", height: "5.4", fill: "#fff" }),
            h("rect", { x: "7.1", y: "10.4", width: "1.8", height: "1.8", fill: "#fff" }));
    return h("svg", { viewBox: "0 0 16 16", width: "1em", height: "1em", "aria-hidden": "true" },
        h("circle", { cx: "8", cy: "8", r: "7.5", fill: "currentColor" }), mark);
}

// ---------------------------------------------------------------------------------------------
// Alerts: what the daemon answered to an action, refusals word for word.

function showAlert(variant, title, description, code) {
    const alert = h("div", { class: `pf-c-alert pf-m-${variant} at-alert`, "data-code": code },
        h("div", { class: "pf-c-alert__icon" }, alertIcon(variant)),
        h("p", { class: "pf-c-alert__title" }, title),
        h("div", { class: "pf-c-alert__action" },
            h("button", { type: "button", class: "pf-c-button pf-m-plain", "aria-label": "Close", onclick: () => alert.remove() }, "×")),
        description ? h("div", { class: "pf-c-alert__description" }, description) : null);
    $("alerts").append(alert);
    if (variant === "success" || variant === "info")
        setTimeout(() => alert.remove(), 10000);
    return alert;
}

function showFailure(what, error) {
    if (error instanceof Refusal)
        showAlert("danger", `${what} refused`, `${error.code}: ${error.answer.error}`, error.code);
    else
        showAlert("danger", `${what} failed`, error.message || String(error), error.problem || "error");
}

// ---------------------------------------------------------------------------------------------
// Modal dialogs

function modal({ title, body, confirm, confirmVariant = "primary", onConfirm, id }) {
    const error = h("div", { class: "at-modal-error" });
    const confirmButton = button(confirm, { variant: confirmVariant, id: id ? `${id}-confirm` : null });
    const close = () => backdrop.remove();
    const backdrop = h("div", { class: "pf-c-backdrop" },
        h("div", { class: "pf-l-bullseye" },
            h("div", { class: "pf-c-modal-box pf-m-sm", role: "dialog", "aria-modal": "true", id },
                h("header", { class: "pf-c-modal-box__header" }, h("h1", { class: "pf-c-modal-box__title" }, title)),
                h("div", { class: "pf-c-modal-box__body" }, body, error),
                h("footer", { class: "pf-c-modal-box__footer" },
                    confirmButton,
                    button("Cancel", { variant: "link", onclick: close })))));
    confirmButton.addEventListener("click", async () => {
        confirmButton.disabled = true;
        error.replaceChildren();
        try {
            await onConfirm();
            close();
        } catch (e) {
            const text = e instanceof Refusal ? `${e.code}: ${e.answer.error}` : (e.message || String(e));
            error.replaceChildren(h("div", { class: "pf-c-alert pf-m-danger pf-m-inline at-alert", "data-code": e.code || "error" },
                h("div", { class: "pf-c-alert__icon" }, alertIcon("danger")),
                h("p", { class: "pf-c-alert__title" }, text)));
            confirmButton.disabled = false;
        }
    });
    backdrop.addEventListener("keydown", e => {
        if (e.key === "Escape")
            close();
    });
    $("modal-root").replaceChildren(backdrop);
    const first = backdrop.querySelector("input, textarea");
    (first || confirmButton).focus();
}

// ---------------------------------------------------------------------------------------------
// The connection to asynctaskd

async function connect() {
    if (app.client && !app.client.closed)
        return app.client;
    if (app.connecting)
        return app.connecting;
    app.connecting = (async () => {
        const client = new AsynctaskClient(cockpitChannelOpener(cockpit));
        try {
            // Pipelined: the answers come in this order. "list" tells admins from submitters (it is
            // for admins only).
            const [pong, list] = await Promise.all([
                client.call({ op: "ping" }),
                client.send({ op: "list", limit: 1 }),
            ]);
            app.version = pong.version;
            app.admin = list.ok === true;
            app.client = client;
            app.connectionError = null;
            return client;
        } catch (e) {
            client.close();
            app.connectionError = e;
            throw e;
        } finally {
            app.connecting = null;
        }
    })();
    return app.connecting;
}

function disconnect() {
    if (app.client)
        app.client.close();
    app.client = null;
    app.admin = null;
}

// With the administrative access switched on or off, the bridge connects as another user: ask
// the daemon again who we are.
function watchSuperuser() {
    const proxy = cockpit.dbus(null, { bus: "internal" }).proxy("cockpit.Superuser", "/superuser");
    let current;
    proxy.addEventListener("changed", () => {
        if (proxy.Current === "init" || proxy.Current === current)
            return;
        const first = current === undefined;
        current = proxy.Current;
        if (!first) {
            disconnect();
            firstPage();
            poll();
        }
    });
}

// ---------------------------------------------------------------------------------------------
// Tasks this user submitted or opened: a submitter may not "list", so the page remembers them.

function knownIdsKey() {
    return `asynctask:known-ids:${app.user ? app.user.name : ""}`;
}

function loadKnownIds() {
    try {
        const ids = JSON.parse(window.localStorage.getItem(knownIdsKey()) || "[]");
        app.knownIds = Array.isArray(ids) ? ids.filter(Number.isSafeInteger) : [];
    } catch (e) {
        app.knownIds = [];
    }
}

function rememberId(id) {
    app.knownIds = [id, ...app.knownIds.filter(k => k !== id)].slice(0, KNOWN_IDS_MAX);
    window.localStorage.setItem(knownIdsKey(), JSON.stringify(app.knownIds));
}

function forgetId(id) {
    app.knownIds = app.knownIds.filter(k => k !== id);
    app.knownRecords.delete(id);
    window.localStorage.setItem(knownIdsKey(), JSON.stringify(app.knownIds));
}

// ---------------------------------------------------------------------------------------------
// Polling: one round of pipelined requests every POLL_MS while the page is visible.

async function poll() {
    clearTimeout(app.polling);
    app.polling = null;
    try {
        await refresh();
    } catch (e) {
        if (!(e instanceof ConnectionLost))
            console.error(e);
    }
    render();
    app.polling = setTimeout(poll, POLL_MS);
}

async function refresh() {
    let client;
    try {
        client = await connect();
    } catch (e) {
        app.stats = null;
        return;
    }
    const view = cockpit.location.path[0] === "task" ? "task" : "list";
    const jobs = [];
    const hidden = cockpit.hidden;

    jobs.push(client.call({ op: "stats" }).then(stats => {
        app.stats = stats;
        app.history.add(Date.now(), stats);
    }));

    if (hidden) {
        // Only the counts, for the rates; the rest when the page is shown again.
    } else if (app.admin) {
        if (view === "list")
            jobs.push(refreshList(client));
        // "list" answers in id order: the first queued record is the one submitted first.
        jobs.push(client.call({ op: "list", state: "queued", limit: 1 }).then(answer => {
            const oldest = answer.tasks[0];
            app.oldestQueuedAge = oldest ? fmt.ageSeconds(oldest.created_at, Date.now()) : null;
        }).catch(() => { app.oldestQueuedAge = null; }));
    } else if (view === "list") {
        for (const id of app.knownIds) {
            jobs.push(client.send({ op: "status", id }).then(answer => {
                if (answer.ok)
                    app.knownRecords.set(id, answer);
                else if (answer.code === "not_found" || answer.code === "forbidden")
                    forgetId(id);
            }));
        }
    }

    if (!hidden && view === "task" && app.taskId !== null)
        jobs.push(refreshTask(client));

    const results = await Promise.allSettled(jobs);
    const lost = results.find(r => r.status === "rejected" && r.reason instanceof ConnectionLost);
    if (lost) {
        app.connectionError = lost.reason;
        disconnect();
    }
}

// Reads the page shown again: live updates of the records on it, and of where the next one starts.
async function refreshList(client) {
    const filter = { ...app.filter };
    const pager = { after: app.pager.after, pageSize: app.pager.pageSize };
    try {
        const page = await readPage(request => client.call(request), { ...filter, ...pager });
        // The user may have changed the filter or the page while this was on its way.
        if (JSON.stringify(filter) !== JSON.stringify(app.filter) || pager.after !== app.pager.after ||
            pager.pageSize !== app.pager.pageSize)
            return;
        app.records = page.rows;
        app.nextAfter = page.next;
        app.listError = null;
    } catch (e) {
        if (e instanceof ConnectionLost)
            throw e;
        app.records = [];
        app.nextAfter = null;
        app.listError = e;
    }
}

async function refreshTask(client) {
    const id = app.taskId;
    const answer = await client.send({ op: "status", id });
    if (id !== app.taskId)
        return;
    if (answer.ok) {
        app.taskRecord = answer;
        app.taskError = null;
        if (!app.admin)
            app.knownRecords.set(id, answer);
    } else {
        app.taskRecord = null;
        app.taskError = new Refusal(answer);
    }
    updateOutput();
    refreshUnit();
}

// ---------------------------------------------------------------------------------------------
// Actions

async function act(what, request, onDone) {
    try {
        const client = await connect();
        const answer = await client.call(request);
        if (onDone)
            onDone(answer);
    } catch (e) {
        showFailure(what, e);
    }
    poll();
}

function cancelTask(id) {
    act(`Cancelling task ${id}`, { op: "cancel", id }, answer => {
        showAlert("success", answer.stopping ? `Task ${id} is being stopped` : `Task ${id}: ${answer.state}`);
    });
}

function retryTask(id) {
    act(`Retrying task ${id}`, { op: "retry", id }, () => {
        showAlert("success", `Task ${id} queued again`);
        restartOutput();
    });
}

function forgetTask(id) {
    modal({
        id: "forget-dialog",
        title: `Forget task ${id}?`,
        body: h("p", null, "Its record is removed from the ledger. Its output stays in the journal."),
        confirm: "Forget",
        confirmVariant: "danger",
        onConfirm: async () => {
            const client = await connect();
            await client.call({ op: "forget", id });
            forgetId(id);
            showAlert("success", `Task ${id} forgotten`);
            if (app.taskId === id)
                cockpit.location.go([]);
            poll();
        },
    });
}

function retryAllFailed() {
    const failed = app.stats ? app.stats.failed : null;
    modal({
        id: "retry-failed-dialog",
        title: "Retry all failed tasks?",
        body: h("p", null, failed === null
            ? "Every failed task is queued again, its attempts reset."
            : `${failed} failed ${failed === 1 ? "task is" : "tasks are"} queued again, their attempts reset.`),
        confirm: "Retry all failed",
        onConfirm: async () => {
            const client = await connect();
            const answer = await client.call({ op: "retry", state: "failed" });
            showAlert("success", `${answer.retried} failed ${answer.retried === 1 ? "task" : "tasks"} queued again`);
            poll();
        },
    });
}

function submitDialog() {
    const names = new Set();
    for (const r of [...app.records, ...app.knownRecords.values()]) {
        if (r.task)
            names.add(r.task);
    }
    const field = (label, input, help) => h("div", { class: "pf-c-form__group" },
        h("div", { class: "pf-c-form__group-label" },
            h("label", { class: "pf-c-form__label", for: input.id }, h("span", { class: "pf-c-form__label-text" }, label))),
        h("div", { class: "pf-c-form__group-control" }, input,
            help ? h("p", { class: "pf-c-form__helper-text" }, help) : null));
    const task = h("input", { class: "pf-c-form-control", id: "submit-task", type: "text", list: "submit-task-names", required: true, autocomplete: "off" });
    const args = h("textarea", { class: "pf-c-form-control", id: "submit-args", rows: "3" });
    const delay = h("input", { class: "pf-c-form-control", id: "submit-delay", type: "number", min: "0", placeholder: "0" });
    const priority = h("input", { class: "pf-c-form-control", id: "submit-priority", type: "number", min: "-1000", max: "1000", placeholder: "0" });
    const key = h("input", { class: "pf-c-form-control", id: "submit-key", type: "text", autocomplete: "off" });
    const form = h("form", { class: "pf-c-form pf-m-horizontal", onsubmit: e => e.preventDefault() },
        h("datalist", { id: "submit-task-names" }, [...names].sort().map(n => h("option", { value: n }))),
        field("Task", task, "The name of a task in /etc/asynctask/tasks.d/"),
        field("Arguments", args, "One per line, passed to the task as they are"),
        field("Delay (s)", delay),
        field("Priority", priority),
        field("Idempotency key", key, "Optional: a second submission with the same key starts nothing new"));
    modal({
        id: "submit-dialog",
        title: "Submit a task",
        body: form,
        confirm: "Submit",
        onConfirm: async () => {
            const request = { op: "submit", task: task.value.trim() };
            const lines = args.value.split("\n").map(a => a.replace(/\r$/, ""));
            while (lines.length && lines[lines.length - 1] === "")
                lines.pop();
            if (lines.length)
                request.args = lines;
            if (delay.value !== "")
                request.delay = Number(delay.value);
            if (priority.value !== "")
                request.priority = Number(priority.value);
            if (key.value !== "")
                request.key = key.value;
            const client = await connect();
            const answer = await client.call(request);
            rememberId(answer.id);
            const link = h("a", { href: `#/task/${answer.id}` }, `Task ${answer.id}`);
            showAlert("success", answer.existing ? "Already submitted with this key" : "Submitted",
                h("span", null, link, ` is ${answer.state}`));
            poll();
        },
    });
}

// ---------------------------------------------------------------------------------------------
// Rendering: the list view

function render() {
    renderAccess();
    renderConnection();
    if (cockpit.location.path[0] === "task") {
        renderTask();
    } else {
        renderOverview();
        renderControl();
        renderCharts();
        renderTable();
    }
}

function renderAccess() {
    let text = "…";
    let title = "";
    if (app.admin === true) {
        text = "Administrator: all tasks";
        title = "asynctask counts this user among its admins: every task is shown, and may be retried and forgotten";
    } else if (app.admin === false) {
        text = "Submitter: your own tasks";
        title = "Only admins may list, retry and forget tasks; with Cockpit's administrative access on, the page asks as root";
    }
    replace("access", h("span", { class: "pf-c-label pf-m-outline", id: "access-mode", "data-admin": String(app.admin), title },
        h("span", { class: "pf-c-label__content" }, text)));
    $("retry-failed-item").hidden = app.admin !== true;
    $("tasks-title").textContent = app.admin === false ? "Your tasks" : "Tasks";
}

function renderConnection() {
    const el = $("connection");
    if (app.connectionError) {
        el.textContent = `Cannot talk to asynctaskd at ${SOCKET_PATH}: ${app.connectionError.message}. Trying again every ${POLL_MS / 1000} s.`;
        el.className = "at-connection at-error";
    } else {
        el.textContent = app.version ? `asynctaskd ${app.version} at ${SOCKET_PATH}` : "";
        el.className = "at-connection at-muted";
    }
}

function term(name, value, id) {
    return h("div", { class: "pf-c-description-list__group" },
        h("dt", { class: "pf-c-description-list__term" }, h("span", { class: "pf-c-description-list__text" }, name)),
        h("dd", { class: "pf-c-description-list__description" }, h("div", { class: "pf-c-description-list__text", id }, value)));
}

function renderOverview() {
    const s = app.stats;
    const count = state => (s ? String(s[state]) : "—");
    replace("states", h("dl", { class: "pf-c-description-list pf-m-horizontal pf-m-compact at-counts" },
        fmt.STATES.map(state => term(stateLabel(state), count(state), `count-${state}`)),
        term(h("span", { title: "Tasks submitted since asynctaskd started" }, "Submitted since start"),
            s ? String(s.submitted_total) : "—", "count-submitted")));

    let oldest;
    if (s && s.queued === 0)
        oldest = "none queued";
    else if (app.admin === false)
        oldest = "— (admins only: it needs \"list\")";
    else
        oldest = fmt.duration(app.oldestQueuedAge);
    const health = (value, good) => h("span", { class: `pf-c-label ${value === good ? "pf-m-green" : "pf-m-red"}` },
        h("span", { class: "pf-c-label__content" }, value));
    replace("service", h("dl", { class: "pf-c-description-list pf-m-horizontal pf-m-compact" },
        term("Daemon", app.connectionError ? health("unreachable", "") : (app.version ? health("running", "running") : "—"), "daemon-state"),
        term("Launcher", s ? health(s.launcher, "connected") : "—", "launcher-state"),
        term("Store", s ? s.store : "—", "store-type"),
        term("Oldest queued", oldest, "oldest-queued"),
        term("Connections", s ? String(s.connections) : "—", "connections")));
}

// Drain and pause: what this host does (stats "draining", "paused"), with the admin's buttons. A
// daemon older than these answers no "draining": the card says so and offers nothing.
function renderControl() {
    const s = app.stats;
    const known = s && typeof s.draining === "boolean";
    const paused = known && Array.isArray(s.paused) ? s.paused : [];
    replaceIfChanged("control", { known, draining: known && s.draining, paused, admin: app.admin }, () => {
        if (!known)
            return h("p", { class: "at-muted" }, "—");
        const drain = s.draining
            ? [h("span", { class: "pf-c-label pf-m-orange", id: "draining-state" }, h("span", { class: "pf-c-label__content" }, "draining")),
                app.admin ? button("Undrain", { variant: "link", id: "undrain", onclick: () => setDraining(false) }) : null]
            : [h("span", { id: "draining-state" }, "taking work"),
                app.admin ? button("Drain", { variant: "link", id: "drain", onclick: () => setDraining(true) }) : null];
        const pausedList = paused.length === 0
            ? "none"
            : h("ul", { class: "at-paused", id: "paused-list" }, paused.map(p => h("li", { "data-task": p.task,
                title: `Paused by ${p.by} since ${fmt.timestamp(p.since)}` }, p.task,
                app.admin ? button("Resume", { variant: "link", id: `resume-${p.task}`, onclick: () => setPaused(p.task, false) }) : null)));
        return h("dl", { class: "pf-c-description-list pf-m-horizontal pf-m-compact" },
            term(h("span", { title: "A draining host starts no new runs (asynctask drain / undrain)" }, "This host"), drain, "drain-term"),
            term(h("span", { title: "Task names whose runs wait (asynctask pause / resume)" }, "Paused tasks"), pausedList, "paused-term"));
    });
}

function setDraining(draining) {
    if (!draining) {
        act("Ending the drain", { op: "undrain" }, () => {
            showAlert("success", "This host takes work again");
            poll();
        });
        return;
    }
    modal({
        id: "drain-dialog",
        title: "Drain this host?",
        body: h("p", null, "It starts no new runs until it is undrained, also across restarts; running tasks finish, queued ones wait."),
        confirm: "Drain",
        onConfirm: async () => {
            const client = await connect();
            const answer = await client.call({ op: "drain" });
            showAlert("success", answer.running === 0
                ? "This host is drained: nothing runs"
                : `Draining: ${answer.running} ${answer.running === 1 ? "task is" : "tasks are"} still running`);
            poll();
        },
    });
}

function setPaused(task, paused) {
    act(`${paused ? "Pausing" : "Resuming"} ${task}`, { op: paused ? "pause" : "resume", task }, () => {
        showAlert("success", paused ? `Task ${task} paused: its queued runs wait` : `Task ${task} resumed`);
        poll();
    });
}

function isPaused(task) {
    return !!(app.stats && Array.isArray(app.stats.paused) && app.stats.paused.some(p => p.task === task));
}

function renderCharts() {
    const now = Date.now();
    const series = app.history.series(now);
    replace("chart-runs", barChart(series.finished, "at-bar-runs", "runs-chart"));
    replace("chart-failures", barChart(series.failed, "at-bar-failures", "failures-chart"));
    $("history-note").textContent = series.since
        ? `Rates since ${fmt.timestamp(new Date(series.since).toISOString())}, when this page was opened (sampled from "stats" every ${POLL_MS / 1000} s).`
        : "";
}

// One bar per minute, the current minute last; minutes before the page opened are left empty.
// The SVG stretches to the card; its labels are text of the page, so they keep their size.
function barChart(values, barClass, id) {
    const width = values.length * 4;
    const height = 60;
    const known = values.filter(v => v !== null);
    const max = Math.max(1, ...known);
    const total = known.reduce((a, b) => a + b, 0);
    const bars = values.map((v, i) => {
        if (v === null || v === 0)
            return null;
        const barHeight = Math.max(1, (v / max) * height);
        return h("rect", { class: barClass, x: String(i * 4 + 0.5), y: (height - barHeight).toFixed(2), width: "3", height: barHeight.toFixed(2) },
            h("title", null, `${v} in the minute ${values.length - 1 - i} min ago`));
    });
    const last = known.length ? known[known.length - 1] : 0;
    return h("div", { class: "at-chart", id, "data-total": String(total), "data-last": String(last) },
        h("div", { class: "at-chart-label" }, `${max}/min`),
        h("svg", { viewBox: `0 0 ${width} ${height + 1}`, preserveAspectRatio: "none", role: "img",
            "aria-label": `${total} in the last hour, ${last} this minute` },
        h("line", { class: "at-axis", x1: "0", y1: String(height + 0.5), x2: String(width), y2: String(height + 0.5) }),
        bars),
        h("div", { class: "at-chart-axis" }, h("span", null, "60 min ago"), h("span", null, "now")),
        h("div", { class: "at-chart-summary" }, `${total} in the last hour · ${last} this minute`));
}

function actionButtons(record, small) {
    const id = record.id;
    const buttons = [];
    const variant = small ? "link" : "secondary";
    const prefix = small ? `row-${id}` : "task";
    if (record.state === "queued" || record.state === "running")
        buttons.push(button("Cancel", { variant, id: `${prefix}-cancel`, onclick: () => cancelTask(id) }));
    if (app.admin && (record.state === "failed" || record.state === "cancelled"))
        buttons.push(button("Retry", { variant, id: `${prefix}-retry`, onclick: () => retryTask(id) }));
    if (app.admin && record.state !== "running")
        buttons.push(button("Forget", { variant: small ? "link" : "danger", id: `${prefix}-forget`, onclick: () => forgetTask(id) }));
    // The task's name, not this run: every queued run of it waits (or goes on).
    if (!small && app.admin && record.task) {
        const paused = isPaused(record.task);
        buttons.push(button(paused ? `Resume ${record.task}` : `Pause ${record.task}`,
            { variant: "secondary", id: paused ? "task-resume" : "task-pause", onclick: () => setPaused(record.task, !paused) }));
    }
    return buttons;
}

function renderTable() {
    let rows;
    let note = "";
    let pagination;
    if (app.admin === false) {
        const records = app.knownIds.map(id => app.knownRecords.get(id)).filter(Boolean)
            .filter(r => !app.filter.state || r.state === app.filter.state);
        const page = clientPage(records, { task: app.filter.task, page: app.page, pageSize: app.pageSize });
        app.page = page.page;
        rows = page.rows;
        note = "Tasks you submitted from this browser or opened by id. Only admins may list every task.";
        pagination = pageState(page.first, page.rows.length, page.total, page.page > 0, page.page < page.pages - 1);
    } else {
        // Filtered here too: while the page with a new task name is on its way, the rows shown
        // already match it.
        rows = app.records.filter(r => matchesTask(r, app.filter.task));
        note = `Oldest first, in id order, ${app.pageSize} to a page as "list" pages them; refreshed every ${POLL_MS / 1000} s.`;
        const first = app.pager.page * app.pageSize + 1;
        pagination = pageState(rows.length ? first : 0, rows.length, null, app.pager.page > 0, app.nextAfter !== null);
    }
    $("list-note").textContent = app.admin === null ? "" : note;

    replaceIfChanged("table", { rows, admin: app.admin, error: app.listError && app.listError.message },
        () => tableOf(rows));
    replaceIfChanged("pagination", pagination, () => pageControls(pagination));
}

function tableOf(rows) {
    if (app.listError) {
        return h("div", { class: "pf-c-alert pf-m-danger pf-m-inline at-alert", "data-code": app.listError.code || "error" },
            h("div", { class: "pf-c-alert__icon" }, alertIcon("danger")),
            h("p", { class: "pf-c-alert__title" }, app.listError.message));
    }
    if (rows.length === 0) {
        return h("div", { class: "pf-c-empty-state pf-m-sm" },
            h("div", { class: "pf-c-empty-state__content" },
                h("h2", { class: "pf-c-title pf-m-lg" }, app.admin === null ? "Loading…" : "No tasks"),
                h("div", { class: "pf-c-empty-state__body" },
                    app.admin === false ? "Submit a task, or open one of yours by its id." : "No task matches the filter.")));
    }
    const head = ["ID", "State", "Task", "Attempts", "Submitter", "Created", "Started", "Finished", "Result", ""];
    const fit = new Set(["ID", "State", "Attempts", "Submitter"]);
    const now = Date.now();
    return h("table", { class: "pf-c-table pf-m-compact pf-m-grid-lg", role: "grid", id: "tasks-table" },
        h("thead", null, h("tr", { role: "row" }, head.map(t => h("th", { role: "columnheader", scope: "col", class: fit.has(t) ? "pf-m-fit-content" : null }, t)))),
        h("tbody", { role: "rowgroup" }, rows.map(r => h("tr", { role: "row", "data-task-id": String(r.id) },
            h("td", { role: "cell", "data-label": "ID" }, h("a", { href: `#/task/${r.id}` }, String(r.id))),
            h("td", { role: "cell", "data-label": "State" }, stateLabel(r.state)),
            h("td", { role: "cell", "data-label": "Task", class: "at-task-cell" },
                h("span", { class: "at-task-name" }, fmt.taskTitle(r)), " ",
                h("span", { class: "at-muted" }, fmt.argsText(r.args))),
            h("td", { role: "cell", "data-label": "Attempts" }, `${r.attempts}/${r.max_attempts}`),
            h("td", { role: "cell", "data-label": "Submitter" }, r.submitter || "—"),
            h("td", { role: "cell", "data-label": "Created" }, h("span", { title: r.created_at || "" }, fmt.shortTimestamp(r.created_at, now))),
            h("td", { role: "cell", "data-label": "Started" }, h("span", { title: r.started_at || "" }, fmt.shortTimestamp(r.started_at, now))),
            h("td", { role: "cell", "data-label": "Finished" }, h("span", { title: r.finished_at || "" }, fmt.shortTimestamp(r.finished_at, now))),
            h("td", { role: "cell", "data-label": "Result" }, fmt.runningProgress(r) !== null ? rowProgress(r) : fmt.resultText(r)),
            h("td", { role: "cell", class: "pf-c-table__action" }, h("div", { class: "at-row-buttons" }, actionButtons(r, true)))))));
}

// A running task's progress in its row: the text, with a thin bar when it starts with a percentage.
function rowProgress(record) {
    const text = fmt.runningProgress(record);
    const percent = fmt.progressPercent(text);
    return h("div", { class: "at-row-progress", id: `row-${record.id}-progress`, title: text },
        h("span", { class: "at-row-progress-text" }, text),
        percent === null ? null : h("div", { class: "at-row-progress-bar" },
            h("div", { class: "at-row-progress-fill", style: { width: `${percent}%` } })));
}

function pageState(first, shown, total, hasPrevious, hasNext) {
    return { first, shown, total, hasPrevious, hasNext, pageSize: app.pageSize };
}

function pageControls({ first, shown, total, hasPrevious, hasNext }) {
    const range = shown ? `${first}–${first + shown - 1}` : "0";
    const size = h("select", { class: "pf-c-form-control at-page-size", id: "page-size", "aria-label": "Tasks per page",
        onchange: e => {
            app.pageSize = Number(e.target.value);
            firstPage();
            poll();
        } },
    [25, 50, 100, 500].map(n => h("option", { value: String(n), selected: n === app.pageSize }, `${n} per page`)));
    return h("div", { class: "pf-l-split pf-m-gutter at-pager" },
        h("div", { class: "pf-l-split__item pf-m-fill" }),
        h("div", { class: "pf-l-split__item" }, size),
        h("div", { class: "pf-l-split__item at-page-range", id: "page-range" },
            total === null ? range : `${range} of ${total}`),
        h("div", { class: "pf-l-split__item" },
            button("‹ Previous", { variant: "control", id: "page-previous", disabled: !hasPrevious, onclick: () => turnPage(-1) }),
            button("Next ›", { variant: "control", id: "page-next", disabled: !hasNext, onclick: () => turnPage(1) })));
}

// Back to the first page, after a change of what the table shows.
function firstPage() {
    app.page = 0;
    app.pager.reset(app.pageSize);
    app.nextAfter = null;
}

function turnPage(delta) {
    if (app.admin) {
        if (delta > 0)
            app.pager.next(app.nextAfter);
        else
            app.pager.previous();
        // Where the page after this one starts is known once it is read: no second Next before.
        app.nextAfter = null;
    } else {
        app.page = Math.max(0, app.page + delta);
    }
    poll();
}

// ---------------------------------------------------------------------------------------------
// Rendering: one task

const RECORD_FIELDS = ["id", "task", "cmd", "args", "state", "attempts", "max_attempts", "priority", "key", "submitter",
    "unit", "node", "created_at", "started_at", "finished_at", "run_after", "result", "exit_status", "signal", "error", "progress"];

function recordValue(name, value) {
    if (value === null || value === undefined)
        return h("span", { class: "at-muted" }, "null");
    if (name.endsWith("_at") || name === "run_after")
        return h("span", { title: value }, fmt.timestamp(value));
    if (name === "state")
        return stateLabel(value);
    if (Array.isArray(value) || typeof value === "object")
        return h("code", null, JSON.stringify(value));
    return String(value);
}

function renderTask() {
    const id = app.taskId;
    const record = app.taskRecord;
    $("task-crumb").textContent = `Task ${id}`;
    $("task-title").textContent = record ? `Task ${id}: ${fmt.taskTitle(record)}` : `Task ${id}`;
    replace("task-state", record ? stateLabel(record.state) : null);
    replaceIfChanged("task-actions", record ? { id: record.id, state: record.state, admin: app.admin, paused: isPaused(record.task) } : null,
        () => (record ? actionButtons(record, false) : []));

    if (app.taskError) {
        replace("task-record", h("div", { class: "pf-c-alert pf-m-danger pf-m-inline at-alert", id: "task-error", "data-code": app.taskError.code },
            h("div", { class: "pf-c-alert__icon" }, alertIcon("danger")),
            h("p", { class: "pf-c-alert__title" }, app.taskError.message)));
        replace("task-unit", null);
        return;
    }
    if (!record) {
        replace("task-record", "Loading…");
        return;
    }
    const names = [...RECORD_FIELDS.filter(k => k in record), ...Object.keys(record).filter(k => k !== "ok" && !RECORD_FIELDS.includes(k))];
    const progress = record.progress !== undefined && record.progress !== null ? progressBar(record.progress) : null;
    replace("task-record", progress, h("dl", { class: "pf-c-description-list pf-m-horizontal pf-m-compact at-record", id: "record-fields" },
        names.map(k => term(k, recordValue(k, record[k]), `field-${k}`))));
    renderUnit();
}

function progressBar(progress) {
    const percent = fmt.progressPercent(progress);
    const bar = h("div", { class: "pf-c-progress__bar", role: "progressbar", "aria-valuemin": "0", "aria-valuemax": "100",
        "aria-valuenow": percent === null ? null : String(percent) },
    percent === null ? null : h("div", { class: "pf-c-progress__indicator", style: { width: `${percent}%` } }));
    return h("div", { class: "pf-c-progress at-progress", id: "task-progress" },
        h("div", { class: "pf-c-progress__description" }, String(progress)),
        h("div", { class: "pf-c-progress__status" }, h("span", { class: "pf-c-progress__measure" }, percent === null ? "" : `${percent}%`)),
        bar);
}

// ---------------------------------------------------------------------------------------------
// One task: its unit (systemctl show) and its output (the journal)

let unitState = { id: null, props: null, error: null, busy: false, final: false };

function refreshUnit() {
    const record = app.taskRecord;
    if (!record)
        return;
    const unit = fmt.unitName(record);
    if (unitState.id !== record.id)
        unitState = { id: record.id, props: null, error: null, busy: false, final: false };
    const final = fmt.FINAL_STATES.includes(record.state);
    if (!final)
        unitState.final = false; // retried: it runs again
    // A finished run's unit no longer changes: read it once more, then leave it.
    if (!unit || unitState.busy || unitState.final)
        return;
    unitState.busy = true;
    cockpit.spawn(["systemctl", "show", unit, "-p", UNIT_PROPERTIES.join(",")], { superuser: "try", err: "message" })
        .then(out => {
            const props = {};
            for (const line of out.split("\n")) {
                const eq = line.indexOf("=");
                if (eq > 0)
                    props[line.slice(0, eq)] = line.slice(eq + 1);
            }
            unitState.props = props;
            unitState.error = null;
        })
        .catch(e => { unitState.error = e.message || String(e); })
        .finally(() => {
            unitState.busy = false;
            unitState.final = final;
            if (app.taskRecord && app.taskRecord.id === record.id)
                renderUnit();
        });
}

function renderUnit() {
    const record = app.taskRecord;
    if (!record)
        return;
    const unit = fmt.unitName(record);
    if (!unit) {
        replace("task-unit", h("p", null, typeof record.unit === "string" && record.unit.startsWith("pid:")
            ? `Run by the direct executor as process ${record.unit.slice(4)}: no systemd unit.`
            : "No run yet."));
        return;
    }
    const props = unitState.id === record.id ? unitState.props : null;
    if (unitState.error) {
        replace("task-unit", h("p", null, `systemctl show ${unit}: ${unitState.error}`));
    } else if (!props) {
        replace("task-unit", h("p", null, `${unit}…`));
    } else if (props.LoadState === "not-found") {
        replace("task-unit", h("p", { id: "unit-released" }, `${unit} is no longer loaded: the launcher releases a unit once its result is recorded. The record and the journal keep what it did.`));
    } else {
        replace("task-unit", h("dl", { class: "pf-c-description-list pf-m-horizontal pf-m-compact", id: "unit-properties" },
            UNIT_PROPERTIES.filter(p => props[p] !== undefined && props[p] !== "" && props[p] !== "[not set]")
                .map(p => term(p, props[p], `unit-${p}`))));
    }
}

// The journal of the task (journalctl ASYNCTASK_ID=N): followed while the task may still run,
// read once when it is final.
function updateOutput() {
    const record = app.taskRecord;
    if (!record)
        return;
    const running = !fmt.FINAL_STATES.includes(record.state);
    const out = app.output;
    if (out && out.id === record.id && (out.follow === running || out.stopping))
        return;
    if (out && out.id === record.id && out.follow && !running) {
        // The task just ended: its last lines may still be on their way to the journal.
        out.stopping = true;
        setTimeout(() => startOutput(record.id, false), 1500);
        return;
    }
    startOutput(record.id, running);
}

function restartOutput() {
    if (app.output)
        app.output.stopping = true;
    if (app.taskId !== null)
        startOutput(app.taskId, true);
}

function stopOutput() {
    if (app.output && app.output.process)
        app.output.process.close();
    app.output = null;
}

function startOutput(id, follow) {
    if (app.taskId !== id)
        return;
    stopOutput();
    const argv = ["journalctl", "-o", "cat", "--no-pager"];
    if (follow)
        argv.push("-f", "--no-tail");
    argv.push(`ASYNCTASK_ID=${id}`);
    const output = { id, follow, text: "", stopping: false, process: null };
    app.output = output;
    const code = $("task-output");
    code.textContent = "";
    $("task-output-note").textContent = follow ? "(following the journal)" : "(from the journal)";
    // err "out": journalctl's word that this user may not read the system journal is shown too.
    output.process = cockpit.spawn(argv, { superuser: "try", err: "out" });
    output.process.stream(data => {
        if (app.output !== output)
            return;
        output.text += data;
        if (output.text.length > OUTPUT_MAX_CHARS)
            output.text = output.text.slice(output.text.length - OUTPUT_MAX_CHARS);
        // Followed output stays at its end, unless the reader scrolled back.
        const pre = code.parentElement;
        const atEnd = pre.scrollTop + pre.clientHeight >= pre.scrollHeight - 4;
        code.textContent = output.text;
        if (atEnd)
            pre.scrollTop = pre.scrollHeight;
    });
    output.process.catch(e => {
        if (app.output === output && e.problem !== "cancelled")
            code.textContent = output.text + `\n[journalctl: ${e.message}]`;
    });
}

// ---------------------------------------------------------------------------------------------
// Views and navigation (#/ and #/task/N)

function navigate() {
    const path = cockpit.location.path;
    if (path[0] === "task" && /^[0-9]+$/.test(path[1] || "")) {
        const id = Number(path[1]);
        if (app.taskId !== id) {
            stopOutput();
            app.taskId = id;
            app.taskRecord = null;
            app.taskError = null;
            $("task-output").textContent = "";
        }
        if (!app.admin)
            rememberId(id);
        $("list-view").hidden = true;
        $("task-view").hidden = false;
    } else {
        stopOutput();
        app.taskId = null;
        app.taskRecord = null;
        $("task-view").hidden = true;
        $("list-view").hidden = false;
    }
    render();
    poll();
}

function openTaskById(event) {
    event.preventDefault();
    const text = $("open-id").value.trim();
    if (!/^[0-9]+$/.test(text) || Number(text) < 1) {
        showAlert("danger", "A task id is a number from 1", `not "${text}"`, "bad_input");
        return;
    }
    $("open-id").value = "";
    cockpit.location.go(["task", text]);
}

// Cockpit's light, dark or automatic style, as the shell stores it.
function applyTheme() {
    let style = "auto";
    try {
        style = window.localStorage.getItem("shell:style") || "auto";
    } catch (e) { /* no storage: the browser's preference */ }
    const dark = style === "dark" || (style === "auto" && window.matchMedia("(prefers-color-scheme: dark)").matches);
    document.documentElement.classList.toggle("pf-theme-dark", dark);
}

async function init() {
    applyTheme();
    window.addEventListener("storage", e => { if (e.key === "shell:style") applyTheme(); });
    window.matchMedia("(prefers-color-scheme: dark)").addEventListener("change", applyTheme);

    app.user = await cockpit.user();
    loadKnownIds();
    watchSuperuser();

    $("filter-state").addEventListener("change", e => {
        app.filter.state = e.target.value;
        firstPage();
        poll();
    });
    // The task name is looked for by reading "list" (it filters by state only), from the first
    // page, once the typing pauses.
    let typing = null;
    $("filter-task").addEventListener("input", e => {
        app.filter.task = e.target.value.trim();
        firstPage();
        clearTimeout(typing);
        render();
        if (app.admin)
            typing = setTimeout(poll, 300);
    });
    $("open-form").addEventListener("submit", openTaskById);
    $("submit-open").addEventListener("click", submitDialog);
    $("retry-failed").addEventListener("click", retryAllFailed);
    cockpit.addEventListener("locationchanged", navigate);
    cockpit.addEventListener("visibilitychange", () => { if (!cockpit.hidden) poll(); });
    navigate();
}

init();
