#!/usr/bin/env python3
"""Master CPU per MB of log while N workers stream output at full speed (server-neutral).

Works against Signalbox and Buildbot 4.3.0 alike (REST v2 + JSON-RPC force only). Forces one
build on each builder `stream-NN` at once (--threads POSTs in parallel), polls
`GET /api/v2/builds` every --poll s until all are complete (bounded), and takes the master's
utime+stime from /proc/<pid>/stat just before the first POST and just after the last build
is seen complete. CPU/MB = that CPU / (builders x bytes printed). Also: wall time, MB/s,
peak VmRSS of the master (0.5 s samples), and per build the stdio log's num_lines (checked
against the number of lines printed).
"""
import argparse
import concurrent.futures as cf
import json
import os
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import CLK, Sampler, cpu_ticks  # noqa: E402


def http(method, url, body=None, timeout=60):
    data = json.dumps(body).encode() if body is not None else None
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Content-Type": "application/json",
                                          "Accept": "application/json, text/plain, */*"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.load(r)


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--master-pid", type=int, required=True)
    ap.add_argument("--builders", type=int, default=50)
    ap.add_argument("--bytes", type=int, required=True, help="bytes printed by each build")
    ap.add_argument("--line-bytes", type=int, default=100)
    ap.add_argument("--scheduler", default="force")
    ap.add_argument("--threads", type=int, default=10)
    ap.add_argument("--poll", type=float, default=1.0)
    ap.add_argument("--timeout", type=float, default=1200)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    api = a.base_url.rstrip("/") + "/api/v2"
    builders = {b["name"]: b["builderid"] for b in http("GET", api + "/builders")["builders"]}
    ids = [builders["stream-%02d" % i] for i in range(a.builders)]
    before = http("GET", api + "/builds?order=-buildid&limit=1")["builds"]
    last_id = before[0]["buildid"] if before else 0
    out = {"builders": a.builders, "bytes_per_build": a.bytes, "poll_s": a.poll}

    def force(bid):
        body = {"jsonrpc": "2.0", "method": "force", "id": bid,
                "params": {"builderid": str(bid), "reason": "workers bench", "username": ""}}
        r = http("POST", f"{api}/forceschedulers/{a.scheduler}", body)
        return r.get("error") if isinstance(r, dict) else None

    done = []
    with Sampler({"master": a.master_pid}, interval=0.5) as s:
        cpu0, t0 = cpu_ticks(a.master_pid), time.time()
        with cf.ThreadPoolExecutor(a.threads) as ex:
            errors = [e for e in ex.map(force, ids) if e]
        out["force_errors"] = errors[:3]
        out["force_s"] = round(time.time() - t0, 3)
        deadline = t0 + a.timeout
        while time.time() < deadline:
            try:
                rows = http("GET", f"{api}/builds?buildid__gt={last_id}&field=buildid&field=complete"
                                   f"&field=results&field=builderid")["builds"]
            except Exception as e:  # noqa: BLE001
                print(f"[stream_cpu] poll error {e!r}", file=sys.stderr)
                rows = []
            done = [b for b in rows if b["complete"]]
            if len(done) >= a.builders:
                break
            time.sleep(a.poll)
        cpu1, t1 = cpu_ticks(a.master_pid), time.time()
    out["complete"] = len(done)
    if len(done) < a.builders:
        out["error"] = f"only {len(done)} of {a.builders} builds complete after {a.timeout}s"
    out["results"] = {}
    for b in done:
        out["results"][str(b["results"])] = out["results"].get(str(b["results"]), 0) + 1
    total_mb = a.builders * a.bytes / 1e6
    cpu = (cpu1 - cpu0) / CLK
    wall = t1 - t0
    out.update({
        "total_mb": round(total_mb, 1),
        "total_mib": round(a.builders * a.bytes / 2**20, 1),
        "wall_s": round(wall, 2),
        "mb_per_s_wall": round(total_mb / wall, 2),
        "master_cpu_s": round(cpu, 2),
        "master_cpu_ms_per_mb": round(1000 * cpu / total_mb, 2),
        "master_cpu_pct_avg": round(100 * cpu / wall, 1),
        "master_sampler": s.result(),
        "clk_tck": CLK,
    })
    # check after the measurement: every stdio log holds every printed line
    expected = -(-a.bytes // a.line_bytes)
    lines = []
    for b in done:
        for st in http("GET", f"{api}/builds/{b['buildid']}/steps")["steps"]:
            if st["name"] != "stream":
                continue
            for lg in http("GET", f"{api}/steps/{st['stepid']}/logs")["logs"]:
                if lg["slug"] == "stdio":
                    lines.append(lg["num_lines"])
    out["stdio_num_lines"] = {"expected_stdout_lines": expected, "min": min(lines) if lines else None,
                              "max": max(lines) if lines else None, "logs": len(lines),
                              "logs_short": sum(1 for n in lines if n < expected)}
    with open(a.out, "w") as fh:
        json.dump(out, fh, indent=2)
    print(json.dumps({k: out.get(k) for k in ("complete", "results", "wall_s", "mb_per_s_wall", "master_cpu_s",
                                              "master_cpu_ms_per_mb", "stdio_num_lines")}), flush=True)
    return 0 if len(done) >= a.builders else 1


if __name__ == "__main__":
    sys.exit(main())
