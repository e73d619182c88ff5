#!/usr/bin/env bash
# The scheduler end to end: a real dagd on a temp dir runs a DAG on an
# `every 2s` schedule: dependency order, a retry (two logs), an output
# passed through a template into argv, a timeout that kills the task and
# its children, and an all_done cleanup after the failure.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# wait_until DESC CMD...: polls CMD until it succeeds (30 s deadline).
wait_until() {
  local desc=$1 deadline=$((SECONDS + 30))
  shift
  until "$@" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for: $desc"; return 1; fi
    sleep 0.05
  done
}

mkdir -p "$WORK/dags"
cp "$DATA/sched/diamond.lua" "$WORK/dags/"
cd "$WORK/dags"
export SCHED_WORK="$WORK/dags"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/state/dagd.db" --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
pid=$!

first_run() { ls "$WORK/logs/diamond" 2>/dev/null | sort | head -1; }
has_run() { [ -n "$(first_run)" ]; }
rc=0
wait_until "a first run" has_run && ok || fail "no run created"
run_dir="$WORK/logs/diamond/$(first_run)"
wait_until "cleanup of the first run" test -e "$run_dir/cleanup/1.exit" && ok || fail "cleanup never ran"
wait_until "d of the first run" test -e "$run_dir/d/1.exit" && ok || fail "d never ran"
kill -TERM $pid
wait $pid && rc=0 || rc=$?
out=$(cat "$WORK/dagd.log")
expect_rc 0 "dagd stops cleanly"

# Order: a first; b (both tries) and c before d; cleanup after a.
out=$(tr '\n' ' ' < order)
python3 - "$out" <<'PY' && ok || fail "dependency order"
import sys
seq = sys.argv[1].split()
first = seq[:seq.index("d") + 1] if "d" in seq else seq
assert seq[0] == "a", seq
assert seq.index("b1") < seq.index("b2") < seq.index("d"), seq
assert seq.index("c") < seq.index("d"), seq
assert seq.index("cleanup") > 0, seq
PY

# The retry: two tries with their own logs and exit records.
out=$(cat "$run_dir/b/1.exit" "$run_dir/b/2.exit")
expect_out "exit 1" "b try 1 failed"
expect_out "exit 0" "b try 2 succeeded"
[ -e "$run_dir/b/1.log" ] && [ -e "$run_dir/b/2.log" ] && ok || fail "b has two logs"

# a's output reached d's argv through the template.
out=$(cat "$run_dir/d/1.log")
expect_out "got $WORK/dags/data-" "output passed to d"
expect_out " p1" "params rendered"

# The timeout: the task was stopped and its background child too.
out=$(cat "$run_dir/slow/1.log")
expect_out "execution_timeout reached" "timeout logged"
child=$(cat slow-child.pid)
wait_until "the timed-out task's child to die" sh -c "! kill -0 $child" && ok || fail "child $child survived"
out=$(cat "$run_dir/slow/1.exit")
expect_out "signal 15" "slow ended by SIGTERM"
out=$(cat "$run_dir/cleanup/1.exit")
expect_out "exit 0" "cleanup ran after the failure"

# The database agrees.
out=$(/usr/bin/python3 - "$WORK/state/dagd.db" "$(first_run)" <<'PY' 2>&1
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run_pk, state = db.execute("SELECT id, state FROM dag_run WHERE run_id = ?", (sys.argv[2],)).fetchone()
tis = dict((t, (s, n, e)) for t, s, n, e in db.execute(
    "SELECT task_id, state, try_number, exit_code FROM task_instance WHERE run_pk = ?", (run_pk,)))
assert state == "success", state            # the leaves (d, cleanup) succeeded
assert tis["b"] == ("success", 2, 0), tis["b"]
assert tis["slow"][0] == "failed" and tis["slow"][1] == 1, tis["slow"]
assert tis["cleanup"] == ("success", 1, 0), tis["cleanup"]
assert all(s == "success" for t, (s, n, e) in tis.items() if t != "slow"), tis
outs = dict(db.execute("SELECT key, value FROM task_output WHERE run_pk = ? AND task_id = 'a'", (run_pk,)))
assert outs["path"].endswith(".csv"), outs
print("db ok")
PY
)
expect_out "db ok" "database state"

finish
