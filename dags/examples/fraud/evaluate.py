#!/usr/bin/env python3
"""The fraud pipeline's evaluate step (dags/fraud_detection.lua): scores
the held-out rows of a clean CSV with a model from train.py and writes the
metrics the gate checks to $DAGD_OUTPUT: f1 (at the model's threshold),
auc, and latency_ms (the 99th percentile of scoring one transaction).

usage: evaluate.py CLEAN.csv MODEL.json
SPDX-License-Identifier: MIT"""
import json
import os
import sys
import time

sys.dont_write_bytecode = True
import fraudmodel as fm  # noqa: E402  (beside this script)


def main():
    if len(sys.argv) != 3:
        sys.exit("usage: evaluate.py CLEAN.csv MODEL.json")
    with open(sys.argv[2]) as f:
        model = json.load(f)
    xs, ys = fm.load(sys.argv[1], test=True)
    scores, took = [], []
    for x in xs:
        t0 = time.perf_counter()
        scores.append(fm.score(model, x))
        took.append(time.perf_counter() - t0)
    took.sort()
    metrics = {
        "f1": round(fm.f1(ys, [s >= model["threshold"] for s in scores]), 4),
        "auc": round(fm.auc(ys, scores), 4),
        "latency_ms": round(took[int(len(took) * 0.99)] * 1000, 4),
        "test_rows": len(xs),
    }
    print(f"evaluate: {len(xs)} held-out rows ({sum(ys)} fraud): " +
          ", ".join(f"{k} {v}" for k, v in metrics.items()))
    if os.environ.get("DAGD_OUTPUT"):
        with open(os.environ["DAGD_OUTPUT"], "a") as f:
            f.writelines(f"{k}={v}\n" for k, v in metrics.items())


if __name__ == "__main__":
    main()
