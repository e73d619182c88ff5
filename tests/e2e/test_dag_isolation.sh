#!/usr/bin/env bash
# A DAG file can neither freeze the daemon nor publish its secrets
# (issue 14, items 3 and 7). Hostile files in the DAG folder (a pattern
# match that keeps C busy, a FIFO named x.lua, two symbolic link loops, a
# legal file that runs until the test lets it finish) are parsed while
# /health keeps answering; each bad entry gets an import error naming it,
# the other DAGs load, and SIGTERM stops dagd even in the middle of a
# parse, at start as at a reload. A token value in an import error and in
# a DAG description is served as "***".
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

TOKEN='e2e-isolation-token-5521'
LIMIT=10 # parse_timeout, seconds: /health must answer well before it
mkdir -p "$WORK/dags"
cat >"$WORK/dags/good.lua" <<LUA
local dagd = require "dagd"
dagd.dag { id = "good", description = "talks to the API with $TOKEN" }
LUA
cat >"$WORK/dags/leak.lua" <<LUA
local dagd = require "dagd"
error("cannot use token $TOKEN here; env says " .. tostring(os.getenv("DAGD_API_TOKEN")))
LUA
pid=
cleanup() {
  [ -n "$pid" ] && kill -KILL "$pid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

start() {
  : >"$WORK/dagd.log"
  DAGD_API_TOKEN="$TOKEN" DAGD_PARSE_TIMEOUT="${LIMIT}s" "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" \
    --state "$WORK/dagd.db" --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
  pid=$!
}
# wait_log SECS TEXT: polls the log until it holds TEXT; 1 when SECS pass.
wait_log() {
  local deadline=$((SECONDS + $1))
  until grep -qF -- "$2" "$WORK/dagd.log"; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
url() { echo "http://127.0.0.1:$(sed -n 's/.*listening on .*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"; }
# health_within SECS: /health answered 200 before SECS passed.
health_within() {
  local deadline=$((SECONDS + $1))
  until [ "$(curl -s -o /dev/null -w '%{http_code}' -m 1 "$(url)/health")" = 200 ]; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.05
  done
}
# stops_within SECS: SIGTERM ends dagd before SECS passed.
stops_within() {
  kill -TERM "$pid"
  local deadline=$((SECONDS + $1))
  while kill -0 "$pid" 2>/dev/null; do
    [ $SECONDS -lt "$deadline" ] || return 1
    sleep 0.05
  done
  wait "$pid" 2>/dev/null
  pid=
}

# 1. Secrets: the import error and the description are masked.
start
run wait_log 10 "2 files, 1 DAGs, 1 errors"
expect_rc 0 "first load"
out=$(curl -s -m 5 -H "Authorization: Bearer $TOKEN" "$(url)/api/v1/dags"; echo; cat "$WORK/dagd.log")
expect_no_out "$TOKEN" "the token value is served or logged"
expect_out 'leak.lua' "the import error names the file"
expect_out 'cannot use token *** here; env says nil' "the import error is masked and os.getenv sees no DAGD_API_TOKEN"
expect_out 'talks to the API with ***' "the description is masked"

# 2. Hostile files at a reload: /health answers while they parse.
cat >"$WORK/dags/regex.lua" <<'LUA'
local dagd = require "dagd"
string.find(("a"):rep(3000), ".-.-.-.-b")
dagd.dag { id = "never" }
LUA
cat >"$WORK/dags/slow.lua" <<'LUA'
local dagd = require "dagd"
-- Legal, and slow until the test creates go.flag.
local big = ("a"):rep(1 << 20)
repeat local f = io.open("go.flag"); string.find(big, "b", 1, true) until f
dagd.dag { id = "slow" }
LUA
mkfifo "$WORK/dags/x.lua"
ln -s . "$WORK/dags/a"
ln -s . "$WORK/dags/b"
kill -HUP "$pid"
run wait_log 10 "SIGHUP: reloading"
expect_rc 0 "SIGHUP seen"
run health_within $((LIMIT / 2))
expect_rc 0 "/health answers while a file keeps the parser busy"
out=$(cat "$WORK/dagd.log")
expect_no_out "4 files, " "the reload is still parsing when /health answers"
touch "$WORK/dags/go.flag"
run wait_log $((LIMIT * 3)) "4 files, 2 DAGs, 5 errors"
out=$(cat "$WORK/dagd.log"; curl -s -m 5 -H "Authorization: Bearer $TOKEN" "$(url)/api/v1/dags")
expect_rc 0 "the reload ends with the good DAGs and one error per bad entry"
expect_out "regex.lua:0: time limit (${LIMIT}s) exceeded" "the busy file gets a time-limit error"
expect_out "x.lua:0: a FIFO, not a regular file: not loaded" "the FIFO is refused by name"
expect_out "/a:0: symbolic link to a folder: not followed" "link loop a"
expect_out "/b:0: symbolic link to a folder: not followed" "link loop b"
expect_out '"dag_id":"slow"' "the slow legal file loads"
expect_out '"dag_id":"good"' "the good DAG stays"
expect_no_out "$TOKEN" "still nothing served or logged holds the token"

# 3. The same folder at start: the API comes up and SIGTERM stops dagd
# in the middle of the busy file's parse.
rm -f "$WORK/dags/go.flag"
run stops_within 10
expect_rc 0 "SIGTERM stops dagd"
start
run wait_log $((LIMIT / 2)) "listening on"
expect_rc 0 "the API comes up while the busy file parses"
run health_within $((LIMIT / 2))
expect_rc 0 "/health answers during the first load"
out=$(cat "$WORK/dagd.log")
expect_no_out "regex.lua:0: time limit" "the first load is still parsing"
run stops_within $((LIMIT / 2))
expect_rc 0 "SIGTERM stops dagd during a parse"
gone() { ! pgrep -f "$DAGD parse" >/dev/null; }
deadline=$((SECONDS + 5))
until gone || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
out=$(pgrep -af "$DAGD parse" || true)
gone && ok || fail "no parser process outlives dagd"
finish
