#!/usr/bin/env python3
"""Fill a Signalbox SQLite database (schema made by `signalbox upgrade-master`, builders and
master registered by one start of the master) with history for the pages benchmark.

  pages_gen.py STATE_SQLITE --builds 50000 --changes 5000

Each change gets its own source stamp and triggers 10 builders in turn (change i: builders
10*i .. 10*i+9, modulo the builder count), one buildset per change, one build request and
one build per builder, until --builds builds exist. Builds are spread over the last 30 days,
two to four steps each with one stdio log of a few lines; about 12% fail, 3% warn, 1% are
exceptions; every 7th builder's newest build failed (so overviews show red). Python standard
library only; everything goes in one transaction.
"""
import argparse
import random
import sqlite3
import sys
import time

STEP_NAMES = ["git", "compile", "test", "upload"]


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("db")
    ap.add_argument("--builds", type=int, default=50000)
    ap.add_argument("--changes", type=int, default=5000)
    ap.add_argument("--seed", type=int, default=2)
    args = ap.parse_args()
    rnd = random.Random(args.seed)
    con = sqlite3.connect(args.db)
    cur = con.cursor()
    builders = [r[0] for r in cur.execute("SELECT id FROM builders ORDER BY id")]
    masterid = cur.execute("SELECT id FROM masters ORDER BY id LIMIT 1").fetchone()[0]
    worker = cur.execute("SELECT id FROM workers ORDER BY id LIMIT 1").fetchone()
    workerid = worker[0] if worker else None
    if not builders:
        sys.exit("no builders registered: start the master once first")
    now = int(time.time())
    span = 30 * 86400
    n_changes = args.changes
    per_change = max(1, -(-args.builds // n_changes))  # builds per change, rounded up
    per_change = min(per_change, len(builders))
    number = {b: 0 for b in builders}
    cur.execute("BEGIN")
    ids = {t: (cur.execute(f"SELECT COALESCE(MAX({c}), 0) FROM {t}").fetchone()[0])
           for t, c in [("sourcestamps", "id"), ("changes", "changeid"), ("buildsets", "id"),
                        ("buildrequests", "id"), ("builds", "id"), ("steps", "id"),
                        ("logs", "id")]}
    made = 0
    authors = [f"dev{i} <dev{i}@example.org>" for i in range(40)]
    branches = ["main"] * 8 + ["release-1", "feature-x"]
    for i in range(n_changes):
        when = now - span + (span * i) // n_changes
        rev = "%040x" % rnd.getrandbits(160)
        branch = rnd.choice(branches)
        ids["sourcestamps"] += 1
        ss = ids["sourcestamps"]
        cur.execute(
            "INSERT INTO sourcestamps (id, ss_hash, branch, revision, repository, codebase,"
            " project, created_at) VALUES (?, ?, ?, ?, ?, '', ?, ?)",
            (ss, f"bench-{ss}-{rev}", branch, rev, "https://example.org/repo.git", "proj", when))
        ids["changes"] += 1
        ch = ids["changes"]
        cur.execute(
            "INSERT INTO changes (changeid, author, comments, branch, revision, when_timestamp,"
            " repository, codebase, project, sourcestampid) VALUES (?, ?, ?, ?, ?, ?, ?, '', ?, ?)",
            (ch, rnd.choice(authors), f"Change {ch}: fix #{rnd.randint(1, 999)}\n\nDetails.",
             branch, rev, when, "https://example.org/repo.git", "proj", ss))
        cur.executemany("INSERT INTO change_files (changeid, filename) VALUES (?, ?)",
                        [(ch, f"src/mod{rnd.randint(0, 99)}.rs") for _ in range(3)])
        if made >= args.builds:
            continue
        ids["buildsets"] += 1
        bs = ids["buildsets"]
        cur.execute(
            "INSERT INTO buildsets (id, reason, submitted_at, complete, complete_at, results)"
            " VALUES (?, 'change', ?, 1, ?, 0)", (bs, when, when + 600))
        cur.execute("INSERT INTO buildset_sourcestamps (buildsetid, sourcestampid) VALUES (?, ?)",
                    (bs, ss))
        for k in range(per_change):
            if made >= args.builds:
                break
            b = builders[(per_change * i + k) % len(builders)]
            ids["buildrequests"] += 1
            br = ids["buildrequests"]
            started = when + rnd.randint(5, 120)
            duration = rnd.choice([5, 30, 90, 300, 900, 3 * 3600]) + rnd.randint(0, 20)
            roll = rnd.random()
            results = 2 if roll < 0.12 else 1 if roll < 0.15 else 4 if roll < 0.16 else 0
            if made >= args.builds - len(builders) and b % 7 == 0:
                results = 2
            cur.execute(
                "INSERT INTO buildrequests (id, buildsetid, builderid, complete, results,"
                " submitted_at, complete_at) VALUES (?, ?, ?, 1, ?, ?, ?)",
                (br, bs, b, results, when, started + duration))
            number[b] += 1
            ids["builds"] += 1
            bid = ids["builds"]
            cur.execute(
                "INSERT INTO builds (id, number, builderid, buildrequestid, workerid, masterid,"
                " started_at, complete_at, state_string, results) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
                (bid, number[b], b, br, workerid, masterid, started, started + duration,
                 "finished", results))
            cur.execute(
                "INSERT INTO build_properties (buildid, name, value, source) VALUES (?, ?, ?, ?)",
                (bid, "branch", f'"{branch}"', "Build"))
            steps = rnd.randint(2, 4)
            t = started
            for n in range(steps):
                ids["steps"] += 1
                sid = ids["steps"]
                last = n == steps - 1
                sres = results if last else 0
                dt = duration // steps
                cur.execute(
                    "INSERT INTO steps (id, number, name, buildid, started_at, complete_at,"
                    " state_string, results) VALUES (?, ?, ?, ?, ?, ?, ?, ?)",
                    (sid, n, STEP_NAMES[n], bid, t, t + dt, STEP_NAMES[n], sres))
                ids["logs"] += 1
                lid = ids["logs"]
                lines = [f"o{STEP_NAMES[n]} line {j}" for j in range(5)]
                if sres == 2:
                    lines.append("eerror: something broke")
                cur.execute(
                    "INSERT INTO logs (id, name, slug, stepid, complete, num_lines, type)"
                    " VALUES (?, 'stdio', 'stdio', ?, 1, ?, 's')", (lid, sid, len(lines)))
                cur.execute(
                    "INSERT INTO logchunks (logid, first_line, last_line, content, compressed)"
                    " VALUES (?, 0, ?, ?, 0)", (lid, len(lines) - 1, "\n".join(lines).encode()))
                t += dt
            made += 1
    con.commit()
    cur.execute("ANALYZE")
    con.commit()
    print(f"{len(builders)} builders, {made} builds, {n_changes} changes", file=sys.stderr)


if __name__ == "__main__":
    main()
