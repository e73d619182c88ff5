#!/usr/bin/env bash
# What is written from dagctl's and dagd's own option tables: the bash
# completion (sourced into bash, COMPREPLY checked for real command lines;
# contrib/dagctl.bash-completion must be that output) and the manual pages
# (rendered by groff and man without a warning, every command and option of
# --help in them, installed by cmake --install into share/man/man1).
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# ---- bash completion ----
run "$DAGCTL" completion bash
expect_rc 0 "completion bash"
script="$WORK/dagctl.bash"
printf '%s\n' "$out" >"$script"
diff -u "$DAGD_SOURCE_DIR/contrib/dagctl.bash-completion" "$script" >"$WORK/diff" && ok ||
  { out=$(cat "$WORK/diff"); fail "contrib/dagctl.bash-completion is not \`dagctl completion bash\` (regenerate it)"; }
run "$DAGCTL" completion zsh
expect_rc 2 "completion of an unknown shell"
expect_out "only bash" "completion names what it supports"

# complete WORD...: the completions bash offers for the line, its last word
# being completed; one a line, sorted. dagctl on PATH for the DAG ids, and
# no dagd behind --server, so they come from the DAG folder.
complete_line() {
  PATH="$DAGD_BUILD_DIR:$PATH" DAGD_URL=http://127.0.0.1:9 DAGD_DAGS_FOLDER="$DAGD_SOURCE_DIR/dags" \
    bash --norc --noprofile -c '
    source "$1"; shift
    COMP_WORDS=("$@"); COMP_CWORD=$(($# - 1)); COMP_LINE="$*"; COMP_POINT=${#COMP_LINE}
    _dagctl dagctl "${COMP_WORDS[COMP_CWORD]}" "${COMP_WORDS[COMP_CWORD - 1]}"
    printf "%s\n" "${COMPREPLY[@]}" | sort' bash "$script" "$@"
}
# expect_words WANT_SPACE_SEPARATED WHAT WORD...
expect_words() {
  local want=$1 what=$2
  shift 2
  out=$(complete_line "$@") rc=0
  [ "$out" = "$(tr ' ' '\n' <<<"$want" | sort)" ] && ok || fail "$what: completions of '$*' are not: $want"
}

commands=$("$DAGCTL" --help | sed -n '/^Commands:/,/^$/p' | awk 'NF > 1 {print $1}' | tr '\n' ' ')
[ "$(wc -w <<<"$commands")" -ge 15 ] && ok || fail "read the command list from --help: $commands"
expect_words "${commands% }" "every command of --help" dagctl ""
expect_words "trigger tasks test" "commands by prefix" dagctl t
expect_words "trigger" "a command after global options" dagctl --server http://x -o json tr
globals="--server --token -o --output --config -h --help --version --man"
long_globals="--server --token --output --config --help --version --man"
expect_words "--conf --date --run-id --wait $long_globals" "trigger's own flags (and the globals)" dagctl trigger x --
expect_words "--from" "backfill's flags by prefix" dagctl backfill x --f
expect_words "--to --token" "after options with values" dagctl backfill x --from 2026-01-01 --dry-run --t
expect_words "--follow" "logs --follow" dagctl logs d r t --fo
expect_words "-f" "logs -f" dagctl logs d r t -f
expect_words "--rerun-failed --reset --reverse" "backfill --re..." dagctl backfill d --re
expect_words "text dot" "graph --format values" dagctl graph d --format ""
expect_words "queued running success failed" "runs --state values" dagctl runs d --state ""
expect_words "table json yaml" "-o values" dagctl -o ""
expect_words "table json yaml" "--output values after a command" dagctl runs d --output ""
expect_words "success failed" "mark's last argument" dagctl mark d r t ""
expect_words "check backup prune" "db's subcommands" dagctl db ""
expect_words "--older-than --dry-run $long_globals" "db's flags" dagctl db prune --
expect_words "bash" "completion's shell" dagctl completion ""
expect_words "trigger" "help COMMAND" dagctl help tri
expect_words "fraud_detection hello" "DAG ids (from the DAG folder: no dagd)" dagctl trigger ""
expect_words "fraud_detection" "DAG ids by prefix, after an option with a value" dagctl runs --state failed f
expect_words "" "nothing for a free-text value" dagctl trigger d --conf ""
expect_words "" "nothing past a command's arguments" dagctl pause d ""
# Each command's flags, exactly its own: read from its help's Options.
for cmd in $commands; do
  own=$("$DAGCTL" help "$cmd" | sed -n '/^Options:/,$p' | grep -oE '^  (-[a-z], )?--[a-z-]+' |
    sed 's/,//' | tr '\n' ' ')
  want=$(printf '%s %s' "$own" "$globals" | tr ' ' '\n' | grep -v '^$' | sort -u | tr '\n' ' ')
  expect_words "${want% }" "$cmd's flags match its help" dagctl "$cmd" -
done

# ---- manual pages ----
man_dir="$DAGD_BUILD_DIR/man"
for page in dagd dagctl; do
  f="$man_dir/$page.1"
  [ -s "$f" ] && ok || fail "the build wrote $f"
  out=$(LC_ALL=C.UTF-8 groff -man -Tutf8 -ww -z "$f" 2>&1) rc=$?
  [ "$rc" -eq 0 ] && [ -z "$out" ] && ok || fail "groff renders $page.1 without a warning"
  out=$(LC_ALL=C.UTF-8 MANWIDTH=80 man --warnings -l "$f" 2>&1 >/dev/null) rc=$?
  [ "$rc" -eq 0 ] && [ -z "$out" ] && ok || fail "man -l renders $page.1 without a warning"
done
render() { LC_ALL=C.UTF-8 MANWIDTH=200 man -l "$man_dir/$1.1" 2>/dev/null; }
dagctl_page=$(render dagctl)
for cmd in $commands; do
  # Each command has its own subsection, and its synopsis below it.
  grep -qE "^   $cmd\$" <<<"$dagctl_page" && ok || { out=$dagctl_page; fail "dagctl.1 has a section for $cmd"; }
  syn=$("$DAGCTL" help "$cmd" | sed -n '1s/^usage: //p')
  grep -qF -- "$syn" <<<"$dagctl_page" && ok || { out=$syn; fail "dagctl.1 shows the synopsis of $cmd"; }
done
for opt in $("$DAGCTL" --help | grep -oE '^  (-[a-z], )?--[a-z-]+' | grep -oE -- '--[a-z-]+'); do
  grep -qF -- "$opt" <<<"$dagctl_page" && ok || fail "dagctl.1 names the global option $opt"
done
for v in DAGD_URL DAGD_TOKEN NO_COLOR; do
  grep -qF -- "$v" <<<"$dagctl_page" && ok || fail "dagctl.1 names $v"
done
dagd_page=$(render dagd)
for opt in $("$DAGD" --help | grep -oE '^  --[a-z-]+'); do
  grep -qF -- "$opt" <<<"$dagd_page" && ok || fail "dagd.1 names the option $opt"
done
for s in SIGHUP SIGTERM "EXIT STATUS" "dagctl(1)"; do
  grep -qF -- "$s" <<<"$dagd_page" && ok || fail "dagd.1 names $s"
done

# cmake --install puts them in share/man/man1 (under DESTDIR, which also
# catches any rule with an absolute destination).
run env DESTDIR="$WORK/destdir" cmake --install "$DAGD_BUILD_DIR" --prefix /usr
expect_rc 0 "cmake --install"
for page in dagd dagctl; do
  cmp -s "$man_dir/$page.1" "$WORK/destdir/usr/share/man/man1/$page.1" && ok || fail "$page.1 installed in share/man/man1"
done
finish
