#!/usr/bin/python3
"""Hostile clients against a real dagd: 1,000 idle connections held open,
a request trickled byte by byte, pipelined garbage and oversized input,
while a run is triggered and must still be scheduled and finish. Each bad
request gets its status or is dropped; nothing is written for it.
SPDX-License-Identifier: MIT"""
import json
import os
import resource
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BUILD = os.environ["DAGD_BUILD_DIR"]
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)


def until(pred, seconds, what):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        if pred():
            return True
        time.sleep(0.02)
    print("timed out waiting for:", what)
    return False


def raw(port, data, read=True, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    if read:
        try:
            while True:
                chunk = s.recv(65536)
                if not chunk:
                    break
                out += chunk
                if b"\r\n\r\n" in out:
                    head, _, body = out.partition(b"\r\n\r\n")
                    length = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                    if length and len(body) >= int(length[0].split(b":")[1]):
                        break
        except socket.timeout:
            pass
    s.close()
    return out


def post(body, path=b"/api/v1/events"):
    return (b"POST " + path + b" HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            b"Content-Length: %d\r\n\r\n" % len(body)) + body


def status_of(resp):
    try:
        return int(resp.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def request(port, method, path, body=None):
    data = f"{method} {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nConnection: close\r\n".encode()
    if body is not None:
        b = json.dumps(body).encode()
        data += b"Content-Type: application/json\r\nContent-Length: %d\r\n\r\n" % len(b) + b
    else:
        data += b"\r\n"
    resp = raw(port, data)
    return status_of(resp), resp.partition(b"\r\n\r\n")[2]


def main():
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(4096, hard), hard))
    work = tempfile.mkdtemp()
    dags = os.path.join(work, "dags")
    os.makedirs(dags)
    with open(os.path.join(dags, "ping.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "ping", on_event = { "poke" } }\n'
                'd:shell { id = "p", cmd = "echo pong" }\n')
    log = open(os.path.join(work, "dagd.log"), "w")
    state = os.path.join(work, "dagd.db")
    proc = subprocess.Popen([os.path.join(BUILD, "dagd"), "--listen", "127.0.0.1:0", "--dags-folder", dags,
                             "--state", state, "--logs-folder", os.path.join(work, "logs")],
                            stdout=log, stderr=subprocess.STDOUT)
    port = None
    try:
        def listening():
            nonlocal port
            for line in open(os.path.join(work, "dagd.log")):
                if "(port " in line:
                    port = int(line.rsplit("(port ", 1)[1].split(")")[0])
                    return True
            return False
        if not until(listening, 10, "dagd to listen"):
            sys.exit(1)

        # 1,000 idle connections, held open for the whole test.
        idle = []
        for _ in range(1000):
            s = socket.socket()
            s.settimeout(5)
            s.connect(("127.0.0.1", port))
            idle.append(s)

        # A request trickled one byte at a time, mixed with real work.
        body = json.dumps({"name": "poke", "id": "trickle-1"}).encode()
        trickle = (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
                   b"Content-Length: %d\r\nConnection: close\r\n\r\n" % len(body)) + body
        t = socket.create_connection(("127.0.0.1", port), timeout=10)
        st, doc = request(port, "POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "while_hostile"})
        check(st == 200, f"trigger while 1,000 connections idle: {st} {doc[:200]}")
        for i in range(len(trickle)):
            t.send(trickle[i:i + 1])
            time.sleep(0.002)
        resp = b""
        while b"\r\n\r\n" not in resp:
            chunk = t.recv(4096)
            if not chunk:
                break
            resp += chunk
        t.close()
        check(status_of(resp) == 202, f"trickled request answered: {resp[:120]}")

        def run_done():
            st, doc = request(port, "GET", "/api/v1/dags/ping/dagRuns/while_hostile")
            return st == 200 and json.loads(doc).get("state") == "success"
        check(until(run_done, 20, "the run to finish"), "scheduling went on during the attack")
        db = sqlite3.connect(state)
        check(db.execute("select count(*) from dag_run where run_type = 'event'").fetchone()[0] == 1,
              "the trickled event started its run")

        events_before = db.execute("select count(*) from event").fetchone()[0]
        runs_before = db.execute("select count(*) from dag_run").fetchone()[0]
        # Garbage, alone and pipelined after a good request.
        cases = [
            (b"GARBAGE\r\n\r\n", (400, 501)),
            (b"GET / HTTP/9.9\r\n\r\n", (505, 400)),
            (b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n\x00\x01\x02 nonsense\r\n\r\n", (200,)),
            (b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: 99999999\r\n\r\n", (413,)),
            (b"GET /api/v1/dags HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", (431,)),
            (post(b"{\"name\":"), (400,)),
            (post(b"{\"name\": \"\xff\xfe\xfd\xfc\"}"), (400,)),
            (post(b"[" * 5000 + b"]" * 5000), (400,)),
            (post(b"{\"name\": \"poke\", \"payload\": " + b"{\"a\": " * 3000 + b"1" + b"}" * 3001), (400,)),
            (b"DELETE /api/v1/dags/ping HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (405,)),
            (b"GET /api/v1/dags/..%2F..%2Fetc%2Fpasswd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (404,)),
            (b"GET /api/v1/dags/ping/dagRuns/x/taskInstances/p/logs/..%2F..%2Fdagd.db HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n",
             (404,)),
        ]
        for data, want in cases:
            st = status_of(raw(port, data))
            check(st in want, f"{data[:40]!r}: status {st}, want {want}")
        check(db.execute("select count(*) from event").fetchone()[0] == events_before, "bad requests recorded events")
        check(db.execute("select count(*) from dag_run").fetchone()[0] == runs_before, "bad requests created runs")

        # The idle connections are still accepted (or were dropped), and
        # dagd still answers.
        st, _ = request(port, "GET", "/health")
        check(st == 200, "health after the attack")
        for s in idle:
            s.close()
        proc.terminate()
        check(proc.wait(timeout=20) == 0, "dagd stops cleanly after the attack")
    finally:
        if proc.poll() is None:
            proc.kill()
        subprocess.run(["rm", "-rf", work])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
