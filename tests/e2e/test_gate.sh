#!/usr/bin/env bash
# The gate operator end to end: the first model passes (its baseline check
# is skipped: no baseline yet) and is deployed; a worse second model is
# stopped by the gate against the last successful run, deploy never runs,
# and the gate's report is in its outputs, its log and the API.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags"
cp "$DATA/gate/model.lua" "$WORK/dags/"
cd "$WORK/dags"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

run "$DAGCTL" trigger model --run-id first --wait
expect_rc 0 "the first model passes the gate"
out=$(cat "$WORK/logs/model/first/gate/1.log")
expect_out "no baseline yet" "the first gate says it has no baseline"
expect_out "pass    f1 >= 0.9" "absolute threshold still applied"
[ "$(cat deploys.txt)" = deployed ] && ok || fail "the first model was deployed"

run "$DAGCTL" trigger model --run-id second --conf '{"f1": "0.85"}' --wait
expect_rc 1 "a worse model fails the run"
out=$(cat "$WORK/logs/model/second/gate/1.log")
expect_out "fail    f1 >= 0.9  value 0.85" "absolute check fails in the log"
expect_out "fail    f1 >= baseline - 0.01  value 0.85  baseline 0.93  threshold 0.92" "baseline check against the last success"
expect_out "baseline run: first" "the baseline's run is named"
[ "$(wc -l < deploys.txt)" = 1 ] && ok || fail "deploy ran after a failing gate"
run "$DAGCTL" -o json tasks model second
python3 - "$out" <<'PY' && ok || fail "the report is in the gate's outputs in the API"
import json, sys
tis = {t["task_id"]: t for t in json.loads(sys.argv[1])["task_instances"]}
assert tis["deploy"]["state"] == "upstream_failed", tis["deploy"]
gate = tis["gate"]
assert gate["state"] == "failed" and gate["outputs"]["passed"] == "false", gate
report = json.loads(gate["outputs"]["report"])
by = {(r["output"], r["check"]): r for r in report}
assert by[("f1", ">= baseline - 0.01")]["result"] == "fail", by
assert by[("f1", ">= baseline - 0.01")]["baseline"] == 0.93, by
assert by[("latency_ms", "< 100")]["result"] == "pass", by
PY

finish
