#!/usr/bin/python3
"""Resource bounds: how dagd's memory, startup time, loop lag and API
latency grow with a big workload, and whether a long run leaks.

  bench/bounds.py BUILD_DIR OUT_DIR [--asan-build DIR]

1. 1,000 generated DAG files (bench/gen_dags.py, 20 tasks each, start dates
   in the future so nothing runs) plus one DAG of 10,000 tasks, on an empty
   state: startup time, RSS, loop lag, API latency.
2. The same after 1,000,000 historical task instances (50,000 finished runs
   of 20 tasks, 50 per DAG) inserted straight into the state database that
   dagd created on the first start.
3. A soak of the 10,000-task DAG (one run, every task `true`): file
   descriptors of the daemon before and after, RSS after.
4. With --asan-build: a shorter soak (1,000 tasks) under the ASan build and
   a clean SIGTERM, so LeakSanitizer reports any leak at exit.
Figures go to stdout, one line each.
SPDX-License-Identifier: MIT"""
import json
import os
import shutil
import signal
import socket
import sqlite3
import statistics
import subprocess
import sys
import time
import urllib.request

HERE = os.path.dirname(os.path.abspath(__file__))


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    port = s.getsockname()[1]
    s.close()
    return port


def get(url, timeout=60):
    with urllib.request.urlopen(url, timeout=timeout) as r:
        return r.read()


def post(url, body):
    req = urllib.request.Request(url, data=json.dumps(body).encode(), method="POST",
                                 headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(req, timeout=60) as r:
        return json.loads(r.read())


def rss_kib(pid):
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1])
    return -1


def fds(pid):
    return len(os.listdir(f"/proc/{pid}/fd"))


class Daemon:
    def __init__(self, dagd, work, env=None, log="dagd.log"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        args = [dagd, "--listen", f"127.0.0.1:{self.port}", "--dags-folder", f"{work}/dags",
                "--state", f"{work}/state.db", "--logs-folder", f"{work}/logs", "--parallelism", "16",
                "--log-level", "warn"]
        self.log = open(os.path.join(work, log), "ab")
        self.t0 = time.monotonic()
        self.proc = subprocess.Popen(args, stdout=self.log, stderr=subprocess.STDOUT,
                                     env=dict(os.environ, **(env or {})))

    def wait_ready(self, n_dags, deadline=600):
        """Polls until the API lists n_dags DAGs; returns the seconds since start."""
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                raise SystemExit(f"dagd exited with {self.proc.returncode}")
            try:
                doc = json.loads(get(f"{self.url}/api/v1/dags?limit=1", timeout=5))
                if doc.get("total_entries") == n_dags:
                    return time.monotonic() - self.t0
            except OSError:
                pass
            time.sleep(0.05)
        raise SystemExit("dagd not ready before the deadline")

    def lag(self):
        for line in get(f"{self.url}/metrics").decode().splitlines():
            if line.startswith("dagd_loop_lag_seconds "):
                return float(line.split()[1])
        return float("nan")

    def stop(self):
        self.proc.send_signal(signal.SIGTERM)
        rc = self.proc.wait(timeout=120)
        self.log.close()
        return rc


def latency_ms(url, n=10):
    times = []
    size = 0
    for _ in range(n):
        t = time.perf_counter()
        size = len(get(url))
        times.append((time.perf_counter() - t) * 1000)
    return statistics.median(times), max(times), size


def big_dag(path, n):
    with open(path, "w") as f:
        f.write(f"""local dagd = require "dagd"
-- {n} tasks: a root, {n - 2} in parallel, a sink.
local d = dagd.dag {{ id = "big", max_active_tasks = 16 }}
local root = d:shell {{ id = "root", cmd = {{ "true" }} }}
local mid = {{}}
for i = 1, {n - 2} do mid[i] = d:shell {{ id = string.format("t%05d", i), cmd = {{ "true" }}, deps = {{ root }} }} end
d:shell {{ id = "sink", cmd = {{ "true" }}, deps = mid, trigger_rule = "all_done" }}
""")


def make_dags(work, n_files, tasks_big):
    dags = os.path.join(work, "dags")
    subprocess.run([sys.executable, os.path.join(HERE, "gen_dags.py"), dags, str(n_files), "20"], check=True)
    # Start dates in the future: the DAGs are scheduled but create no run.
    for name in os.listdir(dags):
        p = os.path.join(dags, name)
        with open(p) as f:
            text = f.read()
        with open(p, "w") as f:
            f.write(text.replace('start_date = "2026-01-01"', 'start_date = "2030-01-01"'))
    big_dag(os.path.join(dags, "big.lua"), tasks_big)


def insert_history(db_path, n_dags, runs_per_dag, tasks):
    db = sqlite3.connect(db_path)
    db.execute("PRAGMA journal_mode=WAL")
    db.execute("PRAGMA synchronous=OFF")
    # Within the default log_retention (30 days): older runs would be pruned
    # by the daemon at start, and the bench would measure the prune.
    day = 86400 * 25 // runs_per_dag
    base = int(time.time()) - 26 * 86400
    t0 = time.monotonic()
    with db:
        for i in range(n_dags):
            dag_id = f"bench_{i:05d}"
            for r in range(runs_per_dag):
                ld = base + r * day
                cur = db.execute(
                    "INSERT INTO dag_run (dag_id, run_id, run_type, logical_date, interval_start, interval_end,"
                    " conf, state, queued_at, start_date, end_date) VALUES (?, ?, 'scheduled', ?, ?, ?, '{}',"
                    " 'success', ?, ?, ?)",
                    (dag_id, f"scheduled__hist{r:04d}", ld, ld, ld + day, ld + day, ld + day + 1, ld + day + 60))
                pk = cur.lastrowid
                db.executemany(
                    "INSERT INTO task_instance (run_pk, task_id, state, try_number, max_tries, start_date,"
                    " end_date, exit_code) VALUES (?, ?, 'success', 1, 3, ?, ?, 0)",
                    [(pk, f"t{t:02d}", ld + day + 1 + t, ld + day + 2 + t) for t in range(tasks)])
    n = db.execute("SELECT count(*) FROM task_instance").fetchone()[0]
    db.close()
    return n, time.monotonic() - t0


def measure(d, label, n_dags):
    ready = d.wait_ready(n_dags)
    # Let a few heartbeats pass so the lag gauge reflects the loaded loop.
    time.sleep(3)
    print(f"{label}: startup (to API listing all {n_dags} DAGs) {ready:.2f} s, RSS {rss_kib(d.proc.pid) / 1024:.1f} MiB, "
          f"loop lag {d.lag() * 1000:.1f} ms, fds {fds(d.proc.pid)}")
    for what, path in [("GET /api/v1/dags", "/api/v1/dags"),
                       ("GET runs list (100)", "/api/v1/dags/bench_00007/dagRuns?limit=100"),
                       ("GET a run's taskInstances (20)",
                        "/api/v1/dags/bench_00007/dagRuns/scheduled__hist0003/taskInstances")]:
        try:
            med, worst, size = latency_ms(d.url + path)
            print(f"{label}: {what}: median {med:.1f} ms, max {worst:.1f} ms, {size} bytes")
        except OSError as e:
            print(f"{label}: {what}: {e}")


def soak(d, label, deadline=1800):
    before = fds(d.proc.pid)
    rss0 = rss_kib(d.proc.pid)
    t0 = time.monotonic()
    run = post(f"{d.url}/api/v1/dags/big/dagRuns", {"dag_run_id": "soak"})
    state = run["state"]
    lags = []
    while state not in ("success", "failed") and time.monotonic() - t0 < deadline:
        time.sleep(1)
        state = json.loads(get(f"{d.url}/api/v1/dags/big/dagRuns/soak"))["state"]
        lags.append(d.lag())
    secs = time.monotonic() - t0
    # The API's own connections are closed by now; give the loop a beat.
    time.sleep(1)
    after = fds(d.proc.pid)
    med, worst, size = latency_ms(f"{d.url}/api/v1/dags/big/dagRuns/soak/taskInstances", n=3)
    print(f"{label}: run {state} in {secs:.0f} s; fds before {before}, after {after}; "
          f"RSS {rss0 / 1024:.1f} -> {rss_kib(d.proc.pid) / 1024:.1f} MiB; loop lag max {max(lags or [0]) * 1000:.0f} ms; "
          f"GET its taskInstances: median {med:.0f} ms, {size} bytes")
    return state, before, after


def main():
    build, out = sys.argv[1], sys.argv[2]
    asan = sys.argv[sys.argv.index("--asan-build") + 1] if "--asan-build" in sys.argv else None
    dagd = os.path.join(build, "dagd")
    work = os.path.join(out, "bounds")
    shutil.rmtree(work, ignore_errors=True)
    os.makedirs(work)
    make_dags(work, 1000, 10000)

    d = Daemon(dagd, work)
    measure(d, "empty history", 1001)
    d.stop()

    n, secs = insert_history(os.path.join(work, "state.db"), 1000, 50, 20)
    print(f"history: {n} task instances inserted in {secs:.1f} s; state file "
          f"{os.path.getsize(os.path.join(work, 'state.db')) / 1e6:.0f} MB")

    d = Daemon(dagd, work)
    measure(d, "1M history", 1001)
    state, before, after = soak(d, "10,000-task soak")
    rc = d.stop()
    print(f"10,000-task soak: dagd stopped with {rc}; fd leak: {'none' if after <= before else after - before}")

    if asan:
        awork = os.path.join(out, "bounds-asan")
        shutil.rmtree(awork, ignore_errors=True)
        os.makedirs(os.path.join(awork, "dags"))
        big_dag(os.path.join(awork, "dags", "big.lua"), 1000)
        d = Daemon(os.path.join(asan, "dagd"), awork,
                   env={"ASAN_OPTIONS": "detect_leaks=1", "LSAN_OPTIONS": "exitcode=23"}, log="asan.log")
        d.wait_ready(1)
        soak(d, "1,000-task soak under ASan")
        rc = d.stop()
        with open(os.path.join(awork, "asan.log"), errors="replace") as f:
            log = f.read()
        leaks = log.count("ERROR: LeakSanitizer")
        print(f"ASan soak: dagd exit {rc}, LeakSanitizer reports {leaks}, other sanitizer errors "
              f"{log.count('ERROR: AddressSanitizer') + log.count('runtime error')}")


if __name__ == "__main__":
    main()
