#!/usr/bin/env bash
# Server time and size of every status page with a big history, on SQLite.
#
#   bench/pages.sh                                  # 200 builders, 50,000 builds, 5,000 changes
#   PAGES_N=100 bench/pages.sh                      # fewer requests per page (default 200)
#
# 1. A master with PAGES_BUILDERS (200) builders b000.. on one (never connected) worker is
#    created and started once, so it registers its builders, then stopped.
# 2. pages_gen.py writes PAGES_BUILDS (50,000) builds with steps and logs and PAGES_CHANGES
#    (5,000) changes straight into state.sqlite (the schema `upgrade-master` made).
# 3. The master starts again; pages_measure.py GETs each page PAGES_N times on one keep-alive
#    connection: p50/p99 milliseconds from request to whole body, and bytes.
# 4. The master restarts with statement logging (sqlx and store::query) and each page is fetched 5 more times:
#    statements per page (targets: one, or a fixed few independent of the builder count).
# 5. The same with 1,000 builders (and the same 50,000 builds) for the overviews.
# Results: bench/results/pages.json and bench/results/pages.md.
set -euo pipefail
source "$(dirname "${BASH_SOURCE[0]}")/lib.sh"

N="${PAGES_N:-200}"
BUILDS="${PAGES_BUILDS:-50000}"
CHANGES="${PAGES_CHANGES:-5000}"
WORK="$(mktemp -d /tmp/sbxpages.XXXXXX)"
trap 'stop_all; rm -rf "$WORK"' EXIT

build_signalbox
mkdir -p "$RESULTS"

# make_master DIR BUILDERS WEBPORT
make_master() {
  local dir=$1 builders=$2 port=$3
  mkdir -p "$dir"
  python3 - "$dir/master.cfg" "$builders" "$port" "$(free_port)" <<'PY'
import sys
path, n, web, pb = sys.argv[1], int(sys.argv[2]), sys.argv[3], sys.argv[4]
names = [f"b{i:03d}" for i in range(n)]
with open(path, "w") as f:
    f.write(f"""c = BuildmasterConfig = {{}}
c['title'] = "Pages bench"
c['protocols'] = {{'pb': {{'port': {pb}}}}}
c['workers'] = [Worker("w1", "pw")]
c['db'] = {{'db_url': "sqlite:///state.sqlite"}}
f = BuildFactory()
f.addStep(ShellCommand(name="compile", command="true"))
c['builders'] = [BuilderConfig(name=n, workernames=["w1"], factory=f, tags=["t%d" % (i % 10)])
                 for i, n in enumerate({names!r})]
c['schedulers'] = [ForceScheduler(name="force", builderNames={names!r})]
c['status'] = [WebStatus(http_port="tcp:{web}:interface=127.0.0.1")]
""")
PY
}

# run_case NAME BUILDERS PATHS...
run_case() {
  local name=$1 builders=$2; shift 2
  local dir="$WORK/$name" port; port=$(free_port)
  local base="http://127.0.0.1:$port"
  make_master "$dir" "$builders" "$port"
  log "$name: registering $builders builders"
  start_signalbox_master "$dir" "$port"
  stop_all
  log "$name: generating $BUILDS builds and $CHANGES changes"
  local t0=$SECONDS
  python3 "$BENCH_DIR/pages_gen.py" "$dir/state.sqlite" --builds "$BUILDS" --changes "$CHANGES"
  log "$name: generated in $((SECONDS - t0)) s; database $(du -h "$dir/state.sqlite" | cut -f1)"
  spawn "$dir/master.pid" "$dir/master.log" "$SB" start "$dir" --nodaemon
  wait_until 60 "master" curl -s -m 2 -o /dev/null "$base/about"
  log "$name: timing $# pages x $N requests"
  python3 "$BENCH_DIR/pages_measure.py" "$base" "$N" "$@" >"$WORK/$name-timing.json"
  stop_all
  SIGNALBOX_LOG="info,sqlx::query=debug,store::query=debug" spawn "$dir/master.pid" "$dir/master-q.log" "$SB" start "$dir" --nodaemon
  wait_until 60 "master" curl -s -m 2 -o /dev/null "$base/about"
  log "$name: counting statements"
  python3 "$BENCH_DIR/pages_measure.py" --queries "$dir/master-q.log" "$base" "$@" >"$WORK/$name-queries.json"
  stop_all
}

PAGES=(
  "/" "/about" "/builders" "/builders/b000" "/builders/b000?numbuilds=200"
  "/builders/b000/builds/250" "/builders/b000/builds/250/steps/compile"
  "/builders/b000/builds/250/steps/compile/logs/stdio"
  "/builders/b000/builds/250/steps/compile/logs/stdio/text"
  "/waterfall" "/waterfall?num_events=200" "/grid" "/tgrid" "/console" "/changes"
  "/changes/2500" "/buildslaves" "/one_line_per_build" "/rss" "/atom"
  "/png?builder=b000" "/buildstatus?builder=b000&number=250"
  "/builders/b000/charts.svg"
)
BIG=("/builders" "/waterfall" "/console" "/grid" "/tgrid")

started=$(date -u +%FT%TZ)
load_before=$(loadavg)
run_case b200 200 "${PAGES[@]}"
run_case b1000 1000 "${BIG[@]}"

python3 - "$WORK" "$RESULTS" "$BUILDS" "$CHANGES" "$N" "$SB_SOURCE" "$started" "$load_before" "$(loadavg)" "$(machine_json)" <<'PY'
import json, sys
work, results, builds, changes, n, source, started, load0, load1, machine = sys.argv[1:]
out = {"builds": int(builds), "changes": int(changes), "requests_per_page": int(n),
       "source": source, "started": started, "loadavg_before": load0, "loadavg_after": load1,
       "machine": json.loads(machine), "cases": {}}
for case, builders, target in [("b200", 200, 30), ("b1000", 1000, 100)]:
    timing = json.load(open(f"{work}/{case}-timing.json"))
    queries = json.load(open(f"{work}/{case}-queries.json"))
    out["cases"][case] = {"builders": builders, "target_p99_ms": target,
                          "pages": {p: dict(t, statements=queries.get(p)) for p, t in timing.items()}}
json.dump(out, open(f"{results}/pages.json", "w"), indent=1)
lines = ["# Status pages: server time and size", "",
         f"{builds} builds, {changes} changes, SQLite, release build ({source}); "
         f"{n} GETs per page on one keep-alive connection from 127.0.0.1 (time from request "
         "to whole body). Statements: statement log lines (sqlx and the SQLite list reader) per request, background "
         "subtracted. Command: `bench/pages.sh`.", "",
         f"Started {started}; load average before {load0}, after {load1}; "
         f"{out['machine']['nproc']} cores ({out['machine']['cpu']}), shared with other work.", ""]
for case, c in out["cases"].items():
    lines += [f"## {c['builders']} builders (target p99 < {c['target_p99_ms']} ms)", "",
              "| page | status | bytes | p50 ms | p99 ms | statements | p99 target |",
              "|---|---|---|---|---|---|---|"]
    for p, t in c["pages"].items():
        ok = "met" if t["p99_ms"] < c["target_p99_ms"] else "**missed**"
        lines.append(f"| `{p}` | {t['status']} | {t['bytes']} | {t['p50_ms']} | {t['p99_ms']} "
                     f"| {t['statements']} | {ok} |")
    lines.append("")
open(f"{results}/pages.md", "w").write("\n".join(lines) + "\n")
print("\n".join(lines))
PY
