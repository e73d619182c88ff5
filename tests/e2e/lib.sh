# Shared helpers for the e2e shell tests: locate the binaries, run a command
# capturing output and status, and assert on them with clear messages.
# SPDX-License-Identifier: MIT
set -u
: "${DAGD_BUILD_DIR:?set by ctest}"
: "${DAGD_SOURCE_DIR:?set by ctest}"
DAGCTL="$DAGD_BUILD_DIR/dagctl"
DAGD="$DAGD_BUILD_DIR/dagd"
DATA="$DAGD_SOURCE_DIR/tests/e2e/data"
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
passed=0
failed=0
out=
rc=0

# run CMD...: sets $out (stdout+stderr) and $rc.
run() {
  out=$("$@" 2>&1) && rc=0 || rc=$?
}

ok() { passed=$((passed + 1)); }
fail() {
  failed=$((failed + 1))
  echo "FAIL: $*"
  echo "---- output (rc=$rc) ----"
  echo "$out" | head -40
  echo "-------------------------"
}

# poll DESC SECONDS CMD...: polls CMD until it succeeds, with a deadline.
poll() {
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $desc"; return 1; }
    sleep 0.05
  done
}
# ti_field DAG RUN TASK FIELD: a task instance's field, through dagctl.
ti_field() {
  "$DAGCTL" -o json tasks "$1" "$2" 2>/dev/null | /usr/bin/python3 -c 'import json,sys
t=[x for x in json.load(sys.stdin)["task_instances"] if x["task_id"] == sys.argv[1]]
print(t[0].get(sys.argv[2]) if t else "")' "$3" "$4"
}
state_is() { [ "$(ti_field "$1" "$2" "$3" state)" = "$4" ]; }
gone() { ! kill -0 "$1" 2>/dev/null; }
# sup_pid [DIR]: the live try supervisor of DIR/dagd.db (DIR: $WORK), "" if none runs.
sup_pid() {
  local p
  p=$(head -1 "${1:-$WORK}/dagd.db.supervisor.lock" 2>/dev/null)
  [ -n "$p" ] && tr '\0' ' ' 2>/dev/null <"/proc/$p/cmdline" | grep -q ' supervise ' && echo "$p"
}
# sup_reap [DIR]: lets that supervisor leave (it does once its tries are
# over and no dagd is connected), killing it after 10 s.
sup_reap() {
  local p deadline=$((SECONDS + 10))
  p=$(sup_pid "${1:-}")
  [ -n "$p" ] || return 0
  while ! gone "$p" && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
  gone "$p" || kill -9 "$p" 2>/dev/null
}

expect_rc() { [ "$rc" -eq "$1" ] && ok || fail "$2: exit $rc, want $1"; }
expect_out() { grep -qF -- "$1" <<<"$out" && ok || fail "$2: output lacks: $1"; }
expect_no_out() { grep -qF -- "$1" <<<"$out" && fail "$2: output has: $1" || ok; }

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
