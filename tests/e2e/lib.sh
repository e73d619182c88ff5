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

expect_rc() { [ "$rc" -eq "$1" ] && ok || fail "$2: exit $rc, want $1"; }
expect_out() { grep -qF -- "$1" <<<"$out" && ok || fail "$2: output lacks: $1"; }
expect_no_out() { grep -qF -- "$1" <<<"$out" && fail "$2: output has: $1" || ok; }

finish() {
  echo "$passed passed, $failed failed"
  [ "$failed" -eq 0 ]
}
