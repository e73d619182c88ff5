#!/usr/bin/env bash
# ds is the logical date's day in the DAG's zone: `dagctl test DAG TASK
# 2026-03-02` on a Europe/Berlin DAG renders ds 2026-03-02 (the logical
# date is midnight in Berlin, 2026-03-01T23:00:00Z), and a scheduled try
# of the same date renders the same, in templates and $DAGD_DS; a UTC
# DAG is unchanged.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags"
cat >"$WORK/dags/d.lua" <<'LUA'
local dagd = require "dagd"
local cmd = "echo ds={{ ds }} nodash={{ ds_nodash }} ts={{ ts }} ld={{ logical_date }} env=$DAGD_DS"
local b = dagd.dag { id = "berlin", schedule = "@daily", timezone = "Europe/Berlin", start_date = "2026-01-01" }
b:shell { id = "fetch", cmd = cmd }
local u = dagd.dag { id = "utc", schedule = "@daily", start_date = "2026-01-01" }
u:shell { id = "fetch", cmd = cmd }
LUA
export DAGD_DAGS_FOLDER="$WORK/dags"

run "$DAGCTL" test berlin fetch 2026-03-02
expect_rc 0 "dagctl test of the Berlin DAG"
expect_out "ds=2026-03-02 nodash=20260302 ts=2026-03-02T00:00:00+01:00 ld=2026-03-01T23:00:00Z env=2026-03-02" \
  "the date given is the logical date in the DAG's zone"
expect_out "logical date 2026-03-02T00:00:00+01:00" "shown in the DAG's zone"
run "$DAGCTL" test utc fetch 2026-03-02
expect_out "ds=2026-03-02 nodash=20260302 ts=2026-03-02T00:00:00+00:00 ld=2026-03-02T00:00:00Z env=2026-03-02" \
  "a UTC DAG"

# The daemon renders a try of the same logical date the same way.
"$DAGD" --listen 127.0.0.1:0 --state "$WORK/dagd.db" --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"
run "$DAGCTL" backfill berlin --from 2026-03-02 --to 2026-03-02 --wait
expect_rc 0 "the backfill of 2026-03-02 succeeds"
out=$(cat "$WORK"/logs/berlin/backfill__2026-03-01T23:00:00+00:00/fetch/1.log 2>&1)
expect_out "ds=2026-03-02 nodash=20260302 ts=2026-03-02T00:00:00+01:00 ld=2026-03-01T23:00:00Z env=2026-03-02" \
  "a scheduled try renders what dagctl test does"

finish
