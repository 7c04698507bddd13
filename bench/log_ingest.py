#!/usr/bin/env python3
"""Drive the 1 GiB log benchmark against a running master (see log_ingest.sh).

Forces one build of builder `biglog`, polls its steps every --poll s until it is complete
(bounded by --timeout), sampling master and worker VmRSS every 0.25 s; then downloads the
log with `curl .../api/v2/logs/<id>/raw | wc -lc` while sampling the master again; then
measures the SQLite files before and after a WAL checkpoint. Writes one JSON file.
"""
import argparse
import json
import math
import os
import re
import sqlite3
import subprocess
import sys
import time
import urllib.request

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))
from procstat import Sampler  # noqa: E402


def http(method, url, body=None, timeout=30):
    data = None if body is None else json.dumps(body).encode()
    req = urllib.request.Request(url, data=data, method=method,
                                 headers={"Accept": "application/json", "Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=timeout) as r:
        return json.loads(r.read() or b"null")


def db_sizes(db):
    return {os.path.basename(p): os.path.getsize(p) for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)}


def main():
    ap = argparse.ArgumentParser(description=__doc__)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--master-pid", type=int, required=True)
    ap.add_argument("--worker-pid", type=int, required=True)
    ap.add_argument("--db", required=True, help="path of state.sqlite")
    ap.add_argument("--bytes", type=int, default=1 << 30, help="bytes the step prints")
    ap.add_argument("--timeout", type=float, default=900)
    ap.add_argument("--poll", type=float, default=0.1)
    ap.add_argument("--out", required=True)
    a = ap.parse_args()
    api = a.base_url.rstrip("/") + "/api/v2"
    out = {"log_bytes_generated": a.bytes, "log_lines_generated": math.ceil(a.bytes / 100),
           "poll_interval_s": a.poll}

    # ---------------------------------------------------------------- ingest
    with Sampler({"master": a.master_pid, "worker": a.worker_pid}) as s:
        t_post = time.time()
        r = http("POST", api + "/forceschedulers/force",
                 {"jsonrpc": "2.0", "method": "force", "id": 1, "params": {"builderNames": ["biglog"], "reason": "bench"}})
        if not isinstance(r, dict) or r.get("error"):
            sys.exit(f"force failed: {r}")
        deadline = t_post + a.timeout
        build, t_step_seen, t_done_seen, step = None, None, None, None
        while time.time() < deadline:
            if build is None:
                bl = http("GET", api + "/builds?order=-buildid&limit=1")["builds"]
                build = bl[0] if bl else None
            if build is not None:
                steps = http("GET", f"{api}/builds/{build['buildid']}/steps")["steps"]
                step = next((st for st in steps if st["name"] == "biglog"), None)
                if step and step.get("started_at") and t_step_seen is None:
                    t_step_seen = time.time()
                b = http("GET", f"{api}/builds/{build['buildid']}")["builds"][0]
                if b["complete"]:
                    t_done_seen = time.time()
                    build = b
                    break
            time.sleep(a.poll)
        else:
            out["error"] = f"build not complete after {a.timeout}s"
    out["ingest_processes"] = s.result()
    if t_done_seen is None:
        json.dump(out, open(a.out, "w"), indent=2)
        sys.exit(out["error"])
    steps = http("GET", f"{api}/builds/{build['buildid']}/steps")["steps"]
    step = next(st for st in steps if st["name"] == "biglog")
    logs = http("GET", f"{api}/steps/{step['stepid']}/logs")["logs"]
    log = next(lg for lg in logs if lg["name"] == "stdio")
    rest_span = build["complete_at"] - step["started_at"]
    wall_span = t_done_seen - t_step_seen
    mib = a.bytes / 2**20
    out.update({
        "build": {k: build[k] for k in ("buildid", "results", "state_string", "started_at", "complete_at")},
        "step": {k: step[k] for k in ("stepid", "results", "state_string", "started_at", "complete_at")},
        "log": log,
        "rest_seconds_step_start_to_build_complete": rest_span,
        "wall_seconds_step_start_seen_to_build_complete_seen": round(wall_span, 2),
        "wall_seconds_post_to_build_complete_seen": round(t_done_seen - t_post, 2),
        "ingest_mib_per_s_rest": round(mib / rest_span, 1) if rest_span > 0 else None,
        "ingest_mb_per_s_rest": round(a.bytes / 1e6 / rest_span, 1) if rest_span > 0 else None,
        "ingest_mib_per_s_wall": round(mib / wall_span, 1),
        "ingest_mb_per_s_wall": round(a.bytes / 1e6 / wall_span, 1),
        "ingest_mib_per_s_wall_from_post": round(mib / (t_done_seen - t_post), 1),
    })
    print(json.dumps({k: out[k] for k in ("rest_seconds_step_start_to_build_complete",
                                          "wall_seconds_step_start_seen_to_build_complete_seen",
                                          "ingest_mib_per_s_wall", "ingest_processes")}, indent=1), flush=True)

    # ---------------------------------------------------------------- raw download
    url = f"{api}/logs/{log['logid']}/raw"
    cmd = f"curl -sS --max-time {int(a.timeout)} '{url}' | wc -lc"
    with Sampler({"master": a.master_pid}) as s:
        t0 = time.time()
        p = subprocess.run(cmd, shell=True, capture_output=True, text=True, timeout=a.timeout + 30)
        dt = time.time() - t0
    lines, nbytes = (int(x) for x in p.stdout.split()) if p.stdout.strip() else (0, 0)
    out["download"] = {"command": cmd, "rc": p.returncode, "stderr": p.stderr.strip()[-500:],
                       "bytes": nbytes, "lines": lines, "seconds": round(dt, 2),
                       "bytes_minus_generated": nbytes - a.bytes, "lines_minus_generated": lines - out["log_lines_generated"],
                       "mib_per_s": round(nbytes / 2**20 / dt, 1), "mb_per_s": round(nbytes / 1e6 / dt, 1),
                       "processes": s.result()}
    print(json.dumps(out["download"], indent=1), flush=True)

    # ---------------------------------------------------------------- content check (untimed)
    pat = re.compile(rb"^[0-9]{8}:[0-9]{2} ")
    payload, other, nbytes2 = 0, [], 0
    with urllib.request.urlopen(url, timeout=a.timeout) as r:
        for line in r:
            nbytes2 += len(line)
            if pat.match(line) and len(line) <= 100:
                payload += 1
            elif len(other) < 200:
                other.append(line.decode(errors="replace").rstrip("\n")[:200])
    out["download_check"] = {"payload_lines": payload, "payload_lines_expected": out["log_lines_generated"],
                             "bytes": nbytes2, "other_lines_first_200": other}
    print(json.dumps({k: v for k, v in out["download_check"].items() if k != "other_lines_first_200"}), flush=True)

    # ---------------------------------------------------------------- storage
    out["db_before_checkpoint"] = db_sizes(a.db)
    con = sqlite3.connect(a.db, timeout=30)
    out["wal_checkpoint_truncate"] = con.execute("PRAGMA wal_checkpoint(TRUNCATE)").fetchone()  # (busy, log, ckpt)
    row = con.execute("SELECT count(*), coalesce(sum(length(content)),0), coalesce(sum(compressed != 0), 0) "
                      "FROM logchunks WHERE logid = ?", (log["logid"],)).fetchone()
    con.close()
    out["db_after_checkpoint"] = db_sizes(a.db)
    total = sum(out["db_after_checkpoint"].values())
    out["storage"] = {"db_files_bytes_after_checkpoint": total,
                      "ratio_db_to_log": round(total / a.bytes, 4),
                      "log_chunks": row[0], "log_chunk_content_bytes": row[1], "compressed_chunks": row[2],
                      "ratio_chunks_to_log": round(row[1] / a.bytes, 4)}
    print(json.dumps(out["storage"], indent=1), flush=True)
    json.dump(out, open(a.out, "w"), indent=2)


if __name__ == "__main__":
    main()
