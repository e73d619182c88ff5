#!/usr/bin/env bash
# The kubectl, deploy and Kubernetes-Job operators end to end, against a
# recording stand-in for kubectl (tests/e2e/fake/kubectl: no cluster here)
# and a scripted HTTP server for the analyses. Each case asserts the exact
# kubectl command sequence: canaries that pass and that roll back at 25%,
# blue-green switch and switch-back, a rolling update undone after its
# rollout times out, a templated apply with waits, and docker tasks run as
# Jobs that succeed, fail (their exit code), time out (Job deleted) and are
# re-adopted after dagd is killed with -9 (the Job applied once).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

FAKE="$DAGD_SOURCE_DIR/tests/e2e/fake"
export PATH="$FAKE:$PATH"
export KUBECTL_FAKE_LOG="$WORK/kubectl.log" KUBECTL_FAKE_SCENARIO="$WORK/scenario"
mkdir -p "$WORK/dags"
cp -r "$DATA/kubectl/dags/." "$WORK/dags/"
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; [ -n "${KEEP:-}" ] || rm -rf "$WORK"' EXIT

# wait_for CMD...: polls CMD until it succeeds, 20 s at most.
wait_for() {
  local deadline=$((SECONDS + 20))
  until "$@"; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.05
  done
}

# The analysis server: answers in turn per path (the last answer repeats).
vec() { printf '{"status":"success","data":{"resultType":"vector","result":[{"metric":{},"value":[1767225600,"%s"]}]}}' "$1"; }
cat >"$WORK/routes.json" <<EOF
{"/health": [[200, "ok"]],
 "/good/api/v1/query": [[200, $(vec 0.001)]],
 "/bad/api/v1/query": [[200, $(vec 0.001)], [200, $(vec 0.31)]]}
EOF
python3 "$FAKE/analysis_server.py" "$WORK/routes.json" "$WORK/port" "$WORK/http.log" &
pids+=($!)
wait_for test -s "$WORK/port" || { echo "the analysis server did not start"; exit 1; }
export ANALYSIS_PORT=$(cat "$WORK/port")

start_dagd() { # start_dagd FOLDER [ARGS...]
  local folder=$1
  shift
  : >"$WORK/dagd.log"
  (cd "$folder" && exec "$DAGD" --listen 127.0.0.1:0 --dags-folder "$folder" --state "$WORK/dagd.db" \
    --logs-folder "$WORK/logs" "$@" >>"$WORK/dagd.log" 2>&1) &
  dagd_pid=$!
  pids+=($dagd_pid)
  wait_for grep -q "listening on" "$WORK/dagd.log" || { cat "$WORK/dagd.log"; exit 1; }
  export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
}

# scenario RULES: the stand-in's answers for the next run; the log restarts.
scenario() {
  printf '%s\n' "$@" >"$WORK/scenario"
  rm -f "$WORK"/kubectl.log*
  : >"$WORK/kubectl.log"
}

# expect_calls NAME LINE...: the stand-in saw exactly these commands.
expect_calls() {
  local name=$1
  shift
  local want
  want=$(printf '%s\n' "$@")
  out=$(cat "$WORK/kubectl.log")
  [ "$out" = "$want" ] && ok || {
    fail "$name: kubectl calls differ"
    diff <(echo "$want") <(echo "$out") | head -30
  }
}

# ti_field DAG RUN TASK FIELD: a field of a task instance, via the API.
ti_field() {
  "$DAGCTL" -o json tasks "$1" "$2" | python3 -c '
import json, sys
tis = {t["task_id"]: t for t in json.load(sys.stdin)["task_instances"]}
print(tis[sys.argv[1]].get(sys.argv[2]))' "$3" "$4"
}
# output_of DAG RUN TASK KEY: one output of a task instance.
output_of() {
  "$DAGCTL" -o json tasks "$1" "$2" | python3 -c '
import json, sys
tis = {t["task_id"]: t for t in json.load(sys.stdin)["task_instances"]}
print((tis[sys.argv[1]].get("outputs") or {}).get(sys.argv[2], ""))' "$3" "$4"
}

export KTEST=ktest-secret-5150 DAGD_SECRET_KTEST=ktest-secret-5150
start_dagd "$WORK/dags"
K="kubectl --namespace ml"

# --- canary: every step passes its analysis, then the stable takes the image.
scenario 'get deployment/api -o=jsonpath=\{\.spec\.replicas\}$ => exit 0, stdout 10' '. => exit 0'
run "$DAGCTL" trigger canary_ok --run-id r1 --wait
expect_rc 0 "a canary whose analyses pass succeeds"
steps=()
for s in "1 9" "3 7" "5 5" "10 0"; do
  set -- $s
  steps+=("$K scale deployment/api-canary --replicas=$1" "$K rollout status deployment/api-canary --timeout=120s"
    "$K scale deployment/api --replicas=$2")
done
expect_calls "canary passing" \
  "$K get deployment/api -o=jsonpath={.spec.replicas}" \
  "$K set image deployment/api-canary *=reg.local/api:2" \
  "${steps[@]}" \
  "$K set image deployment/api *=reg.local/api:2" \
  "$K scale deployment/api --replicas=10" \
  "$K rollout status deployment/api --timeout=120s" \
  "$K scale deployment/api-canary --replicas=0"
[ "$(grep -c '^/health$' "$WORK/http.log")" = 4 ] && ok || fail "one health check per step"
[ "$(grep -c '^/good/api/v1/query?query=sum%28rate%28http_errors_total' "$WORK/http.log")" = 4 ] && ok ||
  fail "one Prometheus query per step, the query URL-encoded"
out=$(cat "$WORK/logs/canary_ok/r1/deploy/1.log")
expect_out "step 2: 25% of traffic to the canary (3 canary, 7 stable replicas of 10)" "the steps are logged"
expect_out 'analysis at 100%: prometheus pass: sum(rate(http_errors_total{track="canary"}[1m])) = 0.001 (want < 0.05)' \
  "the analyses are logged"

# --- canary: the error rate at 25% is over the threshold: rolled back.
scenario 'get deployment/api -o=jsonpath=\{\.spec\.replicas\}$ => exit 0, stdout 10' '. => exit 0'
run "$DAGCTL" trigger canary_bad --run-id r1 --wait
expect_rc 1 "a canary whose analysis fails fails its run"
expect_calls "canary rolled back at 25%" \
  "$K get deployment/api -o=jsonpath={.spec.replicas}" \
  "$K set image deployment/api-canary *=reg.local/api:2" \
  "${steps[@]:0:6}" \
  "$K scale deployment/api --replicas=10" \
  "$K rollout status deployment/api --timeout=120s" \
  "$K scale deployment/api-canary --replicas=0"
[ "$(output_of canary_bad r1 deploy rollback)" = succeeded ] && ok || fail "the rollback outcome is an output"
[ "$(output_of canary_bad r1 deploy reason)" = "analysis failed at 25%" ] && ok || fail "the reason is an output"
out=$(cat "$WORK/logs/canary_bad/r1/deploy/1.log")
expect_out "= 0.31 (want < 0.05)" "the failing value is logged"
expect_out "rollback succeeded: deployment/api at 10 replicas, deployment/api-canary at 0" "rollback logged"

# --- blue-green: green comes up from the templated manifest, is checked,
# then the Service switches; blue stays. A later run switches back.
scenario 'get service/api -o=jsonpath=\{\.spec\.selector\.color\}$ => exit 0, stdout blue' '. => exit 0'
run "$DAGCTL" trigger bg --run-id r1 --wait
expect_rc 0 "blue-green deploys to the idle colour"
expect_calls "blue-green switch" \
  "$K get service/api -o=jsonpath={.spec.selector.color}" \
  "$K apply -f -" \
  "$K set image deployment/api-green *=reg.local/api:2" \
  "$K rollout status deployment/api-green --timeout=120s" \
  "$K patch service/api --type=merge -p {\"spec\":{\"selector\":{\"color\":\"green\"}}}"
grep -q "name: api-green" "$WORK/logs/bg/r1/deploy/1.manifest" &&
  grep -q "selector: {matchLabels: {app: api, color: green}}" "$WORK/logs/bg/r1/deploy/1.manifest" && ok ||
  fail "the manifest is rendered for the idle colour"
[ "$(output_of bg r1 deploy color)/$(output_of bg r1 deploy previous_color)" = green/blue ] && ok ||
  fail "the colours are outputs"
scenario 'get service/api -o=jsonpath=\{\.spec\.selector\.color\}$ => exit 0, stdout green' '. => exit 0'
run "$DAGCTL" trigger bg_back --run-id r1 --wait
expect_rc 0 "switching back succeeds"
expect_calls "blue-green switch back" \
  "$K get service/api -o=jsonpath={.spec.selector.color}" \
  "$K rollout status deployment/api-blue --timeout=120s" \
  "$K patch service/api --type=merge -p {\"spec\":{\"selector\":{\"color\":\"blue\"}}}"

# --- rolling: the rollout status times out; the update is undone.
scenario 'rollout status deployment/api --timeout=2s$ => exit 1, times 1, stdout error: timed out waiting for the condition' \
  '. => exit 0'
run "$DAGCTL" trigger rolling --run-id r1 --wait
expect_rc 1 "a rolling update that times out fails"
R="kubectl --context prod"
expect_calls "rolling undone" \
  "$R set image deployment/api *=reg.local/api:3" \
  "$R rollout status deployment/api --timeout=2s" \
  "$R rollout undo deployment/api" \
  "$R rollout status deployment/api --timeout=2s"
[ "$(output_of rolling r1 deploy rollback)" = succeeded ] && ok || fail "the undo is recorded"
out=$(cat "$WORK/logs/rolling/r1/deploy/1.log")
expect_out "error: timed out waiting for the condition" "kubectl's own message is in the log"

# --- kubectl: apply a templated manifest, then wait for what it applied.
scenario 'apply -f - -o name$ => exit 0, stdout deployment.apps/web\njob.batch/migrate' '. => exit 0'
run "$DAGCTL" trigger apply --run-id r1 --date 2026-01-02T00:00:00Z --wait
expect_rc 0 "apply and wait succeed"
expect_calls "kubectl apply and wait" \
  "$K apply -f - -o name" \
  "$K rollout status deployment/web --timeout=90s" \
  "$K wait --for=condition=complete job/migrate --timeout=90s"
m="$WORK/logs/apply/r1/migrate/1.manifest"
grep -q "replicas: 3" "$m" && grep -q 'image: "reg.local/web:2026-01-02"' "$m" && grep -q '"--run", "r1"' "$m" && ok ||
  fail "the manifest is rendered with params, ds and run_id"
# The secret in the manifest reaches kubectl on its stdin, never the disk:
# the copy beside the log shows it masked.
grep -qF "value: '$KTEST'" "$WORK/kubectl.log.stdin" && ok || fail "kubectl read the manifest with its secret on stdin"
grep -qF "value: '***'" "$m" && ok || fail "the manifest's copy shows the secret masked"
grep -rqF "$KTEST" "$WORK/logs" && fail "a file under logs/ holds the manifest's secret" || ok
[ "$(output_of apply r1 migrate objects)" = "deployment/web job/migrate" ] && ok || fail "applied objects are outputs"

# --- Kubernetes executor: a Job that succeeds, with outputs from its
# termination message. A default run id (manual__<time>+00:00): the Job's
# name and labels hold no colon, and the selector that finds a try's Job
# again carries dagd.key, the hash of the exact ids that ends the name,
# since the dagd.run label folds ids together.
jobname() { python3 -c 'import json,sys; print(json.load(open(sys.argv[1]))["metadata"]["name"])' "$1"; }
scenario 'get job -l dagd.dag=k8s_ok,dagd.run=manual__[-0-9T.]+-00-00,dagd.task=train,dagd.try=1,dagd.key=[0-9a-f]{8} -o name$ => exit 0' \
  'apply -f -$ => exit 0, stdout job.batch/created' \
  'logs -f job/dagd-k8s-ok-manual-[0-9a-z-]+-[0-9a-f]{8}$ => exit 0, stdout epoch 1 loss 0.5\nepoch 2 loss 0.2' \
  'get pod -l job-name=dagd-k8s-ok-manual-[0-9a-z-]+-[0-9a-f]{8} => exit 0, stdout 0\nmodel_uri=s3://models/7'
run "$DAGCTL" trigger k8s_ok --wait
expect_rc 0 "a Job that succeeds"
r=$(sed -n 's/^triggered k8s_ok //p' <<<"$out" | head -1)
job="$WORK/logs/k8s_ok/$r/train/1.job.json"
name=$(jobname "$job")
SEL="dagd.dag=k8s_ok,dagd.run=$(printf %s "$r" | tr -c 'A-Za-z0-9._-' -),dagd.task=train,dagd.try=1,dagd.key=${name: -8}"
JP='-o=jsonpath={.items[0].status.containerStatuses[0].state.terminated.exitCode}{"\n"}{.items[0].status.containerStatuses[0].state.terminated.message}'
expect_calls "Job succeeding" \
  "kubectl get job -l $SEL -o name" \
  "kubectl apply -f -" \
  "kubectl logs -f job/$name" \
  "kubectl get pod -l job-name=$name $JP"
python3 - "$job" "$r" <<'PY' && ok || fail "the Job manifest holds the task's image, args, env, resources and labels"
import json, re, sys
j = json.load(open(sys.argv[1]))
assert j["spec"]["backoffLimit"] == 0
pod = j["spec"]["template"]
c = pod["spec"]["containers"][0]
assert c["image"] == "reg.local/train:1" and c["args"] == ["--epochs", "3"], c
env = {e["name"]: e["value"] for e in c["env"]}
assert env["MODE"] == "full" and env["DAGD_RUN_ID"] == sys.argv[2] and env["DAGD_OUTPUT"] == "/dev/termination-log", env
assert "PATH" not in env and "KUBECTL_FAKE_LOG" not in env, env
assert c["resources"]["limits"] == {"cpu": "2", "memory": "4Gi", "nvidia.com/gpu": "1"}, c["resources"]
assert pod["spec"]["nodeSelector"] == {"pool": "gpu"} and pod["spec"]["restartPolicy"] == "Never", pod
name = j["metadata"]["name"]
assert re.fullmatch(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?", name), name
want = {"dagd.dag": "k8s_ok", "dagd.run": re.sub(r"[^A-Za-z0-9._-]", "-", sys.argv[2]), "dagd.task": "train",
        "dagd.try": "1", "dagd.key": name[-8:]}
for labels in (j["metadata"]["labels"], pod["metadata"]["labels"]):
    assert all(labels[k] == v for k, v in want.items()), labels
    assert all(re.fullmatch(r"([A-Za-z0-9][-A-Za-z0-9_.]{0,61})?[A-Za-z0-9]", v) for v in labels.values()), labels
PY
out=$(cat "$WORK/logs/k8s_ok/$r/train/1.log")
expect_out "epoch 2 loss 0.2" "the Job's logs are streamed into the task log"
[ "$(output_of k8s_ok "$r" train model_uri)" = "s3://models/7" ] && ok || fail "outputs come from the termination message"

# --- a Job whose container exits 3: the task fails with exit code 3.
scenario 'get job -l .* -o name$ => exit 0' '^kubectl apply => exit 0' '^kubectl logs -f => exit 0, stdout boom' \
  '^kubectl get pod => exit 0, stdout 3\n'
run "$DAGCTL" trigger k8s_fail --run-id r1 --wait
expect_rc 1 "a failing Job fails its run"
[ "$(ti_field k8s_fail r1 train exit_code)" = 3 ] && ok || fail "the container's exit code is the try's"

# --- a Job still running at execution_timeout: deleted before the try ends.
scenario 'get job -l .* -o name$ => exit 0' '^kubectl apply => exit 0' \
  "^kubectl logs -f => exit 0, block $WORK/never" '^kubectl delete job => exit 0, stdout job.batch deleted'
run "$DAGCTL" trigger k8s_timeout --run-id r1 --wait
expect_rc 1 "a Job that times out fails its run"
name=$(jobname "$WORK/logs/k8s_timeout/r1/train/1.job.json")
expect_calls "Job timed out" \
  "kubectl get job -l dagd.dag=k8s_timeout,dagd.run=r1,dagd.task=train,dagd.try=1,dagd.key=${name: -8} -o name" \
  "kubectl apply -f -" \
  "kubectl logs -f job/$name" \
  "kubectl delete job $name --ignore-not-found"
out=$(cat "$WORK/logs/k8s_timeout/r1/train/1.log")
expect_out "stopped: deleting Job $name" "the deletion is logged"

# --- a second operator run for the same try finds its Job by label.
spec="$WORK/logs/k8s_ok/$r/train/1.spec.json"
scenario "get job -l $SEL -o name\$ => exit 0, stdout job.batch/dagd-found" '^kubectl logs -f job/dagd-found$ => exit 0' \
  '^kubectl get pod -l job-name=dagd-found => exit 0, stdout 0'
run env DAGD_OUTPUT="$WORK/again.out" "$DAGD" op "$spec"
expect_rc 0 "the operator run again for the same try"
expect_calls "Job found by label, not created again" \
  "kubectl get job -l $SEL -o name" "kubectl logs -f job/dagd-found" "kubectl get pod -l job-name=dagd-found $JP"

# --- the executor from the config, and dagd killed with -9 mid-Job: the
# restarted daemon re-adopts the try, which completes once.
kill "$dagd_pid"
wait "$dagd_pid" 2>/dev/null
mkdir -p "$WORK/adopt"
cp "$DATA/kubectl/adopt/adopt.lua" "$WORK/adopt/"
scenario 'get job -l .* -o name$ => exit 0' '^kubectl apply => exit 0' \
  "^kubectl logs -f => exit 0, block $WORK/release, stdout done" '^kubectl get pod => exit 0, stdout 0'
start_dagd "$WORK/adopt" --executor kubernetes
"$DAGCTL" trigger k8s_adopt --run-id r1 >/dev/null
wait_for grep -q "logs -f" "$WORK/kubectl.log" || fail "the Job's logs were not followed"
kill -9 "$dagd_pid"
wait "$dagd_pid" 2>/dev/null
start_dagd "$WORK/adopt" --executor kubernetes
touch "$WORK/release"
run_done() { [ "$(ti_field k8s_adopt r1 train state 2>/dev/null)" = success ]; }
wait_for run_done && ok || fail "the re-adopted try did not succeed"
name=$(jobname "$WORK/logs/k8s_adopt/r1/train/1.job.json")
expect_calls "Job applied once across the restart" \
  "kubectl get job -l dagd.dag=k8s_adopt,dagd.run=r1,dagd.task=train,dagd.try=1,dagd.key=${name: -8} -o name" \
  "kubectl apply -f -" \
  "kubectl logs -f job/$name" \
  "kubectl get pod -l job-name=$name $JP"
[ "$(ti_field k8s_adopt r1 train try_number)" = 1 ] && ok || fail "the try completed once"

finish
