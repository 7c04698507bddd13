#!/usr/bin/env bash
# MailNotifier benchmark: BUILDS builds finish at once with NOTIFIERS MailNotifiers (mode
# "all", the default message with the failing log's tail) sending to an SMTP sink on
# 127.0.0.1. Reports mails/s rendered+recorded+delivered and the latency from the instant the
# builds' "finished" events are published to each mail's SMTP DATA command.
#
#   bench/mail.sh                        # 100 builds x 20 notifiers = 2000 mails
#   BUILDS=10 NOTIFIERS=5 bench/mail.sh  # smaller
#   SINK=aiosmtpd bench/mail.sh          # the Python sink the tests use
#
# The sink is the Rust one (crates/reporters/examples/smtp_sink.rs) unless SINK=aiosmtpd:
# the single-process aiosmtpd sink used more CPU per mail than the master and set the p99.
# Both write the same per-mail JSON (DATA command time, received time). SINK=aiosmtpd needs
# python with aiosmtpd (scripts/test installs it: SIGNALBOX_PYTHON, default
# ~/.cache/signalbox-venv/bin/python); the report needs a python 3 either way.
# Writes bench/results/mail.json and mail.md.
set -euo pipefail
cd "$(dirname "$0")/.."
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$HOME/.cache/signalbox-target}"
builds="${BUILDS:-100}"
notifiers="${NOTIFIERS:-20}"
sink_kind="${SINK:-rust}"
python="${SIGNALBOX_PYTHON:-${SIGNALBOX_VENV:-$HOME/.cache/signalbox-venv}/bin/python}"
case "$sink_kind" in
  rust) [ -x "$python" ] || python=python3 ;;
  aiosmtpd) "$python" -c 'import aiosmtpd' || { echo "no aiosmtpd in $python (run scripts/test once)" >&2; exit 1; } ;;
  *) echo "SINK must be rust or aiosmtpd, not $sink_kind" >&2; exit 2 ;;
esac

cargo build --release -q -p reporters --example mail_bench --example smtp_sink
work=$(mktemp -d /tmp/sbx-mailbench.XXXXXX)
port=$("$python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])')
case "$sink_kind" in
  rust) "$CARGO_TARGET_DIR/release/examples/smtp_sink" --dir "$work/mail" --port "$port" >"$work/sink.log" 2>&1 & ;;
  aiosmtpd) "$python" crates/reporters/tests/smtp_sink.py --raw --dir "$work/mail" --port "$port" >"$work/sink.log" 2>&1 & ;;
esac
sink=$!
trap 'kill $sink 2>/dev/null || true; rm -rf "$work"' EXIT
for _ in $(seq 1 100); do
  "$python" -c "import socket; socket.create_connection(('127.0.0.1', $port), 1)" 2>/dev/null && break
  sleep 0.1
done
load=$(cut -d' ' -f1-3 /proc/loadavg)
/usr/bin/time -f "%U %S" -o "$work/driver.cpu" \
  timeout 600 "$CARGO_TARGET_DIR/release/examples/mail_bench" "$work/master" "$port" "$builds" "$notifiers" >"$work/driver.json"
# CPU seconds the sink used (utime + stime), to see which side limits the rate.
awk '{print ($14 + $15) / 100}' "/proc/$sink/stat" >"$work/sink.cpu"
mkdir -p bench/results
"$python" - "$work" "$load" "$sink_kind" <<'PY'
import glob, json, os, sys, datetime
work, load, sink = sys.argv[1], sys.argv[2], sys.argv[3]
driver = json.load(open(os.path.join(work, "driver.json")))
metas = [json.load(open(p)) for p in glob.glob(os.path.join(work, "mail", "*.json"))]
t0 = driver["t0"]
lat = sorted(m["data_command_at"] - t0 for m in metas)
def pct(p):
    return lat[min(len(lat) - 1, int(p / 100.0 * len(lat)))] if lat else None
last = max(m["received_at"] for m in metas) if metas else t0
result = {
    "builds": driver["builds"], "notifiers": driver["notifiers"], "sink": sink,
    "mails_expected": driver["mails"], "mails_received": len(metas),
    "mails_per_second": round(len(metas) / (last - t0), 1) if last > t0 else None,
    "all_recorded_s": round(driver["all_recorded_at"] - t0, 3) if driver.get("all_recorded_at") else None,
    "latency_p50_s": round(pct(50), 3), "latency_p90_s": round(pct(90), 3),
    "latency_p99_s": round(pct(99), 3), "latency_max_s": round(lat[-1], 3),
    "master_cpu_s": round(sum(float(x) for x in open(os.path.join(work, "driver.cpu")).read().split()[:2]), 2),
    "sink_cpu_s": float(open(os.path.join(work, "sink.cpu")).read()),
    "load_average": load, "date": datetime.datetime.utcnow().strftime("%Y-%m-%d %H:%M UTC"),
}
json.dump(result, open("bench/results/mail.json", "w"), indent=2)
with open("bench/results/mail.md", "w") as f:
    f.write("# MailNotifier: build finish to SMTP DATA\n\n")
    f.write("`bench/mail.sh` (release build): %(builds)d builds finish at once, %(notifiers)d "
            "MailNotifiers (mode \"all\", default plain+HTML message with the failing log's tail), "
            "%(sink)s SMTP sink on 127.0.0.1, SQLite outbox. Latency is from the instant the builds' "
            "`finished` events are published to each mail's DATA command at the sink.\n\n" % result)
    f.write("| figure | value |\n|---|---|\n")
    for k in ("sink", "mails_expected", "mails_received", "mails_per_second", "all_recorded_s",
              "latency_p50_s", "latency_p90_s", "latency_p99_s", "latency_max_s",
              "master_cpu_s", "sink_cpu_s", "load_average", "date"):
        f.write("| %s | %s |\n" % (k, result[k]))
    f.write("\nTarget: p99 under 1 s. The machine is shared (2 cores); load average at start is shown.\n")
    if os.path.exists("bench/results/mail-notes.md"):
        f.write("\n" + open("bench/results/mail-notes.md").read())
print(json.dumps(result, indent=2))
PY
