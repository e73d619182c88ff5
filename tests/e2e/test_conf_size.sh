#!/usr/bin/env bash
# A large conf: a 500-alert Alertmanager group (over 200 KB, more than
# the kernel's 128 KiB for one environment string) starts a run that
# succeeds, its task reading the whole conf from $DAGD_CONF_FILE (0600);
# $DAGD_CONF is left out then, and kept for a small conf. A conf over
# max_conf_size is answered 413, for the webhook and the trigger alike,
# and nothing of it is recorded: redelivered after the bound is raised, the
# same group is accepted, not a duplicate.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

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

mkdir -p "$WORK/dags"
cat >"$WORK/dags/retrain.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "retrain", on_event = { "drift_detected" } }
d:shell { id = "train", cmd = { "/usr/bin/python3", "-c", [[
import json, os, stat
path = os.environ["DAGD_CONF_FILE"]
conf = json.load(open(path))
print("alerts", len(conf["alerts"]), "mode", oct(stat.S_IMODE(os.stat(path).st_mode)),
      "env", "DAGD_CONF" in os.environ)
]] } }
LUA

# A firing group of N alerts, each with labels and a long annotation, in
# Alertmanager's webhook shape (version 4).
group() { # N GROUPKEY > body
  /usr/bin/python3 - "$1" "$2" <<'PY'
import json, sys
n, key = int(sys.argv[1]), sys.argv[2]
alerts = [{"status": "firing", "fingerprint": "%s%04d" % (key, i), "startsAt": "2026-12-01T00:00:00Z",
           "endsAt": "0001-01-01T00:00:00Z", "generatorURL": "http://prometheus:9090/graph?g0.expr=psi",
           "labels": {"alertname": "FeatureDrift", "event": "drift_detected", "model": "fraud",
                      "feature": "f%03d" % i, "instance": "scorer-%d:9100" % (i % 7)},
           "annotations": {"summary": "PSI above 0.3 on feature f%03d" % i, "runbook": "x" * 200}}
          for i in range(n)]
print(json.dumps({"version": "4", "status": "firing", "receiver": "dagd", "groupKey": key,
                  "truncatedAlerts": 0, "groupLabels": {"alertname": "FeatureDrift"}, "commonLabels": {},
                  "commonAnnotations": {}, "externalURL": "http://am:9093", "alerts": alerts}))
PY
}
group 500 big >"$WORK/big.json"
group 1 small >"$WORK/small.json"
size=$(stat -c %s "$WORK/big.json")
[ "$size" -gt 200000 ] && ok || fail "the group is over 200 KB ($size)"

dpid=
start() { # [CONFIG]
  port=$(free_port)
  "$DAGD" ${1:+--config "$1"} --listen "127.0.0.1:$port" --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
    --logs-folder "$WORK/logs" >>"$WORK/dagd.log" 2>&1 &
  dpid=$!
  poll "dagd to listen on $port" 10 grep -q "listening on 127.0.0.1:$port" "$WORK/dagd.log" ||
    { cat "$WORK/dagd.log"; exit 1; }
}
stop() { kill "$dpid"; wait "$dpid" 2>/dev/null; }
trap 'kill $dpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
post() { # PATH FILE: sets $code and $out (the body)
  out=$(curl -s -o "$WORK/resp" -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
    "http://127.0.0.1:$port$1" --data-binary "@$2")
  code=$out
  out=$(cat "$WORK/resp")
}
runs_in() { [ "$(db "select count(*) from dag_run where dag_id = 'retrain' and state = '$1'")" -ge "$2" ]; }
ended() { [ "$(db "select count(*) from dag_run where dag_id = 'retrain' and state in ('queued', 'running')")" = 0 ]; }

# 1. The default bound (1 MiB): the big group's run succeeds, reading it all from the file.
start
post /api/v1/hooks/alertmanager "$WORK/big.json"
[ "$code" = 202 ] && ok || fail "the big group: HTTP $code, want 202: $out"
poll "the run to end" 60 ended || fail "the run did not end"
runs_in success 1 && ok || fail "the big group's run succeeded: $(db "select group_concat(state) from dag_run")"
run cat "$WORK"/logs/retrain/*/train/1.log
expect_out "alerts 500 mode 0o600 env False" "the task read 500 alerts from a 0600 \$DAGD_CONF_FILE, no \$DAGD_CONF"
expect_no_out "argument list too long" "no E2BIG"
# A small conf is in $DAGD_CONF too, as before.
post /api/v1/hooks/alertmanager "$WORK/small.json"
[ "$code" = 202 ] && ok || fail "the small group: HTTP $code: $out"
poll "the small run to end" 60 runs_in success 2 || fail "the small group's run did not succeed"
run grep -h "alerts 1 " "$WORK"/logs/retrain/*/train/1.log
expect_out "alerts 1 mode 0o600 env True" "a small conf is in \$DAGD_CONF as well"
stop

# 2. A lower bound: 413 naming max_conf_size, and nothing recorded.
printf 'max_conf_size = "100KiB"\n' >"$WORK/low.lua"
group 500 other >"$WORK/other.json"
start "$WORK/low.lua"
events_before=$(db "select count(*) from event")
seen_before=$(db "select count(*) from alert_seen")
[ "$events_before" -ge 2 ] && [ "$seen_before" -ge 501 ] && ok || fail "the counts read: $events_before $seen_before"
post /api/v1/hooks/alertmanager "$WORK/other.json"
[ "$code" = 413 ] && ok || fail "over max_conf_size: HTTP $code, want 413: $out"
expect_out "max_conf_size" "the 413 names max_conf_size"
[ "$(db "select count(*) from event")" = "$events_before" ] && ok || fail "the refused delivery is not recorded"
[ "$(db "select count(*) from alert_seen")" = "$seen_before" ] && ok || fail "no alert of it counts as seen"
# The trigger endpoint too.
/usr/bin/python3 -c 'import json; print(json.dumps({"conf": {"blob": "z" * 200000}}))' >"$WORK/trigger.json"
post /api/v1/dags/retrain/dagRuns "$WORK/trigger.json"
[ "$code" = 413 ] && ok || fail "a trigger over max_conf_size: HTTP $code, want 413: $out"
expect_out "max_conf_size" "the trigger's 413 names max_conf_size"
stop

# 3. The bound raised: the same delivery is new, accepted, and its run succeeds.
printf 'max_conf_size = "2MiB"\n' >"$WORK/high.lua"
start "$WORK/high.lua"
post /api/v1/hooks/alertmanager "$WORK/other.json"
[ "$code" = 202 ] && ok || fail "redelivery: HTTP $code, want 202: $out"
expect_out '"outcome":"accepted"' "the redelivery is accepted, not a duplicate"
poll "the redelivered run to succeed" 60 runs_in success 3 || fail "the redelivered run did not succeed"

# Bad values are refused at start, with the key named.
printf 'max_conf_size = "lots"\n' >"$WORK/bad.lua"
run "$DAGD" --config "$WORK/bad.lua" --check-config
expect_out "max_conf_size" "a bad max_conf_size is named"
[ "$rc" -ne 0 ] && ok || fail "a bad max_conf_size is refused"
finish
