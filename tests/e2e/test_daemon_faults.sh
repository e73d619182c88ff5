#!/usr/bin/env bash
# The daemon under bad input and failing storage: a DAG file broken while
# dagd runs keeps its last good version scheduling and the error is
# reported; an unusable state file stops dagd at start with a clear
# message, a deleted one gives a new state and a warning; a full disk under the state file stops it instead of going on
# without recording.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

wait_for() { # FILE TEXT: poll with a 20 s deadline
  local deadline=$((SECONDS + 20))
  while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}
runs_of() {
  /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from dag_run").fetchone()[0])' "$1"
}

# 1. A DAG file broken at run time keeps its last good version.
mkdir -p "$WORK/dags"
cat >"$WORK/dags/tick.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "tick", schedule = "every 1s", start_date = "2026-01-01" }
d:shell { id = "t", cmd = "true" }
LUA
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/s1/dagd.db" --logs-folder "$WORK/l1" >"$WORK/d1.log" 2>&1 &
pid=$!
wait_for "$WORK/d1.log" "run scheduled__" && ok || { out=$(cat "$WORK/d1.log"); rc=1; fail "first run"; }
echo 'local dagd = require "dagd" this is not lua' >"$WORK/dags/tick.lua"
wait_for "$WORK/d1.log" "keeping the last good version of DAG tick" && ok || { out=$(cat "$WORK/d1.log"); rc=1; fail "last good version kept"; }
out=$(cat "$WORK/d1.log")
expect_out "$WORK/dags/tick.lua:1:" "the error names file:line"
before=$(runs_of "$WORK/s1/dagd.db")
deadline=$((SECONDS + 20))
while [ "$(runs_of "$WORK/s1/dagd.db")" -le "$before" ] && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
[ "$(runs_of "$WORK/s1/dagd.db")" -gt "$before" ] && ok || fail "the broken DAG stopped scheduling"
kill -TERM $pid
wait $pid && rc=0 || rc=$?
expect_rc 0 "clean stop"

# 2. A state file that cannot be opened: a clear message at start.
run "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state /proc/no/such/dagd.db --logs-folder "$WORK/l2"
expect_rc 1 "unusable state path"
expect_out "cannot" "unusable state path message"
head -c 8192 /dev/urandom >"$WORK/garbage.db"
run "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/garbage.db" --logs-folder "$WORK/l2"
expect_rc 1 "corrupt state file"
expect_out "garbage.db" "corrupt state file names the file"
expect_out "not a usable dagd state file" "corrupt state file message"

# 2b. A deleted state file (its -wal left behind if there is one): dagd starts
# on a new, empty state and says so.
rm -f "$WORK/s1/dagd.db"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/s1/dagd.db" --logs-folder "$WORK/l1" >"$WORK/d2.log" 2>&1 &
pid=$!
wait_for "$WORK/d2.log" "listening on" && ok || fail "dagd up on a deleted state file"
kill -TERM $pid
wait $pid && rc=0 || rc=$?
out=$(cat "$WORK/d2.log")
expect_rc 0 "clean stop on a new state"
expect_out "state file $WORK/s1/dagd.db was missing or empty: starting on a new, empty state" "new state logged"

# 3. The disk under the state file fills up while dagd runs.
if mkdir -p "$WORK/small" && mount -t tmpfs -o size=2m tmpfs "$WORK/small" 2>/dev/null; then
  trap 'umount "$WORK/small" 2>/dev/null; rm -rf "$WORK"' EXIT
  cat >"$WORK/dags/tick.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "tick", schedule = "every 1s", start_date = "2026-01-01", max_active_runs = 50 }
for i = 1, 20 do d:shell { id = "t" .. i, cmd = "true" } end
LUA
  "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/small/dagd.db" --logs-folder "$WORK/l3" >"$WORK/d3.log" 2>&1 &
  pid=$!
  wait_for "$WORK/d3.log" "run scheduled__" && ok || { out=$(cat "$WORK/d3.log"); rc=1; fail "runs before the disk fills"; }
  dd if=/dev/zero of="$WORK/small/fill" bs=64k 2>/dev/null || true
  deadline=$((SECONDS + 30))
  while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  if kill -0 $pid 2>/dev/null; then kill -9 $pid; rc=99; else wait $pid && rc=0 || rc=$?; fi
  out=$(cat "$WORK/d3.log")
  expect_rc 1 "dagd stops on a full disk"
  expect_out "the state store failed" "full disk message"
  # What was committed before is intact once there is room again.
  rm -f "$WORK/small/fill"
  run /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("pragma integrity_check").fetchone()[0])' "$WORK/small/dagd.db"
  expect_out "ok" "state file intact after the full disk"
else
  echo "skip: cannot mount a tmpfs here (not root?): full-disk case not run"
fi

finish
