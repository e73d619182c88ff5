#!/usr/bin/python3
"""A forward jump of the wall clock creates the runs that became due, with
no other event to wake the scheduler.

The machine's clock cannot be set by a test on a shared machine, and a
time namespace (unshare --time) moves only the monotonic and boot clocks,
never CLOCK_REALTIME. So the daemon runs with DAGD_TEST_CLOCK_FILE, its
test-only clock: the file holds seconds added to the wall clock, and a
change of the file reaches the same handler as a clock set reported by the
timerfd (TFD_TIMER_CANCEL_ON_SET). The DAG runs every 6 h from a minute
ago, so its first run is due in almost 6 h; the daemon is idle, its wake
timer armed on the monotonic clock. The test moves the clock 7 h on and
waits for the scheduled run; nothing else happens meanwhile (no request
but the polls of GET dagRuns, which do not plan).
SPDX-License-Identifier: MIT"""
import json
import os
import shutil
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.environ["DAGD_BUILD_DIR"]
failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what)


def until(fn, seconds, what):
    """Calls fn until it returns a true value, with a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    print("timed out waiting for", what)
    return None


def get(port, path):
    with urllib.request.urlopen(f"http://127.0.0.1:{port}{path}", timeout=10) as r:
        return json.loads(r.read())


def set_clock(path, seconds):
    """Replaces the clock file at once, as a rename (never half written)."""
    with open(path + ".tmp", "w") as f:
        f.write(f"{seconds}\n")
    os.replace(path + ".tmp", path)


def main():
    work = tempfile.mkdtemp()
    dags = os.path.join(work, "dags")
    os.makedirs(dags)
    clock_dir = os.path.join(work, "clock")
    os.makedirs(clock_dir)
    clock = os.path.join(clock_dir, "offset")
    set_clock(clock, 0)
    start = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 60))
    with open(os.path.join(dags, "tick.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                f'local d = dagd.dag {{ id = "tick", schedule = "every 6h", start_date = "{start}" }}\n'
                'd:shell { id = "t", cmd = "true" }\n')
    log_path = os.path.join(work, "dagd.log")
    log = open(log_path, "w")
    env = dict(os.environ, DAGD_TEST_CLOCK_FILE=clock)
    proc = subprocess.Popen([os.path.join(BUILD, "dagd"), "--listen", "127.0.0.1:0", "--dags-folder", dags,
                             "--state", os.path.join(work, "dagd.db"), "--logs-folder", os.path.join(work, "logs")],
                            stdout=log, stderr=subprocess.STDOUT, env=env)
    port = None
    try:
        def listening():
            nonlocal port
            for line in open(log_path):
                if "(port " in line:
                    port = int(line.rsplit("(port ", 1)[1].split(")")[0])
                    return True
            return False
        if not until(listening, 10, "dagd to listen"):
            sys.exit(1)
        runs = "/api/v1/dags/tick/dagRuns"
        doc = get(port, runs)
        check(doc["total_entries"] == 0, f"no run before the jump: {doc}")

        set_clock(clock, 7 * 3600)
        doc = until(lambda: (lambda d: d if d["total_entries"] > 0 else None)(get(port, runs)), 15,
                    "the run due after the jump")
        check(doc is not None, "the jump created the due run")
        if doc:
            r = doc["dag_runs"][0]
            check(r["run_type"] == "scheduled" and doc["total_entries"] == 1, f"one scheduled run: {doc}")
            check(r["data_interval_start"].startswith(start[:16]), f"its interval starts at {start}: {r}")
        check(until(lambda: (get(port, runs)["dag_runs"] or [{}])[0].get("state") == "success", 15, "success"),
              "the run succeeds")
        check("cannot watch the wall clock" not in open(log_path).read(), "the timerfd watch is armed")
        # The heartbeat is monotonic: the jump does not make the loop look stuck.
        h = get(port, "/health")
        check(h["status"] == "ok" and h["scheduler"]["heartbeat_age_seconds"] < 30, f"/health after the jump: {h}")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        log.close()
        if failures:
            print("---- dagd log ----")
            print(open(log_path).read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
