#!/usr/bin/env bash
# One build whose step prints 1 GiB (~100-byte lines) through a Signalbox worker.
#   bench/log_ingest.sh                  # 1 GiB
#   LOG_BYTES=104857600 bench/log_ingest.sh   # 100 MiB smoke run
# Measures ingest MB/s, master/worker peak RSS (0.25 s samples), a raw download of the log
# (bytes, MB/s, master peak RSS), and the SQLite bytes stored. -> bench/results/log_ingest.json
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"
LOG_BYTES=${LOG_BYTES:-1073741824}
WORK=$(mktemp -d /tmp/sbxbench-log.XXXXXX)
cleanup() { stop_all; log "work dir kept for inspection: $WORK (rm -rf it: it holds a ~GB database)"; }
trap cleanup EXIT
trap 'exit 130' INT TERM
mkdir -p "$RESULTS"
build_signalbox
DATE=$(date -u +%Y-%m-%dT%H:%M:%SZ); LOAD0=$(loadavg)
top -bn1 -w 160 | head -15 > "$RESULTS/log_ingest-top-start.txt" || true   # other tenants of the machine

PORT=$(free_port); PB=$(free_port)
M="$WORK/master"; mkdir -p "$M"
python3 "$BENCH_DIR/gen_signalbox_cfg.py" --mode biglog --workers 1 --log-bytes "$LOG_BYTES" \
  --port "$PORT" --pb-port "$PB" --out "$M/master.cfg"
start_signalbox_master "$M" "$PORT"
start_signalbox_worker "$WORK/w1" "$PB" w1 pass
wait_until 60 "worker connected" workers_connected "http://127.0.0.1:$PORT" 1 || { tail -20 "$M/master.log" >&2; exit 1; }
log "master pid $(cat "$M/master.pid") on :$PORT; streaming $LOG_BYTES bytes"

OUT="$RESULTS/log_ingest.json"; rm -f "$OUT"
timeout 1500 python3 "$BENCH_DIR/log_ingest.py" --base-url "http://127.0.0.1:$PORT" \
  --master-pid "$(cat "$M/master.pid")" --worker-pid "$(cat "$WORK/w1/worker.pid")" \
  --db "$M/state.sqlite" --bytes "$LOG_BYTES" --timeout 900 --out "$OUT" >&2 || log "log_ingest.py FAILED (rc=$?)"
cp "$M/master.log" "$RESULTS/log_ingest-master.log"; cp "$WORK/w1/worker.log" "$RESULTS/log_ingest-worker.log"
stop_all
[ -f "$OUT" ] || { log "no $OUT; master.log tail:"; tail -30 "$M/master.log" >&2; exit 1; }
python3 - "$OUT" "$M/state.sqlite" <<PY
import json, os, sys
out, db = sys.argv[1], sys.argv[2]
d = json.load(open(out))
d["db_after_master_stop"] = {os.path.basename(p): os.path.getsize(p) for p in (db, db + "-wal", db + "-shm") if os.path.exists(p)}
d.update({"date": "$DATE", "machine": $(machine_json), "command": "bench/log_ingest.sh",
          "env": {"LOG_BYTES": $LOG_BYTES},
          "loadavg": {"start": "$LOAD0", "end": "$(loadavg)"},
          "signalbox_git": "$SB_SOURCE"})
json.dump(d, open(out, "w"), indent=2)
PY
python3 "$BENCH_DIR/report.py" --results "$RESULTS"
rm -rf "$M/state.sqlite" "$M/state.sqlite-wal" "$M/state.sqlite-shm"   # ~GB; logs stay in $WORK
