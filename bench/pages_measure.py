#!/usr/bin/env python3
"""Time the status pages of a running master: p50/p99 of the time from sending a GET to
having the whole body (one keep-alive connection on 127.0.0.1, so this is server time plus
well under a millisecond of client), and bytes per page.

  pages_measure.py BASEURL N PATH... > out.json          # timing
  pages_measure.py --queries LOGFILE BASEURL PATH...      # statements per page

With --queries the master must log statements (SIGNALBOX_LOG=info,sqlx::query=debug,store::query=debug;
our log format leaves out the target, so a statement is a line with `db.statement=`):
each page is fetched 5 times and the statement lines the log gained are divided by 5; the
same wait without a request gives the idle count (background tasks), which is subtracted.
"""
import http.client
import json
import sys
import time
import urllib.parse


def get(conn, path):
    conn.request("GET", path, headers={"Accept": "text/html"})
    resp = conn.getresponse()
    body = resp.read()
    return resp.status, body


def pct(sorted_ms, p):
    i = min(len(sorted_ms) - 1, int(round(p / 100 * (len(sorted_ms) - 1))))
    return sorted_ms[i]


def timing(base, n, paths):
    host = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    out = {}
    for path in paths:
        for _ in range(3):
            get(conn, path)
        times = []
        size = 0
        status = 0
        for _ in range(n):
            t = time.perf_counter()
            status, body = get(conn, path)
            times.append((time.perf_counter() - t) * 1000)
            size = len(body)
        times.sort()
        out[path] = {"status": status, "bytes": size, "n": n,
                     "p50_ms": round(pct(times, 50), 2), "p99_ms": round(pct(times, 99), 2),
                     "max_ms": round(times[-1], 2)}
        print(f"{path:60} {status} {size:>9} B  p50 {out[path]['p50_ms']:7.2f} ms"
              f"  p99 {out[path]['p99_ms']:7.2f} ms", file=sys.stderr)
    return out


def statements(logfile):
    with open(logfile, "rb") as f:
        return sum(1 for line in f if b"db.statement=" in line)


def queries(logfile, base, paths):
    host = urllib.parse.urlparse(base)
    conn = http.client.HTTPConnection(host.hostname, host.port, timeout=60)
    out = {}
    for path in paths:
        get(conn, path)
        time.sleep(0.3)
        before = statements(logfile)
        time.sleep(0.5)
        idle = statements(logfile) - before
        before = statements(logfile)
        for _ in range(5):
            get(conn, path)
        time.sleep(0.5)
        seen = statements(logfile) - before
        out[path] = round(max(0, seen - idle) / 5, 1)
        print(f"{path:60} {out[path]} statements", file=sys.stderr)
    return out


def main():
    if sys.argv[1] == "--queries":
        logfile, base, paths = sys.argv[2], sys.argv[3], sys.argv[4:]
        print(json.dumps(queries(logfile, base, paths), indent=1))
    else:
        base, n, paths = sys.argv[1], int(sys.argv[2]), sys.argv[3:]
        print(json.dumps(timing(base, n, paths), indent=1))


if __name__ == "__main__":
    main()
