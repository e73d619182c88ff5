#!/usr/bin/env bash
# The http, branch, short_circuit, lua and sensor operators end to end in a
# real dagd with one worker slot, against a scripted HTTP peer on loopback:
# response fields reach a downstream argv, 503s are retried, a branch skips
# the other path while the join runs, a false short_circuit skips all that
# follows, a lua function's table becomes outputs, a rescheduled sensor
# frees the only slot for another task, a sensor on another DAG's task
# waits for it, a soft-failing sensor is skipped.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags"
cp "$DATA/operators/ops.lua" "$WORK/dags/"
python3 "$DATA/operators/server.py" "$WORK/port" "$WORK/requests.log" &
srv=$!
export OPS_LOGS="$WORK/logs"
"$DAGD" --listen 127.0.0.1:0 --parallelism 1 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
  --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid $srv 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log" && [ -s "$WORK/port" ]; do
  [ $SECONDS -lt $deadline ] || { echo "dagd or the HTTP peer did not start"; cat "$WORK/dagd.log"; exit 1; }
  sleep 0.02
done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
BASE="http://127.0.0.1:$(cat "$WORK/port")"

# states DAG RUN: "task=state" lines, sorted.
states() {
  "$DAGCTL" -o json tasks "$1" "$2" | python3 -c '
import json, sys
for t in sorted(json.load(sys.stdin)["task_instances"], key=lambda t: t["task_id"]):
    print("%s=%s" % (t["task_id"], t["state"]))'
}

# --- http: outputs into a downstream argv, header names only in the log
run "$DAGCTL" trigger http_chain --run-id h1 --conf "{\"base\": \"$BASE\", \"token\": \"s3cret-token\"}" --wait
expect_rc 0 "the http chain succeeds"
[ "$(cat "$WORK/dags/used.txt" 2>/dev/null)" = "0.87 fraud" ] && ok || fail "response fields reached the argv: $(cat "$WORK/dags/used.txt" 2>&1)"
out=$(cat "$WORK/logs/http_chain/h1/call/1.log")
expect_out "http: POST $BASE/score (headers: Authorization)" "method, URL and header names logged"
expect_out "-> 200" "status logged"
expect_no_out "s3cret-token" "the header value is not logged"
out=$(head -1 "$WORK/requests.log")
python3 - "$out" <<'PY' && ok || fail "the request carried the rendered JSON body and the header"
import json, sys
r = json.loads(sys.argv[1])
assert r["method"] == "POST" and r["path"] == "/score", r
assert r["headers"]["Authorization"] == "Bearer s3cret-token", r["headers"]
assert r["headers"]["Content-Type"] == "application/json", r["headers"]
body = json.loads(r["body"])
assert body["model"] == "fraud" and body["rows"] == 3 and len(body["ds"]) == 10, body
PY

# --- http: retried on 503
run "$DAGCTL" trigger http_retry --run-id r1 --conf "{\"base\": \"$BASE\"}" --wait
expect_rc 0 "the flaky endpoint succeeds after retries"
[ "$(grep -c '"/flaky"' "$WORK/requests.log")" = 3 ] && ok || fail "three requests to /flaky"
out=$(cat "$WORK/logs/http_retry/r1/flaky/1.log")
expect_out "-> 503" "the 503 is logged"
expect_out "retry 2 of 3" "the second retry is logged"
run "$DAGCTL" -o json tasks http_retry r1
expect_out '"ok":"true"' "the output from the final answer"

# --- branch: path_b skipped, join runs
run "$DAGCTL" trigger branching --run-id b1 --wait
expect_rc 0 "the branching run succeeds"
run states branching b1
expect_out "choose=success" "branch succeeded"
expect_out "path_a=success" "the chosen path ran"
expect_out "path_b=skipped" "the other path was skipped"
expect_out "join=success" "the join ran (none_failed_min_one_success)"
run "$DAGCTL" trigger branching --run-id b2 --conf '{"path": "path_b"}' --wait
run states branching b2
expect_out "path_a=skipped" "conf chose the other path"
expect_out "path_b=success" "the path chosen from conf ran"

# --- short_circuit: false skips everything downstream
run "$DAGCTL" trigger shorty --run-id s1 --conf '{"go": false}' --wait
expect_rc 0 "a short-circuited run still succeeds"
run states shorty s1
expect_out "check=success" "short_circuit task succeeded"
expect_out "after=skipped" "direct downstream skipped"
expect_out "later=skipped" "indirect downstream skipped"
run "$DAGCTL" trigger shorty --run-id s2 --conf '{"go": true}' --wait
run states shorty s2
expect_out "later=success" "true lets everything run"

# --- lua: outputs from a table
run "$DAGCTL" trigger luaop --run-id l1 --wait
expect_rc 0 "the lua run succeeds"
[ "$(cat "$WORK/dags/rows.txt" 2>/dev/null)" = '42 ["a","b"]' ] && ok || fail "lua outputs reached the argv: $(cat "$WORK/dags/rows.txt" 2>&1)"

# --- sensor in reschedule mode frees the only worker slot
run "$DAGCTL" trigger waiting --run-id w1
expect_rc 0 "trigger the sensor run"
deadline=$((SECONDS + 20))
until states waiting w1 2>/dev/null | grep -qx "other=success"; do
  if states waiting w1 2>/dev/null | grep -qx "other=failed" || [ $SECONDS -ge $deadline ]; then break; fi
  sleep 0.05
done
run states waiting w1
expect_out "other=success" "another task ran to the end on the single slot while the sensor waited"
expect_no_out "wait_file=success" "the sensor has not succeeded before its file exists"
touch "$WORK/dags/flag.txt"
deadline=$((SECONDS + 20))
until states waiting w1 2>/dev/null | grep -qx "wait_file=success" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
run states waiting w1
expect_out "wait_file=success" "the sensor succeeds once the file appears"
out=$(cat "$WORK/logs/waiting/w1/wait_file/1.log")
expect_out "flag.txt exists" "the last poke found the file"
[ ! -e "$WORK/logs/waiting/w1/wait_file/2.log" ] && ok || fail "the pokes used no extra try"

# --- sensor on another DAG's task: waits while it has not run, then sees it succeed
run "$DAGCTL" trigger down --run-id d1
expect_rc 0 "trigger the run that watches another DAG"
deadline=$((SECONDS + 20))
until grep -q "sensor: up.t is not started" "$WORK/logs/down/d1/watch/1.log" 2>/dev/null || [ $SECONDS -ge $deadline ]; do
  sleep 0.05
done
out=$(cat "$WORK/logs/down/d1/watch/1.log" 2>&1)
expect_out "sensor: up.t is not started (waiting for success)" "the sensor waits while up has no run"
run "$DAGCTL" trigger up --run-id u1 --wait
expect_rc 0 "the watched DAG's run succeeds"
deadline=$((SECONDS + 20))
until states down d1 2>/dev/null | grep -qx "watch=success" || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
run states down d1
expect_out "watch=success" "the sensor succeeds once up.t has succeeded"
out=$(cat "$WORK/logs/down/d1/watch/1.log")
expect_out "sensor: up.t is success (waiting for success)" "the last poke read up.t's state"

# --- sensor with soft_fail times out and is skipped
run "$DAGCTL" trigger soft --run-id f1 --wait
run states soft f1
expect_out "never=skipped" "a soft-failing sensor is skipped on timeout"
expect_out "next=skipped" "and so is what follows it"
out=$(cat "$WORK/logs/soft/f1/never/1.log")
expect_out "timed out after" "the timeout is logged"

finish
