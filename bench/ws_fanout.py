#!/usr/bin/env python3
"""Event latency from a build finishing to N /ws subscribers receiving `builds/<id>/finished`.

N WebSocket clients (the minimal RFC 6455 client of /work/shared/bench-buildbot/ws_latency.py,
one thread each) subscribe to `builds/*/finished`. Then R builds of one builder run one after
another; the builder's last shell command prints `BBTS <unix time>` right before it exits.
For every build and every subscriber:  latency = arrival of the finished event - BBTS.
That spans: command exit -> worker -> master (step and build finish, DB writes) -> bus -> N
sockets. `spread` = last subscriber - first subscriber for one build (the fan-out alone).
Same clock on both ends (all on 127.0.0.1). Stdlib only.

Usage: ws_fanout.py --base-url URL --builder NAME [--subscribers 200] [--runs 20] [--out F]
"""
import argparse
import json
import re
import sys
import threading
import time
import urllib.parse

sys.path.insert(0, "/work/shared/bench-buildbot")
from ws_latency import WS, http, pct  # noqa: E402


def subscriber(ws, arrivals, lock, stop):
    while not stop.is_set():
        msg = ws.recv(0.5)
        if msg is None:
            continue
        now = time.time()
        try:
            m = json.loads(msg)
        except ValueError:
            continue
        k = m.get("k", "")
        if k.startswith("builds/") and k.endswith("/finished"):
            with lock:
                arrivals.setdefault(m["m"]["buildid"], []).append(now)


def bbts(api, buildid):
    steps = http("GET", f"{api}/builds/{buildid}/steps")["steps"]
    for st in reversed(steps):
        for lg in http("GET", f"{api}/steps/{st['stepid']}/logs")["logs"]:
            raw = http("GET", f"{api}/logs/{lg['logid']}/raw", raw=True).decode(errors="replace")
            found = re.findall(r"BBTS (\d+\.\d+)", raw)
            if found:
                return float(found[-1])
    return None


def main():
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--base-url", required=True)
    ap.add_argument("--builder", required=True)
    ap.add_argument("--scheduler", default="force")
    ap.add_argument("--subscribers", type=int, default=200)
    ap.add_argument("--runs", type=int, default=20)
    ap.add_argument("--out")
    a = ap.parse_args()
    base = a.base_url.rstrip("/")
    api = base + "/api/v2"
    u = urllib.parse.urlsplit(base)
    ws_url = f"ws://{u.netloc}/ws"

    builderid = next(b["builderid"] for b in http("GET", f"{api}/builders")["builders"]
                     if b["name"] == a.builder)
    clients, threads = [], []
    arrivals, lock, stop = {}, threading.Lock(), threading.Event()
    t0 = time.time()
    for i in range(a.subscribers):
        ws = WS(ws_url)
        ws.send(json.dumps({"cmd": "startConsuming", "_id": 1, "path": "builds/*/finished"}))
        deadline = time.time() + 30
        while True:
            reply = ws.recv(max(0.1, deadline - time.time()))
            if reply is None:
                raise SystemExit(f"subscriber {i}: no reply to startConsuming")
            if json.loads(reply).get("code") == 200:
                break
        clients.append(ws)
    connect_s = time.time() - t0
    for ws in clients:
        t = threading.Thread(target=subscriber, args=(ws, arrivals, lock, stop), daemon=True)
        t.start()
        threads.append(t)

    samples, spreads, failures = [], [], 0
    for r in range(a.runs):
        reply = http("POST", f"{api}/forceschedulers/{a.scheduler}",
                     {"jsonrpc": "2.0", "method": "force", "id": r, "params": {"builderid": str(builderid)}})
        brid = list(reply["result"][1].values())[0]
        deadline = time.time() + 60
        buildid = None
        while time.time() < deadline:
            builds = http("GET", f"{api}/buildrequests/{brid}/builds")["builds"]
            if builds:
                buildid = builds[0]["buildid"]
                with lock:
                    got = len(arrivals.get(buildid, []))
                if got >= a.subscribers:
                    break
            time.sleep(0.05)
        with lock:
            times = list(arrivals.get(buildid, [])) if buildid else []
        t_cmd = bbts(api, buildid) if buildid else None
        if len(times) < a.subscribers or t_cmd is None:
            failures += 1
            print(f"[ws] run {r}: build {buildid} got {len(times)}/{a.subscribers} events, BBTS {t_cmd}",
                  flush=True)
            continue
        lat = [1000.0 * (t - t_cmd) for t in times]
        samples.extend(lat)
        spreads.append(1000.0 * (max(times) - min(times)))
        print(f"[ws] run {r}: build {buildid}: first {min(lat):.1f} ms, last {max(lat):.1f} ms",
              flush=True)
        time.sleep(0.2)
    stop.set()
    for t in threads:
        t.join(timeout=2)
    for ws in clients:
        try:
            ws.close()
        except OSError:
            pass
    res = {
        "subscribers": a.subscribers, "runs": a.runs, "failures": failures,
        "connect_all_s": round(connect_s, 3), "samples": len(samples),
        "latency_ms": {"p50": pct(samples, 50), "p99": pct(samples, 99), "max": max(samples, default=None),
                       "min": min(samples, default=None)},
        "spread_ms": {"p50": pct(spreads, 50), "max": max(spreads, default=None)},
    }
    print(json.dumps(res))
    if a.out:
        with open(a.out, "w") as fh:
            json.dump(res, fh, indent=2)


if __name__ == "__main__":
    main()
