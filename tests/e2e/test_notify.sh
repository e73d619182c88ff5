#!/usr/bin/env bash
# Notifications: a failing task posts its on_failure notification (a body
# a Slack webhook shows and a generic receiver reads) to a local receiver;
# a receiver that fails first is retried; a DAG-level on_success applies to
# tasks without their own; the delivery never changes the task's state and
# its outcome is in the try's log.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port)
cat >"$WORK/receiver.py" <<'PY'
import http.server, sys
hits = {"flaky": 0}
class H(http.server.BaseHTTPRequestHandler):
    def do_POST(self):
        body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
        path = self.path.strip("/")
        if path == "flaky":
            hits["flaky"] += 1
            if hits["flaky"] == 1:
                self.send_response(500); self.end_headers(); return
        with open(sys.argv[2], "ab") as f:
            f.write(path.encode() + b" " + body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
/usr/bin/python3 "$WORK/receiver.py" "$rport" "$WORK/received" &
rpid=$!
mkdir -p "$WORK/dags"
cat >"$WORK/dags/n.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "n", on_success = "http://127.0.0.1:$rport/dag-success" }
local ok = d:shell { id = "ok", cmd = "true" }
d:shell { id = "boom", cmd = "exit 3", on_failure = { url = "http://127.0.0.1:$rport/flaky" } }
local s = dagd.dag { id = "slow", on_failure = "http://127.0.0.1:$rport/sla" }
s:shell { id = "late", cmd = "sleep 2", sla = "1s" }
s:shell { id = "quick", cmd = "true", sla = "1h" }
LUA
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid $rpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

run "$DAGCTL" trigger n --run-id r1 --wait
expect_rc 1 "the run fails (boom exits 3)"
got_both() { [ "$(grep -c . "$WORK/received" 2>/dev/null)" -ge 2 ]; }
deadline=$((SECONDS + 20))
until got_both; do [ $SECONDS -lt $deadline ] || break; sleep 0.1; done
out=$(cat "$WORK/received" 2>/dev/null)
expect_out 'flaky {"text":"dagd: task boom of DAG n failed (try 1) in run r1"' "on_failure delivered (after a retry)"
expect_out '"event":"failure"' "generic fields: event"
expect_out '"task_id":"boom"' "generic fields: task"
expect_out 'dag-success {"text":"dagd: task ok of DAG n succeeded (try 1) in run r1"' "DAG-level on_success used"
out=$(cat "$WORK/logs/n/r1/boom/1.log")
expect_out "attempt 1 of 3" "the failed delivery is in the try's log"
expect_out "-> 200" "the retried delivery succeeded"
run /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select state from task_instance where task_id=\"boom\"").fetchone()[0])' "$WORK/dagd.db"
expect_out "failed" "the task's state is its own"

# SLA: a task still running 1 s after its run started is reported once;
# it still succeeds; a task within its SLA is not reported.
run "$DAGCTL" trigger slow --run-id s1 --wait
expect_rc 0 "the slow run succeeds"
out=$(grep '^sla ' "$WORK/received")
expect_out '"event":"sla_miss"' "an SLA miss is posted"
expect_out '"task_id":"late"' "for the late task"
expect_out 'missed its SLA of 1s' "the text says so"
[ "$(grep -c '^sla ' "$WORK/received")" = 1 ] && ok || fail "reported exactly once"

finish
