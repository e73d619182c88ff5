"""The fraud model shared by train.py and evaluate.py: features of a
transaction, the train/test split, and a logistic regression written out
as plain JSON (no numpy: the example needs nothing beyond Python 3).
SPDX-License-Identifier: MIT"""
import csv
import math

CATEGORIES = ["fuel", "restaurant", "travel", "electronics", "online"]  # grocery is the base
COUNTRIES = ["FR", "NL", "US", "other"]  # DE is the base
NAMES = (["log_amount", "night", "card_present"] + [f"category={c}" for c in CATEGORIES] +
         [f"country={c}" for c in COUNTRIES])


def features(row):
    hour = int(row["hour"])
    return ([math.log1p(float(row["amount"])), 1.0 if hour < 6 or hour == 23 else 0.0,
             1.0 if row["card_present"] == "true" else 0.0] +
            [1.0 if row["category"] == c else 0.0 for c in CATEGORIES] +
            [1.0 if row["country"] == c else 0.0 for c in COUNTRIES])


def is_test(row):
    """Every fifth transaction (by id) is held out for evaluation."""
    return int(row["id"]) % 5 == 0


def load(path, test):
    """(features, labels) of the train or the test rows of a clean CSV."""
    xs, ys = [], []
    with open(path, newline="") as f:
        for row in csv.DictReader(f):
            if is_test(row) == test:
                xs.append(features(row))
                ys.append(int(row["is_fraud"]))
    return xs, ys


def score(model, x):
    """The model's fraud probability for one feature vector."""
    z = model["bias"]
    for w, v, m, s in zip(model["weights"], x, model["mean"], model["std"]):
        z += w * (v - m) / s
    return 1.0 / (1.0 + math.exp(-max(-30.0, min(30.0, z))))


def f1(labels, predicted):
    tp = sum(1 for y, p in zip(labels, predicted) if y and p)
    fp = sum(1 for y, p in zip(labels, predicted) if not y and p)
    fn = sum(1 for y, p in zip(labels, predicted) if y and not p)
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def auc(labels, scores):
    """Area under the ROC curve: the Mann-Whitney U statistic, ties counted half."""
    order = sorted(range(len(scores)), key=lambda i: scores[i])
    ranks = [0.0] * len(scores)
    i = 0
    while i < len(order):
        j = i
        while j + 1 < len(order) and scores[order[j + 1]] == scores[order[i]]:
            j += 1
        for k in range(i, j + 1):
            ranks[order[k]] = (i + j) / 2 + 1
        i = j + 1
    pos = sum(labels)
    neg = len(labels) - pos
    if pos == 0 or neg == 0:
        return 0.5
    return (sum(r for r, y in zip(ranks, labels) if y) - pos * (pos + 1) / 2) / (pos * neg)
