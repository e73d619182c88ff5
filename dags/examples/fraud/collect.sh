#!/bin/sh
# Stand-in for the fraud pipeline's collect step (dags/fraud_detection.lua):
# writes a small CSV of "transactions" for the given day and reports the
# row count as an output. A real pipeline would query the payments store.
set -eu
ds=${1:?usage: collect.sh YYYY-MM-DD}
mkdir -p data/raw
out=data/raw/$ds.csv
printf 'id,amount,label\n1,12.50,0\n2,990.00,1\n3,7.25,0\n' > "$out"
rows=$(($(wc -l < "$out") - 1))
if [ -n "${DAGD_OUTPUT:-}" ]; then echo "rows=$rows" >> "$DAGD_OUTPUT"; fi
echo "collected $rows rows into $out"
