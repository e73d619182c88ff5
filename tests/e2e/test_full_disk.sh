#!/usr/bin/env bash
# A full logs disk does not turn a success into a failure: the logs folder
# is a 1 MiB tmpfs, the task fills it and exits 0; its exit record cannot
# be written, so the shim records the end in the try's pid record instead
# (its block is already allocated), says why in dagd's log, and the try is
# recorded a success with its true exit code, not "lost". The same holds
# when dagd is killed with -9 meanwhile and a new dagd re-adopts the try.
# Needs root to mount the tmpfs; elsewhere the test says so and passes.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
rc=0
poll() { # DESC SECONDS CMD...: polls CMD with a deadline
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $desc"; return 1; }
    sleep 0.05
  done
}
ti_field() { # DAG RUN TASK FIELD
  "$DAGCTL" -o json tasks "$1" "$2" 2>/dev/null | $PY -c 'import json,sys
t=[x for x in json.load(sys.stdin)["task_instances"] if x["task_id"] == sys.argv[1]]
print(t[0].get(sys.argv[2]) if t else "")' "$3" "$4"
}
state_is() { [ "$(ti_field "$1" "$2" "$3" state)" = "$4" ]; }

mkdir -p "$WORK/logs" "$WORK/dags"
if ! mount -t tmpfs -o size=1m,mode=0700 tmpfs "$WORK/logs" 2>/dev/null; then
  echo "cannot mount a tmpfs here (not root?): the full-disk test does not apply"
  exit 0
fi
pid=
trap '[ -n "$pid" ] && kill -9 "$pid" 2>/dev/null; wait 2>/dev/null; umount "$WORK/logs" 2>/dev/null; rm -rf "$WORK"' EXIT

cat >"$WORK/dags/fill.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "fill" }
-- Fills the logs disk through its own output, then succeeds.
-- (once "late" runs, so that late's try files exist before the disk fills).
d:shell { id = "t", cmd = "while [ ! -e $WORK/late-runs ]; do sleep 0.05; done; head -c 4000000 /dev/zero; exit 0" }
-- Succeeds on the full disk once the test lets it end: dagd is killed -9
-- meanwhile.
d:shell { id = "late", cmd = "touch $WORK/late-runs; while [ ! -e $WORK/go ]; do sleep 0.05; done; exit 0" }
LUA
start() { # LOG
  "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
    --logs-folder "$WORK/logs" >"$1" 2>&1 &
  pid=$!
  poll "dagd to listen" 10 grep -q "listening on" "$1" || { cat "$1"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$1" | tail -1)"
}
start "$WORK/dagd.log"

run "$DAGCTL" trigger fill --run-id r1
expect_rc 0 "trigger fill"
poll "the late task to start" 30 state_is fill r1 late running || fail "the late task did not start"
poll "t to end" 30 state_is fill r1 t success || fail "the task that exited 0 on a full disk: $(ti_field fill r1 t state), want success"
df -k "$WORK/logs" | tail -1 | awk '{ exit !($4 == 0) }' && ok || fail "the logs disk is full ($(df -k "$WORK/logs" | tail -1))"
[ ! -e "$WORK/logs/fill/r1/t/1.exit" ] && ok || fail "the exit record could be written after all: the test proves nothing"
out=$(cat "$WORK/dagd.log")
expect_out "cannot write the exit record" "dagd's log says the exit record could not be written"
expect_out "No space left on device" "dagd's log says why"
expect_no_out "lost" "nothing is called lost"

# Kill dagd while "late" runs; let it end on the full disk; a new dagd
# re-adopts it and finds its end in the pid record.
kill -9 "$pid"
wait "$pid" 2>/dev/null
pid=
touch "$WORK/go"
poll "late's shim to end" 30 grep -q '^exit 0' "$WORK/logs/fill/r1/late/1.pid" ||
  fail "late's shim recorded its end in the pid record: $(cat "$WORK/logs/fill/r1/late/1.pid")"
start "$WORK/dagd2.log"
poll "late to be re-adopted and end" 30 state_is fill r1 late success ||
  fail "a try that ended on a full disk while dagd was down: $(ti_field fill r1 late state), want success"
run "$DAGCTL" -o json runs fill
expect_out '"success"' "the run succeeds"
out=$(cat "$WORK/dagd2.log")
expect_out "the try's end was taken from" "the new dagd says where it found the end"
finish
