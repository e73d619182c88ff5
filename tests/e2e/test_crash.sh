#!/usr/bin/env bash
# Crash safety: dagd is killed with SIGKILL at random points while runs
# and tries are in flight, and restarted, over and over; the tries run on
# under the try supervisor (or, without a writable cgroup v2, their shims)
# and each new dagd re-adopts them. Afterwards every run finishes, none is
# duplicated, every try ran at most once and never beside another try of
# the same task instance, every try that started ended, and the database
# holds the true exit code of each task instance's last try, the one a
# task-written trace ("start N" / "end N rc" per try) says it exited with
# (and no try was retried after exiting 0). Every other daemon has a secret
# configured, so its tries' output is masked (the supervisor relays it
# through a masking pipe; a shim has its own): masked and unmasked tries
# are each re-adopted by either kind of daemon. At the end the supervisor
# leaves by itself. KEEP=1 keeps the work folder (its path is printed).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
# On any exit: no dagd or supervisor left behind; the work folder kept
# with KEEP=1.
pid=
sup_pid() { # the live try supervisor's pid, "" if none
  local p
  p=$(head -1 "$WORK/dagd.db.supervisor.lock" 2>/dev/null)
  [ -n "$p" ] && tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q ' supervise ' && echo "$p"
}
cleanup() {
  [ -z "$pid" ] || kill -9 "$pid" 2>/dev/null
  local s
  s=$(sup_pid)
  [ -z "$s" ] || kill -9 "$s" 2>/dev/null
  if [ -n "${KEEP:-}" ]; then echo "kept $WORK"; else rm -rf "$WORK"; fi
}
trap cleanup EXIT

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

# start_dagd [masked]: with "masked", a secret is configured, so the
# output of the tries it starts is masked on its way to their logs (by the
# supervisor, or the shim's masking pipe); the cycles alternate, so either
# kind of try is re-adopted by either kind of daemon.
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
  pid=
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
pid=
out=$(tail -5 "$WORK/dagd.log")
expect_rc 0 "final dagd stops cleanly"
# No daemon and no try: the supervisor (if one ran) leaves by itself.
deadline=$((SECONDS + 15))
while [ -n "$(sup_pid)" ] && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
rc=0 out=$(cat "$WORK/dagd.db.supervisor.lock" 2>/dev/null)
[ -z "$(sup_pid)" ] && ok || fail "the try supervisor is still running after dagd stopped"

out=$(/usr/bin/python3 - "$WORK/dagd.db" "$WORK/trace" <<'PY' 2>&1
import os, sqlite3, sys
db = sqlite3.connect(sys.argv[1])
trace = sys.argv[2]
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
        where = f"{run_id}/{task}"
        if tstate != "success":
            problems.append(f"{where}: {tstate}")
        # The trace: tries strictly one after another, each run at most
        # once and ended (nothing kills a try here: only dagd is killed).
        try:
            lines = open(os.path.join(trace, f"{run_id}.{task}")).read().split("\n")
        except OSError:
            lines = []
        ended = {}    # try number -> its exit code
        order = []    # try numbers in the order they started
        running = None
        for line in lines:
            ev = line.split()
            if not ev:
                continue
            n = int(ev[1])
            if ev[0] == "start":
                if running is not None:
                    problems.append(f"{where}: try {n} started while try {running} ran")
                if n in order:
                    problems.append(f"{where}: try {n} ran twice")
                elif order and n < order[-1]:
                    problems.append(f"{where}: try {n} started after try {order[-1]}")
                order.append(n)
                running = n
            else:
                if running != n:
                    problems.append(f"{where}: try {n} ended while {running} was the running one")
                ended[n] = int(ev[2])
                running = None
        if running is not None:
            problems.append(f"{where}: try {running} started and never ended")
        if not order:
            problems.append(f"{where}: no try in the trace (db: try {tries}, exit {code})")
            continue
        # Lost tries (dagd killed between recording a start and the try
        # starting) leave gaps; the db's last try is the trace's last.
        last = order[-1]
        if tries != last:
            problems.append(f"{where}: db try_number {tries}, the trace's last try is {last}")
        elif last in ended and code != ended[last]:
            problems.append(f"{where}: db exit code {code}, try {last} exited {ended[last]}")
        # A try is retried only when it did not succeed.
        for n in order[:-1]:
            if ended.get(n) == 0:
                problems.append(f"{where}: try {n} exited 0, yet try {last} followed")
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
