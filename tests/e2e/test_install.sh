#!/usr/bin/env bash
# `cmake --install` into a fresh prefix puts every file where it belongs:
# the three programs, the Lua library and the UI, the systemd unit, the
# bash completion, the example config, the LICENSE (MIT, the licence every
# SPDX line of the tree names); the installed programs work from there.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

P="$WORK/prefix"
run cmake --install "$DAGD_BUILD_DIR" --prefix "$P"
expect_rc 0 "cmake --install --prefix"

for f in bin/dagd bin/dagctl bin/dagd-shim; do
  [ -x "$P/$f" ] && ok || fail "$f is installed and executable"
done
for f in share/dagd/lua/dagd/init.lua share/dagd/ui/index.html; do
  [ -f "$P/$f" ] && ok || fail "$f is installed"
done
# installed path => the file of the source tree it must be.
while read -r dest src; do
  cmp -s "$P/$dest" "$DAGD_SOURCE_DIR/$src" && ok || fail "$dest is installed as a copy of $src"
done <<'EOF'
lib/systemd/system/dagd.service contrib/dagd.service
lib/sysusers.d/dagd.conf contrib/dagd.sysusers
share/bash-completion/completions/dagctl contrib/dagctl.bash-completion
share/doc/dagd/examples/dagd.lua.example contrib/dagd.lua.example
share/doc/dagd/LICENSE LICENSE
EOF
# Every file of the Lua library and of the UI, nothing left behind.
for d in lua ui; do
  out=$(diff -r "$DAGD_SOURCE_DIR/$d" "$P/share/dagd/$d" 2>&1) && ok || fail "share/dagd/$d is the whole $d/"
done

# The licence: MIT text, and MIT is what the SPDX lines say.
grep -q "^MIT License$" "$DAGD_SOURCE_DIR/LICENSE" && grep -q "Permission is hereby granted, free of charge" \
  "$DAGD_SOURCE_DIR/LICENSE" && ok || fail "LICENSE is the MIT licence"
# The tracked files; outside a git checkout, the tree less what is built
# or fetched into it.
spdx="SPDX""-License-Identifier: [A-Za-z0-9.+-]*" # split: this line is no SPDX line
if git -C "$DAGD_SOURCE_DIR" rev-parse --git-dir >/dev/null 2>&1; then
  out=$(cd "$DAGD_SOURCE_DIR" && git ls-files -z | xargs -0 grep -ho "$spdx" | sort -u)
else
  out=$(grep -rho --exclude-dir=.git --exclude-dir='build*' --exclude-dir=node_modules "$spdx" "$DAGD_SOURCE_DIR" | sort -u)
fi
[ "$out" = "SPDX-License-Identifier: MIT" ] && ok || fail "every SPDX line says MIT, as LICENSE does"

# The installed programs: versions, the installed Lua library validating
# the shipped DAGs, the completion loading into bash.
run "$P/bin/dagd" --version
expect_rc 0 "installed dagd --version"
expect_out "dagd" "dagd --version names itself"
run env DAGD_LUA_PATH="$P/share/dagd/lua" "$P/bin/dagctl" validate "$DAGD_SOURCE_DIR/dags"
expect_rc 0 "the installed dagctl validates the shipped DAGs with the installed Lua library"
run bash -c '. "$1" && complete -p dagctl' _ "$P/share/bash-completion/completions/dagctl"
expect_rc 0 "the installed completion registers for dagctl"

finish
