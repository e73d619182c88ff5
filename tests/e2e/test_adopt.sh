#!/usr/bin/env bash
# dagd killed with -9 while tries run: a new dagd re-adopts them, with
# their true exit codes and their real times. Two tries run when dagd is
# killed: t ends while no dagd watches it (exit 0, an output), r still
# runs when the new dagd starts and ends under it (exit 3). The new dagd
# re-adopts both (neither runs again): t is a success with its output, r
# failed with exit code 3. t's end is its try's end (before the restart),
# not when the new dagd noticed it, and its start is the try's start; so
# its duration is the try's. The try's files are 0600 under an ordinary
# umask, $DAGD_OUTPUT included, and its folder 0700.
#
# Two scenarios, the same DAG:
#  - supervisor (the default configuration): the tries' parent is the try
#    supervisor, which outlives dagd; t's end is kept in its journal
#    (<state>.supervisor) while no dagd runs; no <try>.pid or <try>.exit
#    is written.
#  - shim (DAGD_TRY_CGROUPS=false, the fallback): each try has a shim of
#    its own, its parent; t's shim writes <try>.exit while no dagd runs,
#    and <try>.pid and <try>.exit are 0600 too.
# Where no cgroup v2 can be written, dagd falls back to shims by itself
# and the supervisor scenario says so and is skipped.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
PY=/usr/bin/python3
rc=0 out=
pid= D= mode=

# cleanup: dagd; then every try is let end (its marks), the tries of a
# shim scenario also killed by the pids their shims recorded; a
# supervisor leaves once its tries are over (else it is killed).
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  local d f task
  for d in "$WORK"/supervisor "$WORK"/shim; do
    [ -d "$d/marks" ] && touch "$d/marks/go" "$d/marks/release"
    for f in "$d"/logs/slow/*/*/1.pid; do
      [ -s "$f" ] && [ ! -e "${f%.pid}.exit" ] || continue
      task=$(sed -n 's/^task //p' "$f")
      [ -n "$task" ] && kill -9 -- "-$task" 2>/dev/null
    done
    sup_reap "$d"
  done
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

now() { date +%s.%N; }
ti_field() { # RUN TASK FIELD
  "$DAGCTL" -o json tasks slow "$1" 2>/dev/null | $PY -c 'import json,sys
t=[x for x in json.load(sys.stdin)["task_instances"] if x["task_id"] == sys.argv[1]]
print(t[0].get(sys.argv[2]) if t else "")' "$2" "$3"
}
state_is() { [ "$(ti_field "$1" "$2" state)" = "$3" ]; }
start_dagd() {
  if [ "$mode" = shim ]; then
    DAGD_TRY_CGROUPS=false "$DAGD" --listen 127.0.0.1:0 --dags-folder "$D/dags" --state "$D/dagd.db" \
      --logs-folder "$D/logs" >>"$D/dagd.log" 2>&1 &
  else
    "$DAGD" --listen 127.0.0.1:0 --dags-folder "$D/dags" --state "$D/dagd.db" --logs-folder "$D/logs" \
      >>"$D/dagd.log" 2>&1 &
  fi
  pid=$!
}
listening() { [ "$(grep -c "listening on" "$D/dagd.log" 2>/dev/null)" -ge "$1" ]; }
# The seq the supervisor's journal gives to try base $1, then whether
# the journal has that try's end with exit code $2.
journal_seq() { awk -F'\t' -v b="$1" '$1 == "S" && $5 == b { print $2 }' "$D/dagd.db.supervisor" 2>/dev/null | tail -1; }
journaled_end() {
  local seq
  seq=$(journal_seq "$1")
  [ -n "$seq" ] && awk -F'\t' -v s="$seq" -v c="$2" '$1 == "E" && $2 == s && $3 == "exit" && $4 == c { f = 1 } END { exit !f }' \
    "$D/dagd.db.supervisor"
}

scenario() { # supervisor | shim
  mode=$1 D="$WORK/$1"
  mkdir -p "$D/dags" "$D/marks"
  cat >"$D/dags/slow.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "slow", default_args = { retries = 0 } }
d:shell { id = "t", cmd = 'echo \$PPID > $D/marks/t.parent; date +%s.%N > $D/marks/start; '
                       .. 'while [ ! -e $D/marks/go ]; do sleep 0.05; done; '
                       .. 'echo answer=42 > "\$DAGD_OUTPUT"; date +%s.%N > $D/marks/end' }
d:shell { id = "r", cmd = 'echo \$PPID > $D/marks/r.parent; while [ ! -e $D/marks/release ]; do sleep 0.05; done; exit 3' }
LUA
  start_dagd
  poll "dagd to listen" 10 listening 1 || { cat "$D/dagd.log"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$D/dagd.log" | tail -1)"
  local sup=
  if [ "$mode" = supervisor ]; then
    sup=$(sup_pid "$D")
    if [ -z "$sup" ] && grep -q "each try starts under a shim" "$D/dagd.log"; then
      echo "no writable cgroup v2 here: tries run under shims, the supervisor scenario does not apply"
      kill -TERM $pid
      wait $pid 2>/dev/null
      pid=
      return
    fi
    out=$(cat "$D/dagd.log")
    [ -n "$sup" ] && ok || fail "[$mode] the try supervisor runs beside dagd"
  fi
  run "$DAGCTL" trigger slow
  expect_rc 0 "[$mode] trigger"
  local run_id TRY RTRY
  run_id=$(sed -n 's/^triggered slow //p' <<<"$out")
  TRY="$D/logs/slow/$run_id/t/1" RTRY="$D/logs/slow/$run_id/r/1"
  poll "the tries to start" 10 test -s "$D/marks/start" -a -s "$D/marks/r.parent" -a -s "$D/marks/t.parent" || exit 1
  local tparent rparent
  tparent=$(cat "$D/marks/t.parent") rparent=$(cat "$D/marks/r.parent")
  kill -9 $pid
  wait $pid 2>/dev/null
  pid=
  # t ends while no dagd watches it: its end is kept by what runs it.
  touch "$D/marks/go"
  if [ "$mode" = supervisor ]; then
    [ "$tparent" = "$sup" ] && [ "$rparent" = "$sup" ] && ok ||
      fail "[$mode] the tries' parent is the supervisor ($sup), not $tparent and $rparent"
    poll "t's end in the supervisor's journal" 10 journaled_end "$TRY" 0 ||
      { cat "$D/dagd.db.supervisor"; exit 1; }
    [ "$(sup_pid "$D")" = "$sup" ] && ok || fail "[$mode] the supervisor outlives dagd while r runs"
    for f in pid exit; do
      [ ! -e "$TRY.$f" ] && [ ! -e "$RTRY.$f" ] && ok || fail "[$mode] a supervised try has no <try>.$f"
    done
  else
    [ "$tparent" = "$(sed -n 's/^shim //p' "$TRY.pid")" ] && [ "$rparent" = "$(sed -n 's/^shim //p' "$RTRY.pid")" ] && ok ||
      fail "[$mode] each try's parent is its shim ($(cat "$TRY.pid" "$RTRY.pid" | tr '\n' ' '); $tparent and $rparent)"
    poll "t's exit record" 10 test -s "$TRY.exit" || exit 1
    grep -q '^exit 0' "$TRY.exit" && ok || fail "[$mode] t's exit record: $(cat "$TRY.exit")"
    [ ! -e "$RTRY.exit" ] && ok || fail "[$mode] r has ended already"
  fi
  local restart
  restart=$(now)
  start_dagd
  poll "dagd to listen again" 10 listening 2 || { cat "$D/dagd.log"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$D/dagd.log" | tail -1)"
  poll "t's end to be recorded" 10 state_is "$run_id" t success || { cat "$D/dagd.log"; exit 1; }
  [ "$(ti_field "$run_id" r state)" = running ] && ok || fail "[$mode] r runs on after the restart: $(ti_field "$run_id" r state)"
  touch "$D/marks/release"
  poll "r's end to be recorded" 10 state_is "$run_id" r failed && ok ||
    fail "[$mode] r, re-adopted, exited 3: it is $(ti_field "$run_id" r state), want failed"

  run "$DAGCTL" -o json tasks slow "$run_id"
  $PY - "$out" "$(cat "$D/marks/start")" "$(cat "$D/marks/end")" "$restart" <<'PY' && ok || fail "[$mode] the re-adopted tries keep their exit codes and real start and end"
import datetime, json, sys
tis = {ti["task_id"]: ti for ti in json.loads(sys.argv[1])["task_instances"]}
ti, r = tis["t"], tis["r"]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
start, end = t(ti["start_date"]), t(ti["end_date"])
began, finished, restart = map(float, sys.argv[2:5])
assert ti["outputs"] == {"answer": "42"}, ti
assert ti["exit_code"] == 0 and ti["try_number"] == 1, ti
assert r["exit_code"] == 3 and r["try_number"] == 1, r
assert start <= began, f"start {start} is after the task began ({began})"
assert finished <= end < restart, f"end {end} is not between the task's end ({finished}) and the restart ({restart})"
assert ti["duration"] < restart - start, f"duration {ti['duration']} counts past the restart"
assert t(r["end_date"]) >= restart, f"r's end {r['end_date']} is before the restart ({restart})"
PY
  out=$(cat "$D/dagd.log")
  expect_out "re-adopting slow/$run_id/t try 1" "[$mode] the new dagd re-adopts t"
  expect_out "re-adopting slow/$run_id/r try 1" "[$mode] the new dagd re-adopts r"
  expect_no_out "lost" "[$mode] nothing is called lost"

  local files="log out"
  [ "$mode" = shim ] && files="log pid exit out"
  for f in $files; do
    [ "$(stat -c %a "$TRY.$f")" = 600 ] && ok || fail "[$mode] <try>.$f is 0600 (it is $(stat -c %a "$TRY.$f"))"
  done
  [ "$(stat -c %a "$D/logs/slow/$run_id/t")" = 700 ] && ok || fail "[$mode] the try's folder is 0700"

  kill -TERM $pid
  wait $pid 2>/dev/null
  pid=
  if [ -n "$sup" ]; then
    poll "the supervisor to leave" 10 gone "$sup" && ok || fail "[$mode] the supervisor stayed with nothing to do"
  fi
}

umask 022
scenario supervisor
scenario shim
finish
