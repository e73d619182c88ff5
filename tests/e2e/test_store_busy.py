#!/usr/bin/python3
"""The daemon against a state file another process holds the write lock on.

A python3 sqlite3 connection takes BEGIN EXCLUSIVE on dagd's state file
and keeps it while the test checks, one after the other, that:
1. /health answers (each request has a 2 s deadline, far less than the
   5 s a store wait used to take on the loop) and says "store": "busy";
2. a trigger answers 503 with a Retry-After header, and nothing is made;
3. a try that ends under the lock (its task waits for a file the test
   creates then) has its end kept durably while the store cannot record
   it, and recorded once the lock is released: the run succeeds with one
   try and exit code 0, and /health says "store": "ok" again. Under the
   try supervisor (the default where cgroup v2 is writable) the durable
   copy is the supervisor's journal <state>.supervisor: the try's end
   ("E ... exit 0") is in it under the lock and not yet forgotten ("F"),
   which comes only once dagd has committed the end. Under per-try shims
   (no writable cgroup v2) it is the shim's <try>.exit file.
Every answer in 1 and 2 arrives while the lock is still held: the test
releases it only after them. The same trigger made after the release is
accepted. At the end the supervisor, with no daemon and no try left,
leaves by itself.
SPDX-License-Identifier: MIT"""
import json
import os
import shutil
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

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


def journal(path, base):
    """What the try supervisor's journal says of the try whose files are
    at base: {"starts": how many S lines, "ends": [(how, code)], "forgotten":
    whether an F line came}, the lines matched through the try's seq."""
    seqs = set()
    info = {"starts": 0, "ends": [], "forgotten": False}
    try:
        lines = open(path).read().split("\n")
    except OSError:
        return info
    for line in lines:
        f = line.split("\t")
        if f[0] == "S" and len(f) == 5 and f[4] == base:
            seqs.add(f[1])
            info["starts"] += 1
        elif f[0] == "E" and len(f) == 5 and f[1] in seqs:
            info["ends"].append((f[2], int(f[3])))
        elif f[0] == "F" and len(f) == 2 and f[1] in seqs:
            info["forgotten"] = True
    return info


def supervisor_pid(state):
    """The live try supervisor's pid for state, or None."""
    try:
        pid = int(open(state + ".supervisor.lock").read().split()[0])
        cmdline = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    except (OSError, ValueError, IndexError):
        return None
    return pid if b"supervise" in cmdline else None


def request(port, method, path, body=None, timeout=2.0):
    """(status, headers, parsed body); status None when no answer came
    before the deadline."""
    data = json.dumps(body).encode() if body is not None else b""
    head = (f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n"
            f"Content-Length: {len(data)}\r\n")
    if body is not None:
        head += "Content-Type: application/json\r\n"
    try:
        s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
        s.settimeout(timeout)
        s.sendall(head.encode() + b"\r\n" + data)
        raw = b""
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            raw += chunk
        s.close()
    except (socket.timeout, OSError) as e:
        print(f"{method} {path}: no answer: {e}")
        return None, {}, None
    head, _, payload = raw.partition(b"\r\n\r\n")
    lines = head.decode().split("\r\n")
    status = int(lines[0].split()[1])
    headers = {k.strip().lower(): v.strip() for k, _, v in (l.partition(":") for l in lines[1:])}
    try:
        doc = json.loads(payload) if payload else None
    except ValueError:
        doc = None
    return status, headers, doc


def main():
    work = tempfile.mkdtemp()
    dags = os.path.join(work, "dags")
    os.makedirs(dags)
    go = os.path.join(work, "go")
    with open(os.path.join(dags, "busy.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "wait" }\n'
                f'd:shell {{ id = "w", cmd = "while [ ! -e {go} ]; do sleep 0.05; done" }}\n'
                'local q = dagd.dag { id = "quick" }\n'
                'q:shell { id = "q", cmd = "true" }\n')
    log_path = os.path.join(work, "dagd.log")
    log = open(log_path, "w")
    state = os.path.join(work, "dagd.db")
    proc = subprocess.Popen([os.path.join(BUILD, "dagd"), "--listen", "127.0.0.1:0", "--dags-folder", dags,
                             "--state", state, "--logs-folder", os.path.join(work, "logs")],
                            stdout=log, stderr=subprocess.STDOUT)
    lock = None
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

        st, _, doc = request(port, "GET", "/health")
        check(st == 200 and doc and doc.get("store") == "ok", f"/health before the lock: {st} {doc}")
        st, _, doc = request(port, "POST", "/api/v1/dags/wait/dagRuns", {"dag_run_id": "r1"})
        check(st in (200, 201), f"trigger wait/r1: {st} {doc}")
        tis = "/api/v1/dags/wait/dagRuns/r1/taskInstances"

        def task_w():
            st, _, doc = request(port, "GET", tis)
            for t in (doc or {}).get("task_instances", []) if st == 200 else []:
                if t.get("task_id") == "w":
                    return t
            return {}
        check(until(lambda: task_w().get("state") == "running", 15, "w running"),
              "wait/r1/w runs")

        lock = sqlite3.connect(state, isolation_level=None, timeout=10)
        lock.execute("BEGIN EXCLUSIVE")
        # 1. /health, several times, with the lock held.
        for i in range(5):
            st, _, doc = request(port, "GET", "/health")
            check(st == 200 and doc and doc.get("store") == "busy", f"/health {i} under the lock: {st} {doc}")
        # 2. A trigger: a quick 503 with Retry-After, nothing made.
        st, headers, doc = request(port, "POST", "/api/v1/dags/quick/dagRuns", {"dag_run_id": "q1"})
        check(st == 503 and headers.get("retry-after", "").isdigit(),
              f"trigger under the lock: {st} {headers.get('retry-after')} {doc}")
        # 3. The try ends while the lock is held: its end is kept durably
        # (the supervisor's journal, or the shim's exit file) and not
        # recorded in the store.
        open(go, "w").close()
        base = os.path.join(work, "logs", "wait", "r1", "w", "1")
        journal_path = state + ".supervisor"
        supervised = "tries start under the supervisor of" in open(log_path).read()
        if supervised:
            kept = until(lambda: journal(journal_path, base)["ends"], 15, "the try's end in the journal")
            check(kept, "w ended under the lock: its end is in the supervisor's journal")
            j = journal(journal_path, base)
            check(j["starts"] == 1 and j["ends"] == [("exit", 0)] and not j["forgotten"],
                  f"under the lock the journal holds w's one start and its end (exit 0), not forgotten: {j}")
        else:
            exit_file = base + ".exit"
            check(until(lambda: os.path.exists(exit_file), 15, "the try's exit record"),
                  "w ended under the lock: its shim wrote its exit record")
        st, _, doc = request(port, "GET", "/health")
        check(st == 200 and doc and doc.get("store") == "busy", f"/health after the try ended: {st} {doc}")
        doc = task_w()
        check(doc.get("state") == "running", f"w under the lock: {doc}")
        lock.rollback()
        lock.close()
        lock = None

        run = "/api/v1/dags/wait/dagRuns/r1"
        check(until(lambda: (request(port, "GET", run)[2] or {}).get("state") == "success", 15, "r1 success"),
              "wait/r1 succeeds once the lock is released")
        doc = task_w()
        check(doc.get("state") == "success" and doc.get("try_number") == 1 and doc.get("exit_code") == 0,
              f"w after the release: {doc}")
        row = sqlite3.connect(state).execute(
            "SELECT ti.state, ti.try_number, ti.exit_code FROM task_instance ti JOIN dag_run r ON r.id = ti.run_pk"
            " WHERE r.dag_id = 'wait' AND r.run_id = 'r1' AND ti.task_id = 'w'").fetchone()
        check(row == ("success", 1, 0), f"the db has w's end: {row}")
        if supervised:
            # Recorded: dagd tells the supervisor, which forgets the end.
            check(until(lambda: journal(journal_path, base)["forgotten"], 15, "the journal's forget"),
                  f"the journal forgets w's end once it is recorded: {journal(journal_path, base)}")
        check(until(lambda: (request(port, "GET", "/health")[2] or {}).get("store") == "ok", 15, "store ok"),
              "/health says the store is ok again")
        st, _, doc = request(port, "GET", "/api/v1/dags/quick/dagRuns/q1")
        check(st == 404, f"the refused trigger made nothing: {st} {doc}")
        st, _, doc = request(port, "POST", "/api/v1/dags/quick/dagRuns", {"dag_run_id": "q1"})
        check(st in (200, 201), f"the same trigger after the release: {st} {doc}")
    finally:
        if lock is not None:
            lock.close()
        proc.terminate()
        try:
            proc.wait(timeout=20)
        except subprocess.TimeoutExpired:
            proc.kill()
            proc.wait()
        # No daemon and no try: the supervisor leaves (killed if it does not,
        # so that the test leaves nothing behind).
        check(until(lambda: supervisor_pid(state) is None, 15, "the supervisor to leave"),
              "the try supervisor leaves once dagd has stopped")
        left = supervisor_pid(state)
        if left is not None:
            os.kill(left, 9)
        log.close()
        if failures:
            print("---- dagd log ----")
            print(open(log_path).read()[-4000:])
            if os.path.exists(state + ".supervisor"):
                print("---- the supervisor's journal ----")
                print(open(state + ".supervisor").read()[-4000:])
        shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {len(failures)} failed")
    sys.exit(1 if failures else 0)


main()
