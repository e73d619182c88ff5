#!/usr/bin/env bash
# A full logs disk does not turn a success into a failure. The logs folder
# is a 1 MiB tmpfs; task t fills it through its own output and exits 0,
# while task late runs; dagd is then killed with -9, late ends on the full
# disk, and a new dagd re-adopts it. Both tries are recorded successes
# with their true exit code (0), at their first try, nothing "lost".
#
#  - supervisor (the default configuration): the end of a try goes to the
#    try supervisor's journal, which lives beside the state file, not on
#    the logs disk: no <try>.pid or <try>.exit is written, and the new
#    dagd gets late's end (kept in the journal) through the supervisor.
#  - supervisor, masked (a DAGD_SECRET_* value set, so every try's output
#    comes through the supervisor's masking pipe): the supervisor itself
#    writes the log and meets the full disk; the same holds.
#  - shim (DAGD_TRY_CGROUPS=false): t's exit record cannot be written, so
#    its shim records the end in the try's pid record instead (its block
#    is already allocated) and says why in dagd's log; late's shim does
#    the same while no dagd runs, and the new dagd says it took the end
#    from there.
# Needs root to mount the tmpfs; elsewhere the test says so and passes.
# The supervisor scenarios need a writable cgroup v2; elsewhere they say
# so and are skipped.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
rc=0 out=
pid= D= mode=
# Whether the supervisor's journal has the end, exit code $2, of try base $1.
journaled_end() {
  local seq
  seq=$(awk -F'\t' -v b="$1" '$1 == "S" && $5 == b { print $2 }' "$D/dagd.db.supervisor" 2>/dev/null | tail -1)
  [ -n "$seq" ] && awk -F'\t' -v s="$seq" -v c="$2" '$1 == "E" && $2 == s && $3 == "exit" && $4 == c { f = 1 } END { exit !f }' \
    "$D/dagd.db.supervisor"
}

mkdir -p "$WORK/probe"
if ! mount -t tmpfs -o size=1m,mode=0700 tmpfs "$WORK/probe" 2>/dev/null; then
  echo "cannot mount a tmpfs here (not root?): the full-disk test does not apply"
  exit 0
fi
umount "$WORK/probe"
# cleanup: dagd; every try let end (its marks), the tries of the shim
# scenario also killed by the pids their shims recorded; a supervisor
# leaves once its tries are over (else it is killed); then the tmpfs.
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  local d f task deadline
  for d in "$WORK"/*/; do
    d=${d%/}
    [ -d "$d/dags" ] || continue
    touch "$d/late-runs" "$d/go"
    for f in "$d"/logs/fill/r1/*/1.pid; do
      [ -s "$f" ] && ! grep -q '^exit\|^signal\|^vanished' "$f" || continue
      task=$(sed -n 's/^task //p' "$f")
      [ -n "$task" ] && kill -9 -- "-$task" 2>/dev/null
    done
    sup_reap "$d"
  done
  wait 2>/dev/null
  for d in "$WORK"/*/logs; do
    deadline=$((SECONDS + 5))
    while mountpoint -q "$d" && ! umount "$d" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  done
  rm -rf "$WORK"
}
trap cleanup EXIT

start() { # LOG
  if [ "$mode" = shim ]; then
    DAGD_TRY_CGROUPS=false "$DAGD" --listen 127.0.0.1:0 --dags-folder "$D/dags" --state "$D/dagd.db" \
      --logs-folder "$D/logs" >"$1" 2>&1 &
  elif [ "$mode" = masked ]; then
    DAGD_SECRET_FILL=e2e-full-disk-secret "$DAGD" --listen 127.0.0.1:0 --dags-folder "$D/dags" --state "$D/dagd.db" \
      --logs-folder "$D/logs" >"$1" 2>&1 &
  else
    "$DAGD" --listen 127.0.0.1:0 --dags-folder "$D/dags" --state "$D/dagd.db" \
      --logs-folder "$D/logs" >"$1" 2>&1 &
  fi
  pid=$!
  poll "dagd to listen" 10 grep -q "listening on" "$1" || { cat "$1"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$1" | tail -1)"
}

setup() { # supervisor | masked | shim: the scenario's folder, its logs disk, its DAG
  mode=$1 D="$WORK/$1"
  mkdir -p "$D/logs" "$D/dags"
  mount -t tmpfs -o size=1m,mode=0700 tmpfs "$D/logs" || { echo "cannot mount the logs tmpfs"; exit 1; }
  cat >"$D/dags/fill.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "fill" }
-- Fills the logs disk through its own output, then succeeds.
-- (once "late" runs, so that late's try files exist before the disk fills).
d:shell { id = "t", cmd = "o=\$(readlink /proc/\$\$/fd/1); echo \$o > $D/t.stdout; while [ ! -e $D/late-runs ]; do sleep 0.05; done; head -c 4000000 /dev/zero; exit 0" }
-- Succeeds on the full disk once the test lets it end: dagd is killed -9
-- meanwhile.
d:shell { id = "late", cmd = "touch $D/late-runs; while [ ! -e $D/go ]; do sleep 0.05; done; exit 0" }
LUA
}

# -- the try supervisor (the default), its log written by the task or,
# masked, by the supervisor --
supervised() { # supervisor | masked
  setup "$1"
  local sup
  start "$D/dagd.log"
  sup=$(sup_pid "$D")
  if [ -z "$sup" ] && grep -q "each try starts under a shim" "$D/dagd.log"; then
    echo "no writable cgroup v2 here: tries run under shims, the $mode scenario does not apply"
    kill -TERM "$pid"
    wait "$pid" 2>/dev/null
    pid=
    return
  fi
  out=$(cat "$D/dagd.log")
  [ -n "$sup" ] && ok || fail "[$mode] the try supervisor runs beside dagd"
  [ -e "$D/dagd.db.supervisor" ] && [ "$(stat -c %d "$D/dagd.db.supervisor")" != "$(stat -c %d "$D/logs")" ] && ok ||
    fail "[$mode] the supervisor's journal is not on the logs disk"

  run "$DAGCTL" trigger fill --run-id r1
  expect_rc 0 "[$mode] trigger fill"
  poll "the late task to start" 30 state_is fill r1 late running || fail "[$mode] the late task did not start"
  poll "t to end" 30 state_is fill r1 t success ||
    fail "[$mode] the task that exited 0 on a full disk: $(ti_field fill r1 t state), want success"
  [ "$(ti_field fill r1 t exit_code)" = 0 ] && ok || fail "[$mode] t's exit code is $(ti_field fill r1 t exit_code), want 0"
  [ "$(ti_field fill r1 t try_number)" = 1 ] && ok || fail "[$mode] t ran again"
  df -k "$D/logs" | tail -1 | awk '{ exit !($4 == 0) }' && ok || fail "[$mode] the logs disk is full ($(df -k "$D/logs" | tail -1))"
  [ "$(stat -c %s "$D/logs/fill/r1/t/1.log")" -gt 900000 ] && ok ||
    fail "[$mode] t's own output filled the disk (its log has $(stat -c %s "$D/logs/fill/r1/t/1.log") bytes)"
  if [ "$mode" = masked ]; then
    grep -q '^pipe:' "$D/t.stdout" && ok || fail "[$mode] t's output goes through the supervisor's pipe, not $(cat "$D/t.stdout")"
  else
    [ "$(cat "$D/t.stdout")" = "$D/logs/fill/r1/t/1.log" ] && ok || fail "[$mode] t writes its log itself, not $(cat "$D/t.stdout")"
  fi
  for f in t/1.pid t/1.exit late/1.pid; do
    [ ! -e "$D/logs/fill/r1/$f" ] && ok || fail "[$mode] a supervised try has no $f"
  done
  out=$(cat "$D/dagd.log")
  expect_no_out "lost" "[$mode] nothing is called lost"

  # Kill dagd while "late" runs; let it end on the full disk: its end is
  # in the journal; a new dagd re-adopts it and records it.
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  pid=
  [ "$(sup_pid "$D")" = "$sup" ] && ok || fail "[$mode] the supervisor outlives dagd while late runs"
  touch "$D/go"
  poll "late's end in the journal" 30 journaled_end "$D/logs/fill/r1/late/1" 0 && ok ||
    fail "[$mode] the supervisor journaled late's end: $(cat "$D/dagd.db.supervisor")"
  start "$D/dagd2.log"
  poll "late to be re-adopted and end" 30 state_is fill r1 late success ||
    fail "[$mode] a try that ended on a full disk while dagd was down: $(ti_field fill r1 late state), want success"
  [ "$(ti_field fill r1 late exit_code)" = 0 ] && ok || fail "[$mode] late's exit code is $(ti_field fill r1 late exit_code), want 0"
  [ "$(ti_field fill r1 late try_number)" = 1 ] && ok || fail "[$mode] late ran again"
  [ ! -e "$D/logs/fill/r1/late/1.exit" ] && ok || fail "[$mode] a supervised try has no late/1.exit"
  run "$DAGCTL" -o json runs fill
  expect_out '"success"' "[$mode] the run succeeds"
  out=$(cat "$D/dagd2.log")
  expect_out "re-adopting fill/r1/late try 1" "[$mode] the new dagd re-adopts late"
  expect_no_out "lost" "[$mode] nothing is called lost after the restart"

  sup=$(sup_pid "$D")
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null
  pid=
  [ -n "$sup" ] && { poll "the supervisor to leave" 10 gone "$sup" && ok || fail "[$mode] the supervisor stayed with nothing to do"; }
}

# -- a shim per try (the fallback) --
shimmed() {
  setup shim
  start "$D/dagd.log"

  run "$DAGCTL" trigger fill --run-id r1
  expect_rc 0 "[shim] trigger fill"
  poll "the late task to start" 30 state_is fill r1 late running || fail "[shim] the late task did not start"
  poll "t to end" 30 state_is fill r1 t success || fail "[shim] the task that exited 0 on a full disk: $(ti_field fill r1 t state), want success"
  df -k "$D/logs" | tail -1 | awk '{ exit !($4 == 0) }' && ok || fail "[shim] the logs disk is full ($(df -k "$D/logs" | tail -1))"
  [ ! -e "$D/logs/fill/r1/t/1.exit" ] && ok || fail "[shim] the exit record could be written after all: the test proves nothing"
  out=$(cat "$D/dagd.log")
  expect_out "cannot write the exit record" "[shim] dagd's log says the exit record could not be written"
  expect_out "No space left on device" "[shim] dagd's log says why"
  expect_no_out "lost" "[shim] nothing is called lost"

  # Kill dagd while "late" runs; let it end on the full disk; a new dagd
  # re-adopts it and finds its end in the pid record.
  kill -9 "$pid"
  wait "$pid" 2>/dev/null
  pid=
  touch "$D/go"
  poll "late's shim to end" 30 grep -q '^exit 0' "$D/logs/fill/r1/late/1.pid" ||
    fail "[shim] late's shim recorded its end in the pid record: $(cat "$D/logs/fill/r1/late/1.pid")"
  start "$D/dagd2.log"
  poll "late to be re-adopted and end" 30 state_is fill r1 late success ||
    fail "[shim] a try that ended on a full disk while dagd was down: $(ti_field fill r1 late state), want success"
  run "$DAGCTL" -o json runs fill
  expect_out '"success"' "[shim] the run succeeds"
  out=$(cat "$D/dagd2.log")
  expect_out "the try's end was taken from" "[shim] the new dagd says where it found the end"
  kill -TERM "$pid"
  wait "$pid" 2>/dev/null
  pid=
}

supervised supervisor
supervised masked
shimmed
finish
