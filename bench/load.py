#!/usr/bin/python3
"""Loader benchmark: times `dagctl validate` over a folder of generated DAG
files (best and median of several runs) and reports files/second and the
peak RSS of the process.
SPDX-License-Identifier: MIT"""
import os
import resource
import statistics
import subprocess
import sys
import time


def run_once(dagctl, folder):
    start = time.perf_counter()
    pid = os.fork()
    if pid == 0:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, 1)
        os.execv(dagctl, [dagctl, "validate", folder])
    _, status, usage = os.wait4(pid, 0)
    elapsed = time.perf_counter() - start
    if os.waitstatus_to_exitcode(status) != 0:
        sys.exit(f"dagctl validate {folder} failed")
    return elapsed, usage.ru_maxrss  # KiB on Linux


def main():
    dagctl, folder, files = sys.argv[1], sys.argv[2], int(sys.argv[3])
    runs = int(os.environ.get("BENCH_RUNS", "7"))
    results = [run_once(dagctl, folder) for _ in range(runs)]
    times = [r[0] for r in results]
    rss = max(r[1] for r in results)
    best, median = min(times), statistics.median(times)
    print(f"files: {files}  runs: {runs}")
    print(f"best:   {best * 1000:8.1f} ms  {files / best:10.0f} files/s")
    print(f"median: {median * 1000:8.1f} ms  {files / median:10.0f} files/s")
    print(f"peak RSS: {rss / 1024:.1f} MiB")


if __name__ == "__main__":
    main()
