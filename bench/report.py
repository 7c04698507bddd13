#!/usr/bin/env python3
"""bench/results/*.json -> bench/results/REPORT.md (+ NOTES.md, hand-written, appended)."""
import argparse
import json
import os

BASELINE_DIR = "/work/shared/bench-buildbot/results-2026-11-22"


def load(res, name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else None


def mib(kb):
    return f"{kb / 1024:.0f} MiB" if kb else "?"


def builds_section(b):
    s, bb = b.get("signalbox"), b.get("buildbot")
    L = ["## 1. Build throughput: %d builders x K=%d = %d trivial builds" % (b["n_builders"], b["k"], b["n_builders"] * b["k"]), "",
         f"Command: `{b['command'].strip()}` (date {b['date']}, Signalbox {b.get('signalbox_git')}). "
         "Both servers driven by the same `/work/shared/bench-buildbot/populate.py` (4 threads of JSON-RPC `force` "
         "POSTs, then polling until every build is complete); 2 workers, no max_builds, every builder on both; "
         "factory `echo hello` + 1000-line step + `BBTS` line; collapseRequests False; SQLite.", "",
         f"Load average: start {b['loadavg']['start']}; Signalbox run {b['loadavg']['signalbox_start']} -> "
         f"{b['loadavg']['signalbox_end']}; Buildbot run {b['loadavg'].get('buildbot_start') or '-'} -> "
         f"{b['loadavg'].get('buildbot_end') or '-'}. Machine: {b['machine']['cpu']}, {b['machine']['nproc']} cores.", ""]
    cols = [("Signalbox", s)] + ([("Buildbot 4.3.0", bb)] if bb else [])
    L.append("| metric | " + " | ".join(c for c, _ in cols) + (" | ratio |" if bb else ""))
    L.append("| --- | " + " | ".join("---:" for _ in cols) + (" | ---: |" if bb else ""))

    def row(name, f, ratio=None):
        vals = []
        for _, d in cols:
            try:
                vals.append(f(d))
            except Exception:  # noqa: BLE001
                vals.append("?")
        L.append(f"| {name} | " + " | ".join(vals) + (f" | {ratio or ''} |" if bb else ""))

    def proc(d, idx, key):
        p = list(d["processes"].values())[idx]
        return p[key]
    ratio = b.get("ratio_builds_per_s")
    row("**builds/s (wall)**", lambda d: f"**{d['builds_per_s_wall']}**", f"**{ratio}x**" if ratio else "-")
    row("builds completed / requested", lambda d: f"{d['builds_completed']} / {d['builds_requested']} {d['results_counts']}")
    row("wall seconds (first POST -> last build complete)", lambda d: str(d["wall_seconds"]))
    row("builds/s from DB timestamps (1 s resolution)", lambda d: str(d["builds_per_s_db_span"]))
    row("force POSTs: seconds for all / POST/s", lambda d: f"{d['submit_seconds']} / {d['force_posts_per_s']}")
    row("POST latency p50 / p99 / max ms", lambda d: "{p50} / {p99} / {max}".format(**d["force_post_latency_ms"]))
    row("force errors", lambda d: str(d["force_errors"]))
    row("master peak RSS", lambda d: mib(proc(d, 0, "peak_rss_kb")))
    row("master avg CPU (% of one core)", lambda d: str(proc(d, 0, "cpu_pct_avg")))
    row("worker w1 / w2 peak RSS", lambda d: f"{mib(proc(d, 1, 'peak_rss_kb'))} / {mib(proc(d, 2, 'peak_rss_kb'))}")
    row("worker w1 / w2 avg CPU %", lambda d: f"{proc(d, 1, 'cpu_pct_avg')} / {proc(d, 2, 'cpu_pct_avg')}")
    base_p = os.path.join(BASELINE_DIR, "populate.json")
    if s and os.path.exists(base_p):
        base = json.load(open(base_p))
        env = dict(l.strip().split("=", 1) for l in open(os.path.join(BASELINE_DIR, "machine.env")) if "=" in l)
        L += ["", f"Committed Buildbot baseline for reference (`{base_p}`, N={base['builders']} K={base['k']}, "
              f"load {env.get('loadavg_start')} -> {env.get('loadavg_end')}): **{base['builds_per_s_wall']} builds/s**, "
              f"POST p50 {base['force_post_latency_ms']['p50']} ms; Signalbox here / baseline = "
              f"**{round(s['builds_per_s_wall'] / base['builds_per_s_wall'], 1)}x**."]
    L += ["", "Target: Signalbox >= 10x Buildbot builds/s (same run) -> " +
          ("**met**" if ratio and ratio >= 10 else "**not met**" if ratio else "no Buildbot figure") +
          (f" ({ratio}x)." if ratio else "."), "",
          "CPU is from /proc/<pid>/stat including reaped children (populate.py's method), so the "
          "workers' figure includes the shell commands they ran. Raw JSON: `populate-signalbox.json`, "
          "`populate-buildbot.json`, `builds.json`.", ""]
    return L


def log_section(g):
    d = g.get("download", {})
    st = g.get("storage", {})
    ip = g.get("ingest_processes", {})
    gib = g["log_bytes_generated"] / 2**30
    L = ["## 2. Log ingest: one step printing %.3g GiB (%d lines of 100 bytes)" % (gib, g["log_lines_generated"]), "",
         f"Command: `{g['command']}` (date {g['date']}, Signalbox {g.get('signalbox_git')}). "
         f"Load average start {g['loadavg']['start']} / end {g['loadavg']['end']}. "
         "RSS = VmRSS from /proc/<pid>/status sampled every 0.25 s; MB = 10^6 bytes, MiB = 2^20.", ""]
    if g.get("error"):
        L += [f"**Run failed: {g['error']}**", ""]
        return L
    rest, wall = g["rest_seconds_step_start_to_build_complete"], g["wall_seconds_step_start_seen_to_build_complete_seen"]
    L += ["| metric | value | target |", "| --- | ---: | --- |",
          f"| build result / log lines stored | {g['build']['results']} ({g['build']['state_string']}) / {g['log'].get('num_lines')} | |",
          f"| **ingest MB/s, wall** (step start seen -> build complete seen, polled every {g['poll_interval_s']} s: {wall} s) "
          f"| **{g['ingest_mb_per_s_wall']} MB/s** ({g['ingest_mib_per_s_wall']} MiB/s) | >= 100 MB/s: "
          f"{'met' if g['ingest_mb_per_s_wall'] >= 100 else '**not met**'} |",
          f"| ingest MB/s, REST timestamps (step started_at -> build complete_at, 1 s resolution: {rest} s) "
          f"| {g['ingest_mb_per_s_rest']} MB/s ({g['ingest_mib_per_s_rest']} MiB/s) | |",
          f"| wall from force POST to build complete seen | {g['wall_seconds_post_to_build_complete_seen']} s | |",
          f"| **master peak RSS during ingest** | **{ip['master']['peak_rss_mib']} MiB** (avg CPU {ip['master']['cpu_pct_avg']} %) "
          f"| < 100 MB: {'met' if ip['master']['peak_rss_kb'] * 1024 < 100e6 else '**not met**'} |",
          f"| worker peak RSS during ingest | {ip['worker']['peak_rss_mib']} MiB (avg CPU {ip['worker']['cpu_pct_avg']} %, "
          "excluding the generating python3 child) | |",
          f"| raw download `curl .../logs/{g['log']['logid']}/raw \\| wc -lc` | {d.get('bytes')} bytes, {d.get('lines')} lines "
          f"(generated {g['log_bytes_generated']} / {g['log_lines_generated']}; diff {d.get('bytes_minus_generated')} bytes, "
          f"{d.get('lines_minus_generated')} lines) | equal bytes |",
          f"| raw download speed | {d.get('mb_per_s')} MB/s ({d.get('seconds')} s) | |",
          f"| **master peak RSS during download** | **{d['processes']['master']['peak_rss_mib']} MiB** "
          f"(avg CPU {d['processes']['master']['cpu_pct_avg']} %) | < 100 MB |",
          f"| master VmHWM (lifetime high-water mark) at the end | {mib(d['processes']['master']['vm_hwm_kb_lifetime'])} | |",
          f"| SQLite files after `PRAGMA wal_checkpoint(TRUNCATE)` (result {g.get('wal_checkpoint_truncate')}) "
          f"| {st.get('db_files_bytes_after_checkpoint')} bytes = {st.get('ratio_db_to_log')} x the log | |",
          f"| of which log chunks (content bytes, {st.get('log_chunks')} chunks, {st.get('compressed_chunks')} compressed) "
          f"| {st.get('log_chunk_content_bytes')} bytes = {st.get('ratio_chunks_to_log')} x the log | |",
          f"| SQLite files before checkpoint / after master stop | {g.get('db_before_checkpoint')} / {g.get('db_after_master_stop')} | |",
          "", "The log is 16 different 1 MiB blocks of seeded random words cycled (gzip -1 compresses it ~3.6x), "
          "so storage reflects compression of text-like output, not of a repeated line. Raw JSON: `log_ingest.json`.", ""]
    return L


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--results", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "results"))
    a = ap.parse_args()
    L = ["# Signalbox benchmarks", "",
         "Generated by `bench/report.py` from the JSON in this directory; see `bench/README.md` for the method. "
         "Everything on 127.0.0.1 on a shared 2-core machine: load average is given per run; "
         "treat differences under ~15 % as noise.", ""]
    b, g = load(a.results, "builds.json"), load(a.results, "log_ingest.json")
    if b:
        L += builds_section(b)
    if g:
        L += log_section(g)
    notes = os.path.join(a.results, "NOTES.md")
    if os.path.exists(notes):
        L += [open(notes).read()]
    with open(os.path.join(a.results, "REPORT.md"), "w") as fh:
        fh.write("\n".join(L) + "\n")
    print("wrote", os.path.join(a.results, "REPORT.md"))


if __name__ == "__main__":
    main()
