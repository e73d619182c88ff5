#!/usr/bin/env bash
# The HTTP API and dagctl against a real dagd on a free loopback port:
# trigger with conf reaching a template and --wait, backfill over 7 daily
# intervals with max_active_runs=2 (never more than 2 at once, oldest
# first, --rerun-failed re-running only the failed one), clear with
# downstream, pause/unpause, logs -f, events, and bad requests answered
# with the right status and nothing written.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

starts=0
start_dagd() { # extra flags...; each start logs to its own file
  starts=$((starts + 1))
  log="$WORK/dagd.$starts.log"
  "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" "$@" \
    >"$log" 2>&1 &
  pid=$!
  local deadline=$((SECONDS + 10))
  until grep -q "listening on" "$log"; do
    [ $SECONDS -lt $deadline ] || { echo "dagd did not start"; tail -5 "$log"; exit 1; }
    sleep 0.02
  done
  port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
  export DAGD_URL="http://127.0.0.1:$port"
}
stop_dagd() { kill -TERM $pid; wait $pid 2>/dev/null; }
db() { /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$WORK/dagd.db" "$1"; }
curl_status() { # METHOD PATH BODY [extra curl args...]: prints the status; BODY @file reads a file
  local m=$1 p=$2 b=$3
  shift 3
  curl -s -o "$WORK/body" -w '%{http_code}' -X "$m" ${b:+--data-binary "$b"} "$@" -H 'Content-Type: application/json' \
    "$DAGD_URL$p"
}

mkdir -p "$WORK/dags"
cp "$DATA/api/api.lua" "$WORK/dags/"
cd "$WORK/dags"
start_dagd

# dagctl dags, and -o json printing the API body unchanged.
run "$DAGCTL" dags
expect_rc 0 "dags"
expect_out "confd" "dags lists confd"
run "$DAGCTL" -o json dags
python3 -c 'import json,sys; d=json.loads(sys.argv[1]); assert d["total_entries"]==6, d' "$out" && ok || fail "dags -o json"

# trigger --wait with conf reaching the template; the exit follows the run.
run "$DAGCTL" trigger confd --conf '{"x": "hello world"}' --run-id r1 --wait
expect_rc 0 "trigger --wait success"
expect_out "success, 2/2 tasks done" "progress line"
out=$(cat confd.out)
expect_out "x=hello world" "conf reached the template"
run "$DAGCTL" trigger confd --run-id r1
expect_rc 1 "trigger with an existing run id"
expect_out "409" "409 on an existing run id"
run "$DAGCTL" trigger fails --wait
expect_rc 1 "trigger --wait of a failing DAG exits 1"
run "$DAGCTL" tasks fails "$(db "select run_id from dag_run where dag_id='fails'")"
expect_out "failed" "tasks shows the failure"
expect_out " 4 " "tasks shows the exit code"

# Triggers in one second are as many runs: ids carry microseconds
# (manual__2026-12-02T14:18:50.123456+00:00); a burst of 40 at once gives 40
# runs and no 409, which only a client's own existing id gets.
run "$DAGCTL" trigger burst
expect_rc 0 "first of two triggers"
first=$(sed -n 's/^triggered burst //p' <<<"$out")
run "$DAGCTL" trigger burst
expect_rc 0 "second trigger in the same second"
second=$(sed -n 's/^triggered burst //p' <<<"$out")
[[ "$first" =~ ^manual__[0-9]{4}-[0-9]{2}-[0-9]{2}T[0-9]{2}:[0-9]{2}:[0-9]{2}\.[0-9]{6}\+00:00$ ]] && ok ||
  fail "manual run id shape: $first"
[ -n "$second" ] && [ "$first" != "$second" ] && ok || fail "two triggers, two ids: $first $second"
burst_pids=()
for i in $(seq 40); do
  "$DAGCTL" trigger burst >"$WORK/burst.$i" 2>&1 &
  burst_pids+=($!)
done
burst_failed=0
for bp in "${burst_pids[@]}"; do wait "$bp" || burst_failed=$((burst_failed + 1)); done
[ "$burst_failed" = 0 ] && ok || { out=$(cat "$WORK"/burst.*); fail "$burst_failed of 40 triggers in a burst failed"; }
[ "$(db "select count(*) from dag_run where dag_id='burst'")" = 42 ] && ok || fail "42 runs of burst"
[ "$(db "select count(distinct run_id) from dag_run where dag_id='burst' and run_id like 'manual\_\_%.%+00:00' escape '\\'")" = 42 ] &&
  ok || fail "42 distinct manual ids of burst"
run "$DAGCTL" trigger burst --run-id "$second"
expect_rc 1 "trigger with an existing generated id"
expect_out "409" "409 on a client's id that exists"

# clear with downstream: a and b run again (try 2).
run "$DAGCTL" clear confd r1 --task a --downstream
expect_rc 0 "clear"
expect_out "cleared a" "clear a"
expect_out "cleared b" "clear downstream b"
deadline=$((SECONDS + 20))
until [ "$(db "select state from dag_run where run_id='r1'")" = success ] && \
      [ "$(db "select try_number from task_instance t join dag_run r on r.id=t.run_pk where r.run_id='r1' and task_id='b'")" = 2 ]; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.05
done
[ "$(db "select try_number from task_instance t join dag_run r on r.id=t.run_pk where r.run_id='r1' and task_id='b'")" = 2 ] && ok || fail "b ran again"

# logs -f follows a running task to its end.
"$DAGCTL" trigger slowlog --run-id s1 >/dev/null
deadline=$((SECONDS + 10))
until [ "$(db "select count(*) from task_instance where task_id='talk' and state='running'")" = 1 ]; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.02
done
run timeout 20 "$DAGCTL" logs slowlog s1 talk -f
expect_rc 0 "logs -f"
expect_out "line1" "logs -f first line"
expect_out "line4" "logs -f last line (followed to the end)"

# backfill over 7 daily intervals, max_active_runs=2.
run "$DAGCTL" backfill bf --from 2026-01-01 --to 2026-01-07 --dry-run
expect_rc 0 "backfill --dry-run"
expect_out "dry run: 7 runs" "dry run counts 7"
[ "$(db "select count(*) from dag_run where dag_id='bf'")" = 0 ] && ok || fail "dry run wrote runs"
run "$DAGCTL" backfill bf --from 2026-01-01 --to 2026-01-07 --wait
expect_rc 1 "backfill --wait reports the failed run"
python3 - bf.trace <<'PY' && ok || fail "at most 2 runs at once, oldest first"
import sys
events = [l.split() for l in open(sys.argv[1])]
running, most, starts = 0, 0, []
for kind, ds, t in sorted(events, key=lambda e: float(e[2])):
    running += 1 if kind == "start" else -1
    most = max(most, running)
    if kind == "start": starts.append(ds)
assert most <= 2, most
assert len(starts) == 7, starts
# Oldest first: with two slots each start is among the two oldest not yet started.
for i, ds in enumerate(starts):
    assert ds in sorted(starts[i:])[:2], (i, ds, starts)
PY
[ "$(db "select count(*) from dag_run where dag_id='bf' and state='failed'")" = 1 ] && ok || fail "one failed run"
touch fix-0103
: > bf.trace
run "$DAGCTL" backfill bf --from 2026-01-01 --to 2026-01-07 --rerun-failed --wait
expect_rc 0 "backfill --rerun-failed --wait"
expect_out "1 runs to run" "only the failed run reruns"
out=$(cat bf.trace)
expect_out "start 2026-01-03" "the failed one ran again"
[ "$(grep -c start bf.trace)" = 1 ] && ok || fail "only the failed run ran again"

# pause / unpause.
run "$DAGCTL" pause confd
expect_rc 0 "pause"
[ "$(db "select is_paused from dag where dag_id='confd'")" = 1 ] && ok || fail "paused in the store"
run "$DAGCTL" unpause confd
[ "$(db "select is_paused from dag where dag_id='confd'")" = 0 ] && ok || fail "unpaused in the store"

# events: a run with the payload in conf; a repeat starts nothing.
run "$DAGCTL" event drift_detected --payload '{"psi": 0.31}' --id d1
expect_out "started retrain" "event started a run"
run "$DAGCTL" event drift_detected --payload '{"psi": 0.31}' --id d1
expect_out "a repeat" "repeat recognised"
[ "$(db "select count(*) from dag_run where dag_id='retrain'")" = 1 ] && ok || fail "one run for the event"

# Bad requests: right status, nothing written.
runs_before=$(db "select count(*) from dag_run")
events_before=$(db "select count(*) from event")
check() { # WANT METHOD PATH BODY [curl args]
  local want=$1
  shift
  local got
  got=$(curl_status "$@")
  [ "$got" = "$want" ] && ok || { out=$(head -c 300 "$WORK/body"); rc=$got; fail "$1 $2: status $got, want $want"; }
}
check 400 POST /api/v1/dags/confd/dagRuns '{bad'
check 400 POST /api/v1/dags/confd/dagRuns '[]'
check 415 POST /api/v1/dags/confd/dagRuns '{}' -H 'Content-Type: text/plain'
check 404 POST /api/v1/dags/nope/dagRuns '{}'
check 404 GET /api/v1/nothing ''
check 405 DELETE /api/v1/dags/confd ''
check 400 POST /api/v1/events '{"payload": {}}'
check 400 POST /api/v1/hooks/alertmanager '{"alerts": "x"}'
{ printf '{"name": "'; head -c 2300000 /dev/zero | tr '\0' 'a'; printf '"}'; } >"$WORK/big.json"
check 413 POST /api/v1/events "@$WORK/big.json"
check 404 GET '/api/v1/dags/confd/dagRuns/r1/taskInstances/..%2F..%2Fetc/logs/1' ''
[ "$(db "select count(*) from dag_run")" = "$runs_before" ] && ok || fail "bad requests created runs"
[ "$(db "select count(*) from event")" = "$events_before" ] && ok || fail "bad requests recorded events"
run curl -s "$DAGD_URL/health"
expect_out '"status":"ok"' "health"
run curl -s "$DAGD_URL/metrics"
expect_out "dagd_running_tries" "metrics"
expect_out 'dagd_webhook_events_total{outcome="duplicate"} 1' "metrics count the repeat"
expect_out 'dagd_runs_finished_total{dag_id="fails",state="failed"} 1' "metrics: runs by DAG and state"
expect_out 'dagd_tries_total{dag_id="bf",outcome="failed"} 1' "metrics: tries by DAG and outcome"
expect_out 'dagd_task_duration_seconds_bucket{le="+Inf"}' "metrics: duration histogram"
expect_out 'dagd_http_requests_total{code="4xx"}' "metrics: requests by code"
stop_dagd

# With a token: mutations need it, and reads too (docs/api.md).
DAGD_API_TOKEN=s3cret start_dagd
run "$DAGCTL" trigger confd
expect_rc 1 "trigger without a token"
expect_out "401" "401 without a token"
run "$DAGCTL" --token wrong trigger confd
expect_out "401" "401 with a wrong token"
run "$DAGCTL" --token s3cret trigger confd --run-id with_token
expect_rc 0 "trigger with the token"
run "$DAGCTL" runs confd
expect_rc 1 "reads need a token too"
expect_out "401" "401 on a read without a token"
run "$DAGCTL" --token s3cret runs confd
expect_rc 0 "reads with the token"
grep -q "s3cret" "$log" && fail "the token appears in the log" || ok
stop_dagd

# Refuses a non-loopback address without tokens.
run "$DAGD" --listen 0.0.0.0:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs"
expect_rc 1 "non-loopback without tokens"
expect_out "refusing to listen" "the refusal says why"

# dagctl with no server: exit 3.
run "$DAGCTL" --server http://127.0.0.1:1 dags
expect_rc 3 "unreachable server"

finish
