#!/bin/sh
# Stand-in data check for dags/fraud_detection.lua: the CSV must exist,
# have the expected header and at least one row.
set -eu
f=${1:?usage: validate.sh FILE.csv}
[ -f "$f" ] || { echo "missing $f" >&2; exit 1; }
head -n 1 "$f" | grep -qx 'id,amount,label' || { echo "bad header in $f" >&2; exit 1; }
[ "$(wc -l < "$f")" -gt 1 ] || { echo "no rows in $f" >&2; exit 1; }
echo "ok: $f"
