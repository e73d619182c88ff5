#!/usr/bin/env bash
# Secrets never land on disk: a task that prints a secret (from its
# environment, from a template, split across writes, and in JSON) leaves
# "***" in its raw log file; an http operator given the secret in a header
# sends the real value, while the spec file beside its log shows "***"; an
# API token printed by a task is masked too; and a background process that
# keeps the task's output open does not hold the try.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

SECRET='e2e-Secret"Value-42'
TOKEN='e2e-api-token-0987'
free_port() { /usr/bin/python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
rport=$(free_port)
cat >"$WORK/receiver.py" <<'PY'
import http.server, sys
class H(http.server.BaseHTTPRequestHandler):
    def do_GET(self):
        with open(sys.argv[2], "a") as f:
            f.write(self.headers.get("Authorization", "") + "\n")
        self.send_response(200); self.end_headers(); self.wfile.write(b"{}")
    def log_message(self, *a): pass
server = http.server.HTTPServer(("127.0.0.1", int(sys.argv[1])), H)
open(sys.argv[2] + ".ready", "w").close()
server.serve_forever()
PY
/usr/bin/python3 "$WORK/receiver.py" "$rport" "$WORK/received" &
rpid=$!
deadline=$((SECONDS + 10))
until [ -e "$WORK/received.ready" ]; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
mkdir -p "$WORK/dags"
cat >"$WORK/dags/s.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "s" }
d:shell { id = "leak", execution_timeout = "20s",
  cmd = [[echo "env=\$DAGD_SECRET_E2E"; echo tmpl={{ secret("E2E") }}
printf '%s' "split=\${DAGD_SECRET_E2E%%Value*}"; printf '%s\n' "Value\${DAGD_SECRET_E2E#*Value}"
printf '{"v":"%s"}\n' "\$(printf '%s' "\$DAGD_SECRET_E2E" | sed 's/"/\\\\"/g')"
echo "token=\$DAGD_API_TOKEN"
sleep 60 &
echo done]] }
d:http { id = "call", url = "http://127.0.0.1:$rport/",
  headers = { Authorization = 'Bearer {{ secret("E2E") }}' } }
LUA
DAGD_SECRET_E2E="$SECRET" DAGD_API_TOKEN="$TOKEN" "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" \
  --state "$WORK/dagd.db" --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
pid=$!
cleanup() {
  # The background sleep of the leak task, by its process group.
  task=$(sed -n 's/^task //p' "$WORK"/logs/s/r1/leak/1.pid 2>/dev/null)
  [ -n "$task" ] && kill -KILL -- "-$task" 2>/dev/null
  kill "$pid" "$rpid" 2>/dev/null
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
export DAGD_TOKEN="$TOKEN"

run "$DAGCTL" trigger s --run-id r1 --wait
expect_rc 0 "the run succeeds: the background sleep does not hold the leak task past its 20 s timeout"

out=$(cat "$WORK/logs/s/r1/leak/1.log")
expect_out "env=***" "a secret from the environment is masked in the raw log file"
expect_out "tmpl=***" "a secret from a template is masked"
expect_out "split=***" "a secret written in two pieces is masked"
expect_out '{"v":"***"}' "a secret in its JSON form is masked"
expect_out "token=***" "an API token is masked"
expect_out "done" "the task's output is all there"

out=$(cat "$WORK/received" 2>/dev/null)
expect_out "Bearer $SECRET" "the http operator sent the real secret"
out=$(cat "$WORK/logs/s/r1/call/1.spec.json" 2>/dev/null)
expect_out 'Bearer ***' "the spec file beside the log shows the secret masked"

# Nothing under the logs folder holds a secret or a token, in any form.
escaped=${SECRET//\"/\\\"}
out=$(grep -rlF -e "$SECRET" -e "$escaped" -e "$TOKEN" -e "Secret" "$WORK/logs" 2>&1)
rc=$?
expect_rc 1 "no file under logs/ holds the secret or the token"
for f in "$WORK"/logs/s/r1/*/1.log "$WORK"/logs/s/r1/call/1.spec.json; do
  [ "$(stat -c %a "$f")" = 600 ] && ok || fail "$f is mode $(stat -c %a "$f"), want 600"
done

# The API serves the same masked text.
run "$DAGCTL" logs s r1 leak
expect_out "env=***" "the API serves the masked log"
expect_no_out "$SECRET" "the API shows no secret"

finish
