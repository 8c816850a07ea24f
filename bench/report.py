#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Turns the raw measurements of bench/run (one JSON object per line) into the results table (text)
and a machine-readable summary (JSON): min/median/max over the runs, per-run ratios against the
comparison measured in the same run, the targets of the benchmark issue, and the load average."""

import argparse
import json
import os
import statistics

# The ingest cases: (case, description, target ratio against the comparison or None).
INGEST_CASES = {
    "ingest-memory": [
        ("a", "(a) pipelined, 1 connection, 128 in flight (TCP)", 1.0),
        ("b-tcp", "(b) 1 connection per submission, TCP", 0.8),
        ("b-unix", "(b) 1 connection per submission, unix socket", 0.8),
        ("c", "(c) 64 connections, 1 in flight each (TCP)", 1.0),
        ("c16", "(c16) 64 connections, 16 in flight each (TCP)", None),
    ],
    "ingest-mysql": [
        ("c16", "(c16) 64 connections, 16 in flight each (issue 4's load)", 1.5),
        ("c", "(c) 64 connections, 1 in flight each", 1.5),
        ("a", "(a) pipelined, 1 connection, 128 in flight", None),
    ],
}
FIGURE_TITLES = {
    "ingest-memory": "1. Ingest, memory store, against beanstalkd without binlog",
    "ingest-mysql": "2. Ingest, MySQL store (group commit), against beanstalkd -b DIR -f0 (fsync per write)",
}
COMPARISON = {"ingest-memory": "beanstalkd", "ingest-mysql": "beanstalkd"}

OLD_SERVER = (
    "7. The old server (PHP/Swoole async-task), NOT measured in this run (its extension is not packaged);\n"
    "   figures from the benchmark issue, measured earlier on this kind of machine:\n"
    "   5,000 commands over one connection or one connection each: 1.8-3.7 s end to end (about 1,350-2,800/s),\n"
    "   2-4 of 5,000 commands lost over one connection; 160 MB RSS (31 MB PSS) for its 12 processes."
)


def mmm(values):
    vals = [v for v in values if v is not None]
    if not vals:
        return None
    return {"min": min(vals), "median": statistics.median(vals), "max": max(vals), "n": len(vals)}


def fmt_rate(m):
    if not m:
        return "n/a"
    return f"{m['min']:,.0f} / {m['median']:,.0f} / {m['max']:,.0f}"


def fmt_ratio(m):
    if not m:
        return "n/a"
    return f"{m['min']:.2f} / {m['median']:.2f} / {m['max']:.2f}"


def verdict(m, target, higher_is_better=True):
    if target is None or not m:
        return "-"
    ok = m["median"] >= target if higher_is_better else m["median"] <= target
    return ("met" if ok else "MISSED") + f" (target {'>=' if higher_is_better else '<='} {target:g})"


def strip_addr(obj):
    """Results must not name this machine's temporary paths."""
    if isinstance(obj, dict):
        return {k: strip_addr(v) for k, v in obj.items() if k != "addr"}
    if isinstance(obj, list):
        return [strip_addr(v) for v in obj]
    return obj


def rate_of(rec):
    r = rec.get("result") or {}
    if not r.get("ok", True) and not r.get("rate"):
        return None
    return r.get("finish_rate") or r.get("rate")


LAUNCH_BURST = 2000


def fmt_ms(m):
    if not m:
        return "n/a"
    return f"{m['min']:.2f} / {m['median']:.2f} / {m['max']:.2f}"


def exec_ms(recs, q):
    """Submit-to-exec latency quantile of each run (loadgen --stamps), in ms."""
    vals = []
    for r in recs:
        h = r["result"].get("exec_us") or {}
        if h.get("n"):
            vals.append(h.get(q) / 1000.0)
    return mmm(vals)


def mib(kib):
    return None if kib in (None, "null") else round(kib / 1024.0, 1)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--meta", required=True)
    ap.add_argument("--raw", required=True)
    ap.add_argument("--notes", required=True)
    ap.add_argument("--profiles")
    ap.add_argument("--elapsed", type=int, default=0)
    ap.add_argument("--json", required=True)
    ap.add_argument("--text", required=True)
    a = ap.parse_args()

    meta = json.load(open(a.meta))
    raw = []
    for line in open(a.raw):
        line = line.strip()
        if line:
            try:
                raw.append(json.loads(line))
            except ValueError:
                raw.append({"figure": "unparsable", "line": line[:200]})
    notes = [json.loads(x) for x in open(a.notes) if x.strip()]
    loads = [r["loadavg"][0] for r in raw if isinstance(r.get("loadavg"), list) and r["loadavg"]]

    out = []
    summary = {"meta": meta, "elapsed_s": a.elapsed, "figures": {}, "notes": notes}
    out.append(
        f"asynctask benchmarks {meta['started']} - commit {meta['commit']}{' (uncommitted changes)' if meta['tree_dirty'] else ''}"
    )
    out.append(
        f"machine: {meta['cpus']} CPUs ({meta['cpu']}), {meta['mem_gib']} GiB, kernel {meta['kernel']}, "
        f"work dir on {meta['fs_of_workdir']}"
    )
    out.append(f"comparisons: {meta['beanstalkd']}; {meta['mariadb']}")
    la = f"load average (1 min) at start {meta['loadavg_start'][0]}"
    if loads:
        la += f", during the measurements min {min(loads):.2f} / median {statistics.median(loads):.2f} / max {max(loads):.2f}"
    out.append(la)
    out.append(
        f"{meta['runs']} run(s) of each measurement, {meta['duration_s']:g} s of load each (first {meta['warmup_s']:g} s not "
        f"counted), frames/jobs of {meta['payload_bytes']} bytes; all figures min / median / max over the runs; ratios are "
        f"per run (asynctask / comparison, both measured back to back in the same run); bench ran {a.elapsed} s."
    )
    out.append("")

    # 1 and 2: ingest
    for fig, cases in INGEST_CASES.items():
        recs = [r for r in raw if r.get("figure") == fig]
        fig_notes = [n["note"] for n in notes if n["figure"] == fig]
        out.append(FIGURE_TITLES[fig])
        if not recs:
            out.append("   not measured" + (": " + "; ".join(fig_notes) if fig_notes else ""))
            out.append("")
            summary["figures"][fig] = {"measured": False, "notes": fig_notes}
            continue
        comp = COMPARISON[fig]
        out.append(
            f"   {'case':<58} {'asynctask /s':>28} {comp + ' /s':>28} {'ratio':>20}  p50/p99 latency us (at/bs)  verdict"
        )
        fs = {}
        for case, desc, target in cases:
            at = {r["run"]: r for r in recs if r["case"] == case and r["system"] == "asynctask"}
            bs = {r["run"]: r for r in recs if r["case"] == case and r["system"] == comp}
            if not at and not bs:
                continue
            ar = mmm([rate_of(r) for r in at.values()])
            br = mmm([rate_of(r) for r in bs.values()])
            ratios = []
            for run in sorted(set(at) & set(bs)):
                x, y = rate_of(at[run]), rate_of(bs[run])
                if x and y:
                    ratios.append(x / y)
            rm = mmm(ratios)

            def lat(recs_, q):
                m = mmm([(r["result"].get("latency_us") or {}).get(q) for r in recs_.values()])
                return f"{m['median']:,.0f}" if m else "-"

            errs = {}
            for r in list(at.values()) + list(bs.values()):
                for k, v in (r["result"].get("error_codes") or {}).items():
                    errs[f"{r['system']}:{k}"] = errs.get(f"{r['system']}:{k}", 0) + v
            out.append(
                f"   {desc:<58} {fmt_rate(ar):>28} {fmt_rate(br):>28} {fmt_ratio(rm):>20}  "
                f"{lat(at, 'p50')}/{lat(at, 'p99')} vs {lat(bs, 'p50')}/{lat(bs, 'p99')}  {verdict(rm, target)}"
            )
            if errs:
                out.append(f"      errors: {errs}")
            fs[case] = {
                "description": desc,
                "asynctask": ar,
                comp: br,
                "ratio": rm,
                "target_ratio": target,
                "met": None if target is None or not rm else rm["median"] >= target,
                "errors": errs,
                "latency_us_p50_median": {"asynctask": lat(at, "p50"), comp: lat(bs, "p50")},
                "latency_us_p99_median": {"asynctask": lat(at, "p99"), comp: lat(bs, "p99")},
            }
        for n in fig_notes:
            out.append(f"   note: {n}")
        summary["figures"][fig] = {"measured": True, "cases": fs}
        out.append("")

    # 1m: metrics collection's cost to ingest
    recs = [r for r in raw if r.get("figure") == "ingest-metrics"]
    out.append("1m. Ingest with metrics collection (as built), and scraped once a second (`asynctask metrics`),\n"
               "    against the same front with metrics compiled out; memory store")
    if not recs:
        out.append("   not measured")
        summary["figures"]["ingest-metrics"] = {"measured": False}
    else:
        out.append(f"   {'case':<30} {'no metrics /s':>26} {'metrics /s':>26} {'scraped /s':>26} "
                   f"{'ratio metrics':>20} {'ratio scraped':>20}")
        fm = {}
        for case, desc in (("a", "(a) pipelined, 1 connection"), ("c", "(c) 64 connections, 1 each")):
            by = {sys_: {r["run"]: rate_of(r) for r in recs if r["case"] == case and r["system"] == sys_}
                  for sys_ in ("no-metrics", "metrics", "scraped")}
            base = by["no-metrics"]
            ratios = {}
            for sys_ in ("metrics", "scraped"):
                ratios[sys_] = mmm([by[sys_][run] / base[run] for run in sorted(set(by[sys_]) & set(base))
                                    if by[sys_][run] and base[run]])
            cpu = {sys_: {r["run"]: r["result"].get("front_cpu_us_per_request") for r in recs
                          if r["case"] == case and r["system"] == sys_} for sys_ in ("no-metrics", "metrics", "scraped")}
            scrapes = [r["result"].get("scrapes") for r in recs if r["case"] == case and r["system"] == "scraped"]
            out.append(f"   {desc:<30} {fmt_rate(mmm(list(base.values()))):>26} "
                       f"{fmt_rate(mmm(list(by['metrics'].values()))):>26} {fmt_rate(mmm(list(by['scraped'].values()))):>26} "
                       f"{fmt_ratio(ratios['metrics']):>20} {fmt_ratio(ratios['scraped']):>20}")
            cpu_m = {k: mmm(list(v.values())) for k, v in cpu.items()}
            if all(cpu_m.values()):
                out.append(f"   {'  front CPU us/request':<30} " + " ".join(f"{fmt_ms(cpu_m[k]):>26}" for k in
                                                                              ("no-metrics", "metrics", "scraped")))
            fm[case] = {"description": desc, "rates": {k: mmm(list(v.values())) for k, v in by.items()},
                        "ratio_metrics": ratios["metrics"], "ratio_scraped": ratios["scraped"], "scrapes": scrapes,
                        "front_cpu_us_per_request": cpu_m}
        out.append("   (ratios per run against the front without metrics; scrapes answered per run: "
                   + ", ".join(f"{c} {fm[c]['scrapes']}" for c in fm) + ")")
        summary["figures"]["ingest-metrics"] = {"measured": True, "cases": fm}
    out.append("")

    # 6: the old clients' path end to end
    recs = [r for r in raw if r.get("figure") == "seed-commands"]
    out.append("6. 5,000 commands end to end: serialize($command) . PHP_EOL over TCP (/bin/true, direct executor),\n"
               "   first byte sent to the last run finished; the old server's recorded figure: 1.8-3.7 s; beside it\n"
               "   5,000 x /bin/sh -c /bin/true by posix_spawn, 16 at once (this machine's floor for the same runs)")
    if not recs:
        out.append("   not measured")
        summary["figures"]["seed-commands"] = {"measured": False}
    else:
        fsc = {}
        for mode, desc in (("one", "over one connection"), ("per-conn", "one connection per command")):
            rs = [r["result"] for r in recs if r["case"] == mode]
            secs = mmm([r.get("seconds") for r in rs if r.get("ok")])
            lost = sum(r.get("lost", 0) or 0 for r in rs)
            failed = sum(r.get("failed", 0) or 0 for r in rs)
            v = "-" if not secs else ("met" if secs["median"] <= 1.8 else "MISSED") + " (target <= 1.8 s)"
            out.append(f"   {desc:<30} {fmt_ms(secs):>28} s   lost {lost}, failed {failed}, runs not ok "
                       f"{sum(1 for r in rs if not r.get('ok'))}  {v}")
            fsc[mode] = {"description": desc, "seconds": secs, "lost": lost, "failed": failed}
        spawn = {r["run"]: r["result"].get("seconds") for r in recs if r["case"] == "spawn-j16"}
        if spawn:
            fsc["spawn-j16"] = {"seconds": mmm(list(spawn.values()))}
            out.append(f"   {'spawn-baseline -j 16':<30} {fmt_ms(fsc['spawn-j16']['seconds']):>28} s")
            for mode in ("one", "per-conn"):
                at = {r["run"]: r["result"].get("seconds") for r in recs if r["case"] == mode and r["result"].get("ok")}
                rm = mmm([spawn[run] / at[run] for run in sorted(set(at) & set(spawn)) if at[run] and spawn[run]])
                fsc[mode]["rate_ratio_vs_spawn"] = rm
                out.append(f"   rate, {fsc[mode]['description']} / spawn-baseline: {fmt_ratio(rm)}")
        summary["figures"]["seed-commands"] = {"measured": True, "cases": fsc}
    out.append("")

    # 3: systemd
    recs = [r for r in raw if r.get("figure") == "launch-systemd"]
    fig_notes = [n["note"] for n in notes if n["figure"] == "launch-systemd"]
    out.append("3. Launch rate and latency, systemd executor (booted systemd 252 in a container): /bin/true as nobody,\n"
               "   submitted to finished (asynctask, ceiling) or started (systemd-run loop)")
    if not recs:
        out.append("   not measured" + (": " + "; ".join(fig_notes) if fig_notes else ""))
        summary["figures"]["launch-systemd"] = {"measured": False, "notes": fig_notes}
    else:
        by = {}
        for r in recs:
            by.setdefault(r["case"], []).append(r)
        rates = {c: mmm([rate_of(r) for r in rs]) for c, rs in by.items() if not c.startswith("latency")}
        fsd = {"measured": True, "rates": rates}
        for c, m in rates.items():
            out.append(f"   {c:<58} {fmt_rate(m):>28} tasks/s")
        for comp_case, target in (("systemd-run-loop", 2.5), ("transient-ceiling", 0.85),
                                  ("systemd-run-loop-sandboxed", None), ("transient-ceiling-sandboxed", None)):
            if comp_case not in by:
                continue
            ratios = []
            at = {r["run"]: rate_of(r) for r in by.get("asynctask", [])}
            bs = {r["run"]: rate_of(r) for r in by.get(comp_case, [])}
            for run in sorted(set(at) & set(bs)):
                if at[run] and bs[run]:
                    ratios.append(at[run] / bs[run])
            rm = mmm(ratios)
            out.append(f"   ratio asynctask / {comp_case:<40} {fmt_ratio(rm):>28}  {verdict(rm, target)}")
            fsd[f"ratio_vs_{comp_case}"] = rm
        if "latency" in by:
            lat = by["latency"]
            e50, e99 = exec_ms(lat, "p50"), exec_ms(lat, "p99")
            out.append(
                f"   submit-to-exec at 10 tasks/s (client send to the task's first instruction), ms: "
                f"p50 {fmt_ms(e50)} {verdict(e50, 5, False)}; p99 {fmt_ms(e99)} {verdict(e99, 20, False)}"
            )
            d50 = mmm([(r["result"].get("start_ms") or {}).get("p50") for r in lat])
            d99 = mmm([(r["result"].get("start_ms") or {}).get("p99") for r in lat])
            out.append(f"   of which queued-to-dispatched in the front (record timestamps, ms): p50 {fmt_ms(d50)}, p99 {fmt_ms(d99)}")
            for base in ("latency-systemd-run", "latency-systemd-run-sandboxed"):
                if base in by:
                    b50, b99 = exec_ms(by[base], "p50"), exec_ms(by[base], "p99")
                    out.append(f"   baseline {base[8:]} (30 x systemd-run of the same program, 0.1 s apart), ms: "
                               f"p50 {fmt_ms(b50)}; p99 {fmt_ms(b99)}")
                    fsd[f"{base}_exec_ms_p50"] = b50
                    fsd[f"{base}_exec_ms_p99"] = b99
            fsd["exec_ms_p50"] = e50
            fsd["exec_ms_p99"] = e99
            fsd["dispatch_ms_p50"] = d50
            fsd["dispatch_ms_p99"] = d99
        for n in fig_notes:
            out.append(f"   note: {n}")
        summary["figures"]["launch-systemd"] = fsd
    out.append("")

    # 4: direct launch
    recs = [r for r in raw if r.get("figure") == "launch-direct"]
    out.append("4. Launch rate, direct executor: tasks of /bin/true per second, submit to finish (max_running 16)")
    if not recs:
        out.append("   not measured")
        summary["figures"]["launch-direct"] = {"measured": False}
    else:
        rate = {s: {r["run"]: rate_of(r) for r in recs if r["case"] == "rate" and r["system"] == s}
                for s in ("asynctask", "spawn-loop", "spawn-j16")}
        fl = {"measured": True}
        for s, desc in (("asynctask", "asynctask (submitted pipelined, direct executor)"),
                        ("spawn-loop", "posix_spawn+waitpid loop, one at a time"),
                        ("spawn-j16", "posix_spawn+waitpid, 16 at a time")):
            m = mmm(list(rate[s].values()))
            out.append(f"   {desc:<58} {fmt_rate(m):>28} /s")
            fl[s] = m
        for comp, target in (("spawn-loop", 0.8), ("spawn-j16", None)):
            ratios = [rate["asynctask"][k] / rate[comp][k] for k in sorted(set(rate["asynctask"]) & set(rate[comp]))
                      if rate["asynctask"][k] and rate[comp][k]]
            rm = mmm(ratios)
            out.append(f"   ratio asynctask / {comp:<40} {fmt_ratio(rm):>28}    {verdict(rm, target)}")
            fl[f"ratio_vs_{comp}"] = rm
        burst = [r for r in recs if r["case"] == "rate" and r["system"] == "asynctask"]
        bp50 = mmm([(r["result"].get("start_ms") or {}).get("p50") for r in burst])
        lat = [r for r in recs if r["case"] == "latency"]
        e50, e99 = exec_ms(lat, "p50"), exec_ms(lat, "p99")
        out.append(f"   submit-to-exec at 10 tasks/s (client send to the task's first instruction), ms: "
                   f"p50 {fmt_ms(e50)}, p99 {fmt_ms(e99)}")
        out.append(f"   (in the {LAUNCH_BURST}-task burst above, the median task waited {fmt_ms(bp50)} ms in the queue: "
                   f"the burst measures throughput, not latency)")
        fl["exec_ms_p50_at_10_per_s"] = e50
        fl["exec_ms_p99_at_10_per_s"] = e99
        summary["figures"]["launch-direct"] = fl
    out.append("")

    # 5: memory
    recs = {(r["case"], r["system"]): r["result"] for r in raw if r.get("figure") == "memory"}
    out.append(f"5. Memory (VmRSS, MiB), {meta['tasks']:,} tasks")
    if not recs:
        out.append("   not measured")
        summary["figures"]["memory"] = {"measured": False}
    else:
        ran = recs.get(("ran", "asynctask"), {})
        q = recs.get(("queued", "asynctask"), {})
        bq = recs.get(("queued", "beanstalkd"), {})
        q64 = recs.get(("queued-64", "asynctask"), {})
        fm = {
            "front_idle": mib(ran.get("front_idle")),
            "launcher_idle": mib(ran.get("launcher_idle")),
            "front_after_tasks": mib(ran.get("front_after")),
            "front_after_tasks_plus_5s": mib(ran.get("front_after_5s")),
            "launcher_after_tasks": mib(ran.get("launcher_after")),
            "launcher_after_tasks_plus_5s": mib(ran.get("launcher_after_5s")),
            "tasks_finished": (ran.get("load") or {}).get("finished"),
            "tasks_acked": (ran.get("load") or {}).get("acked_total"),
            "front_queued": mib(q.get("front_queued")),
            "launcher_queued": mib(q.get("launcher_queued")),
            "queued_acked": (q.get("load") or {}).get("acked_total"),
            "beanstalkd_idle": mib(bq.get("idle")),
            "beanstalkd_queued": mib(bq.get("queued")),
            "beanstalkd_queued_acked": (bq.get("load") or {}).get("acked_total"),
            "front_queued_64_byte_frames": mib(q64.get("front_queued")),
            "queued_64_acked": (q64.get("load") or {}).get("acked_total"),
        }
        fm["measured"] = True
        fm["detail_kib"] = {
            "asynctaskd idle": ran.get("front_idle_detail"),
            "asynctaskd after tasks": ran.get("front_after_detail"),
            "asynctaskd queued": q.get("front_queued_detail"),
            "asynctask-launcher idle": ran.get("launcher_idle_detail"),
            "asynctask-launcher after tasks": ran.get("launcher_after_detail"),
            "beanstalkd idle": bq.get("idle_detail"),
            "beanstalkd queued": bq.get("queued_detail"),
        }
        summary["figures"]["memory"] = fm

        def v(x):
            return "n/a" if x is None else f"{x:g}"

        def chk(x, limit):
            return "-" if x is None else ("met" if x <= limit else "MISSED") + f" (target <= {limit:g})"

        out.append(f"   idle:            asynctaskd {v(fm['front_idle'])} {chk(fm['front_idle'], 4)}, "
                   f"asynctask-launcher {v(fm['launcher_idle'])} {chk(fm['launcher_idle'], 4)}; beanstalkd {v(fm['beanstalkd_idle'])}")
        out.append(f"   after {fm['tasks_acked'] or 0:,} tasks ran (finished: {fm['tasks_finished']}): asynctaskd "
                   f"{v(fm['front_after_tasks'])}, 5 s later {v(fm['front_after_tasks_plus_5s'])}; launcher "
                   f"{v(fm['launcher_after_tasks'])}, 5 s later {v(fm['launcher_after_tasks_plus_5s'])}")
        if fm["front_after_tasks"] is not None and fm["front_idle"] is not None:
            growth = fm["front_after_tasks"] - fm["front_idle"]
            try:
                per_done = (ran["front_after_detail"]["anon"] - ran["front_idle_detail"]["anon"]) * 1024 / fm["tasks_acked"]
                per_queued = (q["front_queued_detail"]["anon"] - q["front_idle_detail"]["anon"]) * 1024 / fm["queued_acked"]
                fm["bytes_per_finished_record"] = round(per_done)
                fm["bytes_per_queued_record"] = round(per_queued)
            except (KeyError, TypeError, ZeroDivisionError):
                per_done = per_queued = None
            out.append(f"     growth of asynctaskd over idle: {growth:+.1f} MiB "
                       f"({'met' if growth <= 1.0 else 'MISSED'}: target no growth after the tasks finished)")
            if per_done is not None:
                out.append(f"     private memory per task record: {per_done:,.0f} bytes finished (kept for retention_days), "
                           f"{per_queued:,.0f} bytes queued")
        out.append(f"   {fm['queued_acked'] or 0:,} queued: asynctaskd {v(fm['front_queued'])} {chk(fm['front_queued'], 64)}, "
                   f"launcher {v(fm['launcher_queued'])}; beanstalkd with {fm['beanstalkd_queued_acked'] or 0:,} delayed jobs "
                   f"{v(fm['beanstalkd_queued'])}")
        if fm["front_queued_64_byte_frames"] is not None:
            out.append(f"   {fm['queued_64_acked'] or 0:,} queued with 64-byte frames (the fixed cost of a record): "
                       f"asynctaskd {v(fm['front_queued_64_byte_frames'])} {chk(fm['front_queued_64_byte_frames'], 64)}")
        for name, d in fm["detail_kib"].items():
            if d and d.get("rss") is not None:
                out.append(f"     {name + ':':<32} RSS {mib(d['rss'])} = private {mib(d['anon'])} + mapped files "
                           f"{mib(d['file'])} (shared libraries, counted in full by each process); PSS {mib(d['pss'])}")
    out.append("")
    profs = [r["result"] for r in raw if r.get("figure") == "profile" and isinstance(r.get("result"), dict)]
    if profs:
        out.append("Where the time goes: cost per request of each process under load (perf stat, 2 s window; single runs,")
        out.append("   the load average makes them +-20%; the launcher and spawn rows include the programs they start)")
        out.append(f"   {'process and load':<40} {'requests/s':>12} {'CPU us/req':>11} {'syscalls/req':>13} {'ctx sw/req':>11}")

        def num(v, fmt):
            return "n/a" if v is None else format(v, fmt)

        for p in profs:
            out.append(f"   {p.get('name', '?'):<40} {num(p.get('rate'), ',.0f'):>12} {num(p.get('cpu_us_per_request'), '.1f'):>11} "
                       f"{num(p.get('syscalls_per_request'), '.1f'):>13} {num(p.get('context_switches_per_request'), '.2f'):>11}")
        summary["figures"]["cost_per_request"] = profs
        out.append("")
    out.append(OLD_SERVER)
    out.append("")
    other = [n for n in notes if n["figure"] not in ("ingest-memory", "ingest-mysql", "launch-systemd")]
    for n in other:
        out.append(f"note ({n['figure']}): {n['note']}")
    if a.profiles and os.path.isdir(a.profiles):
        names = sorted(f for f in os.listdir(a.profiles) if f.endswith(".txt"))
        if names:
            out.append("profiles (perf, cpu-clock): " + ", ".join(names) + " (in the -profiles directory next to this file)")
            summary["profiles"] = names

    summary["raw"] = strip_addr(raw)
    with open(a.json, "w") as f:
        json.dump(summary, f, indent=1)
        f.write("\n")
    with open(a.text, "w") as f:
        f.write("\n".join(out) + "\n")


if __name__ == "__main__":
    main()
