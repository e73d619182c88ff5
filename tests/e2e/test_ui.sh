#!/usr/bin/env bash
# The web UI in real headless Chromium (Debian's chromium, driven by
# playwright-core from tests/e2e/ui): the DAG list, trigger with conf and
# cells turning from running to success without a reload, a live log, a
# failing task's error line and clearing it, mark, pause surviving a
# reload, the gate report, events, a backfill's progress, keyboard use, a
# phone-sized page, a wrong token's message, and the 500 x 40 grid's render
# time. Screenshots go to the temp dir, the final ones to docs/ui/.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

UI_TEST="$DAGD_SOURCE_DIR/tests/e2e/ui"
CHROMIUM=${CHROMIUM:-/usr/bin/chromium}
[ -x "$CHROMIUM" ] || { echo "FAIL: $CHROMIUM missing (apt-get install chromium chromium-driver; scripts/dev deps)"; exit 1; }
command -v node >/dev/null && command -v npm >/dev/null || { echo "FAIL: node and npm are needed (scripts/dev deps)"; exit 1; }
if [ ! -d "$UI_TEST/node_modules/playwright-core" ]; then
  (cd "$UI_TEST" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) || { echo "FAIL: npm ci in $UI_TEST"; exit 1; }
fi

pids=()
trap 'for p in "${pids[@]}"; do kill -TERM "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

start_dagd() { # NAME [VAR=VALUE...]: a dagd in $WORK/NAME serving ui/; sets $port
  local name=$1 dir="$WORK/$1"
  shift
  mkdir -p "$dir/dags"
  cp "$UI_TEST"/dags/*.lua "$dir/dags/"
  (cd "$dir" && exec env DAGD_UI_PATH="$DAGD_SOURCE_DIR/ui" "$@" "$DAGD" --listen 127.0.0.1:0 --dags-folder "$dir/dags" \
    --state "$dir/dagd.db" --logs-folder "$dir/logs" >"$dir/dagd.log" 2>&1) &
  pids+=($!)
  local deadline=$((SECONDS + 10))
  until grep -q "listening on" "$dir/dagd.log" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || { echo "FAIL: dagd $name did not start"; tail -5 "$dir/dagd.log"; exit 1; }
    sleep 0.02
  done
  port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$dir/dagd.log" | tail -1)
}

start_dagd open
open_url="http://127.0.0.1:$port"
start_dagd locked DAGD_API_TOKEN=ui-test-token
locked_url="http://127.0.0.1:$port"

mkdir -p "$WORK/shots"
export UI_URL="$open_url" UI_DAGS="$WORK/open/dags" UI_LOCKED_URL="$locked_url" UI_TOKEN=ui-test-token \
  UI_SHOTS="$WORK/shots" UI_TMP="$WORK" CHROMIUM
(cd "$UI_TEST" && timeout 150 node ui.test.mjs) && rc=0 || rc=$?
if [ $rc -ne 0 ]; then
  echo "FAIL: browser test (exit $rc); dagd's log:"
  tail -15 "$WORK/open/dagd.log"
  exit 1
fi
# The final screenshots of the views, for docs/ui.md.
mkdir -p "$DAGD_SOURCE_DIR/docs/ui"
for f in list grid graph run log gate events backfill token phone; do
  [ -f "$WORK/shots/$f.png" ] && cp "$WORK/shots/$f.png" "$DAGD_SOURCE_DIR/docs/ui/$f.png"
done
echo "screenshots: $WORK/shots (copied to docs/ui/)"
