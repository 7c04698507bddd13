#!/usr/bin/env bash
# Signed GitHub push deliveries per second, accepted and stored, on SQLite and PostgreSQL
# (and, with --with-buildbot, Buildbot 4.3.0 on SQLite with the same payload).
#
#   bench/hooks.sh                        # Signalbox on SQLite, and PostgreSQL if reachable
#   bench/hooks.sh --with-buildbot        # also Buildbot 4.3.0 (venv /tmp/bbvenv, see below)
#   HOOKS_N=2000 HOOKS_CONC=8 HOOKS_REPEAT=1 bench/hooks.sh   # smaller, one round (default 3)
#
# Client: crates/www/examples/hook_load.rs, HOOKS_CONC connections (default 8), each
# keep-alive, posting HOOKS_N (default 5000) deliveries of the real `push` example of
# @octokit/webhooks-examples (crates/www/tests/fixtures/github/push-branch.json), each with
# its own commit id and X-GitHub-Delivery, signed with X-Hub-Signature-256 and (for
# Buildbot, which checks only that) X-Hub-Signature. Counted: answers 200 and changes found
# in the database afterwards (REST meta.total for Signalbox, the changes table for
# Buildbot). PostgreSQL: SIGNALBOX_TEST_PG_ADMIN_URL (scripts/test exports it; default
# postgresql://signalbox:signalbox@127.0.0.1:5432/postgres), a fresh database per run.
# Results: bench/results/hooks.json and bench/results/hooks.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${HOOKS_N:-5000}"
REPEAT="${HOOKS_REPEAT:-3}"
CONC="${HOOKS_CONC:-8}"
WITH_BUILDBOT=0
[ "${1:-}" = "--with-buildbot" ] && WITH_BUILDBOT=1
PG_ADMIN="${SIGNALBOX_TEST_PG_ADMIN_URL:-postgresql://signalbox:signalbox@127.0.0.1:5432/postgres}"
SECRET="bench-hook-secret"
FIXTURE="$REPO/crates/www/tests/fixtures/github/push-branch.json"
WORK="$(mktemp -d /tmp/sbxhooks.XXXXXX)"
PG_DBS=()
BB_DIR=""

cleanup() {
  stop_all
  if [ -n "$BB_DIR" ] && [ -f "$BB_DIR/twistd.pid" ]; then stop_pid "$(cat "$BB_DIR/twistd.pid")"; fi
  for db in "${PG_DBS[@]}"; do psql "$PG_ADMIN" -q -c "drop database if exists $db" >/dev/null 2>&1 || true; done
  rm -rf "$WORK"
}
trap cleanup EXIT

# The client is crates/www/examples/hook_load.rs: requests built and signed before the clock
# starts, a few microseconds of CPU each, so that on 2 cores the client does not take the
# server's CPU (the Python client it replaced used most of a core at 1,300 requests/s).
cargo build --release -q -p www --example hook_load
CLIENT="$CARGO_TARGET_DIR/release/examples/hook_load"

# run_signalbox NAME DB_URL -> JSON line on stdout
run_signalbox() {
  local name=$1 db_url=$2 dir="$WORK/$1-$ROUND" web pb
  mkdir -p "$dir"; web=$(free_port); pb=$(free_port)
  cat >"$dir/master.cfg" <<EOF
c = BuildmasterConfig = {}
c['protocols'] = {'pb': {'port': $pb}}
c['db'] = {'db_url': "$db_url"}
c['status'] = [WebStatus(http_port="tcp:$web:interface=127.0.0.1", change_hook_dialects={'github': {'secret': "$SECRET"}})]
EOF
  start_signalbox_master "$dir" "$web"
  log "signalbox/$name: $N deliveries, concurrency $CONC"
  local result stored
  result=$("$CLIENT" "$web" "$N" "$CONC" "$SECRET" "$FIXTURE")
  stored=$(curl -s -m 30 -H 'Accept: application/json' "http://127.0.0.1:$web/api/v2/changes?limit=1" \
    | python3 -c 'import sys,json; print(json.load(sys.stdin)["meta"]["total"])')
  stop_all
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(server=sys.argv[2], database=sys.argv[3], stored=int(sys.argv[4])); print(json.dumps(r))' \
    "$result" signalbox "$name" "$stored"
}

# run_buildbot NAME DB_URL -> JSON line on stdout
run_buildbot() {
  local name=$1 db_url=$2 bb="${BB_VENV:-/tmp/bbvenv}/bin/buildbot" web pb
  if [ ! -x "$bb" ]; then
    log "no $bb: run $BB_HARNESS/setup_buildbot.sh first"; return 1
  fi
  BB_DIR="$WORK/buildbot-$name-$ROUND"; web=$(free_port); pb=$(free_port)
  "$bb" create-master -q "$BB_DIR" >/dev/null
  cat >"$BB_DIR/master.cfg" <<EOF
from buildbot.plugins import schedulers, steps, util, worker
c = BuildmasterConfig = {}
# Buildbot refuses a config without a worker, a builder and a scheduler for it; a force
# scheduler starts nothing on its own, so changes are only stored, as on Signalbox.
c['workers'] = [worker.Worker('w1', 'pw1')]
c['protocols'] = {'pb': {'port': 'tcp:$pb:interface=127.0.0.1'}}
factory = util.BuildFactory([steps.ShellCommand(command=['true'])])
c['builders'] = [util.BuilderConfig(name='unused', workernames=['w1'], factory=factory)]
c['schedulers'] = [schedulers.ForceScheduler(name='force', builderNames=['unused'])]
c['db'] = {'db_url': '$db_url'}
c['buildbotNetUsageData'] = None
c['www'] = {'port': 'tcp:$web:interface=127.0.0.1', 'plugins': {},
            'change_hook_dialects': {'github': {'secret': '$SECRET', 'strict': True}}}
EOF
  "$bb" upgrade-master "$BB_DIR" >"$BB_DIR/upgrade.log" 2>&1
  "$bb" start "$BB_DIR" >"$BB_DIR/start.log" 2>&1 || { tail -30 "$BB_DIR/twistd.log" >&2; return 1; }
  wait_until 120 "buildbot web port $web" curl -s -m 2 -o /dev/null "http://127.0.0.1:$web/"
  log "buildbot/$name: $N deliveries, concurrency $CONC"
  local result stored
  result=$("$CLIENT" "$web" "$N" "$CONC" "$SECRET" "$FIXTURE")
  stop_pid "$(cat "$BB_DIR/twistd.pid")"
  # Counted in Buildbot's own tables (its REST meta.total is not a real total).
  case "$db_url" in
    sqlite*) stored=$(python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from changes").fetchone()[0])' "$BB_DIR/state.sqlite") ;;
    *) stored=$(psql "${db_url/+psycopg2/}" -tA -c "select count(*) from changes") ;;
  esac
  python3 -c 'import json,sys; r=json.loads(sys.argv[1]); r.update(server="buildbot 4.3.0", database=sys.argv[2], stored=int(sys.argv[3])); print(json.dumps(r))' \
    "$result" "$name" "$stored"
}

build_signalbox
mkdir -p "$RESULTS"
top -b -n 1 | head -15 >"$RESULTS/hooks-top-start.txt" || true
LOAD_START=$(loadavg)
RUNS=()
# fresh_pg NAME -> URL of a new database (dropped on exit)
fresh_pg() {
  local db="sbx_hooks_bench_$1_$$"; PG_DBS+=("$db")
  psql "$PG_ADMIN" -q -c "create database $db" >/dev/null
  echo "${PG_ADMIN%/*}/$db"
}
HAVE_PG=0
psql "$PG_ADMIN" -q -c "select 1" >/dev/null 2>&1 && HAVE_PG=1
[ $HAVE_PG = 1 ] || log "PostgreSQL not reachable at $PG_ADMIN: skipped"
if [ $WITH_BUILDBOT = 1 ] && [ $HAVE_PG = 1 ]; then
  # Buildbot reaches PostgreSQL through psycopg2 (its docs' driver), installed on first use.
  "${BB_VENV:-/tmp/bbvenv}/bin/python" -c 'import psycopg2' 2>/dev/null \
    || "${BB_VENV:-/tmp/bbvenv}/bin/pip" install -q psycopg2-binary >&2
fi
# Rounds interleave the servers, so that a change in the machine's load falls on both.
for ROUND in $(seq 1 "$REPEAT"); do
  log "round $ROUND of $REPEAT"
  RUNS+=("$(run_signalbox sqlite "sqlite:///state.sqlite")")
  [ $HAVE_PG = 1 ] && RUNS+=("$(run_signalbox postgresql "$(fresh_pg "sb$ROUND")")")
  if [ $WITH_BUILDBOT = 1 ]; then
    RUNS+=("$(run_buildbot sqlite "sqlite:///state.sqlite")")
    [ $HAVE_PG = 1 ] && RUNS+=("$(run_buildbot postgresql "$(fresh_pg "bb$ROUND" | sed 's|^postgresql://|postgresql+psycopg2://|')")")
  fi
done

printf '%s\n' "${RUNS[@]}" >"$WORK/runs.jsonl"
python3 - "$RESULTS" "$SB_SOURCE" "$LOAD_START" "$(loadavg)" "$N" "$CONC" "$(machine_json)" "$WORK/runs.jsonl" <<'PY'
import json, sys, datetime
results, source, load_start, load_end, n, conc, machine, runs_file = sys.argv[1:9]
runs = [json.loads(l) for l in open(runs_file) if l.strip()]
doc = {"date": datetime.datetime.now().isoformat(timespec="seconds"), "source": source,
       "loadavg_start": load_start, "loadavg_end": load_end, "machine": json.loads(machine), "runs": runs}
json.dump(doc, open(f"{results}/hooks.json", "w"), indent=2)
import statistics
groups = {}
for r in runs:
    groups.setdefault((r["server"], r["database"]), []).append(r)
median = {k: round(statistics.median(x["accepted_per_s"] for x in v), 1) for k, v in groups.items()}
bb = next((k for k in groups if k[0].startswith("buildbot")), None)
rounds = max(len(v) for v in groups.values())
lines = ["# Change hooks: signed GitHub push deliveries", "",
         f"`bench/hooks.sh{' --with-buildbot' if bb else ''}` on {doc['date']} ({source}); "
         f"{n} deliveries per run, {conc} keep-alive client connections, {rounds} rounds (the servers "
         f"interleaved in each round); load average {load_start} at start, {load_end} at end; "
         f"{doc['machine']['cpu']}, {doc['machine']['nproc']} CPUs.", "",
         "| server | database | median accepted/s | every run | stored | p50 ms | p99 ms | other answers |",
         "| --- | --- | ---: | --- | --- | --- | --- | --- |"]
for (server, database), rs in groups.items():
    ratio = ""
    same = median.get(("buildbot 4.3.0", database))
    if not server.startswith("buildbot") and same:
        ratio = f" ({median[(server, database)] / same:.1f}x Buildbot on {database})"
    other = {}
    for r in rs:
        for k, v in r["statuses"].items():
            if k != "200":
                other[k] = other.get(k, 0) + v
    join = lambda key: " / ".join(str(r[key]) for r in rs)
    lines.append(f"| {server} | {database} | {median[(server, database)]}{ratio} | {join('accepted_per_s')} | "
                 f"{join('stored')} | {join('p50_ms')} | {join('p99_ms')} | {other or '-'} |")
lines += ["", "Each accepted delivery is one change, committed before the 200 is sent (the crash",
          "test in `crates/cli/tests/hooks.rs` checks that); `stored` is what the database holds",
          "afterwards. Target (issue 7): >= 2,000/s and >= 20x Buildbot 4.3.0."]
open(f"{results}/hooks.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
