// SPDX-License-Identifier: MIT
// The browser test of asynctask's Cockpit page (e2e scenario cockpit-page): Debian's Chromium,
// driven by playwright-core, logs in to the real Cockpit of the booted container, once as an admin
// (Cockpit's administrative access on: the page asks as root) and once as a submitter. It runs in
// the container's network namespace (nsenter -n) and asks the container for the truth with
// nsenter -a (the CLI, the journal). Prints one "ok"/"not ok" line per check; exits 1 on any failure.
//
// Environment: COCKPIT_URL, CT_PID1 (the container's PID 1), ADMIN_USER, WEB_USER, E2E_PASSWORD
// (both users'), FAILED_ID (a failed task of root's) and FAIL_MARKER (a line of its output),
// WEB_TASK (a task WEB_USER may submit), PROGRESS_TASK (a task that reports "40% halfway there"
// with STATUS= until /run/e2e-page-progress-ID.go exists), SHOT_DIR (screenshots), CHROMIUM
// (default /usr/bin/chromium).
import { execFileSync } from "node:child_process";
import fs from "node:fs";
import path from "node:path";
import { chromium } from "playwright-core";

const env = name => {
    const value = process.env[name];
    if (!value) {
        console.error(`page-test: ${name} is not set`);
        process.exit(2);
    }
    return value;
};
const URL = env("COCKPIT_URL");
const PID1 = env("CT_PID1");
const ADMIN_USER = env("ADMIN_USER");
const WEB_USER = env("WEB_USER");
const PASSWORD = env("E2E_PASSWORD");
const FAILED_ID = Number(env("FAILED_ID"));
const FAIL_MARKER = env("FAIL_MARKER");
const WEB_TASK = env("WEB_TASK");
const PROGRESS_TASK = env("PROGRESS_TASK");
const PROGRESS_TEXT = "40% halfway there";
const SHOT_DIR = env("SHOT_DIR");
const TIMEOUT = 60000; // one wait; a loaded 2-CPU machine runs Cockpit, Chromium and the tasks
const started = Date.now();
let failures = 0;
let passes = 0;

fs.mkdirSync(SHOT_DIR, { recursive: true });

// A command in the container (all its namespaces).
function ct(...argv) {
    return execFileSync("nsenter", ["-t", PID1, "-a", "--", ...argv], { encoding: "utf8", timeout: 60000, stdio: ["ignore", "pipe", "pipe"] });
}
const cli = (...args) => JSON.parse(ct("asynctask", "--json", ...args));

// A command that puts things back after a check, whatever the check left: its failure is printed,
// not thrown over the check's own.
function cleanup(...argv) {
    try {
        ct(...argv);
    } catch (e) {
        console.log(`    cleanup: ${argv.join(" ")}: ${(e.stderr || e.message || "").toString().trim()}`);
    }
}

function ok(what) {
    passes++;
    console.log(`    ok - ${what} (${((Date.now() - started) / 1000).toFixed(0)}s)`);
}

async function check(what, fn, page) {
    try {
        await fn();
        ok(what);
        return true;
    } catch (e) {
        failures++;
        console.log(`    not ok - ${what}: ${(e.message || String(e)).split("\n").slice(0, 6).join("\n      ")}`);
        if (page) {
            const file = path.join(SHOT_DIR, `failed-${failures}.png`);
            await page.screenshot({ path: file }).catch(() => {});
            console.log(`      screenshot: ${file}`);
        }
        return false;
    }
}

// What a condition of until() returns while it does not hold yet: what it saw, for the message.
const NOT_YET = Symbol("not yet");
const notYet = seen => ({ [NOT_YET]: true, seen });

// Polls fn until it returns a true value (not a notYet()) or `ms` pass; then throws with what it
// last saw.
async function until(description, fn, ms = TIMEOUT) {
    const deadline = Date.now() + ms;
    let last;
    for (;;) {
        try {
            const result = await fn();
            if (result && !result[NOT_YET])
                return result;
            last = result && result[NOT_YET] ? result.seen : result;
        } catch (e) {
            last = e.message;
        }
        if (Date.now() > deadline)
            throw new Error(`${description}: not within ${ms / 1000}s (last: ${JSON.stringify(last)})`);
        await new Promise(resolve => setTimeout(resolve, 500));
    }
}

// Logs in through Cockpit's login page and opens the asynctask page; returns the page and its frame.
// An admin's browser remembers that administrative access was on (Cockpit keeps that choice per
// user in the browser), so the session starts with it, as it would for that admin.
async function login(browser, user, { admin }) {
    const context = await browser.newContext({ viewport: { width: 1400, height: 1000 }, ignoreHTTPSErrors: true });
    context.setDefaultTimeout(TIMEOUT);
    const page = await context.newPage();
    await page.goto(`${URL}/`);
    await page.evaluate(([u, level]) => window.localStorage.setItem(`superuser:${u}`, level), [user, admin ? "any" : "none"]);
    await page.fill("#login-user-input", user);
    await page.fill("#login-password-input", PASSWORD);
    await page.click("#login-button");
    await page.waitForSelector("#super-user-indicator");
    await page.goto(`${URL}/asynctask`);
    const frame = page.frameLocator('iframe[name="cockpit1:localhost/asynctask"]');
    await frame.locator("#access-mode:not([data-admin=\"null\"])").waitFor();
    return { context, page, frame };
}

const text = async locator => (await locator.textContent()).trim();

// A screenshot of what the page shows now: after two animation frames of the page's own frame, so
// that the picture is not one painted before the last update.
async function screenshot(page, frame, name) {
    await frame.locator("body").evaluate(() => new Promise(resolve => requestAnimationFrame(() => requestAnimationFrame(resolve))));
    const file = path.join(SHOT_DIR, name);
    await page.screenshot({ path: file });
    console.log(`    screenshot: ${file}`);
}
const count = (haystack, needle) => haystack.split(needle).length - 1;
const pausedNames = () => (cli("stats").paused || []).map(p => p.task);
const rowIds = frame => frame.locator("#tasks-table tbody tr").evaluateAll(rows => rows.map(r => Number(r.dataset.taskId)));

// Opens a task's page by its id, as a user types it.
async function openTask(frame, id) {
    await frame.locator("#open-id").fill(String(id));
    await frame.locator("#open-task").click();
    await frame.locator("#task-view:not([hidden])").waitFor();
    await until(`the page of task ${id}`, async () => (await text(frame.locator("#task-crumb"))) === `Task ${id}`);
}

async function backToList(frame) {
    await frame.locator(".pf-c-breadcrumb__link").first().click();
    await frame.locator("#list-view:not([hidden])").waitFor();
}

// The Control card as an admin: Pause on a task's page, the card and asynctask stats agree, Resume
// in the card; Drain (after its confirmation) and Undrain.
async function adminControl(page, frame) {
    const name = "page-fail";
    try {
        await check(`admin: Pause ${name} on a task's page; the Control card and asynctask stats list it paused`, async () => {
            if (pausedNames().includes(name))
                throw new Error(`${name} is paused before the test`);
            await openTask(frame, FAILED_ID);
            await frame.locator("#task-pause").click();
            await frame.locator(".at-alert", { hasText: `Task ${name} paused` }).waitFor();
            await frame.locator("#task-resume").waitFor();
            const paused = pausedNames();
            if (!paused.includes(name))
                throw new Error(`asynctask stats: paused ${JSON.stringify(paused)}`);
            await backToList(frame);
            await frame.locator(`#paused-list li[data-task="${name}"]`).waitFor();
        }, page);

        await check(`admin: Resume ${name} in the Control card ends the pause, in asynctask stats too`, async () => {
            await frame.locator(`#resume-${name}`).click();
            await frame.locator(".at-alert", { hasText: `Task ${name} resumed` }).waitFor();
            await until("the card no longer lists it", async () =>
                (await frame.locator(`#paused-list li[data-task="${name}"]`).count()) === 0);
            const paused = pausedNames();
            if (paused.includes(name))
                throw new Error(`asynctask stats: paused ${JSON.stringify(paused)}`);
        }, page);

        await check("admin: Drain asks first and drains the host; Undrain ends it", async () => {
            if (cli("stats").draining !== false)
                throw new Error("the host is draining before the test");
            await frame.locator("#drain").click();
            await frame.locator("#drain-dialog").waitFor();
            await frame.locator("#drain-dialog-confirm").click();
            await until("the card shows the host draining", async () => (await text(frame.locator("#draining-state"))) === "draining");
            if (cli("stats").draining !== true)
                throw new Error("asynctask stats: not draining");
            await frame.locator("#undrain").click();
            await until("the card shows the host taking work", async () => (await text(frame.locator("#draining-state"))) === "taking work");
            if (cli("stats").draining !== false)
                throw new Error("asynctask stats: still draining");
        }, page);
    } finally {
        // Whatever failed above, the scenarios after this one find the host taking work.
        cleanup("asynctask", "resume", name);
        cleanup("asynctask", "undrain");
    }
}

// A running task's progress in its row of the table and on its page.
async function adminProgress(page, frame) {
    const id = Number(ct("asynctask", "submit", PROGRESS_TASK).trim());
    try {
        await check("admin: a running task's progress is in its row, in place of the result", async () => {
            await frame.locator("#filter-state").selectOption("running");
            await frame.locator("#filter-task").fill(PROGRESS_TASK);
            await until("the daemon has the progress", () => cli("status", String(id)).progress === PROGRESS_TEXT);
            const cell = frame.locator(`#row-${id}-progress`);
            await until("the row shows it", async () => (await cell.count()) === 1 && (await text(cell)) === PROGRESS_TEXT);
            const width = await cell.locator(".at-row-progress-fill").evaluate(el => el.style.width);
            if (width !== "40%")
                throw new Error(`bar ${width}`);
        }, page);
        await frame.locator(`#row-${id}-progress`).scrollIntoViewIfNeeded();
        await screenshot(page, frame, "progress.png");

        await check("admin: the task's page shows its progress as a bar", async () => {
            await openTask(frame, id);
            const bar = frame.locator("#task-progress");
            await until("the bar is there", async () => (await bar.count()) === 1);
            const words = await text(bar.locator(".pf-c-progress__description"));
            const now = await bar.locator('[role="progressbar"]').getAttribute("aria-valuenow");
            if (words !== PROGRESS_TEXT || now !== "40")
                throw new Error(`"${words}", aria-valuenow ${now}`);
            await backToList(frame);
        }, page);
    } finally {
        cleanup("touch", `/run/e2e-page-progress-${id}.go`);
    }
    await until(`task ${id} has ended`, () => cli("status", String(id)).state === "succeeded");
}

// Paging: delayed runs make a queue of a known size; 25 to a page, Next and Previous go through it
// in id order, as asynctask list has it.
async function adminPaging(page, frame) {
    const ids = [];
    try {
        for (let i = 0; i < 30; i++)
            ids.push(Number(ct("asynctask", "submit", "--delay", "3600", "greet", `page-${i}`).trim()));
        await check("admin: the table pages through list with Next and Previous, 25 to a page", async () => {
            const queued = cli("stats").queued;
            if (queued !== ids.length)
                throw new Error(`${queued} queued, want the ${ids.length} delayed ones alone`);
            await frame.locator("#filter-task").fill("");
            await frame.locator("#filter-state").selectOption("queued");
            await frame.locator("#page-size").selectOption("25");
            const first = ids.slice(0, 25);
            await until("the first page", async () => {
                const shown = await rowIds(frame);
                return JSON.stringify(shown) === JSON.stringify(first) ? true : notYet(shown);
            });
            if ((await text(frame.locator("#page-range"))) !== "1–25" || !(await frame.locator("#page-previous").isDisabled()))
                throw new Error(`first page: range ${await text(frame.locator("#page-range"))}`);
            await frame.locator("#page-next").click();
            await until("the second page", async () => {
                const shown = await rowIds(frame);
                return JSON.stringify(shown) === JSON.stringify(ids.slice(25)) ? true : notYet(shown);
            });
            if ((await text(frame.locator("#page-range"))) !== "26–30" || !(await frame.locator("#page-next").isDisabled()))
                throw new Error(`second page: range ${await text(frame.locator("#page-range"))}, Next enabled`);
            await frame.locator("#page-previous").click();
            await until("the first page again", async () => {
                const shown = await rowIds(frame);
                return JSON.stringify(shown) === JSON.stringify(first) ? true : notYet(shown);
            });
        }, page);
    } finally {
        for (const id of ids)
            cleanup("asynctask", "cancel", String(id));
        await frame.locator("#page-size").selectOption("100").catch(() => {});
        await frame.locator("#filter-state").selectOption("").catch(() => {});
    }
}

async function adminSession(browser) {
    const { context, page, frame } = await login(browser, ADMIN_USER, { admin: true });

    await check("admin: Cockpit's menu has asynctask", async () => {
        await page.locator('a[href="/asynctask"]').first().waitFor();
    }, page);
    await check("admin: with administrative access the page asks as root, an asynctask admin", async () => {
        const admin = await frame.locator("#access-mode").getAttribute("data-admin");
        if (admin !== "true")
            throw new Error(`access mode ${admin}: ${await text(frame.locator("#access-mode"))}`);
        await frame.locator("#retry-failed").waitFor({ state: "visible" });
    }, page);

    // Some runs while the page is open, for its rates (and its screenshot): three that succeed,
    // one that fails.
    for (let i = 0; i < 3; i++)
        ct("asynctask", "submit", "greet", `page-${i}`);
    ct("asynctask", "submit", "exitwith", "3");

    await check("admin: the overview's counts are asynctask --json stats", async () => {
        await until("no task queued or running", () => {
            const s = cli("stats");
            return s.queued === 0 && s.running === 0;
        });
        const states = ["queued", "running", "succeeded", "failed", "cancelled"];
        await until("the page's counts equal the daemon's", async () => {
            const s = cli("stats");
            const shown = {};
            for (const state of states)
                shown[state] = Number(await text(frame.locator(`#count-${state}`)));
            shown.launcher = await text(frame.locator("#launcher-state"));
            shown.store = await text(frame.locator("#store-type"));
            const want = { ...Object.fromEntries(states.map(st => [st, s[st]])), launcher: s.launcher, store: s.store };
            return JSON.stringify(shown) === JSON.stringify(want) ? true : notYet({ shown, want });
        });
    }, page);

    await check("admin: the rates count the runs since the page opened", async () => {
        await until("4 runs and 1 failure", async () => {
            const runs = Number(await frame.locator("#runs-chart").getAttribute("data-total"));
            const failed = Number(await frame.locator("#failures-chart").getAttribute("data-total"));
            return runs >= 4 && failed >= 1 ? true : notYet({ runs, failed });
        });
    }, page);

    await screenshot(page, frame, "overview.png");

    // The filters as a user would find it among many tasks (the suite's earlier scenarios left
    // hundreds): failed ones, of that task.
    await check("admin: the table, filtered by state and task name, lists the failed task", async () => {
        const row = frame.locator(`tr[data-task-id="${FAILED_ID}"]`);
        await frame.locator("#filter-state").selectOption("failed");
        await frame.locator("#filter-task").fill("page-fail");
        await row.waitFor();
        const state = await text(row.locator('td[data-label="State"]'));
        if (state !== "failed")
            throw new Error(`state ${state}`);
        const others = await frame.locator("#tasks-table tbody tr").evaluateAll(rows => rows.map(r => r.querySelector(".at-task-name").textContent));
        if (others.some(name => name !== "page-fail"))
            throw new Error(`rows of other tasks: ${others}`);
    }, page);

    const before = cli("status", String(FAILED_ID));
    await check("admin: a failed task's page shows its record and its output from the journal", async () => {
        await frame.locator(`tr[data-task-id="${FAILED_ID}"] a`).first().click();
        await frame.locator("#task-view:not([hidden])").waitFor();
        await until("the state is failed", async () => (await text(frame.locator("#task-state"))) === "failed");
        await until("the output shows the task's line", async () => (await text(frame.locator("#task-output"))).includes(FAIL_MARKER));
        const result = await text(frame.locator("#field-result"));
        if (result !== before.result)
            throw new Error(`result field ${result}, want ${before.result}`);
        await frame.locator("#unit-properties, #unit-released").first().waitFor();
    }, page);

    await screenshot(page, frame, "task.png");

    const journalRuns = () => count(ct("journalctl", "-o", "cat", "--no-pager", `ASYNCTASK_ID=${FAILED_ID}`), FAIL_MARKER);
    await check("admin: Retry runs the failed task again", async () => {
        const runsBefore = journalRuns();
        await frame.locator("#task-retry").click();
        await until("a second run has ended", () => {
            const r = cli("status", String(FAILED_ID));
            return r.state === "failed" && r.started_at !== before.started_at ? r : false;
        });
        const runs = await until("the second run's line in the journal", () => {
            const n = journalRuns();
            return n === runsBefore + 1 ? n : false;
        });
        await until("the page shows both runs' output", async () => count(await text(frame.locator("#task-output")), FAIL_MARKER) === runs);
    }, page);

    await check("admin: Retry all failed asks first, then retries every failed task", async () => {
        await frame.locator(".pf-c-breadcrumb__link").first().click();
        await frame.locator("#list-view:not([hidden])").waitFor();
        const failed = cli("stats").failed;
        await frame.locator("#retry-failed").click();
        await frame.locator("#retry-failed-dialog").waitFor();
        await frame.locator("#retry-failed-dialog-confirm").click();
        const alert = frame.locator(".at-alert", { hasText: /failed tasks? queued again/ });
        await alert.waitFor();
        const words = await text(alert);
        if (!words.startsWith(`${failed} failed`))
            throw new Error(`alert "${words}", but ${failed} tasks had failed`);
        await until("the retried tasks have run", () => {
            const s = cli("stats");
            return s.queued === 0 && s.running === 0;
        });
    }, page);

    await adminControl(page, frame);
    await adminProgress(page, frame);
    await adminPaging(page, frame);

    await context.close();
}

async function submitterSession(browser) {
    const { context, page, frame } = await login(browser, WEB_USER, { admin: false });

    await check("submitter: no admin buttons, no list of others' tasks", async () => {
        const admin = await frame.locator("#access-mode").getAttribute("data-admin");
        if (admin !== "false")
            throw new Error(`access mode ${admin}`);
        if (await frame.locator("#retry-failed").isVisible())
            throw new Error("Retry all failed is offered");
        if (await frame.locator("#tasks-table tbody tr").count() !== 0)
            throw new Error("the table shows tasks before this user submitted any");
    }, page);

    let id;
    await check("submitter: submits a task from the form, and sees it alone in the table", async () => {
        await frame.locator("#submit-open").click();
        await frame.locator("#submit-task").fill(WEB_TASK);
        await frame.locator("#submit-args").fill("from the page");
        await frame.locator("#submit-dialog-confirm").click();
        const alert = frame.locator(".at-alert", { hasText: "Submitted" });
        await alert.waitFor();
        id = Number(/Task ([0-9]+)/.exec(await text(alert))[1]);
        const record = cli("status", String(id));
        const uid = ct("id", "-u", WEB_USER).trim();
        if (record.submitter !== `uid:${uid}` || JSON.stringify(record.args) !== '["from the page"]')
            throw new Error(`record ${JSON.stringify(record)}`);
        const row = frame.locator(`tr[data-task-id="${id}"]`);
        await until("the row is there and final", async () => ["succeeded", "failed"].includes(await text(row.locator('td[data-label="State"]'))));
        const ids = await frame.locator("#tasks-table tbody tr").evaluateAll(rows => rows.map(r => r.dataset.taskId));
        if (JSON.stringify(ids) !== JSON.stringify([String(id)]))
            throw new Error(`rows ${ids}`);
        if (await frame.locator(`#row-${id}-retry, #row-${id}-forget`).count() !== 0)
            throw new Error("Retry or Forget offered to a submitter");
    }, page);

    await screenshot(page, frame, "submitter.png");

    // With a task name paused by root, the card lists it to this user too, with nothing to press.
    ct("asynctask", "pause", "greet");
    try {
        await check("submitter: the Control card shows the host's state and what is paused, without buttons", async () => {
            await frame.locator('#paused-list li[data-task="greet"]').waitFor();
            await frame.locator("#draining-state").waitFor();
            const buttons = await frame.locator("#control button").count();
            if (buttons !== 0)
                throw new Error(`${buttons} buttons in the Control card`);
            await openTask(frame, id);
            await until("its record is shown", async () => (await frame.locator("#field-state").count()) === 1);
            if (await frame.locator("#task-pause, #task-resume").count() !== 0)
                throw new Error("Pause or Resume on the submitter's own task's page");
            await backToList(frame);
        }, page);
    } finally {
        cleanup("asynctask", "resume", "greet");
    }

    await check("submitter: another user's task is refused with the daemon's own words", async () => {
        await frame.locator("#open-id").fill(String(FAILED_ID));
        await frame.locator("#open-task").click();
        const error = frame.locator("#task-error");
        await error.waitFor();
        const code = await error.getAttribute("data-code");
        const words = await text(error);
        if (code !== "forbidden" || !words.startsWith("forbidden: "))
            throw new Error(`shown: ${code} ${words}`);
        if (await frame.locator("#task-actions button").count() !== 0)
            throw new Error("actions offered on a task the user may not see");
    }, page);

    await context.close();
}

const browser = await chromium.launch({
    executablePath: process.env.CHROMIUM || "/usr/bin/chromium",
    args: ["--disable-gpu", "--disable-background-networking", "--disable-component-update", "--disable-sync", "--no-first-run"],
});
try {
    await adminSession(browser).catch(e => check("admin session", () => { throw e; }));
    await submitterSession(browser).catch(e => check("submitter session", () => { throw e; }));
} finally {
    await browser.close();
}
console.log(`    browser checks: ${passes} passed, ${failures} failed`);
process.exit(failures ? 1 : 0);
