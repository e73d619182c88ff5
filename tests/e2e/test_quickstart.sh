#!/usr/bin/env bash
# The quick start as README.md gives it. `scripts/dev up` runs build/dagd
# from the top of the repository with no config file, so every path is a
# relative default: dags_folder "dags", state "var/dagd.db", logs_folder
# "var/logs". This test does the same in a copy of the repository's dags/
# (the only other thing dagd reads there) and runs the bundled pipeline,
# dags/fraud_detection.lua, to success, and hello.lua beside it. Tasks run
# in their DAG file's folder, so the paths they are handed ($DAGD_OUTPUT,
# the DAG file of a d:lua task) must be absolute: dagd resolves every
# configured path once, at start. The pipeline's peers are the stand-ins
# test_pipeline.sh uses: a real docker-registry, a recording kubectl and
# a scripted Prometheus.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
rc=0 out=

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
latest_run() { "$DAGCTL" -o json runs "$1" | python3 -c '
import json, sys
runs = json.load(sys.stdin)["dag_runs"]
print(runs[0]["dag_run_id"] if runs else "")'; }
has_run() { [ -n "$(latest_run "$1")" ]; }
run_state() { "$DAGCTL" -o json runs "$1" | python3 -c '
import json, sys
print(next((r["state"] for r in json.load(sys.stdin)["dag_runs"] if r["dag_run_id"] == sys.argv[1]), ""))' "$2"; }
run_done() { case "$(run_state "$1" "$2")" in success | failed) return 0 ;; *) return 1 ;; esac; }
states() {
  "$DAGCTL" -o json tasks "$1" "$2" |
    python3 -c 'import json, sys; print(" ".join(t["task_id"] + "=" + t["state"] for t in json.load(sys.stdin)["task_instances"]))'
}

# --- the pipeline's peers
port=$(free_port)
mkdir -p "$WORK/registry"
printf 'version: 0.1\nlog: {level: warn}\nstorage:\n  filesystem: {rootdirectory: %s}\n  delete: {enabled: true}\nhttp: {addr: 127.0.0.1:%s}\n' \
  "$WORK/registry/data" "$port" >"$WORK/registry/config.yml"
docker-registry serve "$WORK/registry/config.yml" >"$WORK/registry/log" 2>&1 &
pids+=($!)
REG=127.0.0.1:$port
registry_up() { [ "$(curl -s -o /dev/null -w '%{http_code}' "http://$REG/v2/")" = 200 ]; }
poll "docker-registry" 20 registry_up || { cat "$WORK/registry/log"; exit 1; }
cat >"$WORK/routes.json" <<'EOF'
{"/api/v1/query": [[200, {"status": "success", "data": {"resultType": "vector",
  "result": [{"metric": {}, "value": [1767225600, "0.002"]}]}}]]}
EOF
python3 "$FAKE/analysis_server.py" "$WORK/routes.json" "$WORK/prom.port" "$WORK/prom.log" &
pids+=($!)
poll "the Prometheus stand-in" 10 test -s "$WORK/prom.port" || exit 1
export PATH="$FAKE:$PATH" KUBECTL_FAKE_LOG="$WORK/kubectl.log" KUBECTL_FAKE_SCENARIO="$WORK/scenario"
printf '%s\n' 'get deployment/fraud -o=jsonpath=\{\.spec\.replicas\}$ => exit 0, stdout 20' '. => exit 0' >"$WORK/scenario"

# --- the repository as a user has it, and `scripts/dev up` in it:
# `mkdir -p var; exec build/dagd` from the top folder, no flags, no
# config. Only the address differs (any free port, as every test).
REPO="$WORK/repo"
mkdir -p "$REPO"
cp -r "$DAGD_SOURCE_DIR/dags" "$REPO/"
rm -rf "$REPO/dags/examples/fraud/data"
cd "$REPO"
mkdir -p var
grep -q 'mkdir -p var' "$DAGD_SOURCE_DIR/scripts/dev" && grep -q 'exec "$top/build/dagd"$' "$DAGD_SOURCE_DIR/scripts/dev" &&
  ok || fail "scripts/dev up still runs build/dagd with no flags from the top folder (this test copies that)"
unset DAGD_CONFIG DAGD_DAGS_FOLDER DAGD_STATE DAGD_LOGS_FOLDER
FRAUD_REGISTRY=$REG FRAUD_PROMETHEUS="http://127.0.0.1:$(cat "$WORK/prom.port")" FRAUD_CANARY_PAUSE=1s \
  DAGD_LISTEN=127.0.0.1:0 "$DAGD" >"$WORK/dagd.log" 2>&1 &
pids+=($!)
poll "dagd to listen" 10 grep -qs "listening on" "$WORK/dagd.log" || { cat "$WORK/dagd.log"; exit 1; }
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

out=$(cat "$WORK/dagd.log")
expect_out "starting: dags $REPO/dags, state $REPO/var/dagd.db, logs $REPO/var/logs" \
  "the relative defaults are resolved against the working directory at start"

# catchup = false: each DAG gets its latest interval's run at once.
poll "the pipeline's nightly run" 10 has_run fraud_detection || { cat "$WORK/dagd.log"; exit 1; }
poll "hello's run" 10 has_run hello || exit 1
fraud=$(latest_run fraud_detection)
hello=$(latest_run hello)
poll "the pipeline's run to end" 60 run_done fraud_detection "$fraud" || true
poll "hello's run to end" 30 run_done hello "$hello" || true

run states fraud_detection "$fraud"
want="collect=success clean=success validate=success drift=success train=success evaluate=success"
want+=" package=success gate=success promote=success deploy=success"
[ "$out" = "$want" ] && ok || fail "every task of the pipeline succeeds with the default paths"
[ "$(run_state fraud_detection "$fraud")" = success ] && ok || fail "the pipeline's run succeeds"
run states hello "$hello"
[ "$out" = "hello=success date=success goodbye=success" ] && ok || fail "hello succeeds with the default paths"

# What made the old code fail, seen from the tasks themselves.
LOGS="$REPO/var/logs/fraud_detection/$fraud"
run cat "$LOGS/collect/1.log"
expect_no_out "No such file or directory" "collect found its \$DAGD_OUTPUT"
run "$DAGCTL" -o json tasks fraud_detection "$fraud"
expect_out '"rows":' "collect's outputs were read from its \$DAGD_OUTPUT"
run cat "$LOGS/drift/1.spec.json"
expect_out "\"fileloc\":\"$REPO/dags/fraud_detection.lua\"" "the d:lua task is handed its DAG file's absolute path"
[ -s "$REPO/var/dagd.db" ] && [ -d "$REPO/dags/examples/fraud/data/$fraud" ] && ok ||
  fail "the state is in ./var and the pipeline's files beside its DAG file"

finish
