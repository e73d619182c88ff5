#!/usr/bin/env bash
# A real Prometheus Alertmanager (Debian's prometheus-alertmanager) on
# loopback with a webhook receiver pointing at dagd: an alert posted to
# Alertmanager's API arrives at dagd and starts exactly one retraining
# run; Alertmanager's repeated notification of the same alert starts none;
# its resolved notification is recorded as resolved and starts none; an
# alert whose event no DAG listens to is accepted and says so.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

AM=$(command -v prometheus-alertmanager || true)
[ -n "$AM" ] || { echo "prometheus-alertmanager is not installed (scripts/dev deps installs it)"; exit 1; }

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
db() { /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute(sys.argv[2]).fetchone()[0])' "$WORK/dagd.db" "$1"; }
poll() { # DESC SECONDS CMD...: polls CMD with a deadline
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $desc"; return 1; }
    sleep 0.1
  done
}

mkdir -p "$WORK/dags" "$WORK/am"
cat >"$WORK/dags/retrain.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "retrain", on_event = { "drift_detected" } }
d:shell { id = "train", cmd = { "echo", "retraining for {{ conf.labels.model }}" } }
LUA
dport=$(free_port)
"$DAGD" --listen "127.0.0.1:$dport" --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
dpid=$!
poll "dagd to listen" 10 grep -q "listening on" "$WORK/dagd.log" || { cat "$WORK/dagd.log"; exit 1; }

aport=$(free_port)
cat >"$WORK/am/am.yml" <<YML
route:
  receiver: dagd
  group_by: [alertname]
  group_wait: 0s
  group_interval: 1s
  repeat_interval: 2s
receivers:
  - name: dagd
    webhook_configs:
      - url: http://127.0.0.1:$dport/api/v1/hooks/alertmanager
        send_resolved: true
YML
"$AM" --config.file="$WORK/am/am.yml" --storage.path="$WORK/am/data" --web.listen-address="127.0.0.1:$aport" \
  --cluster.listen-address= >"$WORK/am.log" 2>&1 &
apid=$!
trap 'kill $dpid $apid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
am_ready() { curl -sf "http://127.0.0.1:$aport/-/ready" >/dev/null; }
poll "alertmanager to be ready" 20 am_ready || { tail -5 "$WORK/am.log"; exit 1; }

# Fire an alert the way Prometheus would.
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$aport/api/v2/alerts" \
  --data "[{\"labels\": {\"alertname\": \"FeatureDrift\", \"event\": \"drift_detected\", \"model\": \"fraud\"},
            \"annotations\": {\"summary\": \"PSI 0.31 on amount\"}, \"startsAt\": \"$now\", \"endsAt\": \"$later\"}]"
expect_out 200 "alert accepted by alertmanager"

# The first delivery starts exactly one run, with the alert in its conf.
got_delivery() { [ "$(db "select count(*) from event where source = 'alertmanager'")" -ge 1 ]; }
poll "a delivery from alertmanager" 30 got_delivery && ok || fail "no delivery"
[ "$(db "select count(*) from dag_run where dag_id = 'retrain'")" = 1 ] && ok || fail "one retraining run"
run db "select conf from dag_run where dag_id = 'retrain'"
expect_out '"event":"drift_detected"' "conf names the event"
expect_out '"model":"fraud"' "conf carries the labels"
expect_out '"summary":"PSI 0.31 on amount"' "conf carries the annotations"
expect_out '"fingerprint":' "conf lists the alerts with their fingerprint"
expect_out '"group_key":"{}:{alertname=\"FeatureDrift\"}"' "conf carries Alertmanager's groupKey"
expect_out '"truncated_alerts":0' "conf carries Alertmanager's truncatedAlerts"
run db "select name from event where source = 'alertmanager' order by id limit 1"
[ "$out" = drift_detected ] && ok || fail "the delivery is named by its alert's event, not the group key"

# Alertmanager repeats the notification (repeat_interval 2s): recognised,
# recorded, nothing started.
got_repeat() { [ "$(db "select count(*) from event where source = 'alertmanager'")" -ge 2 ]; }
poll "a repeated delivery" 30 got_repeat && ok || fail "no repeat came"
[ "$(db "select outcome from event where source = 'alertmanager' order by id desc limit 1")" = duplicate ] && ok ||
  fail "the repeat is recorded as a duplicate"
[ "$(db "select count(*) from dag_run where dag_id = 'retrain'")" = 1 ] && ok || fail "the repeat started a run"
done_run() { [ "$(db "select state from dag_run where dag_id = 'retrain'")" = success ]; }
poll "the retraining run to finish" 20 done_run && ok || fail "retraining run did not succeed"
out=$(cat "$WORK"/logs/retrain/*/train/1.log)
expect_out "retraining for fraud" "the alert's labels reached the task"

# Resolve the alert the way Prometheus would (endsAt now): Alertmanager
# sends a resolved notification (send_resolved), recorded as resolved.
ended=$(date -u +%Y-%m-%dT%H:%M:%SZ)
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$aport/api/v2/alerts" \
  --data "[{\"labels\": {\"alertname\": \"FeatureDrift\", \"event\": \"drift_detected\", \"model\": \"fraud\"},
            \"annotations\": {\"summary\": \"PSI 0.31 on amount\"}, \"startsAt\": \"$now\", \"endsAt\": \"$ended\"}]"
expect_out 200 "resolution accepted by alertmanager"
got_resolved() { [ "$(db "select count(*) from event where source = 'alertmanager' and outcome = 'resolved'")" -ge 1 ]; }
poll "a resolved delivery" 30 got_resolved && ok || {
  out=$(db "select group_concat(outcome) from event"); fail "the resolved notification is recorded as resolved"; }
run db "select name || ' ' || runs_started || ' ' || detail from event where outcome = 'resolved' order by id limit 1"
[ "$out" = "drift_detected 0 resolved alerts start no run" ] && ok || fail "the resolved delivery's name and words"
[ "$(db "select count(*) from dag_run where dag_id = 'retrain'")" = 1 ] && ok || fail "the resolution started a run"

# An alert whose event no DAG listens to: accepted, no run, and said so.
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$aport/api/v2/alerts" \
  --data "[{\"labels\": {\"alertname\": \"DiskFull\"}, \"startsAt\": \"$now\", \"endsAt\": \"$later\"}]"
expect_out 200 "second alert accepted by alertmanager"
got_unheard() { [ "$(db "select count(*) from event where name = 'DiskFull'")" -ge 1 ]; }
poll "the DiskFull delivery" 30 got_unheard && ok || fail "no DiskFull delivery"
run db "select outcome || ' ' || runs_started || ' ' || detail from event where name = 'DiskFull' order by id limit 1"
[ "$out" = 'accepted 0 no DAG listens to "DiskFull"' ] && ok || fail "an unheard alert is accepted and says so"
run curl -s "http://127.0.0.1:$dport/api/v1/events"
expect_out '"detail":"no DAG listens to \"DiskFull\""' "the event list says no DAG listens"
run "$DAGCTL" --server "http://127.0.0.1:$dport" event nobody_listens
expect_rc 0 "dagctl event with no listener"
expect_out 'no DAG listens to "nobody_listens"' "dagctl event says no DAG listens"

finish
