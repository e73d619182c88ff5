#!/usr/bin/env bash
# The docker operator against a real Docker engine the test starts (its own
# data root and socket, no networking) and images made from nothing
# outside (a static program, `docker import`ed): exit codes pass through,
# outputs come back through $DAGD_OUTPUT (the try's folder bind-mounted
# by --mount: every run here has a default run id, colons included, as
# users' runs do), docker's own failures (command
# not found, no image) are told apart from the container's exit code, a
# timeout stops and removes the container, a kill -9 of dagd while a
# container runs is re-adopted and finishes with its true exit code, and
# an image pushed to a local docker-registry is pulled by the digest the
# registry operator resolved.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
. "$DATA/registry/lib.sh"

[ "$(id -u)" = 0 ] || { echo "FAIL: dockerd needs root here (the test runs it with its own data root)"; exit 1; }
for c in dockerd docker docker-registry gcc; do
  command -v $c >/dev/null || { echo "FAIL: $c is not installed (scripts/dev deps)"; exit 1; }
done
. "$DATA/docker/dockerd.sh"
rc=0
pids=()
cleanup() {
  for p in "${pids[@]}"; do stop_pid "$p"; done
  dockerd_stop
  rm -rf "$WORK"
}
trap cleanup EXIT
dockerd_start "$WORK/docker" || exit 1

gcc -static -O2 -o "$WORK/app" "$DATA/docker/app.c" || { echo "FAIL: gcc -static"; exit 1; }
tar -C "$WORK" -cf "$WORK/app.tar" app
docker import -c 'ENTRYPOINT ["/app"]' "$WORK/app.tar" dagd-test/app:1 >/dev/null &&
  ok || fail "docker import of the static program"

mkdir -p "$WORK/dags"
cp "$DATA/docker/docker.lua" "$WORK/dags/"
export DAGD_SECRET_E2E=hunter2   # the daemon's secret: tasks may use it in templates, containers never see it
dagd_start || exit 1
pids+=($DAGD_PID)
conf='{"image": "dagd-test/app:1"}'

# container_of DAG RUN TASK TRY: the container's name, as dagd makes it.
container_of() { printf 'dagd-%s-%s-%s-%s' "$1" "$2" "$3" "$4" | tr -c 'A-Za-z0-9_.-' -; }

# A scheduled run, created by dagd itself at start: its default run id
# (scheduled__<date>T00:00:00+00:00) holds colons.
deadline=$((SECONDS + 30))
sched=""
until [ -n "$sched" ] && [ "$(ti_field nightly "$sched" score state)" = success ]; do
  [ $SECONDS -lt $deadline ] || break
  sched=$("$DAGCTL" -o json runs nightly | python3 -c '
import json, sys
runs = json.load(sys.stdin)["dag_runs"]
print(runs[0]["dag_run_id"] if runs else "")')
  sleep 0.2
done
out="run $sched"
case "$sched" in scheduled__*:*) ok ;; *) fail "the scheduled run has a default run id with colons" ;; esac
out=$(cat "$WORK/logs/nightly/$sched/score/1.log" 2>&1)
[ "$(ti_field nightly "$sched" score state)" = success ] && ok || fail "the scheduled run's docker task succeeds"
expect_out "hello from the container" "the scheduled run's container ran"
[ "$(ti_field nightly "$sched" score outputs.scored)" = "${sched:11:10}" ] && ok ||
  fail "the scheduled run's output came back through the mounted folder"

run "$DAGCTL" trigger containers --conf "$conf" --wait
expect_rc 1 "the run fails (some tasks fail on purpose)"
c1=$(sed -n 's/^triggered containers //p' <<<"$out" | head -1)
case "$c1" in manual__*:*) ok ;; *) fail "the manual run has a default run id with colons: '$c1'" ;; esac
out=$(cat "$WORK/logs/containers/$c1/ok/1.log")
[ "$(ti_field containers "$c1" ok state)" = success ] && ok || fail "ok succeeds"
[ "$(ti_field containers "$c1" ok outputs.f1)" = 0.93 ] && ok || fail "the container's output came back through \$DAGD_OUTPUT"
expect_out "hello from the container" "the container's stdout is in the log"
expect_out "task var tv-" "the task's own env reaches the container"
expect_out "daemon secret (unset)" "the daemon's DAGD_SECRET_* does not reach the container"
[ "$(ti_field containers "$c1" code exit_code)" = 3 ] && ok || fail "the container's exit code 3 passes through"
out=$(cat "$WORK/logs/containers/$c1/code/1.log")
expect_out "exited with code 3" "exit code logged"
[ "$(ti_field containers "$c1" notfound exit_code)" = 127 ] && ok || fail "command not found is docker's 127"
out=$(cat "$WORK/logs/containers/$c1/notfound/1.log")
expect_out "docker: the container's command was not found (127)" "not found: docker's failure, named"
out=$(cat "$WORK/logs/containers/$c1/noimage/1.log")
expect_out "docker: the container could not be created (125)" "no image: docker's failure, named"
[ "$(ti_field containers "$c1" timeout state)" = failed ] && ok || fail "the timeout fails the task"
out=$(cat "$WORK/logs/containers/$c1/timeout/1.log")
expect_out "docker: stopping container $(container_of containers "$c1" timeout 1) (docker stop -t 5, then docker kill)" \
  "timeout: docker stop"
expect_out "execution_timeout reached" "timeout recorded"
out=$(docker ps -a --format '{{.Names}}')
[ -z "$out" ] && ok || fail "no container left after the run (docker ps -a)"

# kill -9 of dagd while a container runs; a new dagd re-adopts the try.
run "$DAGCTL" trigger sleepy --conf '{"image": "dagd-test/app:1", "secs": "4"}'
s1=$(sed -n 's/^triggered sleepy //p' <<<"$out")
nap=$(container_of sleepy "$s1" nap 1)
deadline=$((SECONDS + 20))
until docker ps --format '{{.Names}}' | grep -qxF "$nap"; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.1
done
docker ps --format '{{.Names}}' | grep -qxF "$nap" && ok || fail "the container runs under its deterministic name $nap"
kill -9 $DAGD_PID
wait $DAGD_PID 2>/dev/null
dagd_start || exit 1
pids+=($DAGD_PID)
grep -qF "re-adopting sleepy/$s1/nap try 1" "$WORK/dagd.log" && ok || fail "the new dagd re-adopts the running try"
deadline=$((SECONDS + 30))
until [ "$(ti_field sleepy "$s1" nap state)" = failed ]; do [ $SECONDS -lt $deadline ] || break; sleep 0.2; done
[ "$(ti_field sleepy "$s1" nap exit_code)" = 7 ] && ok || fail "the re-adopted try ends with the container's exit code 7"
[ "$(ti_field sleepy "$s1" nap try_number)" = 1 ] && ok || fail "still try 1: nothing ran twice"
out=$(docker ps -a --format '{{.Names}}')
[ -z "$out" ] && ok || fail "the re-adopted container was removed"

# Push to a local registry; resolve; pull by digest.
registry_start reg || exit 1
pids+=($REG_PID)
docker tag dagd-test/app:1 "$REG/app:candidate" && docker push "$REG/app:candidate" >/dev/null &&
  ok || fail "docker push to the local registry"
docker rmi "$REG/app:candidate" >/dev/null
run "$DAGCTL" trigger pulled --conf "{\"reg\": \"$REG\"}" --wait
expect_rc 0 "the image resolved by digest runs"
p1=$(sed -n 's/^triggered pulled //p' <<<"$out" | head -1)
digest=$(tag_digest "$REG" app candidate)
[ -n "$digest" ] && [ "$(ti_field pulled "$p1" run outputs.digest)" = "$digest" ] && ok ||
  fail "the container ran the image of digest $digest"
docker images --digests --format '{{.Repository}}@{{.Digest}}' | grep -qx "$REG/app@$digest" && ok ||
  fail "the engine pulled $REG/app@$digest"

# A logs folder whose path holds a comma and a double quote: the --mount
# value quotes them as docker's CSV syntax wants, and the scheduled run of
# a fresh state (its default run id) gets its output back through it.
kill $DAGD_PID
wait $DAGD_PID 2>/dev/null
odd="$WORK/lo,g\"s"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/odd.db" --logs-folder "$odd" \
  >"$WORK/odd.log" 2>&1 &
pids+=($!)
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/odd.log"; do [ $SECONDS -lt $deadline ] || break; sleep 0.05; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/odd.log" | tail -1)"
deadline=$((SECONDS + 30))
state=""
until [ "$state" = success ] || [ "$state" = failed ]; do
  [ $SECONDS -lt $deadline ] || break
  state=$("$DAGCTL" -o json runs nightly 2>/dev/null | python3 -c '
import json, sys
runs = json.load(sys.stdin)["dag_runs"]
print(runs[0]["state"] if runs else "")' 2>/dev/null)
  sleep 0.2
done
out=$(cat "$odd"/nightly/*/score/1.log 2>&1)
[ "$state" = success ] && ok || fail "a docker task succeeds with a comma and a quote in the logs folder's path"
sched=$(ls "$odd/nightly")
[ "$(ti_field nightly "$sched" score outputs.scored)" = "${sched:11:10}" ] && ok ||
  fail "its output came back through the quoted --mount"

finish
