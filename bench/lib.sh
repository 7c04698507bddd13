# Shared helpers for bench/*.sh (sourced). Everything runs on 127.0.0.1; every process we
# start is recorded in $BENCH_PIDS and stopped by PID on exit (SIGTERM, SIGKILL after 10 s).
BENCH_DIR="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
REPO="$(cd "$BENCH_DIR/.." && pwd)"
RESULTS="${BENCH_RESULTS:-$BENCH_DIR/results}"
BB_HARNESS="${BB_HARNESS:-/work/shared/bench-buildbot}"
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/signalbox-target}"
SB="$CARGO_TARGET_DIR/release/signalbox"
BENCH_PIDS=()

log() { echo "[$(date +%H:%M:%S)] $*" >&2; }

# Builds the binary from the working tree, or, with SIGNALBOX_REV=<git rev>, from that commit
# (git archive into /tmp/sbxbench-src-<rev>: useful while the tree is being edited);
# SIGNALBOX_BIN=<path> skips the build. Sets SB and SB_SOURCE.
build_signalbox() {
  local src="$REPO"
  if [ -n "${SIGNALBOX_BIN:-}" ]; then
    SB="$SIGNALBOX_BIN"; SB_SOURCE="binary $SB"
  else
    if [ -n "${SIGNALBOX_REV:-}" ]; then
      local rev; rev=$(git -C "$REPO" rev-parse --short "$SIGNALBOX_REV")
      src="/tmp/sbxbench-src-$rev"
      [ -f "$src/Cargo.toml" ] || { mkdir -p "$src"; git -C "$REPO" archive "$rev" | tar -x -C "$src"; }
      SB_SOURCE="commit $rev"
    else
      SB_SOURCE="working tree at $(git -C "$REPO" rev-parse --short HEAD)"
      [ -z "$(git -C "$REPO" status --porcelain crates Cargo.toml Cargo.lock)" ] || SB_SOURCE="$SB_SOURCE + uncommitted changes"
    fi
    log "cargo build --release --bin signalbox in $src (CARGO_TARGET_DIR=$CARGO_TARGET_DIR)"
    (cd "$src" && timeout 3600 cargo build --release --bin signalbox) >&2
  fi
  [ -x "$SB" ] || { log "no binary at $SB"; exit 1; }
  export SB SB_SOURCE
}

free_port() { python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }

# spawn PIDFILE LOGFILE CMD...   (background, PID recorded for cleanup)
spawn() {
  local pf=$1 lf=$2; shift 2
  "$@" >"$lf" 2>&1 </dev/null &
  echo $! >"$pf"; BENCH_PIDS+=($!)
}

stop_pid() {
  local pid=$1
  kill -0 "$pid" 2>/dev/null || return 0
  kill -TERM "$pid" 2>/dev/null || true
  for _ in $(seq 1 50); do kill -0 "$pid" 2>/dev/null || return 0; sleep 0.2; done
  log "pid $pid still alive after 10 s: SIGKILL"; kill -KILL "$pid" 2>/dev/null || true
}

stop_all() {  # workers first (started last), then the master
  local i
  for ((i=${#BENCH_PIDS[@]}-1; i>=0; i--)); do stop_pid "${BENCH_PIDS[$i]}"; done
  BENCH_PIDS=()
}

# wait_until SECONDS WHAT CMD...   (polls every 0.2 s, fails after SECONDS)
wait_until() {
  local secs=$1 what=$2; shift 2
  local end=$((SECONDS + secs))
  until "$@" >/dev/null 2>&1; do
    [ $SECONDS -lt $end ] || { log "timed out after ${secs}s waiting for $what"; return 1; }
    sleep 0.2
  done
}

workers_connected() {  # BASEURL N
  [ "$(curl -s -m 5 -H 'Accept: application/json' "$1/api/v2/workers" | python3 -c \
      'import sys,json; print(sum(1 for w in json.load(sys.stdin)["workers"] if w["connected_to"]))')" -ge "$2" ]
}

# start_signalbox_master DIR WEBPORT  (master.cfg already written)
start_signalbox_master() {
  "$SB" upgrade-master "$1" >"$1/upgrade.log" 2>&1 || { cat "$1/upgrade.log" >&2; return 1; }
  spawn "$1/master.pid" "$1/master.log" "$SB" start "$1" --nodaemon
  wait_until 60 "master web port $2" curl -s -m 2 -o /dev/null "http://127.0.0.1:$2/api/v2/builders" \
    || { tail -30 "$1/master.log" >&2; return 1; }
}

# start_signalbox_worker DIR PBPORT NAME PASS
start_signalbox_worker() {
  "$SB" worker create "$1" "127.0.0.1:$2" "$3" "$4" >/dev/null
  spawn "$1/worker.pid" "$1/worker.log" "$SB" worker start "$1" --nodaemon
}

machine_json() {  # key facts about the machine, as a JSON object
  python3 - <<'PY'
import json, os, platform
cpu = next((l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name")), "?")
mem = next(int(l.split()[1]) for l in open("/proc/meminfo") if l.startswith("MemTotal"))
print(json.dumps({"cpu": cpu, "nproc": os.cpu_count(), "mem_total_kb": mem, "kernel": platform.release(),
                  "python": platform.python_version()}))
PY
}
loadavg() { cut -d' ' -f1-3 /proc/loadavg; }
