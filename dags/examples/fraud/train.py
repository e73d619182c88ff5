#!/usr/bin/env python3
"""The fraud pipeline's train step (dags/fraud_detection.lua): a logistic
regression fitted by stochastic gradient descent (seeded, so the same data
gives the same model) on the training rows of a clean CSV. The decision
threshold is the one with the best F1 on the training rows. The model is
written as JSON: weights over standardised features, their means and
standard deviations, the threshold.

usage: train.py CLEAN.csv MODEL.json [--epochs N]
SPDX-License-Identifier: MIT"""
import argparse
import json
import math
import os
import random
import sys

sys.dont_write_bytecode = True
import fraudmodel as fm  # noqa: E402  (beside this script)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("data")
    ap.add_argument("model")
    ap.add_argument("--epochs", type=int, default=8)
    ap.add_argument("--rate", type=float, default=0.05)
    ap.add_argument("--l2", type=float, default=1e-4)
    a = ap.parse_args()
    xs, ys = fm.load(a.data, test=False)
    if len(xs) < 100 or not 0 < sum(ys) < len(ys):
        sys.exit(f"train: too little data ({len(xs)} rows, {sum(ys)} fraud)")
    n = len(fm.NAMES)
    mean = [sum(x[j] for x in xs) / len(xs) for j in range(n)]
    std = [math.sqrt(sum((x[j] - mean[j]) ** 2 for x in xs) / len(xs)) or 1.0 for j in range(n)]
    zs = [[(x[j] - mean[j]) / std[j] for j in range(n)] for x in xs]
    w, b = [0.0] * n, 0.0
    rng = random.Random(0)
    order = list(range(len(zs)))
    for epoch in range(a.epochs):
        rng.shuffle(order)
        loss = 0.0
        for i in order:
            z, y = zs[i], ys[i]
            t = b + sum(wj * zj for wj, zj in zip(w, z))
            p = 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, t))))
            loss -= math.log(max(p if y else 1 - p, 1e-12))
            g = p - y
            b -= a.rate * g
            w = [wj - a.rate * (g * zj + a.l2 * wj) for wj, zj in zip(w, z)]
        print(f"train: epoch {epoch + 1}/{a.epochs} log loss {loss / len(zs):.4f}")
    model = {"features": fm.NAMES, "weights": w, "bias": b, "mean": mean, "std": std, "threshold": 0.5}
    scores = [fm.score(model, x) for x in xs]
    best = max((fm.f1(ys, [s >= t for s in scores]), t) for t in [k / 100 for k in range(5, 96)])
    model["threshold"] = best[1]
    model["train_rows"] = len(xs)
    os.makedirs(os.path.dirname(a.model) or ".", exist_ok=True)
    with open(a.model + ".tmp", "w") as f:
        json.dump(model, f, indent=1)
    os.replace(a.model + ".tmp", a.model)
    print(f"train: {len(xs)} rows ({sum(ys)} fraud); threshold {best[1]:.2f} (train F1 {best[0]:.4f}); "
          f"model in {a.model}")
    for name, wj in sorted(zip(fm.NAMES, w), key=lambda p: -abs(p[1])):
        print(f"  {name:22} {wj:+.3f}")
    if os.environ.get("DAGD_OUTPUT"):
        with open(os.environ["DAGD_OUTPUT"], "a") as f:
            f.write(f"model={a.model}\ntrain_rows={len(xs)}\nlog_loss={loss / len(zs):.4f}\n")


if __name__ == "__main__":
    main()
