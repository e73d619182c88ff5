#!/usr/bin/env python3
"""Stand-in for the fraud pipeline's collect step (dags/fraud_detection.lua):
generates a day of synthetic card transactions as CSV, the way a real
pipeline would export them from the payments store.

Deterministic: the same seed gives the same file. The seed is the run's
`seed` (from conf, see below) or else the logical date. A `drift` value
(0 = the usual world, 1 = strongly drifted) moves the distribution: every
transaction gets larger and more of them are card-not-present (covariate
drift), and fraudsters imitate ordinary customers (concept drift), so a
model trained on such a day separates fraud worse.

`seed` and `drift` are read from the run's conf ($DAGD_CONF): at its top
level (`dagctl trigger --conf '{"drift": 1}'`), in an event's `payload`,
or in an Alertmanager alert's `annotations` or `labels`. Command-line
flags override them.

Like real exports the file has some dirt for the clean step: a few
repeated rows, missing and negative (refund) amounts.

usage: collect.py --ds YYYY-MM-DD --out FILE [--rows N] [--seed S] [--drift X]
SPDX-License-Identifier: MIT"""
import argparse
import csv
import json
import math
import os
import random
import sys

CATEGORIES = ["grocery", "fuel", "restaurant", "travel", "electronics", "online"]
COUNTRIES = ["DE", "FR", "NL", "US", "other"]


def from_conf(name):
    """conf[name], else the event payload's, the alert's annotations' or labels'."""
    try:
        conf = json.loads(os.environ.get("DAGD_CONF") or "{}")
    except ValueError:
        return None
    if not isinstance(conf, dict):
        return None
    for where in (conf, conf.get("payload"), conf.get("annotations"), conf.get("labels")):
        if isinstance(where, dict) and where.get(name) not in (None, ""):
            return str(where[name])
    return None


def pick(rng, items, weights):
    return rng.choices(items, weights=weights)[0]


def transaction(rng, i, ds, drift):
    fraud = rng.random() < 0.08
    if fraud:
        # Fraudsters adapt under drift: smaller amounts, card present,
        # domestic cards, daytime, ordinary shops.
        amount = rng.lognormvariate(4.9 - 1.1 * drift, 0.8)
        hour = rng.randrange(24) if rng.random() < 0.5 + 0.4 * drift else rng.choice([0, 1, 2, 3, 4, 23])
        card_present = rng.random() < 0.15 + 0.5 * drift
        country = pick(rng, COUNTRIES, [35 + 40 * drift, 10, 10, 20 - 10 * drift, 25 - 20 * drift])
        category = pick(rng, CATEGORIES, [5 + 15 * drift, 5, 5, 20, 35 - 15 * drift, 30])
    else:
        # Ordinary customers drift too: larger baskets, more online.
        amount = rng.lognormvariate(3.3 + 0.6 * drift, 0.8)
        hour = min(23, max(0, int(rng.gauss(14, 4))))
        card_present = rng.random() < 0.7 - 0.3 * drift
        country = pick(rng, COUNTRIES, [80 - 20 * drift, 7, 7, 3 + 10 * drift, 3 + 10 * drift])
        category = pick(rng, CATEGORIES, [30, 15, 20, 5, 10, 20 + 10 * drift])
    return {
        "id": i,
        "day": ds,
        "hour": hour,
        "amount": f"{amount:.2f}",
        "category": category,
        "country": country,
        "card_present": "true" if card_present else "false",
        "is_fraud": 1 if fraud else 0,
    }


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--ds", required=True)
    ap.add_argument("--out", required=True)
    ap.add_argument("--rows", type=int, default=8000)
    ap.add_argument("--seed")
    ap.add_argument("--drift", type=float)
    a = ap.parse_args()
    seed = a.seed or from_conf("seed") or a.ds
    drift = a.drift if a.drift is not None else float(from_conf("drift") or 0)
    if not 0 <= drift <= 2 or math.isnan(drift):
        sys.exit(f"collect: drift must be within 0..2, got {drift}")
    rng = random.Random(f"fraud/{seed}")  # str seeds are stable across Python runs
    rows = [transaction(rng, 100000 + i, a.ds, drift) for i in range(a.rows)]
    for r in rng.sample(rows, a.rows // 100):  # 1% missing amounts
        r["amount"] = ""
    for r in rng.sample(rows, a.rows // 200):  # 0.5% refunds
        r["amount"] = "-" + r["amount"] if r["amount"] else ""
    for r in rng.sample(rows, a.rows // 200):  # 0.5% delivered twice
        rows.append(dict(r))
    os.makedirs(os.path.dirname(a.out) or ".", exist_ok=True)
    tmp = a.out + ".tmp"
    with open(tmp, "w", newline="") as f:
        w = csv.DictWriter(f, fieldnames=list(rows[0]), lineterminator="\n")
        w.writeheader()
        w.writerows(rows)
    os.replace(tmp, a.out)
    print(f"collect: {len(rows)} transactions for {a.ds} (seed {seed!r}, drift {drift:g}) into {a.out}")
    if os.environ.get("DAGD_OUTPUT"):
        with open(os.environ["DAGD_OUTPUT"], "a") as f:
            f.write(f"rows={len(rows)}\nseed={seed}\ndrift={drift:g}\npath={a.out}\n")


if __name__ == "__main__":
    main()
