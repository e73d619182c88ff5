#!/bin/bash
# Cross-site requests against a dagd in development mode (no tokens): a
# page of another origin, in real headless Chromium, POSTs a trigger with
# fetch(..., {mode: "no-cors"}) (no Content-Type, then text/plain); the
# requests reach dagd (its 4xx count grows) and no run is created. Then
# curl: a foreign Host (DNS rebinding) gets 421, a foreign Origin 403, a
# body without Content-Type 415, and the daemon's own origin still works.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "FAIL: $CHROMIUM missing (apt-get install chromium; scripts/dev deps)"; exit 1; }
pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

wait_for() { # FILE PATTERN WHAT
  local deadline=$((SECONDS + 15))
  until grep -q "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "FAIL: $3 did not start"; tail -5 "$1"; exit 1; }
    sleep 0.02
  done
}

mkdir -p "$WORK/dags" "$WORK/site"
cat >"$WORK/dags/ping.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "ping" }
d:shell { id = "p", cmd = "true" }
LUA
(cd "$WORK" && exec env DAGD_UI_PATH="$DAGD_SOURCE_DIR/ui" "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
  --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1) &
pids+=($!)
wait_for "$WORK/dagd.log" "listening on" dagd
port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)
URL="http://127.0.0.1:$port"

runs() { /usr/bin/python3 -c 'import sqlite3,sys; print(sqlite3.connect(sys.argv[1]).execute("select count(*) from dag_run").fetchone()[0])' "$WORK/dagd.db"; }
answers_4xx() { curl -s "$URL/metrics" | sed -n 's/^dagd_http_requests_total{code="4xx"} //p'; }

# The attacker's page, on another loopback port: two blind triggers.
cat >"$WORK/site/evil.html" <<HTML
<!doctype html><html><body><div id="result">pending</div><script>
(async () => {
  const url = "$URL/api/v1/dags/ping/dagRuns";
  try {
    // A Blob without a type: no Content-Type header at all.
    await fetch(url, { method: "POST", mode: "no-cors", body: new Blob(['{"dag_run_id": "xsite-blob"}']) });
    // A string: Content-Type text/plain;charset=UTF-8 (a "simple" request).
    await fetch(url, { method: "POST", mode: "no-cors", body: '{"dag_run_id": "xsite-text"}' });
    document.getElementById("result").textContent = "sent";
  } catch (e) {
    document.getElementById("result").textContent = "error " + e;
  }
})();
</script></body></html>
HTML
(cd "$WORK/site" && exec /usr/bin/python3 -u -m http.server 0 --bind 127.0.0.1 >"$WORK/site.log" 2>&1) &
pids+=($!)
wait_for "$WORK/site.log" "Serving HTTP" "the attacker's site"
site_port=$(sed -n 's/.*port \([0-9]*\).*/\1/p' "$WORK/site.log" | head -1)

before=$(answers_4xx)
run timeout 60 "$CHROMIUM" --headless --no-sandbox --disable-gpu --user-data-dir="$WORK/profile" \
  --virtual-time-budget=10000 --dump-dom "http://127.0.0.1:$site_port/evil.html"
expect_out '<div id="result">sent</div>' "the cross-site page sent its requests"
after=$(answers_4xx)
[ "$((after - before))" -ge 2 ] && ok || fail "the page's 2 requests did not reach dagd as refusals (4xx $before -> $after)"
[ "$(runs)" = 0 ] && ok || fail "a cross-site page triggered $(runs) run(s)"

code() { # CURL-ARGS...: the HTTP status of a request
  curl -s -o "$WORK/body" -w '%{http_code}' "$@"
}
json=(-H 'Content-Type: application/json')
# DNS rebinding: the browser thinks it talks to evil.example.
out=$(code -X POST "${json[@]}" -H 'Host: evil.example' -d '{}' "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 421 ] && ok || fail "Host: evil.example trigger answered $out, want 421"
out=$(code -H "Host: evil.example:$port" "$URL/api/v1/dags")
[ "$out" = 421 ] && ok || fail "Host: evil.example read answered $out, want 421"
grep -q 'allowed_hosts' "$WORK/body" && ok || fail "the 421 does not name allowed_hosts"
# Another site's page.
out=$(code -X POST "${json[@]}" -H 'Origin: http://evil.example' -d '{}' "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 403 ] && ok || fail "Origin: http://evil.example answered $out, want 403"
out=$(code -X POST "${json[@]}" -H "Origin: http://127.0.0.1:$site_port" -d '{}' "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 403 ] && ok || fail "Origin of another local port answered $out, want 403"
# No Content-Type, and a form type.
out=$(code -X POST -H 'Content-Type:' --data-binary '{}' "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 415 ] && ok || fail "no Content-Type answered $out, want 415"
out=$(code -X POST -d '{}' "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 415 ] && ok || fail "a form Content-Type answered $out, want 415"
[ "$(runs)" = 0 ] && ok || fail "a refused request created a run"

# The daemon's own origin (the UI's fetches), dagctl, and a plain client work.
out=$(code -X POST "${json[@]}" -H "Origin: $URL" -d '{"dag_run_id": "same-origin"}' "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 200 ] && ok || fail "a same-origin trigger answered $out, want 200"
out=$(code -X POST "${json[@]}" -H "Host: localhost:$port" -H "Origin: http://localhost:$port" -d '{}' \
  "$URL/api/v1/dags/ping/dagRuns")
[ "$out" = 200 ] && ok || fail "a trigger through localhost answered $out, want 200"
run "$DAGCTL" --server "$URL" trigger ping
expect_rc 0 "dagctl trigger"
[ "$(runs)" = 3 ] && ok || fail "want 3 runs, have $(runs)"
out=$(code "$URL/")
[ "$out" = 200 ] && ok || fail "the UI's page answered $out"
finish
