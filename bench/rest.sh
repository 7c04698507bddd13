#!/usr/bin/env bash
# REST read path and /ws fan-out of one Signalbox master holding 50 builders and 50,000 builds
# (issue 4). About 4 minutes; everything on 127.0.0.1; every process started here is stopped
# by PID on exit.
#
#   bench/rest.sh                       build the release binary, then measure
#   SIGNALBOX_BIN=path bench/rest.sh    measure that binary
#   N_BUILDS=5000 DURATION=5 bench/rest.sh
#
# 1. A master with builders bench-01..bench-50, `biglog` (one step printing 10 MiB) and `ws`
#    (its last command prints `BBTS <time>`), one `signalbox worker`, SQLite.
# 2. One real `biglog` build, so the raw log is a log the master ingested itself.
# 3. Master stopped; N_BUILDS finished builds (with their buildsets, requests and claims) are
#    inserted with one SQL script through sqlite3, spread round-robin over bench-01..50.
# 4. Master restarted on that database; /work/shared/bench-buildbot/loadtest.py (unchanged,
#    h2load when installed) measures req/s and p50/p99 at concurrency 1 and 16 for
#    GET /api/v2/builders, /builds?limit=200&order=-buildid, /builders/1/builds?limit=50 and
#    the 10 MiB /logs/<id>/raw, sampling the master's RSS during each run.
# 5. bench/ws_fanout.py: 200 /ws subscribers, 20 `ws` builds, command exit -> finished event.
# Results: bench/results/rest-load.json, rest-ws.json and the report bench/results/rest.md.
set -euo pipefail
source "$(dirname "$0")/lib.sh"
trap stop_all EXIT

N_BUILDERS=50
N_BUILDS="${N_BUILDS:-50000}"
DURATION="${DURATION:-10}"
SUBSCRIBERS="${SUBSCRIBERS:-200}"
WS_RUNS="${WS_RUNS:-20}"
command -v sqlite3 >/dev/null || { log "sqlite3 is needed (apt-get install -y sqlite3)"; exit 1; }
command -v h2load >/dev/null || log "h2load not found (Debian nghttp2-client): loadtest.py falls back to wrk or Python"

build_signalbox
mkdir -p "$RESULTS"
work=$(mktemp -d /tmp/sbxbench-rest.XXXXXX)
master="$work/master"
mkdir -p "$master"
web=$(free_port)
pb=$(free_port)
base="http://127.0.0.1:$web"
load_start=$(loadavg)
log "work dir $work; load average $load_start"

python3 - "$master/master.cfg" "$web" "$pb" "$N_BUILDERS" <<'PY'
import sys
path, web, pb, n = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
names = [f"bench-{i:02d}" for i in range(1, n + 1)]
cfg = f'''
c = BuildmasterConfig = {{}}
c['title'] = "rest bench"
c['protocols'] = {{'pb': {{'port': {pb}}}}}
c['workers'] = [Worker("w1", "pw1")]
c['db'] = {{'db_url': "sqlite:///state.sqlite"}}
quick = BuildFactory()
quick.addStep(ShellCommand(name="hello", command=["echo", "hello"]))
big = BuildFactory()
big.addStep(ShellCommand(name="big", command=["sh", "-c",
    "yes 'the quick brown fox jumps over the lazy dog 0123456789 abcdefghij' | head -c 10485760"]))
ws = BuildFactory()
ws.addStep(ShellCommand(name="stamp", command=["sh", "-c", "echo BBTS $(date +%s.%N)"]))
c['builders'] = [BuilderConfig(name=n, workernames=["w1"], factory=quick) for n in {names!r}] + [
    BuilderConfig(name="biglog", workernames=["w1"], factory=big),
    BuilderConfig(name="ws", workernames=["w1"], factory=ws),
]
c['schedulers'] = [ForceScheduler(name="force", builderNames={names!r} + ["biglog", "ws"])]
c['status'] = [WebStatus(http_port="tcp:{web}:interface=127.0.0.1", authz=Authz(forceBuild=True))]
'''
open(path, "w").write(cfg)
PY

start_signalbox_master "$master" "$web"
start_signalbox_worker "$work/w1" "$pb" w1 pw1
wait_until 60 "worker w1" workers_connected "$base" 1

api_json() { curl -s -m 30 -H 'Accept: application/json' "$base/api/v2/$1"; }
builder_id() { api_json "builders" | python3 -c "import sys,json; print(next(b['builderid'] for b in json.load(sys.stdin)['builders'] if b['name']=='$1'))"; }
[ "$(builder_id bench-01)" = 1 ] || { log "bench-01 is not builder 1"; exit 1; }
biglog=$(builder_id biglog)
log "forcing one biglog build (10 MiB of output)"
curl -s -m 30 -H 'Content-Type: application/json' \
  -d "{\"jsonrpc\":\"2.0\",\"method\":\"force\",\"id\":1,\"params\":{\"builderid\":\"$biglog\"}}" \
  "$base/api/v2/forceschedulers/force" >/dev/null
biglog_done() { [ "$(api_json "builds?builderid=$biglog&complete=true" | python3 -c 'import sys,json; print(len(json.load(sys.stdin)["builds"]))')" -ge 1 ]; }
wait_until 300 "the biglog build" biglog_done
log_id=$(api_json "builds?builderid=$biglog&complete=true" | python3 -c "
import sys, json, urllib.request
b = json.load(sys.stdin)['builds'][0]
def get(p):
    return json.load(urllib.request.urlopen('$base/api/v2/' + p))
logs = [l for s in get(f\"builds/{b['buildid']}/steps\")['steps'] for l in get(f\"steps/{s['stepid']}/logs\")['logs']]
print(max(logs, key=lambda l: l['num_lines'])['logid'])")
log "biglog log id $log_id"
stop_all

log "inserting $N_BUILDS finished builds over $N_BUILDERS builders with sqlite3"
t_gen=$SECONDS
sqlite3 "$master/state.sqlite" <<SQL
PRAGMA foreign_keys = ON;
BEGIN;
CREATE TEMP TABLE bb AS
  SELECT id, row_number() OVER (ORDER BY name) - 1 AS idx FROM builders WHERE name LIKE 'bench-%';
CREATE TEMP TABLE base AS SELECT
  (SELECT coalesce(max(id), 0) FROM buildsets) AS bs,
  (SELECT coalesce(max(id), 0) FROM buildrequests) AS br,
  (SELECT coalesce(max(id), 0) FROM builds) AS b,
  (SELECT min(id) FROM masters) AS m,
  (SELECT min(id) FROM workers) AS w,
  strftime('%s', 'now') - $N_BUILDS * 60 AS t0;
CREATE TEMP TABLE seq AS
  WITH RECURSIVE s(i) AS (SELECT 0 UNION ALL SELECT i + 1 FROM s WHERE i < $N_BUILDS - 1)
  SELECT i, (SELECT id FROM bb WHERE idx = i % $N_BUILDERS) AS builderid FROM s;
INSERT INTO buildsets (id, reason, submitted_at, complete, complete_at, results)
  SELECT base.bs + 1 + i, 'bench', base.t0 + i * 60, 1, base.t0 + i * 60 + 30, 0 FROM seq, base;
INSERT INTO buildrequests (id, buildsetid, builderid, priority, complete, results, submitted_at, complete_at)
  SELECT base.br + 1 + i, base.bs + 1 + i, builderid, 0, 1, 0, base.t0 + i * 60, base.t0 + i * 60 + 30
  FROM seq, base;
INSERT INTO buildrequest_claims (brid, masterid, claimed_at)
  SELECT base.br + 1 + i, base.m, base.t0 + i * 60 + 1 FROM seq, base;
INSERT INTO builds (id, number, builderid, buildrequestid, workerid, masterid, started_at,
                    complete_at, state_string, results)
  SELECT base.b + 1 + i, i / $N_BUILDERS + 1, builderid, base.br + 1 + i, base.w, base.m,
         base.t0 + i * 60 + 1, base.t0 + i * 60 + 20,
         CASE WHEN i % 7 = 0 THEN 'failed hello' ELSE 'build successful' END,
         CASE WHEN i % 7 = 0 THEN 2 ELSE 0 END
  FROM seq, base;
COMMIT;
SQL
gen_s=$((SECONDS - t_gen))
log "generated in ${gen_s}s: $(sqlite3 "$master/state.sqlite" 'select count(*) from builds') builds in the database"

start_signalbox_master "$master" "$web"
start_signalbox_worker "$work/w1b" "$pb" w1 pw1
wait_until 60 "worker w1" workers_connected "$base" 1
[ "$(api_json 'builds?limit=1' | python3 -c 'import sys,json; print(json.load(sys.stdin)["meta"]["total"])')" -ge "$N_BUILDS" ]
log "load test (loadtest.py, ${DURATION}s per run); load average $(loadavg)"
python3 "$BB_HARNESS/loadtest.py" --base-url "$base" --duration "$DURATION" \
  --endpoints builders,builds200,builder_builds,log_raw --builderid 1 --logid "$log_id" \
  --pidfile "$master/master.pid" --out "$RESULTS/rest-load.json" >&2
load_mid=$(loadavg)
log "/ws fan-out: $SUBSCRIBERS subscribers, $WS_RUNS builds; load average $load_mid"
python3 "$BENCH_DIR/ws_fanout.py" --base-url "$base" --builder ws --subscribers "$SUBSCRIBERS" \
  --runs "$WS_RUNS" --out "$RESULTS/rest-ws.json" >&2
load_end=$(loadavg)
db_bytes=$(stat -c %s "$master/state.sqlite")

python3 - "$RESULTS" "$SB_SOURCE" "$N_BUILDS" "$gen_s" "$load_start" "$load_mid" "$load_end" "$db_bytes" <<'PY'
import json, sys, datetime
results, source, n_builds, gen_s, l0, l1, l2, db_bytes = sys.argv[1:]
load = json.load(open(f"{results}/rest-load.json"))
ws = json.load(open(f"{results}/rest-ws.json"))
# Buildbot 4.3.0 on this machine, /work/shared/research/buildbot-baseline.md ("HTTP read
# path"; builds200 from its Connection: close re-run, since its keep-alive runs stalled).
baseline = {"builders": (235.0, 254.6), "builds200": (40.1, 46.4),
            "builder_builds": (197.1, 262.1), "log_raw": (50.9, 52.9)}
names = {"builders": "GET /api/v2/builders", "builds200": "GET /api/v2/builds?limit=200&order=-buildid",
         "builder_builds": "GET /api/v2/builders/1/builds?limit=50", "log_raw": "GET /api/v2/logs/<id>/raw (10 MiB)"}
out = ["# REST read path and /ws fan-out: 50 builders, %s builds" % f"{int(n_builds):,}", "",
       f"Generated by `bench/rest.sh` on {datetime.datetime.now(datetime.timezone.utc):%Y-%m-%dT%H:%M:%SZ}"
       f" from {source}. Client: {load['client']}, {load['duration_s']} s per run after a "
       f"{load['warmup_s']} s warm-up, header `{load['headers'][0]}`. Load average (1/5/15 min) at start "
       f"{l0}, after the HTTP runs {l1}, at the end {l2} (2 cores shared with other engineers' builds).",
       "", f"Database: SQLite, {int(db_bytes) / 2**20:.1f} MiB; the {int(n_builds):,} builds were inserted in "
       f"{gen_s} s by one SQL script (buildsets, requests, claims, builds; no steps).", "",
       "| request | bytes | c=1 req/s | c=1 p50 ms | c=1 p99 ms | c=16 req/s | c=16 p50 ms | c=16 p99 ms | "
       "errors | Buildbot req/s c=1/16 | ratio c=1/16 |", "|" + " --- |" * 11]
for ep, e in load["endpoints"].items():
    r1, r16 = e["runs"].get("1", {}), e["runs"].get("16", {})
    b1, b16 = baseline[ep]
    ratio = lambda r, b: f"{(r.get('rps') or 0) / b:.0f}x"
    errors = sum((r.get("non2xx") or 0) + (r.get("socket_errors") or 0) for r in (r1, r16))
    out.append(f"| {names[ep]} | {e['bytes']} | {r1.get('rps')} | {r1.get('p50_ms')} | {r1.get('p99_ms')} | "
               f"{r16.get('rps')} | {r16.get('p50_ms')} | {r16.get('p99_ms')} | {errors} | {b1}/{b16} | "
               f"{ratio(r1, b1)}/{ratio(r16, b16)} |")
rss = load["rss_kb"]
raw_peak = {k: v for r in load["endpoints"].get("log_raw", {}).get("runs", {}).values()
            for k, v in (r.get("rss_peak_kb") or {}).items()}
out += ["", "Master RSS (KiB): idle before %s, peak during the 10 MiB raw-log runs %s, peak over all "
        "runs %s, after %s." % (rss.get("idle_before"), raw_peak, rss.get("peak_under_load"), rss.get("after")),
        "", "## /ws: build finished -> %d subscribers" % ws["subscribers"], "",
        "Command exit (`BBTS` printed by the build's last command) -> `builds/<id>/finished` at each "
        "subscriber, %d builds x %d subscribers = %d samples, %d failed runs:" % (
            ws["runs"], ws["subscribers"], ws["samples"], ws["failures"]), "",
        "| p50 ms | p99 ms | max ms | fan-out spread p50/max ms |", "| --- | --- | --- | --- |",
        "| %.1f | %.1f | %.1f | %.1f / %.1f |" % (ws["latency_ms"]["p50"] or 0, ws["latency_ms"]["p99"] or 0,
                                               ws["latency_ms"]["max"] or 0, ws["spread_ms"]["p50"] or 0,
                                               ws["spread_ms"]["max"] or 0), "",
        "Buildbot 4.3.0 baseline (one subscriber, 1000 builds): command exit -> finished p50 69.0 ms.",
        "Targets (issue 4): >= 20x Buildbot's req/s, p99 < 20 ms for the JSON requests, raw logs at a "
        "constant RSS, /ws p99 < 50 ms.", "",
        "Caveats: Buildbot's figures come from its own run with 1000 builds (its raw log was 67 KB, ours "
        "10 MiB); the load generator shares the 2 cores with the master."]
open(f"{results}/rest.md", "w").write("\n".join(out) + "\n")
print("\n".join(out))
PY
