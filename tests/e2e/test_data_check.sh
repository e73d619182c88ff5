#!/usr/bin/env bash
# The data_check operator end to end: a DAG checks a generated CSV against
# a reference before training. A clean file passes, its per-column results
# are outputs in the API and training runs; a drifted file fails the check
# with the PSI in its report (outputs, log, API) and training never starts.
# A data_check field that needs a reference is refused at load time.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags/data"
cp "$DATA/data_check/quality.lua" "$WORK/dags/"
cd "$WORK/dags"
# reference: 2,000 rows, amounts 0.0 .. 99.9 each twice (919 is prime to
# 1,000, so i*919 mod 1000 visits every value); clean: the same
# distribution in another order; drifted: amounts stretched and shifted,
# one country in four replaced.
awk 'BEGIN { print "id,amount,country,fraud"; split("DE FR IT ES", c, " ");
  for (i = 1; i <= 2000; i++) printf "%d,%.1f,%s,%s\n", i, (i * 919 % 1000) / 10, c[i % 4 + 1], (i % 50 ? "false" : "true") }' \
  >data/reference.csv
awk 'BEGIN { print "id,amount,country,fraud"; split("DE FR IT ES", c, " ");
  for (i = 1; i <= 1000; i++) printf "%d,%.1f,\"%s\",%s\n", 5000 + i, (i * 729 % 1000) / 10, c[i % 4 + 1], (i % 50 ? "false" : "true") }' \
  >data/clean.csv
awk 'BEGIN { print "id,amount,country,fraud"; split("DE FR IT US", c, " ");
  for (i = 1; i <= 1000; i++) printf "%d,%.1f,%s,%s\n", 9000 + i, 20 + 1.5 * (i * 729 % 1000) / 10, c[i % 4 + 1], (i % 50 ? "false" : "true") }' \
  >data/drifted.csv

"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$WORK/dagd.log" 2>&1 &
pid=$!
trap 'kill $pid 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$WORK/dagd.log"; do [ $SECONDS -lt $deadline ] || exit 1; sleep 0.02; done
export DAGD_URL="http://127.0.0.1:$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$WORK/dagd.log" | tail -1)"

run "$DAGCTL" trigger quality --run-id clean --wait
expect_rc 0 "the clean file passes the check"
[ "$(cat trained.txt 2>/dev/null)" = trained ] && ok || fail "training ran after a passing check"
out=$(cat "$WORK/logs/quality/clean/check/1.log")
expect_out "data_check data/clean.csv (CSV): 1000 rows; reference data/reference.csv: 2000 rows" "the log names both files"
expect_out "pass  psi amount  value 0  threshold 0.2" "PSI of an identical distribution is 0"
expect_out "data_check passed: 0 of" "the log's verdict"
run "$DAGCTL" -o json tasks quality clean
python3 - "$out" <<'PY' && ok || fail "the clean check's outputs are in the API"
import json, sys
tis = {t["task_id"]: t for t in json.loads(sys.argv[1])["task_instances"]}
check = tis["check"]
assert check["state"] == "success", check
o = check["outputs"]
assert o["passed"] == "true" and o["rows"] == "1000" and o["reference_rows"] == "2000", o
assert float(o["psi.amount"]) == 0 and float(o["ks.amount"]) == 0, o
assert float(o["psi.country"]) == 0 and o["duplicates.id"] == "0" and o["missing.amount"] == "0", o
assert "psi.id" not in o, o   # unique columns are not drift-checked
report = json.loads(o["report"])
assert report["passed"] is True and report["rows"] == 1000, report
assert tis["train"]["state"] == "success", tis["train"]
PY

run "$DAGCTL" trigger quality --run-id drifted --conf '{"file": "drifted.csv"}' --wait
expect_rc 1 "the drifted file fails the run"
[ "$(wc -l <trained.txt)" = 1 ] && ok || fail "training ran after a failing check"
out=$(cat "$WORK/logs/quality/drifted/check/1.log")
expect_out "fail  psi amount  value" "the PSI failure is in the log"
expect_out "fail  psi country  value" "the categorical PSI failure is in the log"
expect_out "fail  ks amount  value" "the KS failure is in the log"
expect_out "data_check FAILED" "the log's verdict"
run "$DAGCTL" -o json tasks quality drifted
python3 - "$out" <<'PY' && ok || fail "the drifted check's report is in the API"
import json, sys
tis = {t["task_id"]: t for t in json.loads(sys.argv[1])["task_instances"]}
check = tis["check"]
assert check["state"] == "failed", check
assert tis["train"]["state"] == "upstream_failed", tis["train"]
o = check["outputs"]
assert o["passed"] == "false" and float(o["psi.amount"]) > 0.2, o
report = json.loads(o["report"])
by = {(c["check"], c.get("column")): c for c in report["checks"]}
psi = by[("psi", "amount")]
assert psi["result"] == "fail" and psi["threshold"] == 0.2 and psi["value"] > 0.2, psi
assert abs(psi["value"] - float(o["psi.amount"])) < 1e-4, (psi, o)
assert by[("ks", "amount")]["result"] == "fail", by
assert by[("range", "amount")]["result"] == "pass", by   # 20 .. 169.9 is inside 0 .. 1000
assert by[("unique", "id")]["result"] == "pass", by
PY

run "$DAGCTL" validate "$DATA/data_check/bad.lua"
expect_rc 1 "a drift threshold without a reference is refused"
expect_out 'bad.lua:4: data_check task "check": "psi_max" needs a "reference" file' "the error points at the field"
run "$DAGCTL" validate "$DATA/data_check/quality.lua"
expect_rc 0 "the example DAG validates"

finish
