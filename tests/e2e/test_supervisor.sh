#!/usr/bin/env bash
# The try supervisor: one process per state file starts the tries that
# need no shim of their own, and outlives dagd as shims do.
#
#  - With the default configuration a try runs under the supervisor, not
#    a shim: the task's parent is the supervisor, its cgroup is its own.
#  - Killed (-9) while a try runs: dagd starts a new supervisor at once;
#    the try it was running is killed (none of it runs on unwatched) and
#    counts as lost, so its retry runs, and succeeds.
#  - dagd and then the supervisor killed, a try ending in between while
#    another still runs: the end was in the supervisor's journal, so the
#    new dagd records the try's true exit code (7), not a lost try; the
#    other is lost and retried.
#  - No daemon connected and no try running: the supervisor leaves.
# Only where cgroup v2 can be written (the supervisor needs it); elsewhere
# every try has its shim, which other tests cover.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
rc=0 out=
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; sup=$(sup_pid); [ -n "$sup" ] && kill -9 "$sup" 2>/dev/null;
      pkill -KILL -f "MARK_$$" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
listening() { [ "$(grep -c "listening on" "$WORK/dagd.log" 2>/dev/null || echo 0)" -ge "$1" ]; }
start_dagd() { # N: the Nth start
  "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
    >>"$WORK/dagd.log" 2>&1 &
  pid=$!
  poll "dagd to listen" 10 listening "$1" || { cat "$WORK/dagd.log"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
}

mkdir -p "$WORK/dags" "$WORK/m"
cat >"$WORK/dags/sv.lua" <<LUA
local dagd = require "dagd"
local k = dagd.dag { id = "k" }
k:shell { id = "long", retries = 1, retry_delay = "1s", cmd = [[
echo \$\$ > $WORK/m/long.\$DAGD_TRY_NUMBER
cat /proc/self/cgroup > $WORK/m/long.cg
if [ "\$DAGD_TRY_NUMBER" = 1 ]; then exec sleep 600 # MARK_$$
fi
]] }
local j = dagd.dag { id = "j" }
j:shell { id = "e", cmd = [[
echo \$\$ > $WORK/m/e.pid
while [ ! -e $WORK/m/go ]; do sleep 0.02; done
exit 7
]] }
j:shell { id = "hold", retries = 1, retry_delay = "1s", cmd = [[
echo \$\$ > $WORK/m/hold.\$DAGD_TRY_NUMBER
while [ ! -e $WORK/m/release ]; do sleep 0.02; done
]] }
LUA
start_dagd 1
sup=$(sup_pid)
if [ -z "$sup" ]; then
  grep -q "each try starts under a shim" "$WORK/dagd.log" && {
    echo "no writable cgroup v2 here: tries run under shims, the supervisor test does not apply"
    exit 0
  }
  out=$(cat "$WORK/dagd.log")
  fail "the supervisor runs beside dagd"
  finish
  exit
fi
ok

# -- the supervisor killed while a try runs --
run "$DAGCTL" trigger k --run-id r1
expect_rc 0 "trigger k"
poll "long's try 1 to start" 20 test -s "$WORK/m/long.1" || exit 1
task=$(cat "$WORK/m/long.1")
parent=$(awk '{print $4}' "/proc/$task/stat" 2>/dev/null)
[ "$parent" = "$sup" ] && ok || fail "the task's parent is the supervisor ($sup), not $parent"
grep -q '^0::/.*dagd-[0-9a-f]*-[0-9]*$' "$WORK/m/long.cg" && ok ||
  fail "the task runs in a cgroup of its own: $(tr '\n' ' ' <"$WORK/m/long.cg")"
[ ! -e "$WORK/logs/k/r1/long/1.pid" ] && ok || fail "a supervised try has no shim's pid record"
kill -9 "$sup"
poll "try 1's process to be killed" 10 gone "$task" && ok || fail "try 1 ran on after its supervisor was killed"
poll "the retry to succeed" 30 state_is k r1 long success && ok ||
  fail "long's retry did not succeed: $(ti_field k r1 long state)"
[ "$(ti_field k r1 long try_number)" = 2 ] && ok || fail "long took $(ti_field k r1 long try_number) tries, want 2"
out=$(cat "$WORK/dagd.log")
expect_out "the try supervisor went away; starting a new one" "dagd says the supervisor went"
expect_out "its supervisor was killed while it ran; it counts as lost" "the new supervisor says try 1 is lost"
new=$(sup_pid)
[ -n "$new" ] && [ "$new" != "$sup" ] && ok || fail "a new supervisor serves the state file ($sup -> $new)"

# -- dagd killed, the try ends, then the supervisor killed: the end is kept --
run "$DAGCTL" trigger j --run-id r1
expect_rc 0 "trigger j"
poll "e and hold to start" 20 test -s "$WORK/m/e.pid" -a -s "$WORK/m/hold.1" || exit 1
etask=$(cat "$WORK/m/e.pid") htask=$(cat "$WORK/m/hold.1")
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
touch "$WORK/m/go"
poll "e to end while no dagd watches" 10 gone "$etask" || exit 1
sup=$(sup_pid)
[ -n "$sup" ] && ok || fail "the supervisor outlives dagd while a try (hold) runs"
# Its end is journaled right after the reap; then the supervisor goes.
journaled() { grep -q "^E	[0-9]*	exit	7	" "$WORK/dagd.db.supervisor"; }
poll "e's end in the journal" 10 journaled && ok || fail "the supervisor journaled e's end"
kill -9 "$sup"
start_dagd 2
# The next supervisor (started by the new dagd) kills what the killed one ran.
poll "hold's try 1 to be killed" 10 gone "$htask" && ok || fail "hold's try 1 ran on after its supervisor was killed"
touch "$WORK/m/release"
poll "e's end to be recorded" 20 state_is j r1 e failed && ok || fail "e is $(ti_field j r1 e state), want failed"
[ "$(ti_field j r1 e exit_code)" = 7 ] && ok || fail "e's exit code is $(ti_field j r1 e exit_code), want its true 7"
[ "$(ti_field j r1 e try_number)" = 1 ] && ok || fail "e ran again"
poll "hold's retry to succeed" 30 state_is j r1 hold success && ok || fail "hold is $(ti_field j r1 hold state)"
[ "$(ti_field j r1 hold try_number)" = 2 ] && ok || fail "hold took $(ti_field j r1 hold try_number) tries, want 2"

# -- nothing to do: the supervisor leaves after dagd --
sup=$(sup_pid)
kill -TERM "$pid"
wait "$pid" 2>/dev/null
pid=
[ -n "$sup" ] && { poll "the supervisor to leave" 10 gone "$sup" && ok || fail "the supervisor stayed with nothing to do"; }
finish
