#!/usr/bin/env bash
# Crash safety: dagd is killed with SIGKILL at random points while runs
# and tries are in flight, and restarted, over and over. Afterwards every
# run finishes, none is duplicated, every try ran at most once and never
# beside another try of the same task instance, and the database holds
# each try's true exit code. Every other daemon has a secret configured,
# so tries also run, and are re-adopted, behind the shim's masking pipe.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

CYCLES=${CRASH_CYCLES:-12}
mkdir -p "$WORK/dags" "$WORK/trace"
end_date=$(date -u -d '+12 seconds' +%Y-%m-%dT%H:%M:%SZ)
start_date=$(date -u -d '-1 minute' +%Y-%m-%dT%H:%M:%SZ)
cat >"$WORK/dags/crashy.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "crashy", schedule = "every 1s", start_date = "$start_date",
                     end_date = "$end_date", catchup = true, max_active_runs = 3,
                     default_args = { retries = 3, retry_delay = "1s" } }
-- Each try appends "start"/"end" lines with its try number to a trace file.
local function step(id, body)
  return d:shell { id = id, cmd = 'f=\$WORK_TRACE/\$DAGD_RUN_ID.\$DAGD_TASK_ID; echo "start \$DAGD_TRY_NUMBER" >> "\$f"; '
                               .. body .. '; rc=\$?; echo "end \$DAGD_TRY_NUMBER \$rc" >> "\$f"; exit \$rc' }
end
local a = step("a", "sleep 0.3")
local b = step("b", "sleep 0.2; [ \$DAGD_TRY_NUMBER -gt 1 ] || (exit 7)")
local c = step("c", "sleep 0.4; (exit 0)")
local e = step("e", "sleep 0.1")
d:chain(a, { b, c }, e)
LUA
export WORK_TRACE="$WORK/trace"

# start_dagd [masked]: with "masked", a secret is configured, so tries
# write their logs through the shim's masking pipe; the cycles alternate,
# so either kind of try is re-adopted by either kind of daemon.
start_dagd() {
  local secret=()
  [ "${1:-}" = masked ] && secret=(DAGD_SECRET_CRASH=crash-test-secret)
  env "${secret[@]}" "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
    --logs-folder "$WORK/logs" >>"$WORK/dagd.log" 2>&1 &
  pid=$!
}

# Kill points: random delays after each start (choosing when to crash, not
# waiting for a state).
for i in $(seq 1 "$CYCLES"); do
  if [ $((i % 2)) = 1 ]; then start_dagd masked; else start_dagd; fi
  sleep "0.$((RANDOM % 9 + 1))"
  kill -9 $pid
  wait $pid 2>/dev/null
done

# Last start: everything must settle, polled with a deadline.
start_dagd
settled() {
  /usr/bin/python3 - "$WORK/dagd.db" "$end_date" <<'PY'
import sqlite3, sys, datetime
db = sqlite3.connect(sys.argv[1])
end = datetime.datetime.strptime(sys.argv[2], "%Y-%m-%dT%H:%M:%SZ").replace(tzinfo=datetime.timezone.utc)
if datetime.datetime.now(datetime.timezone.utc) < end + datetime.timedelta(seconds=1):
    sys.exit(1)
busy = db.execute("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')").fetchone()[0]
sys.exit(1 if busy else 0)
PY
}
deadline=$((SECONDS + 90))
until settled; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.2
done
settled && ok || { rc=1; out=$(tail -20 "$WORK/dagd.log"); fail "runs still active after the deadline"; }
kill -TERM $pid
wait $pid && rc=0 || rc=$?
out=$(tail -5 "$WORK/dagd.log")
expect_rc 0 "final dagd stops cleanly"

out=$(/usr/bin/python3 - "$WORK/dagd.db" "$WORK/logs" "$WORK/trace" <<'PY' 2>&1
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
logs, trace = sys.argv[2], sys.argv[3]
runs = db.execute("SELECT id, run_id, logical_date, state FROM dag_run WHERE dag_id = 'crashy'").fetchall()
assert len(runs) >= 5, f"only {len(runs)} runs"
dates = [r[2] for r in runs]
assert len(dates) == len(set(dates)), "duplicated run"
# Intervals of 1 s from start to end: no gap either.
assert sorted(dates) == list(range(min(dates), max(dates) + 1)), "a run is missing"
problems = []
for pk, run_id, _, state in runs:
    if state != "success":
        problems.append(f"{run_id}: {state}")
    tis = db.execute("SELECT task_id, state, try_number, exit_code FROM task_instance WHERE run_pk = ?", (pk,)).fetchall()
    if len(tis) != 4:
        problems.append(f"{run_id}: {len(tis)} task instances")
    for task, tstate, tries, code in tis:
        # Every try has an exit record; the last one's code is in the db.
        for n in range(1, tries + 1):
            p = os.path.join(logs, "crashy", run_id, task, f"{n}.exit")
            if not os.path.exists(p):
                problems.append(f"{run_id}/{task}: no exit record for try {n}")
        last = open(os.path.join(logs, "crashy", run_id, task, f"{tries}.exit")).read().split()
        if last[0] == "exit" and int(last[1]) != code:
            problems.append(f"{run_id}/{task}: db exit {code}, try file {last}")
        # The trace: tries strictly one after another, each run at most once.
        lines = open(os.path.join(trace, f"{run_id}.{task}")).read().split("\n")
        events = [l.split() for l in lines if l]
        running = None
        seen = set()
        for ev in events:
            if ev[0] == "start":
                if running is not None:
                    problems.append(f"{run_id}/{task}: try {ev[1]} started while try {running} ran")
                if ev[1] in seen:
                    problems.append(f"{run_id}/{task}: try {ev[1]} ran twice")
                seen.add(ev[1])
                running = ev[1]
            else:
                running = None
        if task == "b" and code != 0:
            problems.append(f"{run_id}/b: final exit {code}")
        if task == "b" and tries < 2:
            problems.append(f"{run_id}/b: {tries} tries, want >= 2 (try 1 exits 7)")
assert not problems, "\n".join(problems[:20])
print(f"crash ok: {len(runs)} runs checked")
PY
)
expect_out "crash ok" "invariants after $CYCLES kill -9 cycles"
echo "$out" | tail -1
adopted=$(grep -c "re-adopting" "$WORK/dagd.log" || true)
echo "re-adopted tries: $adopted"
[ "$adopted" -gt 0 ] && ok || fail "no try was ever re-adopted: the kills missed every running try"

finish
