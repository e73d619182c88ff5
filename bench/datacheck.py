#!/usr/bin/env python3
# data_check throughput: generates a CSV of BENCH_DC_MB (1024) MB and a
# 200,000-row reference, runs `dagd op` with a data_check spec on it (schema,
# ranges, missingness, a unique id, drift with PSI and KS on four columns)
# and python3-pandas reading the same file, whole (read_csv) and in chunks
# of 1,000,000 rows, each computing missingness and min/max. Reports MB/s
# (best and median of BENCH_RUNS, default 3, interleaved) and peak RSS of
# each process (os.wait4), plus dagd's peak RSS on a 1/16 prefix of the
# file, to show that its memory does not grow with the file.
#   bench/datacheck.py BUILD_DIR OUT_DIR
# SPDX-License-Identifier: MIT
import json
import os
import statistics
import subprocess
import sys
import time

import numpy as np

build, out = sys.argv[1], sys.argv[2]
runs = int(os.environ.get("BENCH_RUNS", "3"))
size_mb = int(os.environ.get("BENCH_DC_MB", "1024"))
work = os.path.join(out, "datacheck")
os.makedirs(work, exist_ok=True)
data = os.path.join(work, f"data-{size_mb}.csv")
prefix = os.path.join(work, f"data-{size_mb}-prefix.csv")
ref = os.path.join(work, "reference.csv")
HEADER = "id,amount,country,fraud,day,score,note\n"


def generate(path, target_bytes, rows_max, seed, shift):
    """Rows of a transaction log: a unique id, lognormal amounts (1 in 97
    missing), 8 countries, a rare fraud flag, dates, a score, and a note
    that is quoted with a comma in it one row in ten."""
    rng = np.random.default_rng(seed)
    countries = ["DE", "FR", "IT", "ES", "NL", "PL", "SE", "AT"]
    days = [f"2026-{m:02d}-{d:02d}" for m in range(1, 13) for d in range(1, 29)]
    notes = ['"Smith, J"', "ok"]
    written, i = 0, 0
    with open(path + ".tmp", "w") as f:
        f.write(HEADER)
        while written < target_bytes and i < rows_max:
            n = min(200_000, rows_max - i)
            amt = np.round(rng.lognormal(3.5 + shift, 1.0, n), 2).astype(str).tolist()
            score = np.round(rng.random(n) + shift / 10, 4).astype(str).tolist()
            cty = rng.integers(0, 8, n).tolist()
            day = rng.integers(0, len(days), n).tolist()
            fraud = (rng.random(n) < 0.01).tolist()
            lines = []
            for k in range(n):
                j = i + k
                lines.append(f"{j},{'' if j % 97 == 0 else amt[k]},{countries[cty[k]]},"
                             f"{'true' if fraud[k] else 'false'},{days[day[k]]},{score[k]},"
                             f"{notes[j % 10 != 0]}\n")
            chunk = "".join(lines)
            f.write(chunk)
            written += len(chunk)
            i += n
    os.rename(path + ".tmp", path)


def ensure_data():
    if not os.path.exists(ref):
        generate(ref, 1 << 40, 200_000, 1, 0.0)
    if not os.path.exists(data):
        t = time.time()
        generate(data, size_mb << 20, 1 << 40, 2, 0.02)
        print(f"generated {data} ({os.path.getsize(data) >> 20} MB) in {time.time() - t:.0f} s")
    if not os.path.exists(prefix):
        with open(data, "rb") as src, open(prefix + ".tmp", "wb") as dst:
            dst.write(src.read(os.path.getsize(data) // 16))
            dst.write(src.readline())
        os.rename(prefix + ".tmp", prefix)


def spec_for(path):
    spec = {
        "operator": "data_check", "dag_id": "bench", "task_id": "check", "context": {}, "extra": None,
        "config": {
            "path": path, "reference": ref,
            "schema": {"id": "int", "amount": "float", "country": "string", "fraud": "bool", "day": "date",
                       "score": "float", "note": "string"},
            "ranges": {"amount": {"min": 0}, "score": {"min": 0, "max": 2}},
            "max_missing": 0.05, "unique": ["id"], "min_rows": 1000,
            "drift": ["amount", "country", "fraud", "score"], "psi_max": 0.2, "ks_max": 0.1,
        },
    }
    p = os.path.join(work, "spec-" + os.path.basename(path) + ".json")
    with open(p, "w") as f:
        json.dump(spec, f)
    return p


PANDAS = r"""
import sys, pandas as pd
path, mode = sys.argv[1], sys.argv[2]
if mode == "whole":
    df = pd.read_csv(path)
    miss = df.isna().mean()
    lo, hi = df[["amount", "score"]].min(), df[["amount", "score"]].max()
    rows = len(df)
else:
    rows, miss, lo, hi = 0, None, None, None
    for df in pd.read_csv(path, chunksize=1_000_000):
        rows += len(df)
        m = df.isna().sum()
        miss = m if miss is None else miss + m
        l, h = df[["amount", "score"]].min(), df[["amount", "score"]].max()
        lo = l if lo is None else pd.concat([lo, l], axis=1).min(axis=1)
        hi = h if hi is None else pd.concat([hi, h], axis=1).max(axis=1)
    miss = miss / rows
print(rows, float(miss["amount"]))
"""


def measure(argv):
    """Wall seconds, CPU seconds, peak RSS (MB), exit status and output of
    one process. RSS comes from /usr/bin/time: Linux carries a process's
    RSS high-water mark across exec, so a child forked from this Python
    would report at least this Python's RSS."""
    t = time.perf_counter()
    p = subprocess.run(["/usr/bin/time", "-f", "DCRSS %M %U %S", *argv], capture_output=True, text=True,
                       errors="replace")
    wall = time.perf_counter() - t
    line = [ln for ln in p.stderr.splitlines() if ln.startswith("DCRSS ")][-1].split()
    return wall, float(line[2]) + float(line[3]), int(line[1]) / 1024, p.returncode, p.stdout + p.stderr


def main():
    ensure_data()
    load0 = f"{os.getloadavg()[0]:.1f}"
    mb = os.path.getsize(data) / (1 << 20)
    dagd = os.path.join(build, "dagd")
    spec = spec_for(data)
    subprocess.run(["cat", data], stdout=subprocess.DEVNULL, check=True)  # page cache warm for everyone
    tools = {
        "dagd data_check": [dagd, "op", spec],
        "pandas read_csv (whole)": ["/usr/bin/python3", "-c", PANDAS, data, "whole"],
        "pandas read_csv (chunks of 1M rows)": ["/usr/bin/python3", "-c", PANDAS, data, "chunks"],
    }
    res = {k: [] for k in tools}
    last = {}
    for _ in range(runs):
        for name, argv in tools.items():
            wall, cpu, rss, rc, text = measure(argv)
            res[name].append((wall, cpu, rss))
            last[name] = (rc, text)
    rc, text = last["dagd data_check"]
    rows = next((ln for ln in text.splitlines() if ln.startswith("data_check ")), "")
    print(f"file: {mb:.0f} MB, {rows}")
    verdict = [ln for ln in text.splitlines() if ln.startswith("data_check ")][-1]
    print(f"dagd exit {rc} ({verdict})")
    print(f"load average before: {load0}, after: {os.getloadavg()[0]:.1f} (2 cores; wall figures suffer from load, CPU ones less)")
    print(f"{'tool':38} {'MB/s wall best':>14} {'median':>8} {'MB/s CPU best':>14} {'peak RSS MB':>12}")
    summary = {}
    for name, r in res.items():
        walls, cpus = [w for w, _, _ in r], [c for _, c, _ in r]
        rss = max(m for _, _, m in r)
        best, med, cbest = mb / min(walls), mb / statistics.median(walls), mb / min(cpus)
        summary[name] = {"mb_s_best": best, "mb_s_median": med, "mb_s_cpu_best": cbest, "peak_rss_mb": rss,
                         "seconds": walls, "cpu_seconds": cpus}
        print(f"{name:38} {best:14.1f} {med:8.1f} {cbest:14.1f} {rss:12.0f}")
    wall, cpu, rss, rc, _ = measure([dagd, "op", spec_for(prefix)])
    print(f"dagd data_check on a 1/16 prefix ({os.path.getsize(prefix) >> 20} MB): peak RSS {rss:.0f} MB")
    summary["dagd prefix peak_rss_mb"] = rss
    with open(os.path.join(out, "datacheck.json"), "w") as f:
        json.dump(summary, f, indent=1)


main()
