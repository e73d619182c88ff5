#!/usr/bin/env bash
# dagctl's offline commands driven as a user would: validate on the bundled
# DAGs and on a folder of broken files, graph, next, help and usage errors.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# The bundled example DAGs load cleanly.
run "$DAGCTL" validate "$DAGD_SOURCE_DIR/dags"
expect_rc 0 "validate dags/"
expect_out "0 errors" "validate dags/"

# The DAG folder comes from DAGD_DAGS_FOLDER when no path is given.
(cd "$WORK" && DAGD_DAGS_FOLDER="$DAGD_SOURCE_DIR/dags" "$DAGCTL" validate >/dev/null 2>&1) && rc=0 || rc=$?
expect_rc 0 "validate with DAGD_DAGS_FOLDER"

# A folder with a cycle, a typo, a bad cron and an endless loop: every error
# is listed with file:line, the good files still load, and the endless loop
# is cut off by the budget rather than hanging (timeout is only a guard).
mixed="$DATA/mixed"
start=$(date +%s)
run timeout 60 "$DAGCTL" validate "$mixed"
expect_rc 1 "validate mixed"
expect_out "$mixed/cycle.lua:" "cycle error names the file"
expect_out "a -> b -> c -> a" "cycle path"
expect_out "$mixed/typo.lua:4: " "typo error names file:line"
expect_out "retires" "typo error names the field"
expect_out "retries" "typo error suggests the right field"
expect_out "$mixed/badcron.lua:3: " "bad cron names file:line"
expect_out "hour" "bad cron names the field"
expect_out "$mixed/loop.lua:3: " "endless loop names file:line"
expect_out "4 errors" "validate mixed counts the errors"
expect_out "6 files, 2 DAGs" "good files still load"

run timeout 60 "$DAGCTL" -o json validate "$mixed"
expect_rc 1 "validate -o json mixed"
python3 - "$out" <<'PY' && ok || fail "validate -o json shape"
import json, sys
doc = json.loads(sys.argv[1])
ids = sorted(d["dag_id"] for d in doc["dags"])
assert ids == ["also_good", "good_one"], ids
files = sorted(e["file"].rsplit("/", 1)[1] for e in doc["errors"])
assert files == ["badcron.lua", "cycle.lua", "loop.lua", "typo.lua"], files
for e in doc["errors"]:
    assert isinstance(e["line"], int) and e["line"] > 0, e
    assert e["message"], e
PY

# A template that cannot render (an unknown filter, an unclosed block) is
# caught by validate, at its file:line, before any run: not when the task
# starts.
mkdir -p "$WORK/tpl"
cat >"$WORK/tpl/tpl.lua" <<'LUA'
local dagd = require "dagd"
local d = dagd.dag { id = "tpl", schedule = "@daily", start_date = "2026-01-01" }
d:shell { id = "fetch", cmd = { "echo", "{{ ds }}" } }
d:shell { id = "report",
          cmd = "echo {{ outputs.fetch.rows | round }}" }
d:shell { id = "notify", cmd = "true", env = { RUN = "{{ run_id" } }
LUA
run "$DAGCTL" validate "$WORK/tpl"
expect_rc 1 "validate a DAG with broken templates"
expect_out "$WORK/tpl/tpl.lua:5: task \"report\": field \"cmd\": template {{ outputs.fetch.rows | round }}: unknown filter" \
  "an unknown filter is reported at file:line"
expect_out "$WORK/tpl/tpl.lua:6: task \"notify\": field \"env\": template: \"{{\" without a closing \"}}\"" \
  "an unclosed block is reported at file:line"
expect_out "0 DAGs, 2 errors" "both templates are reported"

# graph: text lists tasks in topological order with their upstreams.
export DAGD_DAGS_FOLDER="$DATA/good"
run "$DAGCTL" graph berlin
expect_rc 0 "graph text"
expect_out "berlin: 4 tasks, schedule 30 2 * * *" "graph header"
python3 - "$out" <<'PY' && ok || fail "graph text order and layers"
import sys
rows = [l.split() for l in sys.argv[1].splitlines()[2:]]
order = [r[1] for r in rows]
assert order[0] == "extract" and order[-1] == "join", order
layer = {r[1]: r[0] for r in rows}
assert layer == {"extract": "1", "left": "2", "right": "2", "join": "3"}, layer
assert rows[-1][3:] == ["left,", "right"], rows[-1]
PY
run "$DAGCTL" graph berlin --format dot
expect_rc 0 "graph dot"
expect_out 'digraph "berlin" {' "dot header"
expect_out '"extract" -> "left";' "dot edge"
expect_out '"right" -> "join";' "dot edge"
run "$DAGCTL" graph berlin --format svg
expect_rc 2 "graph bad format"
run "$DAGCTL" graph nosuchdag
expect_rc 1 "graph unknown dag"
expect_out 'no DAG "nosuchdag"' "graph unknown dag message"

# next: around the spring-forward day in Berlin (2026-03-29, 02:00 -> 03:00)
# the 02:30 run is shifted forward to 03:30 local, 01:30 UTC.
run "$DAGCTL" -o json next berlin -n 3 --after 2026-03-27T12:00:00Z
expect_rc 0 "next -o json"
python3 - "$out" <<'PY' && ok || fail "next -o json values"
import json, sys
got = json.loads(sys.argv[1])
want = [
    {"run_after": "2026-03-28T01:30:00Z", "data_interval_start": "2026-03-27T01:30:00Z",
     "data_interval_end": "2026-03-28T01:30:00Z"},
    {"run_after": "2026-03-29T01:30:00Z", "data_interval_start": "2026-03-28T01:30:00Z",
     "data_interval_end": "2026-03-29T01:30:00Z"},
    {"run_after": "2026-03-30T00:30:00Z", "data_interval_start": "2026-03-29T01:30:00Z",
     "data_interval_end": "2026-03-30T00:30:00Z"},
]
assert got == want, got
PY
run "$DAGCTL" next berlin -n 2 --after "2026-10-24 12:00"
expect_rc 0 "next table"
expect_out "2026-10-25T02:30:00+02:00" "next table shows local time with offset"
expect_out "2026-10-25T00:30:00Z" "next table shows UTC"
run "$DAGCTL" next berlin -n 0
expect_rc 2 "next -n 0"
run "$DAGCTL" next berlin --after tomorrow
expect_rc 2 "next bad --after"
expect_out "bad date" "next bad --after message"

# test: one task now, no state.
export DAGD_DAGS_FOLDER="$DATA/testcmd"
run "$DAGCTL" test t ok 2026-03-01
expect_rc 0 "test ok"
expect_out "hello 2026-03-01 test__2026-02-28T23:00:00+00:00" "test: DATE is the logical date in the DAG zone, ds its day there"
expect_out "k=v" "test prints outputs"
run "$DAGCTL" -o json test t ok 2026-03-01
expect_out '"k": "v"' "test -o json prints outputs as JSON"
run "$DAGCTL" test t bad
expect_rc 1 "test of a failing task"
expect_out "exit 3" "test reports the exit code"
run "$DAGCTL" test t conf 2026-03-01 --conf '{"x": "y z"}'
expect_rc 0 "test with --conf"
expect_out "x=y z" "conf reaches the task"
run "$DAGCTL" test t conf --conf '[1]'
expect_rc 2 "test --conf must be an object"
run "$DAGCTL" test t reads
expect_rc 1 "test of a task reading upstream outputs"
expect_out "outputs.ok.k" "the missing output is named"
run "$DAGCTL" test t nosuchtask
expect_rc 1 "test unknown task"
[ ! -e "$DAGD_SOURCE_DIR/var" ] || [ -z "$(find "$DAGD_SOURCE_DIR/var" -newer "$DATA/testcmd/t.lua" -name '*.db' 2>/dev/null)" ] && ok || fail "test wrote state"

# Help and usage.
run "$DAGCTL" --help
expect_rc 0 "--help"
for c in validate graph next test; do expect_out "$c" "--help lists $c"; done
run "$DAGCTL" help next
expect_rc 0 "help next"
expect_out "usage: dagctl next DAG" "help next synopsis"
run "$DAGCTL" next --help
expect_rc 0 "next --help"
run "$DAGCTL" frobnicate
expect_rc 2 "unknown command"
run "$DAGCTL"
expect_rc 2 "no command"
run "$DAGCTL" -o xml validate
expect_rc 2 "bad -o"

finish
