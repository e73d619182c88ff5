# A Docker engine of the test's own, for the tests that need one: its own
# data root, exec root and socket under a folder of $WORK, no networking
# (no bridge, no iptables), so it touches nothing of the machine's.
# SPDX-License-Identifier: MIT

# stop_pid PID: SIGTERM, up to 20 s to go, then SIGKILL. Never a bare
# `wait`, which would hang on a dockerd that did not stop.
stop_pid() {
  local deadline=$((SECONDS + 20))
  kill "$1" 2>/dev/null || return 0
  while kill -0 "$1" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.1; done
  kill -9 "$1" 2>/dev/null
}

# dockerd_start DIR: starts dockerd over DIR; sets DOCKERD_PID and exports
# DOCKER_HOST. Returns 1 (having said why) when it is not up in 30 s.
dockerd_start() {
  local dir=$1
  mkdir -p "$dir"
  dockerd --data-root "$dir/root" --exec-root "$dir/exec" --pidfile "$dir/pid" -H "unix://$dir/docker.sock" \
    --bridge=none --iptables=false --ip6tables=false --ip-masq=false --userland-proxy=false >"$dir/log" 2>&1 &
  DOCKERD_PID=$!
  DOCKERD_DIR=$dir
  export DOCKER_HOST=unix://$dir/docker.sock
  local deadline=$((SECONDS + 30))
  until docker version >/dev/null 2>&1; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "$DOCKERD_PID" 2>/dev/null; then
      echo "FAIL: dockerd did not start:"
      tail -20 "$dir/log"
      return 1
    fi
    sleep 0.1
  done
}

# dockerd_stop: removes every container of the test's engine, stops it.
dockerd_stop() {
  [ -n "${DOCKERD_PID:-}" ] || return 0
  local ids
  ids=$(docker ps -aq 2>/dev/null)
  [ -z "$ids" ] || docker rm -f $ids >/dev/null 2>&1
  stop_pid "$DOCKERD_PID"
  DOCKERD_PID=
  # What the engine left mounted under its folder (the host network
  # namespace's nsfs once a container used --network host), deepest first,
  # so that the folder can be removed.
  local m
  for m in $(awk -v d="$DOCKERD_DIR/" 'index($2, d) == 1 {print $2}' /proc/mounts | sort -r); do
    umount "$m" 2>/dev/null || umount -l "$m" 2>/dev/null
  done
}
