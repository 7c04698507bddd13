#!/usr/bin/env bash
# 500 trivial builds (N=50 builders x K=10) through the Signalbox master, then the same
# through real Buildbot 4.3.0, both driven by the server-neutral populate.py.
#   bench/builds.sh                 # Signalbox, then Buildbot (~6 min)
#   bench/builds.sh --no-buildbot   # Signalbox only
#   N=10 K=5 bench/builds.sh        # smaller run
# Results: bench/results/builds.json (+ raw populate JSON), then bench/report.py -> REPORT.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N=${N:-50}; K=${K:-10}
# populate.py polls for completion every 1 s (kept for Buildbot: ~200 s runs); Signalbox
# finishes 500 builds in a few seconds, so it is polled every 0.2 s to keep the wall time exact.
SBX_POLL=${SBX_POLL:-0.2}
WITH_BB=1
for arg in "$@"; do
  case "$arg" in
    --with-buildbot) WITH_BB=1 ;;
    --no-buildbot) WITH_BB=0 ;;
    *) echo "usage: $0 [--with-buildbot|--no-buildbot]" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/sbxbench-builds.XXXXXX)
export BB_WORK="$WORK/bb" BB_N="$N" BB_K="$K"
BB_STARTED=0
cleanup() {
  stop_all
  if [ "$BB_STARTED" = 1 ]; then "$BB_HARNESS/bbctl.sh" stop >&2 || true; fi
  log "work dir kept for inspection: $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS"
build_signalbox
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD0=$(loadavg)
top -bn1 -w 160 | head -15 > "$RESULTS/builds-top-start.txt" || true   # other tenants of the machine

# ------------------------------------------------------------------ Signalbox
PORT=$(free_port); PB=$(free_port)
M="$WORK/sbx-master"; mkdir -p "$M"
python3 "$BENCH_DIR/gen_signalbox_cfg.py" --mode builds --builders "$N" --port "$PORT" --pb-port "$PB" --out "$M/master.cfg"
start_signalbox_master "$M" "$PORT"
for w in w1 w2; do start_signalbox_worker "$WORK/sbx-$w" "$PB" "$w" pass; done
wait_until 60 "2 workers connected" workers_connected "http://127.0.0.1:$PORT" 2 || { tail -20 "$M/master.log" >&2; exit 1; }
log "Signalbox: master pid $(cat "$M/master.pid") on :$PORT, $N builders x K=$K"
SBX_LOAD0=$(loadavg)
rm -f "$RESULTS/populate-signalbox.json" "$RESULTS/populate-buildbot.json"
timeout 900 python3 "$BENCH_DIR/sbx_populate.py" "$BB_HARNESS/populate.py" --scheduler force \
  --base-url "http://127.0.0.1:$PORT" --k "$K" --timeout 800 --poll "$SBX_POLL" \
  --pidfile "$M/master.pid" --pidfile "$WORK/sbx-w1/worker.pid" --pidfile "$WORK/sbx-w2/worker.pid" \
  --out "$RESULTS/populate-signalbox.json" 2>&1 | tee "$WORK/populate-signalbox.log" >&2 \
  || log "populate against Signalbox FAILED (see $WORK/populate-signalbox.log, master.log)"
SBX_LOAD1=$(loadavg)
cp "$M/master.log" "$RESULTS/signalbox-builds-master.log"
ls -l "$M"/state.sqlite* > "$RESULTS/signalbox-builds-db.txt" 2>/dev/null || true
stop_all

# ------------------------------------------------------------------ Buildbot 4.3.0
BB_LOAD0=""; BB_LOAD1=""
if [ "$WITH_BB" = 1 ]; then
  export BB_PORT=$(free_port) BB_PB_PORT=$(free_port)
  log "Buildbot 4.3.0: setup in $BB_WORK (venv ${BB_VENV:-/tmp/bbvenv}), www :$BB_PORT"
  BB_FRESH=1 timeout 1500 "$BB_HARNESS/setup_buildbot.sh" >&2
  BB_STARTED=1
  "$BB_HARNESS/bbctl.sh" start >&2
  BB_LOAD0=$(loadavg)
  timeout 1500 python3 "$BB_HARNESS/populate.py" --base-url "http://127.0.0.1:$BB_PORT" --k "$K" --timeout 1400 \
    --pidfile "$BB_WORK/master/twistd.pid" --pidfile "$BB_WORK/w1/twistd.pid" --pidfile "$BB_WORK/w2/twistd.pid" \
    --out "$RESULTS/populate-buildbot.json" 2>&1 | tee "$WORK/populate-buildbot.log" >&2 \
    || log "populate against Buildbot FAILED (see $WORK/populate-buildbot.log)"
  BB_LOAD1=$(loadavg)
  tail -n 200 "$BB_WORK/master/twistd.log" > "$RESULTS/buildbot-builds-master-tail.log" 2>/dev/null || true
  "$BB_HARNESS/bbctl.sh" stop >&2 || true; BB_STARTED=0
fi

# ------------------------------------------------------------------ summary JSON
python3 - "$RESULTS" <<PY
import json, os, sys
res = sys.argv[1]
def load(name):
    p = os.path.join(res, name)
    return json.load(open(p)) if os.path.exists(p) else None
out = {
  "date": "$DATE", "machine": $(machine_json), "n_builders": $N, "k": $K, "signalbox_poll_s": $SBX_POLL,
  "command": "bench/builds.sh $*",
  "loadavg": {"start": "$LOAD0", "signalbox_start": "$SBX_LOAD0", "signalbox_end": "$SBX_LOAD1",
              "buildbot_start": "$BB_LOAD0", "buildbot_end": "$BB_LOAD1", "end": "$(loadavg)"},
  "signalbox": load("populate-signalbox.json"),
  "buildbot": load("populate-buildbot.json") if $WITH_BB else None,
  "signalbox_git": "$SB_SOURCE",
}
s, b = out["signalbox"], out["buildbot"]
if s and b and b.get("builds_per_s_wall"):
    out["ratio_builds_per_s"] = round(s["builds_per_s_wall"] / b["builds_per_s_wall"], 2)
json.dump(out, open(os.path.join(res, "builds.json"), "w"), indent=2)
print(json.dumps({k: out.get(k) for k in ("ratio_builds_per_s",)}))
PY
python3 "$BENCH_DIR/report.py" --results "$RESULTS"
