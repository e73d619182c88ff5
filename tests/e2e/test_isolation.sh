#!/usr/bin/env bash
# Isolation of ids, log folders and the state file (issue 14, items 2, 4
# and 11), against the real dagd and dagctl:
# - ids made only of dots are refused everywhere they enter: a DAG file
#   declaring DAG or task id "..", a trigger with run id ".." (dagctl and
#   the raw API), ".." and "%2E%2E" as path segments;
# - `dagctl db prune` removes nothing outside the logs folder, even for
#   runs recorded with such ids by an older dagd, or a run folder replaced
#   by a symbolic link;
# - a second dagd on the same state is refused, naming the first one's
#   pid, while offline dagctl readers still work; after kill -9 of the
#   first, a new one starts (a stale lock never blocks);
# - a state file with page 2 zeroed is refused at start, naming the file
#   and `dagctl db check`.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

pids=()
trap 'for p in "${pids[@]}"; do kill -9 "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

STATE="$WORK/state/dagd.db"
LOGS="$WORK/logs"
export DAGD_STATE="$STATE" DAGD_LOGS_FOLDER="$LOGS" DAGD_DAGS_FOLDER="$WORK/dags"
starts=0
start_dagd() { # sets pid, log, DAGD_URL
  starts=$((starts + 1))
  log="$WORK/dagd.$starts.log"
  : >"$log"
  "$DAGD" --listen 127.0.0.1:0 >"$log" 2>&1 &
  pid=$!
  pids+=("$pid")
  local deadline=$((SECONDS + 20))
  until grep -q "listening on" "$log"; do
    [ $SECONDS -lt $deadline ] && kill -0 $pid 2>/dev/null || { echo "dagd did not start"; tail -5 "$log"; exit 1; }
    sleep 0.02
  done
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)"
}
# A dagd that must refuse to start. The timeout only stops a dagd that
# wrongly starts (it would serve forever); a refusal is immediate.
refused_dagd() { run timeout 30 "$DAGD" --listen 127.0.0.1:0; }
db() { /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$STATE" "$1"; }
sql() { /usr/bin/python3 -c 'import sqlite3,sys; c=sqlite3.connect(sys.argv[1]); c.executescript(sys.argv[2]); c.commit()' "$STATE" "$1"; }
status() { # METHOD PATH [BODY]: prints the HTTP status; the body goes to $WORK/body
  curl -s --path-as-is -o "$WORK/body" -w '%{http_code}' -X "$1" ${3:+--data-binary "$3"} \
    -H 'Content-Type: application/json' "$DAGD_URL$2"
}

mkdir -p "$WORK/dags"
cat >"$WORK/dags/d.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "d" }
d:shell { id = "t", cmd = "echo hello" }
LUA
cat >"$WORK/dags/p.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "p" }
d:shell { id = "t", cmd = "echo hello" }
LUA
cat >"$WORK/dags/dotdag.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = ".." }
d:shell { id = "t", cmd = "echo escaped" }
LUA
cat >"$WORK/dags/dottask.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "dottask" }
d:shell { id = ".", cmd = "echo escaped" }
LUA

# --- Item 2: ids made only of dots ---
run "$DAGCTL" validate "$WORK/dags/dotdag.lua"
expect_rc 1 "validate a DAG with id .."
expect_out 'dotdag.lua:2: DAG: invalid id "..": must not be made only of dots' "the DAG id error has file:line"
run "$DAGCTL" validate "$WORK/dags/dottask.lua"
expect_rc 1 "validate a task with id ."
expect_out 'dottask.lua:3: ' "the task id error has file:line"
expect_out 'invalid id ".": must not be made only of dots' "the task id error says why"

start_dagd
run "$DAGCTL" -o json dags
python3 - "$out" <<'PY' && ok || fail "only d and p are served; the dot ids are import errors"
import json, sys
doc = json.loads(sys.argv[1])
ids = [d["dag_id"] for d in doc["dags"]]
assert ids == ["d", "p"], ids
msgs = " | ".join(e["message"] for e in doc["import_errors"])
assert msgs.count("must not be made only of dots") == 2, msgs
PY
for id in . .. ...; do
  run "$DAGCTL" trigger d --run-id "$id"
  expect_rc 2 "dagctl trigger --run-id $id"
  expect_out "dagctl trigger: invalid run id \"$id\": must not be made only of dots" "dagctl says why ($id)"
  s=$(status POST /api/v1/dags/d/dagRuns "{\"dag_run_id\": \"$id\"}")
  [ "$s" = 400 ] && ok || fail "POST dag_run_id $id: status $s, want 400"
  grep -qF "dag_run_id must not be made only of dots" "$WORK/body" && ok || fail "the API says why ($id): $(cat "$WORK/body")"
done
[ "$(db "select count(*) from dag_run")" = 0 ] && ok || fail "a refused trigger wrote a run"
# As path segments, raw or percent-encoded, for each id kind.
for p in /api/v1/dags/../dagRuns /api/v1/dags/d/dagRuns/.. /api/v1/dags/d/dagRuns/%2E%2E/taskInstances \
  /api/v1/dags/d/dagRuns/r/taskInstances/%2e/logs/1 /api/v1/dags/%2E; do
  s=$(status GET "$p")
  [ "$s" = 400 ] && ok || fail "GET $p: status $s, want 400 ($(cat "$WORK/body"))"
  grep -qF "must not be made only of dots" "$WORK/body" && ok || fail "GET $p says why: $(cat "$WORK/body")"
done
run "$DAGCTL" logs d .. t
expect_rc 2 "dagctl logs with run id .."
expect_out 'invalid run id "..": must not be made only of dots' "dagctl logs says why"
run "$DAGCTL" tasks .. r
expect_rc 2 "dagctl tasks with DAG id .."
expect_out 'invalid DAG id ".."' "dagctl tasks says why"
run "$DAGCTL" clear d r --task ..
expect_rc 2 "dagctl clear --task .."
expect_out 'invalid task id ".."' "dagctl clear says why"

# Prune removes nothing outside logs_folder: runs recorded with dot ids
# (as an older dagd accepted them) and a run folder that became a link.
# DAG p has only these runs.
for r in r1 r2 r3 r4 r5; do "$DAGCTL" trigger p --run-id "$r" --wait >/dev/null 2>&1; done
[ "$(db "select count(*) from dag_run where dag_id = 'p' and state = 'success'")" = 5 ] && ok || fail "five runs succeeded"
mkdir -p "$WORK/outside" "$WORK/r3" "$LOGS/p/keep"
echo precious >"$WORK/outside/precious"
echo precious >"$WORK/r3/precious"
echo precious >"$LOGS/sentinel"
echo precious >"$LOGS/p/keep/f"
rm -rf "$LOGS/p/r4"
ln -s "$WORK/outside" "$LOGS/p/r4"
sql "update dag_run set run_id = '..' where dag_id = 'p' and run_id = 'r1';
     update dag_run set run_id = '.' where dag_id = 'p' and run_id = 'r2';
     update dag_run set dag_id = '..' where dag_id = 'p' and run_id = 'r3';
     update dag_run set end_date = end_date - 7200 where dag_id in ('p', '..');"
# While dagd runs: the daemon's lock does not stop offline commands.
run "$DAGCTL" db prune --older-than 1h --dry-run
expect_rc 0 "a dry prune"
expect_out "dry run: 5 finished runs" "a dry prune counts the runs"
expect_out 'run "." of DAG "p" has an invalid id: its log folder would be kept' "a dry prune names the dot run"
run "$DAGCTL" db prune --older-than 1h
expect_rc 1 "prune reports the folder it must not remove"
expect_out "5 finished runs older than 1h pruned" "prune deleted the five runs"
expect_out "$LOGS/p/r4: not removed: it is a symbolic link" "prune names the link it refused"
expect_out 'run ".." of DAG "p" has an invalid id: its log folder is kept' "prune names the run with id .."
expect_out 'run "r3" of DAG ".." has an invalid id: its log folder is kept' "prune names the run of DAG .."
[ "$(db "select count(*) from dag_run where dag_id in ('p', '..')")" = 0 ] && ok || fail "runs remain after prune"
for f in "$WORK/outside/precious" "$WORK/r3/precious" "$LOGS/sentinel" "$LOGS/p/keep/f" "$STATE"; do
  [ -e "$f" ] && ok || fail "prune removed $f"
done
[ ! -e "$LOGS/p/r5" ] && ok || fail "prune kept the folder of r5"
[ -L "$LOGS/p/r4" ] && ok || fail "the refused link is left in place"

# --- Item 4: one daemon per state file ---
first=$pid
refused_dagd
expect_rc 1 "a second dagd on the same state"
expect_out "$STATE is in use by another dagd (pid $first holds $STATE.lock)" "the refusal names the holder's pid"
[ "$(tr -d '\n' <"$STATE.lock")" = "$first" ] && ok || fail "the lock file names the first dagd"
run "$DAGCTL" runs d
expect_rc 0 "the first dagd still answers"
run "$DAGCTL" db check
expect_rc 0 "db check while dagd runs"
expect_out ": ok" "db check says ok while dagd runs"
run "$DAGCTL" trigger d --run-id after --wait
expect_rc 0 "the first dagd still runs tasks"
kill -9 $first
wait $first 2>/dev/null
start_dagd
[ "$(tr -d '\n' <"$STATE.lock")" = "$pid" ] && ok || fail "the new dagd holds the lock"
run "$DAGCTL" runs d
expect_out "after" "the new dagd serves the old state"
kill -TERM $pid
wait $pid 2>/dev/null

# --- Item 11: a damaged state file is refused, not served as empty ---
[ ! -e "$STATE-wal" ] || [ ! -s "$STATE-wal" ] && ok || fail "a clean stop leaves no WAL"
size=$(stat -c %s "$STATE")
[ "$size" -gt 8192 ] && ok || fail "the state file has more than two pages ($size bytes)"
dd if=/dev/zero of="$STATE" bs=4096 seek=1 count=1 conv=notrunc 2>/dev/null
sum=$(sha256sum <"$STATE")
refused_dagd
expect_rc 1 "dagd refuses a state with page 2 zeroed"
expect_out "$STATE: the state file is damaged" "the refusal names the file"
expect_out "dagctl db check" "the refusal points at dagctl db check"
expect_no_out "listening on" "the API never came up"
[ "$(sha256sum <"$STATE")" = "$sum" ] && ok || fail "the refused start changed the state file"
run "$DAGCTL" db check
expect_rc 1 "db check reports the damage"

finish
