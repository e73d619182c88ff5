#!/usr/bin/env bash
# A hostile conf sent with a trigger-scope token stays text in every shell
# context of a string cmd: inside "...", inside '...' and unquoted it prints
# verbatim and runs nothing (no pwned file); a date inside quotes renders
# without stray quotes; a run id `--help` never becomes an option of a
# list-form cmd (the try fails with a clear error) while `--run={{ run_id }}`
# and `--` before the template keep working; and a DAG file with a template
# inside $(...) is refused at load time with file:line.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

PY=/usr/bin/python3
poll() { # DESC SECONDS CMD...: polls CMD with a deadline
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $desc"; return 1; }
    sleep 0.1
  done
}

mkdir -p "$WORK/dags" "$WORK/bad"
cat >"$WORK/dags/q.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "q" }
d:shell { id = "dq", cmd = 'echo "double: {{ conf.x }}"' }
d:shell { id = "sq", cmd = "echo 'single: {{ conf.x }}'" }
d:shell { id = "uq", cmd = "printf '<%s>' {{ conf.x }}; echo" }
d:shell { id = "dq2", cmd = 'echo "double: {{ conf.y }}"; echo \'single: {{ conf.y }}\'; echo x{{ conf.y }}x' }
d:shell { id = "s3", cmd = 'echo "s3://bucket/raw/{{ ds }}/part-0.parquet"; echo "day = \'{{ ds }}\'"' }
local o = dagd.dag { id = "opt" }
o:shell { id = "ls", cmd = { "ls", "{{ run_id }}" } }
o:shell { id = "sh", cmd = "ls {{ run_id }}" }
o:shell { id = "prefixed", cmd = { "echo", "--run={{ run_id }}" } }
o:shell { id = "ended", cmd = { "printf", "[%s]", "--", "{{ run_id }}" } }
LUA
cat >"$WORK/bad/sub.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "sub" }
d:shell { id = "a",
  cmd = 'echo "$(echo {{ conf.x }})"' }
LUA

run "$DAGCTL" validate "$WORK/bad"
expect_rc 1 "a template inside \$(...) is refused by validate"
expect_out "$WORK/bad/sub.lua:4:" "the refusal names file:line"
expect_out "stands inside a command substitution \$(...) of the shell command" "the refusal says where the template stands"

cat >"$WORK/dagd.lua" <<'LUA'
api_tokens = { "admin-secret-q", { token = "trigger-secret-q", scope = "trigger" } }
LUA
"$DAGD" --config "$WORK/dagd.lua" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
  --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill "$pid" 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
poll "dagd to listen" 10 grep -q "listening on" "$WORK/dagd.log" || { cat "$WORK/dagd.log"; exit 1; }
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
export DAGD_TOKEN=trigger-secret-q

# The issue's value, and one with every quote character besides.
hostile='$(touch pwned) x; touch pwned2'
hostile2='$(touch pwned3) `touch pwned4` '"'"'; touch pwned5 "; touch pwned6 \ * #'
conf=$($PY -c 'import json,sys; print(json.dumps({"x": sys.argv[1], "y": sys.argv[2]}))' "$hostile" "$hostile2")
run "$DAGCTL" trigger q --run-id r1 --conf "$conf" --wait
expect_rc 0 "the run with a hostile conf succeeds"
run find "$WORK" -name 'pwned*'
[ -z "$out" ] && ok || fail "the hostile conf ran code: $out"
out=$(cat "$WORK/logs/q/r1/dq/1.log")
expect_out "double: $hostile" "inside double quotes the value prints verbatim"
out=$(cat "$WORK/logs/q/r1/sq/1.log")
expect_out "single: $hostile" "inside single quotes the value prints verbatim"
out=$(cat "$WORK/logs/q/r1/uq/1.log")
expect_out "<$hostile>" "unquoted the value is one word, verbatim"
out=$(cat "$WORK/logs/q/r1/dq2/1.log")
expect_out "double: $hostile2" "every quote character inside double quotes prints verbatim"
expect_out "single: $hostile2" "every quote character inside single quotes prints verbatim"
expect_out "x${hostile2}x" "every quote character unquoted prints verbatim"
out=$(cat "$WORK/logs/q/r1/s3/1.log")
day=$(grep -o 's3://bucket/raw/[^/]*/' <<<"$out" | cut -d/ -f5)
grep -qE '^[0-9]{4}-[0-9]{2}-[0-9]{2}$' <<<"$day" && ok || fail "a date inside double quotes renders bare: $day"
expect_out "day = '$day'" "single quotes inside double quotes stay as written"

# A run id that looks like an option, through the API (a trigger token).
code=$(curl -s -o "$WORK/resp" -w '%{http_code}' -H "Authorization: Bearer $DAGD_TOKEN" \
  -H 'Content-Type: application/json' -d '{"dag_run_id": "--help"}' "$DAGD_URL/api/v1/dags/opt/dagRuns")
out=$(cat "$WORK/resp")
[ "$code" = 200 ] || [ "$code" = 201 ] && ok || fail "trigger with run id --help: HTTP $code"
run_done() { "$DAGCTL" -o json runs opt | grep -qE '"state": *"(success|failed)"'; }
poll "the --help run to end" 30 run_done || fail "the --help run did not end"
tasks=$(curl -s -H "Authorization: Bearer $DAGD_TOKEN" "$DAGD_URL/api/v1/dags/opt/dagRuns/--help/taskInstances")
state_of() { $PY -c 'import json,sys; t=json.loads(sys.argv[1])["task_instances"]
print([x["state"] for x in t if x["task_id"] == sys.argv[2]][0])' "$tasks" "$1"; }
[ "$(state_of ls)" = failed ] && ok || fail "ls {{ run_id }} with run id --help: $(state_of ls), want failed"
[ "$(state_of sh)" = failed ] && ok || fail "sh ls {{ run_id }} with run id --help: $(state_of sh), want failed"
[ "$(state_of prefixed)" = success ] && ok || fail "--run={{ run_id }}: $(state_of prefixed), want success"
[ "$(state_of ended)" = success ] && ok || fail "-- {{ run_id }}: $(state_of ended), want success"
out=$(cat "$WORK"/logs/opt/--help/ls/1.log "$WORK/dagd.log" 2>/dev/null)
expect_out "begins with '-'" "the failure says why"
expect_no_out "Usage: ls" "ls never saw --help as an option"
out=$(cat "$WORK"/logs/opt/--help/prefixed/1.log)
expect_out "--run=--help" "literal text before the template keeps the value"
out=$(cat "$WORK"/logs/opt/--help/ended/1.log)
expect_out "[--][--help]" "after -- the value is an operand"

finish
