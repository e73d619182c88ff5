#!/usr/bin/env bash
# next_run_after with a real dagd: the API field and `dagctl dags`' NEXT RUN
# column show when each DAG's next scheduled run can be created (the next
# interval's end; a time already passed while max_active_runs holds the
# DAG; nothing when paused, unscheduled or past end_date), it survives a
# restart, and /metrics exports it with the last success's end and the
# run-duration histogram, in a format `promtool check metrics` accepts.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
rc=0 out=

PY=/usr/bin/python3
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
poll() { # DESC SECONDS CMD...: polls CMD with a deadline
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $desc"; return 1; }
    sleep 0.1
  done
}
# json_get URL EXPR: prints EXPR evaluated over the JSON body as j.
json_get() {
  curl -s "$1" | $PY -c 'import json,sys; j=json.load(sys.stdin); v='"$2"'; print("null" if v is None else v)'
}
epoch() { $PY -c 'import sys,datetime; print(int(datetime.datetime.fromisoformat(sys.argv[1].replace("Z","+00:00")).timestamp()))' "$1"; }

mkdir -p "$WORK/dags"
# Two days ago, so that the held DAG's first runs are long due.
start=$(date -u -d '-2 days' +%Y-%m-%d)
cat >"$WORK/dags/daily.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "daily", schedule = "@daily", start_date = "$start", catchup = false }
d:shell { id = "t", cmd = { "true" } }
LUA
cat >"$WORK/dags/held.lua" <<LUA
local dagd = require "dagd"
-- Catchup from two days ago, one run at a time, and the first run waits
-- for the test: the second interval is due and cannot be created.
local d = dagd.dag { id = "held", schedule = "@hourly", start_date = "$start", catchup = true,
                     max_active_runs = 1 }
d:shell { id = "wait", cmd = "while [ ! -e '$WORK/release' ]; do sleep 0.1; done" }
LUA
cat >"$WORK/dags/other.lua" <<LUA
local dagd = require "dagd"
local e = dagd.dag { id = "events", on_event = { "drift_detected" } }
e:shell { id = "t", cmd = { "true" } }
local o = dagd.dag { id = "ended", schedule = "@daily", start_date = "2025-01-01", end_date = "2025-02-01" }
o:shell { id = "t", cmd = { "true" } }
LUA

port=$(free_port)
export DAGD_URL="http://127.0.0.1:$port"
start_dagd() {
  "$DAGD" --listen "127.0.0.1:$port" --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
    >>"$WORK/dagd.log" 2>&1 &
  dpid=$!
  poll "dagd to answer" 10 curl -sf "$DAGD_URL/health" -o /dev/null || { cat "$WORK/dagd.log"; exit 1; }
}
start_dagd
trap 'touch "$WORK/release"; kill $dpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# daily: its latest complete interval ran; the next is due at the next
# midnight, the first fire `dagctl next` (offline, from the same file)
# gives after now. Asked again should midnight pass in between.
daily_ok() {
  want=$(DAGD_DAGS_FOLDER="$WORK/dags" "$DAGCTL" next daily -n 1 -o json | $PY -c 'import json,sys; print(json.load(sys.stdin)[0]["run_after"])')
  got=$(json_get "$DAGD_URL/api/v1/dags/daily" 'j["next_run_after"]')
  [ "$got" = "$want" ]
}
poll "daily's next_run_after to be the next fire" 10 daily_ok && ok ||
  { out="got $got, want $want"; fail "daily: next_run_after"; }
daily_next=$got
run "$DAGCTL" dags
expect_rc 0 "dagctl dags"
grep -E "^daily +no +@daily +UTC +$daily_next " <<<"$out" >/dev/null && ok || fail "dagctl dags: NEXT RUN of daily"
grep -E "^events +no +- +UTC +- " <<<"$out" >/dev/null && ok || fail "dagctl dags: an event-only DAG has no next run"
grep -E "^ended +no +@daily +UTC +- " <<<"$out" >/dev/null && ok || fail "dagctl dags: past end_date, no next run"
run json_get "$DAGD_URL/api/v1/dags" '[d["next_run_after"] for d in j["dags"] if d["dag_id"] in ("events", "ended")]'
expect_out "[None, None]" "the API: null for the event-only DAG and after end_date"

# held: the run of the first interval waits; the second interval ended
# at start + 2h and is due but held by max_active_runs: the time stays,
# in the past, where a "late" alert sees it.
held_want=$(date -u -d "$start 02:00" +%Y-%m-%dT%H:%M:%SZ)
held_ok() { [ "$(json_get "$DAGD_URL/api/v1/dags/held" 'j["next_run_after"]')" = "$held_want" ]; }
poll "held's next_run_after" 10 held_ok && ok || fail "held: next_run_after is not $held_want"
run "$DAGCTL" dags
grep -E "^held +no +@hourly +UTC +$held_want " <<<"$out" >/dev/null && ok || fail "dagctl dags: NEXT RUN of held"

# /metrics: the same times as epoch seconds; the last success's end as
# the API reports it; a histogram of run durations by final state.
daily_done() { [ "$(json_get "$DAGD_URL/api/v1/dags/daily/dagRuns" 'j["dag_runs"][0]["state"]')" = success ]; }
poll "daily's run to succeed" 20 daily_done || fail "daily's run did not succeed"
end_date=$(json_get "$DAGD_URL/api/v1/dags/daily/dagRuns" 'j["dag_runs"][0]["end_date"]')
curl -s "$DAGD_URL/metrics" >"$WORK/metrics.txt"
out=$(cat "$WORK/metrics.txt")
expect_out "dagd_dag_next_run_after_timestamp_seconds{dag_id=\"daily\"} $(epoch "$daily_next")" "metric: daily's next run"
expect_out "dagd_dag_next_run_after_timestamp_seconds{dag_id=\"held\"} $(epoch "$held_want")" "metric: held's next run"
expect_no_out 'dagd_dag_next_run_after_timestamp_seconds{dag_id="events"}' "metric: no next run for an event-only DAG"
expect_no_out 'dagd_dag_next_run_after_timestamp_seconds{dag_id="ended"}' "metric: no next run after end_date"
expect_out 'dagd_dag_run_duration_seconds_count{dag_id="daily",state="success"} 1' "metric: run duration histogram"
expect_out 'dagd_dag_run_duration_seconds_bucket{dag_id="daily",state="success",le="+Inf"} 1' "metric: its +Inf bucket"
expect_out 'dagd_dag_paused{dag_id="daily"} 0' "metric: paused flag"
last=$(sed -n 's/^dagd_dag_last_success_end_timestamp_seconds{dag_id="daily"} //p' "$WORK/metrics.txt")
$PY -c 'import sys,datetime; a=datetime.datetime.fromisoformat(sys.argv[1].replace("Z","+00:00")).timestamp(); sys.exit(abs(a-float(sys.argv[2])) > 0.002)' \
  "$end_date" "${last:-0}" && ok || { out="metric $last, API end_date $end_date"; fail "metric: last success end"; }
expect_no_out 'dagd_dag_last_success_end_timestamp_seconds{dag_id="held"}' "metric: no last success before one"
run promtool check metrics <"$WORK/metrics.txt"
expect_rc 0 "promtool check metrics"

# Paused: no next run (API, dagctl, metric); unpaused: back.
run "$DAGCTL" pause daily
expect_rc 0 "pause"
run json_get "$DAGD_URL/api/v1/dags/daily" 'j["next_run_after"]'
expect_out null "paused: next_run_after is null"
run "$DAGCTL" dags
grep -E "^daily +yes +@daily +UTC +- " <<<"$out" >/dev/null && ok || fail "dagctl dags: a paused DAG has no next run"
run curl -s "$DAGD_URL/metrics"
expect_no_out 'dagd_dag_next_run_after_timestamp_seconds{dag_id="daily"}' "metric: none while paused"
expect_out 'dagd_dag_paused{dag_id="daily"} 1' "metric: paused"
run "$DAGCTL" unpause daily
expect_rc 0 "unpause"
poll "daily's next_run_after after unpausing" 10 daily_ok && ok || fail "unpaused: next_run_after is back"

# A restart (a crash: the held try goes on under its shim) keeps them.
kill -9 $dpid
wait $dpid 2>/dev/null
start_dagd
poll "daily's next_run_after after a restart" 10 daily_ok && ok || fail "restart: daily's next_run_after"
poll "held's next_run_after after a restart" 10 held_ok && ok || fail "restart: held's next_run_after"

# Released, the held DAG catches up: its next run moves on.
touch "$WORK/release"
held_moved() { [ "$(json_get "$DAGD_URL/api/v1/dags/held" 'j["next_run_after"]')" != "$held_want" ]; }
poll "held's next_run_after to move on" 30 held_moved && ok || fail "held: next_run_after stayed after the release"

finish
