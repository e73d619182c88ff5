#!/usr/bin/env bash
# The scheduler end to end: a real dagd on a temp dir, in the default
# configuration (tries under the try supervisor where cgroup v2 can be
# written, as here), runs a DAG on an `every 2s` schedule. Its first run:
#
#  - dependency order: a first; b (both tries) and c before d; cleanup
#    after a;
#  - a retry: b's try 1 exits 1 and try 2 exits 0 (each try's end as the
#    supervisor journaled it; a shim's <try>.exit where tries have shims),
#    each try with a log of its own; b ends success, try 2, exit code 0;
#  - an output of a passed through a template into d's argv (params too);
#  - a timeout: slow's try ends by SIGTERM (signal 15), its background
#    child is killed too, its log says so; slow ends failed after 1 try,
#    with no exit code (a signal is none);
#  - an all_done cleanup runs after the failure and exits 0; the run, its
#    leaves having succeeded, is a success;
#  - the API (dagctl) and the database agree on these states.
# Then the DAG is paused, its runs end, dagd stops cleanly with no try
# left running, and the supervisor leaves after it.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
rc=0 out=
pid=
STATE="$WORK/state/dagd.db"
# The live supervisor's pid, from its lock file ("" if none runs).
sup_pid() {
  local p
  p=$(head -1 "$STATE.supervisor.lock" 2>/dev/null)
  [ -n "$p" ] && tr "\0" " " 2>/dev/null <"/proc/$p/cmdline" | grep -q ' supervise ' && echo "$p"
}
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; s=$(sup_pid); [ -n "$s" ] && kill -9 "$s" 2>/dev/null;
      for c in $(cat "$WORK/dags/slow-child.pid" 2>/dev/null); do
        [ "$(tr "\0" " " 2>/dev/null <"/proc/$c/cmdline")" = "sleep 3600 " ] && kill -9 "$c"; done;
      wait 2>/dev/null; rm -rf "$WORK"' EXIT

# wait_until DESC CMD...: polls CMD until it succeeds (30 s deadline).
wait_until() {
  local desc=$1 deadline=$((SECONDS + 30))
  shift
  until "$@" 2>/dev/null; do
    if [ $SECONDS -ge $deadline ]; then echo "timed out waiting for: $desc"; return 1; fi
    sleep 0.05
  done
}
gone() { ! kill -0 "$1" 2>/dev/null; }
# runs_json [--state S]...: the DAG's runs as the API lists them.
runs_json() { "$DAGCTL" -o json runs diamond -n 100 "$@"; }
# The oldest run (the first the schedule made): its run id.
first_run() {
  runs_json | $PY -c 'import json,sys
r=sorted(json.load(sys.stdin)["dag_runs"], key=lambda r: r["logical_date"])
print(r[0]["dag_run_id"] if r else "")'
}
has_run() { [ -n "$(first_run)" ]; }
run_ended() { # RUN
  runs_json | $PY -c 'import json,sys
r=[r for r in json.load(sys.stdin)["dag_runs"] if r["dag_run_id"] == sys.argv[1]]
sys.exit(0 if r and r[0]["state"] in ("success", "failed") else 1)' "$1"
}
none_active() {
  [ "$(runs_json --state queued --state running | $PY -c 'import json,sys; print(len(json.load(sys.stdin)["dag_runs"]))')" = 0 ]
}
# ti RUN TASK: "state try_number exit_code" of a task instance, from the API.
ti() {
  "$DAGCTL" -o json tasks diamond "$1" | $PY -c 'import json,sys
t=[x for x in json.load(sys.stdin)["task_instances"] if x["task_id"] == sys.argv[1]]
print(" ".join(str(t[0][k]) for k in ("state", "try_number", "exit_code")) if t else "none")' "$2"
}
# try_end TASK TRY: how the first run's try ended, "exit N" or "signal N":
# from the supervisor's journal (the S line naming the try's log base, then
# the E line of its seq), or, where tries have shims, their <try>.exit.
try_end() {
  if [ "$model" = supervisor ]; then
    $PY - "$STATE.supervisor" "/diamond/$run/$1/$2" <<'PY'
import sys
seqs, ends = [], {}
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "S" and len(f) == 5 and f[4].endswith(sys.argv[2]):
        seqs.append(f[1])
    elif f[0] == "E" and len(f) == 5:
        ends[f[1]] = f[2] + " " + f[3]
print(" | ".join(ends.get(s, "no end") for s in seqs) or "not started")
PY
  else
    head -1 "$run_dir/$1/$2.exit"
  fi
}

mkdir -p "$WORK/dags"
cp "$DATA/sched/diamond.lua" "$WORK/dags/"
cd "$WORK/dags"
export SCHED_WORK="$WORK/dags"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$STATE" --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
pid=$!
wait_until "dagd to listen" grep -q "listening on" "$WORK/dagd.log" || { cat "$WORK/dagd.log"; exit 1; }
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

# The default: tries under the try supervisor, where it can be had
# (test_supervisor.sh holds that it is had here); else under shims.
if grep -q "tries start under the supervisor of" "$WORK/dagd.log"; then
  model=supervisor
  sup=$(sup_pid)
  out=$(cat "$WORK/dagd.log")
  [ -n "$sup" ] && ok || fail "the try supervisor runs beside dagd"
else
  model=shim
  echo "tries run under shims here (try_cgroups = false, or no writable cgroup v2): their .exit files are read"
fi

wait_until "a first run" has_run && ok || fail "no run created"
run=$(first_run)
run_dir="$WORK/logs/diamond/$run"
wait_until "the first run to end" run_ended "$run" && ok || fail "the first run $run did not end: $(runs_json)"
# No new runs; those made meanwhile end (slow's timeout ends each).
run "$DAGCTL" pause diamond
expect_rc 0 "pause diamond"
wait_until "the runs to end" none_active && ok || fail "runs still active: $(runs_json --state running)"

# The try ends, read while the supervisor (and its journal) is live.
b1=$(try_end b 1) b2=$(try_end b 2) slow1=$(try_end slow 1) cleanup1=$(try_end cleanup 1)
if [ "$model" = supervisor ]; then
  [ ! -e "$run_dir/b/1.pid" ] && [ ! -e "$run_dir/b/1.exit" ] && ok ||
    fail "a supervised try has no shim's .pid or .exit file"
fi

# The API agrees.
api_b=$(ti "$run" b) api_slow=$(ti "$run" slow) api_cleanup=$(ti "$run" cleanup)
out=$api_b
[ "$out" = "success 2 0" ] && ok || fail "API: b is $out, want success after 2 tries, exit code 0"
out=$api_slow
[ "$out" = "failed 1 None" ] && ok || fail "API: slow is $out, want failed after 1 try, no exit code"
out=$api_cleanup
[ "$out" = "success 1 0" ] && ok || fail "API: cleanup is $out, want success after 1 try, exit code 0"

sup=$(sup_pid)
kill -TERM $pid
wait $pid && rc=0 || rc=$?
pid=
out=$(cat "$WORK/dagd.log")
expect_rc 0 "dagd stops cleanly"
expect_no_out "running tries to" "dagd leaves no running try behind"
if [ "$model" = supervisor ]; then
  [ -n "$sup" ] && wait_until "the supervisor to leave" gone "$sup" && ok || fail "the supervisor ($sup) stayed after dagd"
fi

# Order: a first; b (both tries) and c before d; cleanup after a.
out=$(tr '\n' ' ' < order)
$PY - "$out" <<'PY' && ok || fail "dependency order"
import sys
seq = sys.argv[1].split()
assert seq[0] == "a", seq
assert seq.index("b1") < seq.index("b2") < seq.index("d"), seq
assert seq.index("c") < seq.index("d"), seq
assert seq.index("cleanup") > 0, seq
PY

# The retry: two tries with their own logs and ends.
out=$b1
expect_out "exit 1" "b try 1 failed"
out=$b2
expect_out "exit 0" "b try 2 succeeded"
[ -e "$run_dir/b/1.log" ] && [ -e "$run_dir/b/2.log" ] && ok || fail "b has two logs"

# a's output reached d's argv through the template.
out=$(cat "$run_dir/d/1.log")
expect_out "got $WORK/dags/data-" "output passed to d"
expect_out " p1" "params rendered"

# The timeout: the task was stopped and its background child too (the
# child of every run's slow: each timed out).
out=$(cat "$run_dir/slow/1.log")
expect_out "execution_timeout reached" "timeout logged"
expect_out "try 1 timed out" "the timed-out end logged"
children=$(cat slow-child.pid 2>/dev/null)
out=$children
[ -n "$children" ] && ok || fail "slow recorded its child's pid"
for child in $children; do
  wait_until "the timed-out task's child to die" gone "$child" && ok || fail "child $child survived"
done
out=$slow1
expect_out "signal 15" "slow ended by SIGTERM"
out=$cleanup1
expect_out "exit 0" "cleanup ran after the failure"

# The database agrees.
out=$($PY - "$STATE" "$run" <<'PY' 2>&1
import sqlite3, sys
db = sqlite3.connect(sys.argv[1])
run_pk, state = db.execute("SELECT id, state FROM dag_run WHERE run_id = ?", (sys.argv[2],)).fetchone()
tis = dict((t, (s, n, e)) for t, s, n, e in db.execute(
    "SELECT task_id, state, try_number, exit_code FROM task_instance WHERE run_pk = ?", (run_pk,)))
assert state == "success", state            # the leaves (d, cleanup) succeeded
assert tis["b"] == ("success", 2, 0), tis["b"]
assert tis["slow"] == ("failed", 1, None), tis["slow"]   # ended by a signal: no exit code
assert tis["cleanup"] == ("success", 1, 0), tis["cleanup"]
assert all(s == "success" for t, (s, n, e) in tis.items() if t != "slow"), tis
outs = dict(db.execute("SELECT key, value FROM task_output WHERE run_pk = ? AND task_id = 'a'", (run_pk,)))
assert outs["path"].endswith(".csv"), outs
print("db ok")
PY
)
expect_out "db ok" "database state"

finish
