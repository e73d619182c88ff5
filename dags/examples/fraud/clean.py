#!/usr/bin/env python3
"""The fraud pipeline's clean step (dags/fraud_detection.lua): drops the
rows a model must not see (repeated ids, missing amounts, refunds with a
negative amount) and writes the rest, in the same columns.

usage: clean.py IN.csv OUT.csv
SPDX-License-Identifier: MIT"""
import csv
import os
import sys


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: clean.py IN.csv OUT.csv")
    src, dst = sys.argv[1:]
    seen = set()
    kept, dropped = [], {"duplicate": 0, "missing_amount": 0, "refund": 0}
    with open(src, newline="") as f:
        r = csv.DictReader(f)
        columns = r.fieldnames
        for row in r:
            if row["id"] in seen:
                dropped["duplicate"] += 1
            elif row["amount"] == "":
                dropped["missing_amount"] += 1
            elif float(row["amount"]) < 0:
                dropped["refund"] += 1
            else:
                seen.add(row["id"])
                kept.append(row)
    os.makedirs(os.path.dirname(dst) or ".", exist_ok=True)
    with open(dst + ".tmp", "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=columns, lineterminator="\n")
        w.writeheader()
        w.writerows(kept)
    os.replace(dst + ".tmp", dst)
    print(f"clean: kept {len(kept)} rows of {len(kept) + sum(dropped.values())}; dropped " +
          ", ".join(f"{n} {why}" for why, n in dropped.items()))
    if os.environ.get("DAGD_OUTPUT"):
        with open(os.environ["DAGD_OUTPUT"], "a") as f:
            f.write(f"rows={len(kept)}\n")
            f.writelines(f"dropped_{why}={n}\n" for why, n in dropped.items())


if __name__ == "__main__":
    main()
