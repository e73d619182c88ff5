#!/usr/bin/env bash
# The dagd binary: flags, config checking, the load report, reload on
# SIGHUP and a clean stop on SIGTERM. Waits poll with a deadline.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# wait_for FILE TEXT: polls until FILE contains TEXT (10 s deadline).
wait_for() {
  local deadline=$((SECONDS + 10))
  while ! grep -qF -- "$2" "$1" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

run "$DAGD" --listen 127.0.0.1:0 --version
expect_rc 0 "--version"
expect_out "dagd " "--version text"

cat >"$WORK/dagd.lua" <<'LUA'
dags_folder = "dags"
parallelism = 4
LUA
run "$DAGD" --listen 127.0.0.1:0 --config "$WORK/dagd.lua" --check-config
expect_rc 0 "--check-config"
expect_out "ok" "--check-config text"
echo 'parallelism = "lots"' >"$WORK/bad.lua"
run "$DAGD" --listen 127.0.0.1:0 --config "$WORK/bad.lua" --check-config
expect_rc 2 "--check-config on a bad file"
expect_out "parallelism" "bad config names the key"
run env DAGD_LISTEN=nonsense "$DAGD" --check-config
expect_rc 2 "bad DAGD_LISTEN"
run "$DAGD" --listen 127.0.0.1:0 --no-such-flag
expect_rc 2 "unknown flag"

# --once: loads and reports, status 1 when any file is broken.
cd "$WORK"
run "$DAGD" --listen 127.0.0.1:0 --once --dags-folder "$DATA/good"
expect_rc 0 "--once on good DAGs"
expect_out "dag berlin: 4 tasks, schedule 30 2 * * * (Europe/Berlin)" "report names the DAG"
expect_out "1 files, 1 DAGs, 0 errors" "report counts"
run "$DAGD" --listen 127.0.0.1:0 --once --dags-folder "$DATA/mixed"
expect_rc 1 "--once on broken DAGs"
expect_out "$DATA/mixed/typo.lua:4: " "report lists errors with file:line"
[ -d "$WORK/var" ] && [ "$(stat -c %a "$WORK/var")" = 700 ] && ok || fail "state folder created 0700"

# Long-running: SIGHUP reloads, SIGTERM stops cleanly.
mkdir -p "$WORK/dags"
cp "$DATA/good/berlin.lua" "$WORK/dags/"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" >"$WORK/dagd.log" 2>&1 &
pid=$!
wait_for "$WORK/dagd.log" "1 files, 1 DAGs, 0 errors" && ok || { out=$(cat "$WORK/dagd.log"); fail "first load"; }
sed 's/"berlin"/"berlin2"/' "$WORK/dags/berlin.lua" >"$WORK/dags/second.lua"
kill -HUP $pid
wait_for "$WORK/dagd.log" "2 files, 2 DAGs, 0 errors" && ok || { out=$(cat "$WORK/dagd.log"); fail "reload on SIGHUP"; }
out=$(cat "$WORK/dagd.log")
expect_out "1 of 2 files changed" "a reload reads only the changed file"
# At start and on reload, each DAG loaded is reported with its next run
# (in its zone, as `dagctl next` shows it); an unchanged file is not
# reported again.
expect_out 'loader: dag berlin: next run ' "the start reports the next run"
expect_out '(schedule "30 2 * * *", Europe/Berlin; data interval from ' "the report names schedule, zone and interval"
expect_out 'loader: dag berlin2: next run ' "a reload reports the changed file's DAG"
[ "$(grep -c 'dag berlin: next run' "$WORK/dagd.log")" = 1 ] && ok || fail "an unchanged DAG is reported once"
grep -E 'dag berlin: next run [0-9]{4}-[0-9]{2}-[0-9]{2}T02:30:00\+0[12]:00 ' "$WORK/dagd.log" >/dev/null && ok ||
  fail "the next run is 02:30 Berlin time"
kill -TERM $pid
deadline=$((SECONDS + 10))
while kill -0 $pid 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
if kill -0 $pid 2>/dev/null; then
  kill -9 $pid
  rc=99
else
  wait $pid && rc=0 || rc=$?
fi
out=$(cat "$WORK/dagd.log")
expect_rc 0 "clean exit on SIGTERM"
expect_out "SIGTERM: stopping" "SIGTERM logged"
expect_no_out "live handles" "loop closed with no live handle"

finish
