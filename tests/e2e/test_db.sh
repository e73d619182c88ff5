#!/usr/bin/env bash
# dagctl db check / backup / prune against the state file of a running
# dagd: an online backup holds the runs and checks clean; pruning removes
# old finished runs with their task instances and log folders; a corrupted
# state file is reported by db check and refused by dagd at start.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags"
cat >"$WORK/dags/d.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "d" }
d:shell { id = "t", cmd = "echo hello" }
LUA
export DAGD_STATE="$WORK/state/dagd.db" DAGD_LOGS_FOLDER="$WORK/logs" DAGD_DAGS_FOLDER="$WORK/dags"
"$DAGD" --listen 127.0.0.1:0 >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
for i in 1 2 3; do "$DAGCTL" trigger d --run-id "r$i" --wait >/dev/null 2>&1; done
db() { /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$1" "$2"; }

run "$DAGCTL" db check
expect_rc 0 "db check on a healthy file"
expect_out ": ok" "db check says ok"

# An online backup while dagd runs.
run "$DAGCTL" db backup "$WORK/backup.db"
expect_rc 0 "db backup"
expect_out "integrity: ok" "the copy checks"
[ "$(db "$WORK/backup.db" "select count(*) from dag_run")" = 3 ] && ok || fail "the backup holds the runs"
[ "$(stat -c %a "$WORK/backup.db")" = 600 ] && ok || fail "the backup is 0600"
run "$DAGCTL" db backup "$WORK/backup.db"
expect_rc 1 "db backup refuses to overwrite"
expect_out "already exists" "db backup says why"

# Prune: a dry run changes nothing; then runs, task instances and logs go.
run "$DAGCTL" db prune --older-than 1w
expect_out "0 finished runs" "nothing that old"
/usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.execute("update dag_run set end_date = end_date - 7200"); c.commit()' "$DAGD_STATE"
run "$DAGCTL" db prune --older-than 1h --dry-run
expect_out "dry run: 3 finished runs" "dry run counts"
[ "$(db "$DAGD_STATE" "select count(*) from dag_run")" = 3 ] && ok || fail "dry run deleted"
run "$DAGCTL" db prune --older-than 1h
expect_rc 0 "db prune"
expect_out "3 finished runs older than 1h pruned, 3 log folders removed" "prune counts"
[ "$(db "$DAGD_STATE" "select count(*) from dag_run")" = 0 ] && ok || fail "runs remain"
[ "$(db "$DAGD_STATE" "select count(*) from task_instance")" = 0 ] && ok || fail "task instances remain"
[ ! -e "$WORK/logs/d/r1" ] && ok || fail "log folder remains"
run "$DAGCTL" db prune --older-than soon
expect_rc 2 "prune with a bad duration"
run "$DAGCTL" runs d
expect_rc 0 "dagd still answers after pruning"
kill -TERM $pid
wait $pid 2>/dev/null

# A corrupted state file: db check reports it, dagd refuses to start.
dd if=/dev/urandom of="$DAGD_STATE" bs=1024 count=4 seek=1 conv=notrunc 2>/dev/null
rm -f "$DAGD_STATE-wal" "$DAGD_STATE-shm"
run "$DAGCTL" db check
expect_rc 1 "db check on a corrupted file"
run "$DAGD" --listen 127.0.0.1:0 --once
run "$DAGD" --listen 127.0.0.1:0
expect_rc 1 "dagd refuses a corrupted state file"
expect_out "$DAGD_STATE" "the refusal names the file"
# A deleted state file: dagd starts anew (nothing to lose was promised).
rm -f "$DAGD_STATE"
run "$DAGCTL" db check
expect_rc 1 "db check on a missing file"

finish
