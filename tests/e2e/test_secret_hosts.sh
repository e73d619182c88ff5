#!/usr/bin/env bash
# A rendered secret goes only to a host the DAG file wrote itself, or to
# one the config's secret_hosts lists: a trigger whose conf names the host
# of an http task's url (or of a notification's url) gets a clear task
# error, and the loopback receiver never sees the secret; the same request
# to a literal host, or with no secret, arrives; an origin listed in
# secret_hosts is let through.
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

rport=$(free_port)
cat >"$WORK/receiver.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def handle_one(self):
        n = int(self.headers.get("Content-Length", 0) or 0)
        body = self.rfile.read(n) if n else b""
        with open(sys.argv[2], "ab") as f:
            f.write(b"%s auth=[%s] host=[%s] %s\n" % (self.path.encode(), self.headers.get("Authorization", "").encode(),
                                                     self.headers.get("Host", "").encode(), body))
        self.send_response(200); self.send_header("Content-Type", "application/json"); self.end_headers()
        self.wfile.write(b"{}")
    do_GET = do_POST = handle_one
    def log_message(self, *a): pass
http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H).serve_forever()
PY
/usr/bin/python3 "$WORK/receiver.py" "$rport" "$WORK/received" &
rpid=$!
R="http://127.0.0.1:$rport"

mkdir -p "$WORK/dags"
cat >"$WORK/dags/calls.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "calls" }
-- The host from the trigger's conf, with a secret: refused.
d:http { id = "steal", url = "{{ conf.base }}/stolen", expect_status = 200,
  headers = { Authorization = 'Bearer {{ secret("S1") }}' } }
-- A literal host, with a conf-chosen path: sent.
d:http { id = "fixed", url = "$R/fixed/{{ conf.path }}", expect_status = 200,
  headers = { Authorization = 'Bearer {{ secret("S1") }}' } }
-- The host from conf, no secret: the DAG author's choice, sent.
d:http { id = "public", url = "{{ conf.base }}/public", expect_status = 200,
  headers = { Authorization = "Bearer public-token" } }
-- A notification to a conf-chosen host with a secret: not sent.
d:shell { id = "boom", cmd = "exit 3",
  on_failure = { url = "{{ conf.base }}/notify-stolen", headers = { Authorization = 'Bearer {{ secret("S1") }}' } } }
LUA

dpid=
start() { # [CONFIG]
  port=$(free_port)
  DAGD_SECRET_S1=tok-s3cr3t-1 "$DAGD" ${1:+--config "$1"} --listen "127.0.0.1:$port" --dags-folder "$WORK/dags" \
    --state "$WORK/dagd.db" --logs-folder "$WORK/logs" >>"$WORK/dagd.log" 2>&1 &
  dpid=$!
  poll "dagd to listen on $port" 10 grep -q "listening on 127.0.0.1:$port" "$WORK/dagd.log" ||
    { cat "$WORK/dagd.log"; exit 1; }
}
stop() { kill "$dpid"; wait "$dpid" 2>/dev/null; }
trap 'kill $dpid $rpid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
trigger() { # RUN_ID BASE: a run whose conf names the host
  run curl -s -X POST -H 'Content-Type: application/json' "http://127.0.0.1:$port/api/v1/dags/calls/dagRuns" \
    --data "{\"dag_run_id\": \"$1\", \"conf\": {\"base\": \"$2\", \"path\": \"p1\"}}"
  expect_out "\"dag_run_id\":\"$1\"" "run $1 triggered"
}
ended() { [ "$(db "select count(*) from dag_run where run_id = '$1' and state in ('success', 'failed')")" = 1 ]; }
state() { db "select ti.state from task_instance ti join dag_run r on r.id = ti.run_pk where r.run_id = '$1' and ti.task_id = '$2'"; }
received() { grep -c "^$1" "$WORK/received" 2>/dev/null || true; }

start
trigger r1 "$R"
poll "run r1 to end" 60 ended r1 || fail "run r1 did not end"
poll "boom's notification to be settled" 20 grep -q "on_failure notification" "$WORK"/logs/calls/r1/boom/1.log ||
  fail "boom's on_failure left no note"
[ "$(state r1 steal)" = failed ] && ok || fail "steal failed: $(state r1 steal)"
run cat "$WORK"/logs/calls/r1/steal/*.log
expect_out "carries a secret" "steal's log says why"
expect_out "secret_hosts" "steal's log names secret_hosts"
expect_no_out "tok-s3cr3t-1" "steal's log shows no secret"
[ "$(received /stolen)" = 0 ] && ok || fail "the receiver got the stolen request: $(cat "$WORK/received")"
run cat "$WORK"/logs/calls/r1/boom/1.log
expect_out "not sent" "boom's notification was not sent"
[ "$(received /notify-stolen)" = 0 ] && ok || fail "the receiver got the notification with the secret"
[ "$(state r1 fixed)" = success ] && ok || fail "fixed succeeded: $(state r1 fixed)"
run cat "$WORK/received"
expect_out "/fixed/p1 auth=[Bearer tok-s3cr3t-1]" "a literal host gets the secret"
expect_out "/public auth=[Bearer public-token]" "no secret: a conf-chosen host is reached"
[ "$(grep -c tok-s3cr3t-1 "$WORK/received")" = 1 ] && ok || fail "the secret arrived once, at /fixed only"
stop

# secret_hosts lets a listed origin through (localhost here, the same receiver).
cat >"$WORK/dagd.lua" <<LUA
secret_hosts = { "http://localhost:$rport" }
LUA
start "$WORK/dagd.lua"
trigger r2 "http://localhost:$rport"
poll "run r2 to end" 60 ended r2 || fail "run r2 did not end"
[ "$(state r2 steal)" = success ] && ok || fail "an allowlisted host is reached: $(state r2 steal)"
run cat "$WORK/received"
expect_out "/stolen auth=[Bearer tok-s3cr3t-1] host=[localhost:$rport]" "the allowlisted origin got the request"
stop

printf 'secret_hosts = { "https://x.example/path" }\n' >"$WORK/bad.lua"
run "$DAGD" --config "$WORK/bad.lua" --check-config
[ "$rc" -ne 0 ] && ok || fail "a secret_hosts entry with a path is refused"
expect_out "secret_hosts" "the refusal names secret_hosts"
finish
