#!/usr/bin/env python3
"""Run the server-neutral /work/shared/bench-buildbot/populate.py unchanged against Signalbox.

The only difference: populate.py discovers the scheduler with GET /api/v2/forceschedulers,
which Signalbox does not serve yet (not in its data paths). When that GET fails with an HTTP
error, this wrapper answers it with the --scheduler name instead (and says so on stderr).
Every timed request (force POSTs, completion polling) is populate.py's own code.
Usage: sbx_populate.py PATH/TO/populate.py --scheduler force [populate.py args...]
"""
import importlib.util
import sys
import urllib.error

path, args = sys.argv[1], sys.argv[2:]
spec = importlib.util.spec_from_file_location("populate", path)
populate = importlib.util.module_from_spec(spec)
spec.loader.exec_module(populate)
sched = args[args.index("--scheduler") + 1]
orig = populate.http


def http(method, url, body=None, timeout=60):
    try:
        return orig(method, url, body, timeout)
    except urllib.error.HTTPError as e:
        if method == "GET" and url.rstrip("/").endswith("/forceschedulers"):
            print(f"[sbx_populate] GET {url} -> HTTP {e.code}; using --scheduler {sched!r}", file=sys.stderr)
            return {"forceschedulers": [{"name": sched}]}
        raise


populate.http = http
sys.argv = [path] + args
sys.exit(populate.main())
