#!/usr/bin/env bash
# One try at a time, and a try is over only when all of it is gone.
#
#  - Clearing a running task instance stops try 1; try 2 starts only after
#    try 1's processes are gone, its cleanup (a TERM trap in a background
#    subshell) included.
#  - What a try's main process leaves running is stopped and waited for
#    before the try counts as ended.
#  - A child that calls setsid escapes the task's process group but not its
#    try: execution_timeout stops it, and one that ignores SIGTERM is killed
#    after the grace; the retry never runs beside it.
#
# Run twice: in the default configuration, where the try supervisor runs
# each try in a cgroup of its own (this needs a writable cgroup v2; the
# task's pid and cgroup are read from the supervisor's journal, and the
# task must be in that cgroup, the supervisor its parent, no shim's
# <try>.pid written, and the cgroup gone after the try), and with
# try_cgroups = false, where each try has a shim of its own that stops the
# shim's descendants (its <try>.pid is written, with no cgroup in it).
# States come from the API (dagctl).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
rc=0 out=
ti_state() { # DAG RUN TASK
  "$DAGCTL" -o json tasks "$1" "$2" 2>/dev/null | $PY -c 'import json,sys
t=[x for x in json.load(sys.stdin)["task_instances"] if x["task_id"] == sys.argv[1]]
print(t[0]["state"] if t else "")' "$3"
}
state_is() { [ "$(ti_state "$1" "$2" "$3")" = "$4" ]; }
before() { # FILE EARLIER_RE LATER_RE: every EARLIER line comes before the first LATER line
  local e l
  l=$(grep -n -m1 -E "$3" "$1" | cut -d: -f1)
  e=$(grep -n -E "$2" "$1" | tail -1 | cut -d: -f1)
  [ -n "$l" ] && { [ -z "$e" ] || [ "$e" -lt "$l" ]; }
}

# sup_pid STATE: the pid of the state file's live supervisor, from its
# lock file ("" if none runs).
sup_pid() {
  local p
  p=$(head -1 "$1.supervisor.lock" 2>/dev/null)
  [ -n "$p" ] && tr "\0" " " 2>/dev/null <"/proc/$p/cmdline" | grep -q ' supervise ' && echo "$p"
}
gone() { ! kill -0 "$1" 2>/dev/null; }
# journal_start STATE BASE: "pid cgroup" of the try whose log base is BASE,
# from the S line the supervisor journaled when it started it.
journal_start() {
  $PY - "$1.supervisor" "$2" <<'PYEND'
import sys
for line in open(sys.argv[1]):
    f = line.rstrip("\n").split("\t")
    if f[0] == "S" and len(f) == 5 and f[4] == sys.argv[2]:
        print(f[2], f[3])
PYEND
}

pid=
trap '[ -n "$pid" ] && kill "$pid" 2>/dev/null; for m in supervisor shim; do s=$(sup_pid "$WORK/$m/dagd.db");
      [ -n "$s" ] && kill -9 "$s" 2>/dev/null; done; wait 2>/dev/null; pkill -KILL -f "MARK_$$" 2>/dev/null; rm -rf "$WORK"' EXIT

scenario() { # MODE: supervisor (the default) | shim (try_cgroups = false)
  local mode=$1 W="$WORK/$1"
  mkdir -p "$W/dags"
  cat >"$W/dags/one.lua" <<LUA
local dagd = require "dagd"
local c = dagd.dag { id = "cl" }
c:shell { id = "t", cmd = [[
echo "\$DAGD_TRY_NUMBER start" >> $W/trace
( trap 'sleep 1; echo "\$DAGD_TRY_NUMBER cleanup end" >> $W/trace; exit 0' TERM
  : > $W/armed.\$DAGD_TRY_NUMBER
  while :; do sleep 0.05; done ) &
while [ ! -e $W/armed.\$DAGD_TRY_NUMBER ]; do sleep 0.01; done
if [ "\$DAGD_TRY_NUMBER" = 1 ]; then echo ready > $W/ready; wait; fi
echo "\$DAGD_TRY_NUMBER end" >> $W/trace
]] }
local o = dagd.dag { id = "to" }
o:shell { id = "t", execution_timeout = "1s", retries = 1, retry_delay = "1s", cmd = [[
if [ "\$DAGD_TRY_NUMBER" = 1 ]; then
  setsid sh -c 'while :; do echo "1 alive" >> $W/trace2; sleep 0.1; done # MARK_$$' &
  setsid sh -c 'trap "" TERM; while :; do echo "1 deaf" >> $W/trace2; sleep 0.1; done # MARK_$$' &
  sleep 60
fi
echo "2 start" >> $W/trace2
]] }
local s = dagd.dag { id = "sp" }
s:shell { id = "t", cmd = [[
[ "\$DAGD_TRY_NUMBER" = 1 ] || exit 0
trap 'for i in 1 2 3 4 5 6 7 8; do /bin/sh -c "echo after-stop \$i >> $W/trace3"; done; exit 0' TERM
: > $W/armed3
while :; do sleep 0.02; done
]] }
LUA
  local conf="$W/dagd.lua"
  if [ "$mode" = shim ]; then echo 'try_cgroups = false' >"$conf"; else : >"$conf"; fi
  "$DAGD" --config "$conf" --listen 127.0.0.1:0 --dags-folder "$W/dags" --state "$W/dagd.db" \
    --logs-folder "$W/logs" >"$W/dagd.log" 2>&1 &
  pid=$!
  poll "dagd to listen" 10 grep -q "listening on" "$W/dagd.log" || { cat "$W/dagd.log"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$W/dagd.log" | tail -1)"

  # -- clear a running try whose background subshell cleans up on TERM --
  run "$DAGCTL" trigger cl --run-id r1
  expect_rc 0 "$mode: trigger cl"
  poll "try 1 to be ready" 20 test -e "$W/ready" || fail "$mode: try 1 never got going"
  local pidfile="$W/logs/cl/r1/t/1.pid" sup= start task cg
  if [ "$mode" = supervisor ]; then
    sup=$(sup_pid "$W/dagd.db")
    out=$(cat "$W/dagd.log")
    [ -n "$sup" ] && ok || fail "$mode: the try supervisor runs beside dagd"
    start=$(journal_start "$W/dagd.db" "$W/logs/cl/r1/t/1")
    task=${start%% *} cg=${start#* }
    out=$(cat "$W/dagd.db.supervisor" 2>&1)
    [ -n "$start" ] && [ "$task" != "$cg" ] && ok || fail "$mode: the supervisor journaled try 1's start"
    case $cg in
    */dagd-*-[0-9]*) ok ;;
    *) fail "$mode: the try's cgroup is one of the supervisor's (dagd-<tag>-<n>): $cg" ;;
    esac
    grep -qx "$task" "$cg/cgroup.procs" && ok ||
      fail "$mode: the task ($task) runs in a cgroup of its own ($cg: $(tr '\n' ' ' <"$cg/cgroup.procs"))"
    [ "$(awk '{print $4}' "/proc/$task/stat" 2>/dev/null)" = "$sup" ] && ok ||
      fail "$mode: the task's parent is the supervisor ($sup)"
    [ ! -e "$pidfile" ] && ok || fail "$mode: a supervised try has no shim's pid file"
  else
    [ -z "$(sup_pid "$W/dagd.db")" ] && ok || fail "$mode: try_cgroups = false still started the try supervisor"
    [ -e "$pidfile" ] && ok || fail "$mode: the try's shim wrote its pid file"
    grep -q '^cgroup ' "$pidfile" && fail "$mode: try_cgroups = false still made a cgroup" || ok
  fi
  run "$DAGCTL" clear cl r1 --task t
  expect_rc 0 "$mode: clear the running task instance"
  poll "try 2 to end" 30 state_is cl r1 t success || fail "$mode: try 2 did not succeed: $(ti_state cl r1 t)"
  out=$(cat "$W/trace")
  expect_out "1 cleanup end" "$mode: try 1's cleanup ran to its end"
  before "$W/trace" '^1 ' '^2 start' && ok ||
    fail "$mode: try 2 started while try 1's processes still ran: $(tr '\n' '|' <"$W/trace")"
  expect_out "2 cleanup end" "$mode: what try 2 left running was stopped and waited for before the try ended"
  [ "$mode" = supervisor ] && { [ ! -e "$cg" ] && ok || fail "$mode: the try's cgroup is removed after it"; }

  # -- setsid children and execution_timeout --
  run "$DAGCTL" trigger to --run-id r1
  expect_rc 0 "$mode: trigger to"
  poll "the timed-out task's retry to end" 60 state_is to r1 t success ||
    fail "$mode: the retry did not succeed: $(ti_state to r1 t)"
  before "$W/trace2" '^1 ' '^2 start' && ok ||
    fail "$mode: the retry ran beside try 1's setsid children: $(uniq -c "$W/trace2" | tr '\n' '|')"
  grep -q "1 deaf" "$W/trace2" && ok || fail "$mode: the child that ignores SIGTERM ran at all"
  pgrep -f "MARK_$$" >/dev/null && fail "$mode: try 1's setsid children outlived it" || ok
  out=$(cat "$W/logs/to/r1/t/1.log")
  expect_out "execution_timeout reached" "$mode: try 1 timed out"

  # -- a stop reaches what ran when it came, not what the task starts after --
  run "$DAGCTL" trigger sp --run-id r1
  expect_rc 0 "$mode: trigger sp"
  poll "sp to be armed" 20 test -e "$W/armed3" || fail "$mode: sp never got going"
  run "$DAGCTL" clear sp r1 --task t
  poll "sp's try 2 to end" 20 state_is sp r1 t success || fail "$mode: sp's try 2 did not succeed: $(ti_state sp r1 t)"
  [ "$(grep -c '^after-stop' "$W/trace3" 2>/dev/null)" = 8 ] && ok ||
    fail "$mode: processes started by the task's TERM trap were stopped too: $(tr '\n' '|' <"$W/trace3" 2>/dev/null)"

  kill "$pid"
  wait "$pid" 2>/dev/null
  pid=
  # No daemon connected and no try running: the supervisor leaves.
  [ -z "$sup" ] || { poll "the supervisor to leave" 10 gone "$sup" && ok || fail "$mode: the supervisor stayed after dagd"; }
}

scenario supervisor
scenario shim
finish
