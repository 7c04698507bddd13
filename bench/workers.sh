#!/usr/bin/env bash
# Workers on one master (issue 3):
#  1. idle: N_IDLE (1000) WebSocket worker connections (ws_workers.py, fake stock workers that
#     answer the attach sequence and keepalives) on a master with N_IDLE Worker() entries ->
#     master VmRSS before / attached / after IDLE_S (30) s idle; REST must show all connected.
#  2. stream: STREAM_N (50) builders, each on its own real worker, each printing STREAM_MB
#     (20) MiB of 100-byte lines at full speed, all forced at once -> master CPU s per MB.
#     First Signalbox (`signalbox worker`), then Buildbot 4.3.0 (`buildbot-worker`, PB) with
#     the same builders, command, worker count and bytes (BB_STREAM_MB, default = STREAM_MB).
#   bench/workers.sh                     # everything (~10 min)
#   bench/workers.sh --no-buildbot       # Signalbox only
#   bench/workers.sh --idle-only | --stream-only
#   N_IDLE=5000 bench/workers.sh --idle-only
# Results: bench/results/workers.json (+ workers-*.json raw) and bench/results/workers.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
N_IDLE=${N_IDLE:-1000}; IDLE_S=${IDLE_S:-30}
STREAM_N=${STREAM_N:-50}; STREAM_MB=${STREAM_MB:-20}; BB_STREAM_MB=${BB_STREAM_MB:-$STREAM_MB}
STREAM_TIMEOUT=${STREAM_TIMEOUT:-1500}
DO_IDLE=1; DO_STREAM=1; WITH_BB=1
for arg in "$@"; do
  case "$arg" in
    --no-buildbot) WITH_BB=0 ;;
    --idle-only) DO_STREAM=0 ;;
    --stream-only) DO_IDLE=0 ;;
    *) echo "usage: $0 [--no-buildbot] [--idle-only|--stream-only]" >&2; exit 2 ;;
  esac
done
WORK=$(mktemp -d /tmp/sbxbench-workers.XXXXXX)
export BB_WORK="$WORK/bb" BB_WORKERS=$STREAM_N BB_N=1
BB_STARTED=0
cleanup() {
  stop_all
  if [ "$BB_STARTED" = 1 ]; then "$BB_HARNESS/bbctl.sh" stop >&2 || true; fi
  rm -f "$WORK"/*/state.sqlite* "$BB_WORK"/master/state.sqlite* 2>/dev/null || true   # GB of logs
  log "work dir kept for inspection: $WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS"
build_signalbox
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD0=$(loadavg)
top -bn1 -w 160 | head -15 > "$RESULTS/workers-top-start.txt" || true   # other tenants of the machine
# 1000 connections need 1000+ descriptors on both ends
ulimit -n "$(ulimit -Hn)" 2>/dev/null || true
IDLE_LOAD=""; SBX_LOAD=""; BB_LOAD=""
rm -f "$RESULTS"/workers-idle.json "$RESULTS"/workers-stream-signalbox.json "$RESULTS"/workers-stream-buildbot.json

# ------------------------------------------------------------------ 1. idle connections
if [ "$DO_IDLE" = 1 ]; then
  PORT=$(free_port); PB=$(free_port)
  M="$WORK/idle-master"; mkdir -p "$M"
  python3 "$BENCH_DIR/gen_workers_cfg.py" --mode idle --workers "$N_IDLE" --port "$PORT" --pb-port "$PB" --out "$M/master.cfg"
  start_signalbox_master "$M" "$PORT"
  log "idle: master pid $(cat "$M/master.pid"); attaching $N_IDLE fake workers, then ${IDLE_S}s idle"
  L0=$(loadavg)
  timeout $((IDLE_S + 600)) python3 "$BENCH_DIR/ws_workers.py" --port "$PB" --base-url "http://127.0.0.1:$PORT" \
    --master-pid "$(cat "$M/master.pid")" --count "$N_IDLE" --idle "$IDLE_S" --timeout 300 \
    --out "$RESULTS/workers-idle.json" >&2 || log "ws_workers.py FAILED (rc=$?)"
  IDLE_LOAD="$L0 / $(loadavg)"
  grep -cE ' (WARN|ERROR) ' "$M/master.log" > "$WORK/idle-warn-count" || true
  grep -E ' (WARN|ERROR) ' "$M/master.log" | head -20 > "$RESULTS/workers-idle-master-warnings.log" || true
  stop_all
fi

# ------------------------------------------------------------------ 2a. stream, Signalbox
if [ "$DO_STREAM" = 1 ]; then
  BYTES=$((STREAM_MB * 1048576))
  PORT=$(free_port); PB=$(free_port)
  M="$WORK/sbx-master"; mkdir -p "$M"
  python3 "$BENCH_DIR/gen_workers_cfg.py" --mode stream --builders "$STREAM_N" --bytes "$BYTES" \
    --port "$PORT" --pb-port "$PB" --out "$M/master.cfg"
  start_signalbox_master "$M" "$PORT"
  for i in $(seq 0 $((STREAM_N - 1))); do
    w=$(printf 's%02d' "$i"); start_signalbox_worker "$WORK/sbx-$w" "$PB" "$w" pw
  done
  wait_until 120 "$STREAM_N workers connected" workers_connected "http://127.0.0.1:$PORT" "$STREAM_N" \
    || { tail -20 "$M/master.log" >&2; exit 1; }
  log "stream/Signalbox: master pid $(cat "$M/master.pid"); $STREAM_N builds x $STREAM_MB MiB"
  L0=$(loadavg)
  timeout $((STREAM_TIMEOUT + 300)) python3 "$BENCH_DIR/stream_cpu.py" --base-url "http://127.0.0.1:$PORT" \
    --master-pid "$(cat "$M/master.pid")" --builders "$STREAM_N" --bytes "$BYTES" --timeout "$STREAM_TIMEOUT" \
    --out "$RESULTS/workers-stream-signalbox.json" >&2 || log "stream_cpu.py (Signalbox) FAILED (rc=$?)"
  SBX_LOAD="$L0 / $(loadavg)"
  grep -E ' (WARN|ERROR) ' "$M/master.log" | head -20 > "$RESULTS/workers-stream-signalbox-master-warnings.log" || true
  stop_all
  rm -f "$M"/state.sqlite*
fi

# ------------------------------------------------------------------ 2b. stream, Buildbot 4.3.0
if [ "$DO_STREAM" = 1 ] && [ "$WITH_BB" = 1 ]; then
  BYTES=$((BB_STREAM_MB * 1048576))
  export BB_PORT=$(free_port) BB_PB_PORT=$(free_port)
  log "stream/Buildbot 4.3.0: venv ${BB_VENV:-/tmp/bbvenv}, work $BB_WORK, www :$BB_PORT"
  # the shared harness only provides the venv (its own master/worker go to a scratch dir);
  # master.cfg and the workers are ours
  BB_WORK="$WORK/bb-setup" BB_FRESH=1 BB_WORKERS=1 timeout 1500 "$BB_HARNESS/setup_buildbot.sh" >&2
  BBV=${BB_VENV:-/tmp/bbvenv}
  mkdir -p "$BB_WORK"; "$BBV/bin/buildbot" create-master -r -q "$BB_WORK/master"
  "$BBV/bin/python" "$BENCH_DIR/gen_workers_cfg.py" --mode stream-buildbot --builders "$STREAM_N" --bytes "$BYTES" \
    --port "$BB_PORT" --pb-port "$BB_PB_PORT" --out "$BB_WORK/master/master.cfg"
  "$BBV/bin/buildbot" checkconfig "$BB_WORK/master" >/dev/null
  # worker dirs w1..wN (bbctl.sh stop finds them by twistd.pid), names s00..: created 8 at a time
  seq 0 $((STREAM_N - 1)) | xargs -P 8 -I{} sh -c \
    'n=$(printf "s%02d" {}); d="$BB_WORK/w$(({} + 1))"; [ -f "$d/buildbot.tac" ] || timeout 120 "'"$BBV"'/bin/buildbot-worker" create-worker -r -q "$d" "127.0.0.1:$BB_PB_PORT" "$n" pw'
  BB_STARTED=1
  timeout 180 "$BBV/bin/buildbot" start --start_timeout=150 "$BB_WORK/master" >&2
  for i in $(seq 1 "$STREAM_N"); do
    spawn "$BB_WORK/w$i/spawn.pid" "$BB_WORK/w$i/stdout.log" "$BBV/bin/buildbot-worker" start --nodaemon "$BB_WORK/w$i"
  done
  wait_until 300 "$STREAM_N buildbot workers connected" workers_connected "http://127.0.0.1:$BB_PORT" "$STREAM_N" \
    || { tail -30 "$BB_WORK/master/twistd.log" >&2; exit 1; }
  BBPID=$(cat "$BB_WORK/master/twistd.pid")
  log "stream/Buildbot: master pid $BBPID; $STREAM_N builds x $BB_STREAM_MB MiB"
  sleep 5   # let the attach work settle (Buildbot attaches builders after the connection)
  L0=$(loadavg)
  timeout $((STREAM_TIMEOUT + 300)) python3 "$BENCH_DIR/stream_cpu.py" --base-url "http://127.0.0.1:$BB_PORT" \
    --master-pid "$BBPID" --builders "$STREAM_N" --bytes "$BYTES" --timeout "$STREAM_TIMEOUT" \
    --out "$RESULTS/workers-stream-buildbot.json" >&2 || log "stream_cpu.py (Buildbot) FAILED (rc=$?)"
  BB_LOAD="$L0 / $(loadavg)"
  grep -cE 'Unhandled Error|Traceback' "$BB_WORK/master/twistd.log" > "$WORK/bb-errors" || true
  tail -n 100 "$BB_WORK/master/twistd.log" > "$RESULTS/workers-stream-buildbot-master-tail.log" 2>/dev/null || true
  stop_all
  "$BB_HARNESS/bbctl.sh" stop >&2 || true; BB_STARTED=0
fi

# ------------------------------------------------------------------ summary
CMD="bench/workers.sh $*"
ENVS="N_IDLE=$N_IDLE IDLE_S=$IDLE_S STREAM_N=$STREAM_N STREAM_MB=$STREAM_MB BB_STREAM_MB=$BB_STREAM_MB"
python3 "$BENCH_DIR/workers_report.py" --results "$RESULTS" --date "$DATE" --command "$CMD" --env "$ENVS" \
  --machine "$(machine_json)" --signalbox-git "$SB_SOURCE" \
  --loadavg-start "$LOAD0" --loadavg-end "$(loadavg)" \
  --loadavg-idle "$IDLE_LOAD" --loadavg-sbx "$SBX_LOAD" --loadavg-bb "$BB_LOAD"
