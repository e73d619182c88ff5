#!/usr/bin/env bash
# A finished try's log longer than one answer (1 MiB) is read to its last
# byte: "done" is false until an answer reaches the log's end, "size" says
# how long the log is, the pieces put together are the log file, and
# `dagctl logs` prints all of it.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags"
cat >"$WORK/dags/big.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "big" }
d:shell { id = "t", cmd = [[seq 1 400000 | sed 's/^/line /'; echo "the traceback at the end"]] }
LUA
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do
  [ $SECONDS -lt $deadline ] || { cat "$WORK/dagd.log"; exit 1; }
  sleep 0.02
done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

run "$DAGCTL" trigger big --run-id r1 --wait
expect_rc 0 "the run that writes a long log succeeds"
file="$WORK/logs/big/r1/t/1.log"
[ "$(stat -c %s "$file")" -gt 2097152 ] && ok || fail "the log is over 2 MiB ($(stat -c %s "$file") bytes)"

/usr/bin/python3 - "$DAGD_URL" "$file" "$WORK/pieces" <<'PY' && ok || fail "the pieces are the whole log, done only at its end"
import json, sys, urllib.request
url, path, out = sys.argv[1], sys.argv[2], sys.argv[3]
size = len(open(path, "rb").read())
offset, pieces, text = 0, 0, ""
while True:
    with urllib.request.urlopen(f"{url}/api/v1/dags/big/dagRuns/r1/taskInstances/t/logs/1?offset={offset}") as r:
        x = json.load(r)
    pieces += 1
    assert x["offset"] == offset and x["size"] == size, x | {"content": len(x["content"])}
    text += x["content"]
    assert x["done"] == (x["next_offset"] == size), (pieces, x["next_offset"], size, x["done"])
    if x["done"]:
        break
    assert x["next_offset"] > offset, "no progress"
    offset = x["next_offset"]
    assert pieces < 100
assert pieces >= 3, pieces
assert text.encode() == open(path, "rb").read(), "the pieces differ from the file"
assert text.endswith("the traceback at the end\n")
PY
run "$DAGCTL" logs big r1 t
[ "$(printf '%s\n' "$out" | tail -1)" = "the traceback at the end" ] && ok || fail "dagctl logs prints the log's end"
[ "$(printf '%s\n' "$out" | wc -l)" -eq 400001 ] && ok || fail "dagctl logs prints every line: $(printf '%s\n' "$out" | wc -l)"
finish
