#!/usr/bin/env bash
# Notifications, posted to a local receiver: a task's own on_failure is
# called per failing task (a receiver that fails first is retried); a
# DAG's on_success and on_failure are called once per run, when the run
# ends, with the run's context, never per task; every string field of a
# spec (url, header values, body) is rendered; an SLA miss is reported
# once. The delivery never changes a state and its outcome is in a log.
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
            f.write(path.encode() + b" [" + self.headers.get("X-Run", "").encode() + b"] " + body + b"\n")
        self.send_response(200); self.end_headers()
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
/usr/bin/python3 "$WORK/receiver.py" "$rport" "$WORK/received" &
rpid=$!
R="http://127.0.0.1:$rport"
mkdir -p "$WORK/dags"
cat >"$WORK/dags/n.lua" <<LUA
local dagd = require "dagd"
-- Three tasks that succeed: the DAG's on_success once per run.
local s = dagd.dag { id = "three", timezone = "Europe/Berlin",
  on_success = { url = "$R/three/success", headers = { ["X-Run"] = "{{ run_id }}" } },
  on_failure = "$R/three-failed" }
s:chain(s:shell { id = "a", cmd = "true" }, s:shell { id = "b", cmd = "true" }, s:shell { id = "c", cmd = "true" })
-- Three tasks, two failing: each failing task calls its own on_failure
-- (given through default_args), the DAG's on_failure is called once.
local f = dagd.dag { id = "fails",
  default_args = { on_failure = { url = "$R/task-failed", headers = { ["X-Run"] = "{{ task_id }}" } } },
  on_failure = { url = "$R/run-failed", headers = { ["X-Run"] = "{{ run_id }}" },
                 body = '{"text": "run {{ run_id }} of {{ dag_id }} failed", "failed": {{ failed_tasks | json }}, "p": "{{ params.team }}"}' },
  on_success = "$R/fails-succeeded", params = { team = "ml" } }
f:shell { id = "x", cmd = "exit 3" }
f:shell { id = "y", cmd = "exit 4" }
f:shell { id = "z", cmd = "true", on_success = "$R/z-ok/{{ ds }}" }
-- The default body of a run's notification, and a flaky receiver.
local g = dagd.dag { id = "plain", on_failure = "$R/plain-failed" }
g:chain(g:shell { id = "ok", cmd = "true" },
        g:shell { id = "boom", cmd = "exit 3", on_failure = { url = "$R/flaky" } })
local sl = dagd.dag { id = "slow", on_failure = "$R/sla" }
sl:shell { id = "late", cmd = "sleep 2", sla = "1s" }
sl:shell { id = "quick", cmd = "true", sla = "1h" }
LUA
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid $rpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

hits() { cat "$WORK/received" 2>/dev/null | grep -c "^$1 " || true; }
# wait_hits PATH N: until the receiver got N posts to PATH.
wait_hits() {
  local deadline=$((SECONDS + 20))
  until [ "$(hits "$1")" -ge "$2" ]; do [ $SECONDS -lt $deadline ] || return 1; sleep 0.05; done
}
# settled DAG RUN: every notification of the run has its outcome logged
# (deliveries start when a try or the run ends; each logs "-> STATUS").
settled() {
  local deadline=$((SECONDS + 20)) dir="$WORK/logs/$1/$2"
  while :; do
    local specs outcomes
    specs=$(find "$dir" -name '*.notify-*.json' 2>/dev/null | wc -l)
    outcomes=$(cat "$dir"/run.notify.log "$dir"/*/*.log 2>/dev/null | grep -c 'dagd notify: .* -> [0-9]' || true)
    [ "$outcomes" -ge "$specs" ] && return 0
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# 1. A run of three tasks that succeed: one post, with the URL and the
# header rendered; the default body is about the run.
run "$DAGCTL" trigger three --wait
expect_rc 0 "the run of three succeeds"
r1=$(sed -n 's/^triggered three //p' <<<"$out" | head -1)
wait_hits three/success 1 || fail "the DAG's on_success was not called for $r1"
settled three "$r1" || fail "the notifications of $r1 did not finish"
out=$(cat "$WORK/received")
[ "$(hits three/success)" = 1 ] && ok || fail "on_success posted $(hits three/success) times for one run, want 1"
expect_out "three/success [$r1] {\"text\":\"dagd: run $r1 of DAG three succeeded\"" "rendered header, the run's text"
expect_out '"event":"success","dag_id":"three","run_id":"'"$r1"'","state":"success"' "the run's fields"
expect_out '"failed_tasks":[]' "no failed tasks"
[ "$(hits three-failed)" = 0 ] && ok || fail "on_failure called for a successful run"
out=$(cat "$WORK/logs/three/$r1/run.notify.log")
expect_out "-> 200" "the delivery's outcome is in the run's notify log"

# 2. Three tasks, two fail: each failing task's own on_failure once, the
# DAG's on_failure once with its body rendered, no on_success.
run "$DAGCTL" trigger fails --wait
expect_rc 1 "the run of fails fails"
r2=$(sed -n 's/^triggered fails //p' <<<"$out" | head -1)
wait_hits run-failed 1 || fail "the DAG's on_failure was not called for $r2"
wait_hits task-failed 2 || fail "task-level on_failure not called for both failing tasks"
settled fails "$r2" || fail "the notifications of $r2 did not finish"
out=$(cat "$WORK/received")
[ "$(hits run-failed)" = 1 ] && ok || fail "on_failure posted $(hits run-failed) times for one run, want 1"
expect_out "run-failed [$r2] {\"text\": \"run $r2 of fails failed\", \"failed\": [\"x\",\"y\"], \"p\": \"ml\"}" \
  "the DAG's on_failure body rendered"
expect_no_out "{{" "no template left unrendered"
[ "$(hits task-failed)" = 2 ] && ok || fail "task-level on_failure posted $(hits task-failed) times, want 2"
expect_out "task-failed [x] {\"text\":\"dagd: task x of DAG fails failed (try 1) in run $r2\"" "task x's own"
expect_out "task-failed [y] {\"text\":\"dagd: task y of DAG fails failed (try 1) in run $r2\"" "task y's own"
expect_out "z-ok/$(date -u +%Y-%m-%d) " "a task's own on_success, URL rendered"
[ "$(hits fails-succeeded)" = 0 ] && ok || fail "the DAG's on_success called for a failed run"
# The daemon's line for a try's outcome names the run.
out=$(cat "$WORK/dagd.log")
expect_out "fails/$r2/x try 1 failed (exit 3) -> failed" "the try's outcome line has the run id"

# 3. The default body of a failed run names the failed tasks; a task's
# receiver that fails first is retried.
run "$DAGCTL" trigger plain --wait
expect_rc 1 "the run of plain fails"
r3=$(sed -n 's/^triggered plain //p' <<<"$out" | head -1)
wait_hits plain-failed 1 || fail "plain's on_failure was not called"
wait_hits flaky 1 || fail "the flaky receiver never got boom's on_failure"
settled plain "$r3" || fail "the notifications of $r3 did not finish"
out=$(cat "$WORK/received")
expect_out "plain-failed [] {\"text\":\"dagd: run $r3 of DAG plain failed (failed tasks: boom)\"" "default run text"
expect_out '"state":"failed"' "the run's state"
expect_out '"failed_tasks":["boom"]' "the failed tasks"
[ "$(hits plain-failed)" = 1 ] && ok || fail "plain's on_failure posted $(hits plain-failed) times, want 1"
expect_out "flaky [] {\"text\":\"dagd: task boom of DAG plain failed (try 1) in run $r3\"" "delivered after a retry"
expect_out '"event":"failure"' "generic fields: event"
expect_out '"task_id":"boom"' "generic fields: task"
out=$(cat "$WORK/logs/plain/$r3/boom/1.log")
expect_out "attempt 1 of 3" "the failed delivery is in the try's log"
expect_out "-> 200" "the retried delivery succeeded"
run /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select state from task_instance where task_id=\"boom\"").fetchone()[0])' "$WORK/dagd.db"
expect_out "failed" "the task's state is its own"

# 4. SLA: a task still running 1 s after its run started is reported once
# (to the DAG's on_failure when the task has none); it still succeeds; a
# task within its SLA is not reported.
run "$DAGCTL" trigger slow --wait
expect_rc 0 "the slow run succeeds"
wait_hits sla 1 || fail "no SLA miss posted"
out=$(grep '^sla ' "$WORK/received")
expect_out '"event":"sla_miss"' "an SLA miss is posted"
expect_out '"task_id":"late"' "for the late task"
expect_out 'missed its SLA of 1s' "the text says so"
[ "$(hits sla)" = 1 ] && ok || fail "reported exactly once"

finish
