#!/usr/bin/python3
"""Webhook benchmark: events posted to dagd's /api/v1/events at a fixed
rate (default 200/s for 60 s) on a keep-alive connection; every event
starts a run whose one task stamps the moment its process starts.
Reports the latency from sending the event to the task's process start
(p50, p90, p99, max), and checks that no event was lost or duplicated
(every event started exactly one run; re-sent ids started none).
With BENCH_WEBHOOK_CLIENTS=N (default 1) the rate is shared by N clients,
each on its own keep-alive connection, and the delivery latency (event
sent -> 202 received, the 202 coming only once the event is durable) is
reported too. BENCH_WEBHOOK_RUNS=0 posts events no DAG listens to: every
delivery is recorded durably but starts nothing, which measures the
delivery path alone.
Usage: webhook.py BUILD_DIR OUT_DIR   (env BENCH_WEBHOOK_RATE, BENCH_WEBHOOK_SECONDS,
       BENCH_WEBHOOK_CLIENTS, BENCH_WEBHOOK_RUNS)
SPDX-License-Identifier: MIT"""
import http.client
import json
import os
import shutil
import sqlite3
import statistics
import subprocess
import sys
import tempfile
import threading
import time

HERE = os.path.dirname(os.path.abspath(__file__))


def main():
    build, out = os.path.abspath(sys.argv[1]), os.path.abspath(sys.argv[2])
    rate = float(os.environ.get("BENCH_WEBHOOK_RATE", "200"))
    seconds = float(os.environ.get("BENCH_WEBHOOK_SECONDS", "60"))
    os.makedirs(out, exist_ok=True)
    stamp = os.path.join(out, "stamp")
    if subprocess.run(["cc", "-O2", "-static", "-o", stamp, os.path.join(HERE, "stamp.c")]).returncode != 0:
        subprocess.run(["cc", "-O2", "-o", stamp, os.path.join(HERE, "stamp.c")], check=True)
    root = os.environ.get("BENCH_TMPDIR") or ("/dev/shm" if os.path.isdir("/dev/shm") else None)
    work = tempfile.mkdtemp(prefix="dagd-bench-webhook-", dir=root)
    stamps = os.path.join(work, "stamps")
    os.makedirs(os.path.join(work, "dags"))
    with open(os.path.join(work, "dags", "hit.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "hit", on_event = { "hit" }, max_active_runs = 64, max_active_tasks = 64 }\n'
                f'd:shell {{ id = "t", cmd = {{ "{stamp}", "{stamps}", "{{{{ conf.payload.seq }}}}" }} }}\n')
    log = open(os.path.join(work, "dagd.log"), "w")
    proc = subprocess.Popen([os.path.join(build, "dagd"), "--listen", "127.0.0.1:0", "--parallelism", "32",
                             "--dags-folder", os.path.join(work, "dags"), "--state", os.path.join(work, "dagd.db"),
                             "--logs-folder", os.path.join(work, "logs"), "--log-level", "warn"],
                            stdout=log, stderr=subprocess.STDOUT)
    try:
        port = None
        deadline = time.monotonic() + 10
        while port is None and time.monotonic() < deadline:
            for line in open(os.path.join(work, "dagd.log")):
                if "(port " in line:
                    port = int(line.rsplit("(port ", 1)[1].split(")")[0])
            time.sleep(0.02)
        if port is None:
            # --log-level warn hides the listening line: ask the OS.
            out_ = subprocess.run(["ss", "-ltnp"], capture_output=True, text=True).stdout
            for line in out_.splitlines():
                if f"pid={proc.pid}," in line:
                    port = int(line.split()[3].rsplit(":", 1)[1])
        clients = int(os.environ.get("BENCH_WEBHOOK_CLIENTS", "1"))
        name = "hit" if os.environ.get("BENCH_WEBHOOK_RUNS", "1") != "0" else "nobody-listens"
        sent = {}
        delivered = {}
        repeats = [0]
        failures = []
        n = int(rate * seconds)
        start = time.monotonic()

        def client(k):
            conn = http.client.HTTPConnection("127.0.0.1", port, timeout=30)
            for seq in range(k, n, clients):
                due = start + seq / rate
                now = time.monotonic()
                if due > now:
                    time.sleep(due - now)
                t0 = time.time()
                body = json.dumps({"name": name, "id": f"e{seq}", "payload": {"seq": seq}})
                conn.request("POST", "/api/v1/events", body, {"Content-Type": "application/json"})
                r = conn.getresponse()
                r.read()
                if r.status != 202:
                    failures.append(f"event {seq} got {r.status}")
                    return
                sent[seq] = t0
                delivered[seq] = time.time() - t0
                if seq % 100 == 0:  # Alertmanager-style repeat: must start nothing
                    conn.request("POST", "/api/v1/events", body, {"Content-Type": "application/json"})
                    r = conn.getresponse()
                    r.read()
                    repeats[0] += 1
            conn.close()

        threads = [threading.Thread(target=client, args=(k,)) for k in range(clients)]
        for t in threads:
            t.start()
        for t in threads:
            t.join()
        if failures:
            sys.exit("webhook bench: " + failures[0])
        repeats = repeats[0]
        elapsed = time.monotonic() - start
        dl = sorted(v * 1000 for v in delivered.values())
        dq = lambda p: dl[min(len(dl) - 1, int(p * len(dl)))]
        print(f"webhook: {n} events offered at {rate:.0f}/s by {clients} clients, delivered in {elapsed:.2f} s "
              f"({len(dl) / elapsed:.0f}/s, +{repeats} repeats)")
        print(f"event sent -> 202 (durable), ms: p50 {dq(0.5):.2f}  p90 {dq(0.9):.2f}  p99 {dq(0.99):.2f}  "
              f"max {dl[-1]:.2f}  mean {statistics.mean(dl):.2f}")
        db = sqlite3.connect(os.path.join(work, "dagd.db"))
        if name != "hit":
            rows = db.execute("select count(*), count(distinct external_id) from event "
                              "where name = ? and outcome = 'accepted'", (name,)).fetchone()
            dup_rows = db.execute("select count(*) from event where name = ? and outcome = 'duplicate'",
                                  (name,)).fetchone()[0]
            print(f"recorded: {rows[0]} accepted ({rows[1]} distinct ids), {dup_rows} repeats as duplicates")
            if rows[0] != n or rows[1] != n or dup_rows != repeats:
                sys.exit("webhook bench: events were lost or duplicated")
            return
        # Wait for every task to have stamped (deadline, no fixed sleep).
        deadline = time.monotonic() + 120
        seen = {}
        while time.monotonic() < deadline:
            seen = {}
            if os.path.exists(stamps):
                for line in open(stamps):
                    parts = line.split()
                    if len(parts) == 3:
                        seen.setdefault(int(parts[0]), []).append(float(parts[1]))
            if len(seen) >= n:
                break
            time.sleep(0.2)
        runs = db.execute("select count(*) from dag_run where dag_id = 'hit'").fetchone()[0]
        dups = sum(1 for v in seen.values() if len(v) > 1)
        lost = n - len(seen)
        lat = sorted((seen[s][0] - sent[s]) * 1000 for s in seen)
        q = lambda p: lat[min(len(lat) - 1, int(p * len(lat)))]
        print(f"runs {runs}, lost {lost}, duplicated {dups}")
        print(f"event sent -> task process started, ms: p50 {q(0.5):.2f}  p90 {q(0.9):.2f}  p99 {q(0.99):.2f}  "
              f"max {lat[-1]:.2f}  mean {statistics.mean(lat):.2f}")
        if lost or dups or runs != n:
            sys.exit("webhook bench: events were lost or duplicated")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=60)
        except subprocess.TimeoutExpired:
            proc.kill()
        if os.environ.get("BENCH_KEEP") != "1":
            shutil.rmtree(work, ignore_errors=True)


if __name__ == "__main__":
    main()
