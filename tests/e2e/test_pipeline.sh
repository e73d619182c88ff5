#!/usr/bin/env bash
# The example pipeline (dags/fraud_detection.lua, as shipped) end to end,
# against local stand-ins: a real docker-registry on loopback, a recording
# kubectl (tests/e2e/fake/kubectl) first on PATH, and a scripted
# Prometheus for the canary's analysis.
#  1. The nightly run dagd starts for the latest interval: every task succeeds; the model image is
#     pushed as fraud:candidate and promoted (prod has the candidate's
#     digest); the canary's kubectl commands are exactly the expected ones.
#  2. A drift alert posted to the Alertmanager webhook starts a retraining
#     run on drifted data (the alert's annotations carry the stand-in's
#     drift and seed). The data check passes but reports the drift
#     (psi.* outputs, the drift task's warning); the new model is worse, the
#     gate rejects it against the first run's metrics (report in its
#     outputs and log), promote and deploy are upstream_failed, prod keeps
#     the first model and kubectl is never called.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

command -v docker-registry >/dev/null || { echo "FAIL: docker-registry is not installed (scripts/dev deps)"; exit 1; }
FAKE="$DAGD_SOURCE_DIR/tests/e2e/fake"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

free_port() { python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])'; }
# poll DESC SECONDS CMD...: runs CMD until it succeeds, with a deadline.
poll() {
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for $desc"; return 1; }
    sleep 0.1
  done
}
# ti DAG RUN TASK FIELD: a field of a task instance ("outputs.f1" for an output), via the API.
ti() {
  "$DAGCTL" -o json tasks "$1" "$2" | python3 -c '
import json, sys
tis = {t["task_id"]: t for t in json.load(sys.stdin)["task_instances"]}
v = tis[sys.argv[1]]
for k in sys.argv[2].split(".", 1) if sys.argv[2].startswith("outputs.") else [sys.argv[2]]:
    v = (v or {}).get(k)
print("" if v is None else v)' "$3" "$4"
}
# states DAG RUN: "task=state" for every task, in topological order.
states() {
  "$DAGCTL" -o json tasks "$1" "$2" |
    python3 -c 'import json, sys; print(" ".join(t["task_id"] + "=" + t["state"] for t in json.load(sys.stdin)["task_instances"]))'
}
run_state() { "$DAGCTL" -o json runs fraud_detection | python3 -c '
import json, sys
print(next((r["state"] for r in json.load(sys.stdin)["dag_runs"] if r["dag_run_id"] == sys.argv[1]), ""))' "$1"; }
run_done() { case "$(run_state "$1")" in success | failed) return 0 ;; *) return 1 ;; esac; }
# tag_digest TAG: the digest the registry serves for fraud:TAG, or nothing.
tag_digest() {
  curl -s -I -H 'Accept: application/vnd.docker.distribution.manifest.v2+json' \
    -H 'Accept: application/vnd.oci.image.manifest.v1+json' "http://$REG/v2/fraud/manifests/$1" |
    tr -d '\r' | sed -n 's/^[Dd]ocker-[Cc]ontent-[Dd]igest: //p'
}

# --- the stand-ins
port=$(free_port)
mkdir -p "$WORK/registry"
printf 'version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$WORK/registry/data" "$port" >"$WORK/registry/config.yml"
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
pids+=($!)
REG=127.0.0.1:$port
registry_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")" = 200 ]; }
poll "docker-registry" 20 registry_up || { cat "$WORK/registry/log"; exit 1; }

# Prometheus: the canary's error ratio is 0.2% at every step.
cat >"$WORK/routes.json" <<'EOF'
{"/api/v1/query": [[200, {"status": "success", "data": {"resultType": "vector",
  "result": [{"metric": {}, "value": [1767225600, "0.002"]}]}}]]}
EOF
python3 "$FAKE/analysis_server.py" "$WORK/routes.json" "$WORK/prom.port" "$WORK/prom.log" &
pids+=($!)
poll "the Prometheus stand-in" 10 test -s "$WORK/prom.port" || exit 1

export PATH="$FAKE:$PATH" KUBECTL_FAKE_LOG="$WORK/kubectl.log" KUBECTL_FAKE_SCENARIO="$WORK/scenario"
printf '%s\n' 'get deployment/fraud -o=jsonpath=\{\.spec\.replicas\}$ => exit 0, stdout 20' '. => exit 0' >"$WORK/scenario"
: >"$WORK/kubectl.log"

# --- dagd on a copy of dags/ (the pipeline writes its files beside it)
mkdir -p "$WORK/dags/examples"
cp "$DAGD_SOURCE_DIR/dags/fraud_detection.lua" "$WORK/dags/"
cp -r "$DAGD_SOURCE_DIR/dags/examples/fraud" "$WORK/dags/examples/"
rm -rf "$WORK/dags/examples/fraud/data"
FRAUD_REGISTRY=$REG FRAUD_PROMETHEUS="http://127.0.0.1:$(cat "$WORK/prom.port")" FRAUD_CANARY_PAUSE=1s \
  "$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
pids+=($!)
poll "dagd to listen" 10 grep -qs "listening on" "$WORK/dagd.log" || { cat "$WORK/dagd.log"; exit 1; }
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
LOGS="$WORK/logs/fraud_detection"
"$DAGCTL" dags 2>&1 | grep -q fraud_detection || { echo "FAIL: fraud_detection did not load"; cat "$WORK/dagd.log"; exit 1; }

# --- 1. the happy path: the nightly run. catchup = false, so dagd starts
# the latest interval's run (and only that one) as soon as it loads the DAG.
latest_run() { "$DAGCTL" -o json runs fraud_detection | python3 -c '
import json, sys
runs = json.load(sys.stdin)["dag_runs"]
print(runs[0]["dag_run_id"] if runs else "")'; }
has_run() { [ -n "$(latest_run)" ]; }
poll "the nightly run" 10 has_run || exit 1
happy=$(latest_run)
case "$happy" in scheduled__*) ok ;; *) fail "the first run is the scheduled one ($happy)" ;; esac
poll "the nightly run to end" 45 run_done "$happy" || true
run states fraud_detection "$happy"
want="collect=success clean=success validate=success drift=success train=success evaluate=success"
want+=" package=success gate=success promote=success deploy=success"
[ "$out" = "$want" ] && ok || fail "every task of the nightly run succeeds"
[ "$(run_state "$happy")" = success ] && ok || fail "the nightly run succeeds"
ds=$(sed 's/^scheduled__\([0-9-]*\)T.*/\1/' <<<"$happy")
[ "$(ti fraud_detection "$happy" collect outputs.seed)" = "$ds" ] && ok || fail "the data is seeded by ds"
[ "$(ti fraud_detection "$happy" drift outputs.drifted)" = false ] && ok || fail "no drift reported for an ordinary day"
f1_first=$(ti fraud_detection "$happy" evaluate outputs.f1)
python3 -c 'import sys; assert float(sys.argv[1]) >= 0.7' "$f1_first" && ok || fail "the first model's f1 ($f1_first) >= 0.7"
out=$(cat "$LOGS/$happy/gate/1.log")
expect_out "no baseline yet" "the first gate has no baseline"
expect_out "pass    f1 >= 0.7" "the absolute thresholds apply"

candidate=$(ti fraud_detection "$happy" package outputs.digest)
case "$candidate" in sha256:????????????????*) ok ;; *) fail "package's digest output ($candidate)" ;; esac
[ "$(tag_digest candidate)" = "$candidate" ] && ok || fail "fraud:candidate is the packaged model"
[ "$(tag_digest prod)" = "$candidate" ] && ok || fail "fraud:prod has the candidate's digest"
[ "$(ti fraud_detection "$happy" package outputs.image)" = "$REG/fraud@$candidate" ] && ok || fail "package's image output"

K="kubectl --namespace fraud"
IMG="$REG/fraud@$candidate"
want=("$K get deployment/fraud -o=jsonpath={.spec.replicas}"
  "$K apply -f -"
  "$K set image deployment/fraud-canary *=$IMG")
for s in "1 19" "5 15" "10 10" "20 0"; do
  set -- $s
  want+=("$K scale deployment/fraud-canary --replicas=$1" "$K rollout status deployment/fraud-canary --timeout=300s"
    "$K scale deployment/fraud --replicas=$2")
done
want+=("$K set image deployment/fraud *=$IMG" "$K scale deployment/fraud --replicas=20"
  "$K rollout status deployment/fraud --timeout=300s" "$K scale deployment/fraud-canary --replicas=0")
out=$(cat "$WORK/kubectl.log")
[ "$out" = "$(printf '%s\n' "${want[@]}")" ] && ok || {
  fail "the canary's kubectl commands"
  diff <(printf '%s\n' "${want[@]}") <(echo "$out") | head -20
}
m="$LOGS/$happy/deploy/1.manifest"
grep -q "name: fraud-canary" "$m" && grep -q "track: canary" "$m" && grep -q "image: $IMG" "$m" && ok ||
  fail "the canary manifest is rendered with its name, track and image"
[ "$(grep -c '^/api/v1/query?query=sum%28rate%28fraud_http_errors_total' "$WORK/prom.log")" = 4 ] && ok ||
  fail "one Prometheus analysis per canary step"
[ "$(ti fraud_detection "$happy" deploy outputs.step)" = "100%" ] && ok || fail "the canary reached 100%"

# --- 2. drift: an Alertmanager notification starts a retraining run
: >"$WORK/kubectl.log"
run curl -s -w '\n%{http_code}' -X POST -H 'Content-Type: application/json' "$DAGD_URL/api/v1/hooks/alertmanager" \
  --data-binary @- <<'EOF'
{"version": "4", "groupKey": "{}:{alertname=\"FraudFeatureDrift\"}", "status": "firing", "receiver": "dagd",
 "groupLabels": {"alertname": "FraudFeatureDrift"}, "commonLabels": {}, "commonAnnotations": {},
 "externalURL": "http://alertmanager:9093", "truncatedAlerts": 0,
 "alerts": [{"status": "firing", "fingerprint": "5f2a9c1d0e7b4a36",
   "labels": {"alertname": "FraudFeatureDrift", "event": "drift_detected", "model": "fraud", "severity": "warning"},
   "annotations": {"summary": "fraud model inputs drifted", "drift": "1", "seed": "2026-03-02"},
   "startsAt": "2026-03-02T09:00:00Z", "endsAt": "0001-01-01T00:00:00Z",
   "generatorURL": "http://prometheus:9090/graph"}]}
EOF
expect_out 202 "the alert is accepted"
drift_run=$(sed '$d' <<<"$out" | python3 -c 'import json, sys; print(json.load(sys.stdin)["dag_runs"][0]["dag_run_id"])' 2>/dev/null)
case "$drift_run" in event__*) ok ;; *) fail "the alert started an event run ($drift_run)" ;; esac
poll "the retraining run to end" 45 run_done "$drift_run" || true
[ "$(run_state "$drift_run")" = failed ] && ok || fail "the retraining run fails (at the gate)"
run states fraud_detection "$drift_run"
want="collect=success clean=success validate=success drift=success train=success evaluate=success"
want+=" package=success gate=failed promote=upstream_failed deploy=upstream_failed"
[ "$out" = "$want" ] && ok || fail "the gate stops the run; promote and deploy never start"
[ "$(ti fraud_detection "$drift_run" collect outputs.drift)" = 1 ] && ok || fail "the alert's drift reached collect"

# The data check reports the drift without failing.
psi=$(ti fraud_detection "$drift_run" validate outputs.psi.amount)
python3 -c 'import sys; assert float(sys.argv[1]) > 0.2' "$psi" && ok || fail "psi.amount ($psi) shows the drift"
[ "$(ti fraud_detection "$drift_run" drift outputs.drifted)" = true ] && ok || fail "the drift task reports drift"
case ",$(ti fraud_detection "$drift_run" drift outputs.columns)," in *,amount,*) ok ;; *) fail "amount is a drifted column" ;; esac
out=$(cat "$LOGS/$drift_run/drift/1.log")
expect_out "WARNING: amount drifted from the reference: PSI" "the drift warning is in the log"
out=$(cat "$LOGS/$drift_run/validate/1.log")
expect_out "pass  psi amount" "the data check logs the PSI"

# The worse model is rejected against the first run's metrics.
f1_drift=$(ti fraud_detection "$drift_run" evaluate outputs.f1)
python3 -c 'import sys; assert float(sys.argv[1]) < float(sys.argv[2]) - 0.1' "$f1_drift" "$f1_first" && ok ||
  fail "the drifted model is worse (f1 $f1_drift vs $f1_first)"
out=$(cat "$LOGS/$drift_run/gate/1.log")
expect_out "baseline run: $happy" "the gate's baseline is the first run"
expect_out "fail    f1 >= baseline - 0.1  value $f1_drift  baseline $f1_first" "the failing check is in the log"
run ti fraud_detection "$drift_run" gate outputs.report
python3 - "$out" "$f1_first" <<'PY' && ok || fail "the report is in the gate's outputs"
import json, sys
by = {(r["output"], r["check"]): r for r in json.loads(sys.argv[1])}
r = by[("f1", ">= baseline - 0.1")]
assert r["result"] == "fail" and r["baseline"] == float(sys.argv[2]), r
assert by[("latency_ms", "< 50")]["result"] == "pass", by
PY
[ "$(ti fraud_detection "$drift_run" gate outputs.passed)" = false ] && ok || fail "the gate's passed output"

# Nothing reached production.
[ "$(tag_digest prod)" = "$candidate" ] && ok || fail "prod still has the first model"
new=$(ti fraud_detection "$drift_run" package outputs.digest)
[ -n "$new" ] && [ "$new" != "$candidate" ] && [ "$(tag_digest candidate)" = "$new" ] && ok ||
  fail "the rejected model is only the candidate"
[ ! -s "$WORK/kubectl.log" ] && ok || fail "kubectl was not called: $(head -3 "$WORK/kubectl.log")"
[ ! -e "$LOGS/$drift_run/deploy/1.log" ] && ok || fail "deploy never started"

finish
