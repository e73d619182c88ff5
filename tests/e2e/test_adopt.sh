#!/usr/bin/env bash
# A try that ends while dagd is away keeps its real times: dagd is killed
# while the try runs, the try ends, dagd starts again and records the
# end. The task instance's end is the try's end (before the restart), not
# when the new dagd noticed it, and its start is the try's start; so the
# duration is the try's. And the try's files are 0600 under an ordinary
# umask, $DAGD_OUTPUT included.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
rc=0 out=
pid= TRY=
# cleanup: dagd, and the try's process group if it still runs (by the
# pids its shim recorded).
cleanup() {
  [ -n "$pid" ] && kill -9 "$pid" 2>/dev/null
  if [ -n "$TRY" ] && [ -s "$TRY.pid" ] && [ ! -e "$TRY.exit" ]; then
    task=$(sed -n 's/^task //p' "$TRY.pid")
    [ -n "$task" ] && kill -9 -- "-$task" 2>/dev/null
  fi
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT

poll() {
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $desc"; return 1; }
    sleep 0.05
  done
}
now() { date +%s.%N; }

umask 022
mkdir -p "$WORK/dags" "$WORK/marks"
cat >"$WORK/dags/slow.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "slow", default_args = { retries = 0 } }
d:shell { id = "t", cmd = 'date +%s.%N > $WORK/marks/start; while [ ! -e $WORK/marks/go ]; do sleep 0.05; done; '
                       .. 'echo answer=42 > "\$DAGD_OUTPUT"; date +%s.%N > $WORK/marks/end' }
LUA
start_dagd() {
  "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
    >>"$WORK/dagd.log" 2>&1 &
  pid=$!
}
listening() { [ "$(grep -c "listening on" "$WORK/dagd.log" 2>/dev/null)" -ge "$1" ]; }

start_dagd
poll "dagd to listen" 10 listening 1 || { cat "$WORK/dagd.log"; exit 1; }
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
run "$DAGCTL" trigger slow
expect_rc 0 "trigger"
run_id=$(sed -n 's/^triggered slow //p' <<<"$out")
TRY="$WORK/logs/slow/$run_id/t/1"
poll "the try to start" 10 test -s "$WORK/marks/start" || exit 1
kill -9 $pid
wait $pid 2>/dev/null
pid=
# The try ends while no dagd watches it: its shim writes the exit record.
touch "$WORK/marks/go"
poll "the try's exit record" 10 test -s "$TRY.exit" || exit 1
restart=$(now)
start_dagd
poll "dagd to listen again" 10 listening 2 || { cat "$WORK/dagd.log"; exit 1; }
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
ended() { "$DAGCTL" -o json tasks slow "$run_id" | grep -q '"state": *"success"'; }
poll "the end to be recorded" 10 ended || { cat "$WORK/dagd.log"; exit 1; }

run "$DAGCTL" -o json tasks slow "$run_id"
python3 - "$out" "$(cat "$WORK/marks/start")" "$(cat "$WORK/marks/end")" "$restart" <<'PY' && ok || fail "the re-adopted try keeps its real start and end"
import datetime, json, sys
ti = json.loads(sys.argv[1])["task_instances"][0]
t = lambda s: datetime.datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp()
start, end = t(ti["start_date"]), t(ti["end_date"])
began, finished, restart = map(float, sys.argv[2:5])
assert ti["outputs"] == {"answer": "42"}, ti
assert start <= began, f"start {start} is after the task began ({began})"
assert finished <= end < restart, f"end {end} is not between the task's end ({finished}) and the restart ({restart})"
assert ti["duration"] < restart - start, f"duration {ti['duration']} counts past the restart"
PY

for f in log pid exit out; do
  [ "$(stat -c %a "$TRY.$f")" = 600 ] && ok || fail "<try>.$f is 0600 (it is $(stat -c %a "$TRY.$f"))"
done
[ "$(stat -c %a "$WORK/logs/slow/$run_id/t")" = 700 ] && ok || fail "the try's folder is 0700"

kill -TERM $pid
wait $pid 2>/dev/null
pid=
finish
