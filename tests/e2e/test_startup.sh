#!/usr/bin/env bash
# What dagd refuses at start, and that a refused start leaves nothing
# behind: a port already in use is one line and exit 1 (it was a libuv
# assertion, exit 134); a non-loopback address without tokens is refused
# the same way (the same message) by the daemon and by --check-config, before any folder or
# state file exists.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
rc=0 out=
pids=()
trap 'for p in "${pids[@]}"; do kill "$p" 2>/dev/null; done; wait 2>/dev/null; rm -rf "$WORK"' EXIT

# dagd runs in $TOP, which holds only a dags folder to begin with.
TOP=$WORK/top
mkdir -p "$TOP/dags"
cp "$DATA/good/berlin.lua" "$TOP/dags/"
# nothing_created DIR: DIR holds only the dags folder.
nothing_created() { [ "$(ls -A "$1")" = dags ]; }

# --- a port in use: a listener of our own holds it.
python3 - "$WORK/port" <<'PY' &
import socket, sys, signal
s = socket.socket()
s.bind(("127.0.0.1", 0))
s.listen()
with open(sys.argv[1] + ".tmp", "w") as f:
    f.write(str(s.getsockname()[1]))
import os
os.rename(sys.argv[1] + ".tmp", sys.argv[1])
signal.pause()
PY
pids+=($!)
deadline=$((SECONDS + 10))
until [ -s "$WORK/port" ] || [ $SECONDS -ge $deadline ]; do sleep 0.05; done
port=$(cat "$WORK/port")
cd "$TOP"
run "$DAGD" --listen "127.0.0.1:$port"
expect_rc 1 "a port in use: exit 1"
expect_out "dagd: 127.0.0.1:$port: address already in use" "a port in use: says so"
expect_no_out "Assertion" "a port in use: no assertion"
nothing_created "$TOP" && ok || fail "a port in use creates nothing: $(ls -A "$TOP")"
# The same through an explicit state and logs folder.
run "$DAGD" --listen "127.0.0.1:$port" --state "$WORK/s/dagd.db" --logs-folder "$WORK/l"
expect_rc 1 "a port in use with explicit paths: exit 1"
[ ! -e "$WORK/s" ] && [ ! -e "$WORK/l" ] && ok || fail "a port in use creates neither folder"

# --- a non-loopback address without tokens
run "$DAGD" --listen 0.0.0.0:0 --check-config
expect_rc 2 "--check-config refuses 0.0.0.0 without tokens"
expect_out "refusing to listen on 0.0.0.0:0 with no api_tokens configured" "--check-config says why"
run "$DAGD" --listen 0.0.0.0:0
expect_rc 1 "the daemon refuses 0.0.0.0 without tokens"
expect_out "refusing to listen on 0.0.0.0:0 with no api_tokens configured" "the daemon says why"
nothing_created "$TOP" && ok || fail "the refusal creates nothing: $(ls -A "$TOP")"
run env DAGD_API_TOKEN=t0ken-for-the-test "$DAGD" --listen 0.0.0.0:0 --check-config
expect_rc 0 "with a token, 0.0.0.0 passes --check-config"
echo 'listen = "0.0.0.0:0"' >"$TOP/dagd.lua"
run "$DAGD" --check-config
expect_rc 2 "--check-config refuses it from ./dagd.lua too"
rm "$TOP/dagd.lua"

# --- paths: --check-config and the start report show them absolute,
# resolved against the working directory at start.
mkdir -p "$TOP/sub"
cd "$TOP/sub"
run env DAGD_LOGS_FOLDER=./logs// "$DAGD" --listen 127.0.0.1:0 --dags-folder ../dags --state var/x.db --once
expect_rc 0 "--once with relative paths"
expect_out "$TOP/sub/../dags: 1 files, 1 DAGs, 0 errors" "the DAG folder is absolute"
[ -d "$TOP/sub/var" ] && [ -d "$TOP/sub/logs" ] && ok || fail "the folders are made where the paths say"

# dagctl makes them absolute too: `dagctl test` of a d:lua task, with the
# default (relative) dags folder, hands the task its DAG file and
# $DAGD_OUTPUT from the DAG file's folder.
cat >"$TOP/dags/probe.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "probe" }
d:lua { id = "f", fn = function(c) return { answer = "42" } end }
d:shell { id = "s", cmd = 'echo where=$DAGD_OUTPUT > "$DAGD_OUTPUT"' }
LUA
cd "$TOP"
run "$DAGCTL" test probe f 2026-03-02
expect_rc 0 "dagctl test of a d:lua task with the default dags folder"
expect_out "answer" "the d:lua task's outputs"
run "$DAGCTL" test probe s 2026-03-02
expect_rc 0 "dagctl test of a shell task with the default dags folder"
expect_out "in $TOP/dags:" "the task runs in its DAG file's absolute folder"

finish
