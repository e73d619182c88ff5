#!/usr/bin/python3
"""A table of bad requests against a real dagd with tokens and a webhook
secret configured: limits, malformed HTTP, path traversal, invalid UTF-8,
deep JSON, wrong methods and content types, missing, forged and
under-scoped tokens, bad and replayed webhook signatures. Each gets its
expected status, and afterwards the state store holds exactly what the few
good requests made: nothing was written for a bad one.
SPDX-License-Identifier: MIT"""
import hashlib
import hmac
import json
import os
import socket
import sqlite3
import subprocess
import sys
import tempfile
import time

BUILD = os.environ["DAGD_BUILD_DIR"]
ADMIN, READER, AM_SECRET = "admin-tok-123", "read-tok-456", "am-secret-789"


def raw(port, data, timeout=5.0):
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.sendall(data)
    out = b""
    try:
        while True:
            chunk = s.recv(65536)
            if not chunk:
                break
            out += chunk
            head, sep, body = out.partition(b"\r\n\r\n")
            if sep:
                lens = [l for l in head.split(b"\r\n") if l.lower().startswith(b"content-length:")]
                if lens and len(body) >= int(lens[0].split(b":")[1]):
                    break
    except (socket.timeout, ConnectionResetError):
        pass
    s.close()
    try:
        return int(out.split(b" ", 2)[1])
    except (IndexError, ValueError):
        return 0


def req(method, path, body=None, headers=None, token=ADMIN, ctype="application/json"):
    h = {"Host": "127.0.0.1", "Connection": "close"}
    if token:
        h["Authorization"] = "Bearer " + token
    if body is not None and ctype:
        h["Content-Type"] = ctype
    h.update(headers or {})
    if isinstance(body, (dict, list)):
        body = json.dumps(body).encode()
    elif isinstance(body, str):
        body = body.encode()
    if body is not None:
        h["Content-Length"] = str(len(body))
    head = f"{method} {path} HTTP/1.1\r\n" + "".join(f"{k}: {v}\r\n" for k, v in h.items() if v is not None)
    return head.encode() + b"\r\n" + (body or b"")


def signed(body, secret=AM_SECRET, ts=None):
    """X-Dagd-Signature: the HMAC-SHA256 of "<timestamp>.<body>", the
    timestamp (Unix seconds) in X-Dagd-Timestamp."""
    ts = str(int(time.time()) if ts is None else ts)
    mac = hmac.new(secret.encode(), ts.encode() + b"." + body, hashlib.sha256).hexdigest()
    return {"X-Dagd-Signature": "sha256=" + mac, "X-Dagd-Timestamp": ts}


def alert(fp, starts="2026-01-01T00:00:00Z"):
    return json.dumps({"version": "4", "status": "firing", "alerts": [
        {"status": "firing", "labels": {"alertname": "Drift", "event": "poke"}, "annotations": {},
         "startsAt": starts, "fingerprint": fp}]}).encode()


def main():
    work = tempfile.mkdtemp()
    dags = os.path.join(work, "dags")
    os.makedirs(dags)
    with open(os.path.join(dags, "ping.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "ping", schedule = "@daily", start_date = "2030-01-01",\n'
                '                     on_event = { "poke" } }\n'
                'd:shell { id = "p", cmd = "echo pong" }\n')
    with open(os.path.join(work, "dagd.lua"), "w") as f:
        f.write(f'api_tokens = {{ "{ADMIN}", {{ token = "{READER}", scope = "read" }} }}\n'
                f'webhook_secrets = {{ alertmanager = "{AM_SECRET}" }}\n')
    log = os.path.join(work, "dagd.log")
    proc = subprocess.Popen([os.path.join(BUILD, "dagd"), "--config", os.path.join(work, "dagd.lua"), "--listen",
                             "127.0.0.1:0", "--dags-folder", dags, "--state", os.path.join(work, "dagd.db"),
                             "--logs-folder", os.path.join(work, "logs")],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT)
    passed = failed = 0
    try:
        port = None
        deadline = time.monotonic() + 10
        while port is None and time.monotonic() < deadline:
            for line in open(log):
                if "(port " in line:
                    port = int(line.rsplit("(port ", 1)[1].split(")")[0])
            time.sleep(0.02)
        assert port, "dagd did not start"

        # The good requests, whose effects are the only ones allowed.
        assert raw(port, req("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "good"})) == 200
        good_alert = alert("fp-good")
        good_sig = signed(good_alert)
        assert raw(port, req("POST", "/api/v1/hooks/alertmanager", good_alert, good_sig, token=None)) == 202
        db = sqlite3.connect(os.path.join(work, "dagd.db"))
        count = lambda: tuple(db.execute(q).fetchone()[0] for q in (
            "select count(*) from dag_run", "select count(*) from task_instance",
            "select count(*) from event where outcome = 'accepted'", "select count(*) from alert_seen",
            "select count(*) from backfill", "select is_paused from dag where dag_id = 'ping'"))
        before = count()

        other = alert("fp-other")
        big = b'{"name": "' + b"a" * (2300 * 1024) + b'"}'
        cases = [
            # Authentication and scope.
            ("no token", req("POST", "/api/v1/dags/ping/dagRuns", {}, token=None), 401),
            ("wrong token", req("POST", "/api/v1/dags/ping/dagRuns", {}, token="nope"), 401),
            ("empty bearer", req("POST", "/api/v1/dags/ping/dagRuns", {}, token=""), 401),
            ("basic auth", req("POST", "/api/v1/dags/ping/dagRuns", {}, {"Authorization": "Basic YTpi"}, token=None), 401),
            ("token with a space prefix", req("POST", "/api/v1/dags/ping/dagRuns", {}, token=" " + ADMIN + "x"), 401),
            ("read token triggers", req("POST", "/api/v1/dags/ping/dagRuns", {}, token=READER), 403),
            ("read token pauses", req("PATCH", "/api/v1/dags/ping", {"is_paused": True}, token=READER), 403),
            ("read token clears", req("POST", "/api/v1/dags/ping/clearTaskInstances", {"dag_run_id": "good"}, token=READER), 403),
            ("read token backfills", req("POST", "/api/v1/dags/ping/backfills", {"from": "2026-01-01", "to": "2026-01-02"}, token=READER), 403),
            ("event without token", req("POST", "/api/v1/events", {"name": "poke"}, token=None), 401),
            ("pause without token", req("PATCH", "/api/v1/dags/ping", {"is_paused": True}, token=None), 401),
            # Webhook signatures.
            ("unsigned alert", req("POST", "/api/v1/hooks/alertmanager", other, token=None), 401),
            ("token instead of signature", req("POST", "/api/v1/hooks/alertmanager", other), 401),
            ("forged signature", req("POST", "/api/v1/hooks/alertmanager", other, {"X-Dagd-Signature": "sha256=" + "0" * 64}, token=None), 401),
            ("signature of another body", req("POST", "/api/v1/hooks/alertmanager", other, signed(good_alert), token=None), 401),
            ("signature with another secret", req("POST", "/api/v1/hooks/alertmanager", other, signed(other, "guess"), token=None), 401),
            ("signature not hex", req("POST", "/api/v1/hooks/alertmanager", other, {"X-Dagd-Signature": "sha256=zz"}, token=None), 401),
            ("replayed delivery (same signature)", req("POST", "/api/v1/hooks/alertmanager", good_alert, good_sig, token=None), 409),
            ("signed again, a repeat alert", req("POST", "/api/v1/hooks/alertmanager", good_alert, signed(good_alert, ts=int(good_sig["X-Dagd-Timestamp"]) + 1), token=None), 202),
            ("stale timestamp", req("POST", "/api/v1/hooks/alertmanager", other, signed(other, ts=int(time.time()) - 3600), token=None), 401),
            ("timestamp ahead", req("POST", "/api/v1/hooks/alertmanager", other, signed(other, ts=int(time.time()) + 3600), token=None), 401),
            ("body-only signature", req("POST", "/api/v1/hooks/alertmanager", other, {"X-Dagd-Signature": "sha256=" + hmac.new(AM_SECRET.encode(), other, hashlib.sha256).hexdigest()}, token=None), 401),
            ("signature without its timestamp", req("POST", "/api/v1/hooks/alertmanager", other, {"X-Dagd-Signature": signed(other)["X-Dagd-Signature"]}, token=None), 401),
            ("signed but malformed", req("POST", "/api/v1/hooks/alertmanager", b'{"alerts": 3}', signed(b'{"alerts": 3}'), token=None), 400),
            # Bodies.
            ("malformed JSON", req("POST", "/api/v1/dags/ping/dagRuns", "{bad"), 400),
            ("JSON array body", req("POST", "/api/v1/dags/ping/dagRuns", "[1]"), 400),
            ("conf not an object", req("POST", "/api/v1/dags/ping/dagRuns", {"conf": [1]}), 400),
            ("run id with a slash", req("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "../../etc"}), 400),
            ("run id too long", req("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "r" * 300}), 400),
            ("bad logical date", req("POST", "/api/v1/dags/ping/dagRuns", {"logical_date": "yesterday"}), 400),
            ("duplicate keys", req("POST", "/api/v1/dags/ping/dagRuns", '{"conf": {}, "conf": {}}'), 400),
            ("invalid UTF-8", req("POST", "/api/v1/dags/ping/dagRuns", b'{"conf": {"x": "\xff\xfe"}}'), 400),
            ("deep nesting", req("POST", "/api/v1/dags/ping/dagRuns", b"[" * 10000 + b"]" * 10000), 400),
            ("body over the limit (2 MiB + 64 KiB, twice max_conf_size)", req("POST", "/api/v1/events", big), 413),
            ("wrong content type", req("POST", "/api/v1/dags/ping/dagRuns", {}, ctype="text/plain"), 415),
            ("no content type", req("POST", "/api/v1/dags/ping/dagRuns", {}, ctype=None), 415),
            ("no content type, no body", req("POST", "/api/v1/dags/ping/dagRuns"), 415),
            # Cross-site requests (issue 14): another name, another site's page.
            ("foreign Host (DNS rebinding)", req("POST", "/api/v1/dags/ping/dagRuns", {}, {"Host": "evil.example"}), 421),
            ("foreign Host, a read", req("GET", "/api/v1/dags", None, {"Host": "evil.example:%d" % port}), 421),
            ("foreign Origin", req("POST", "/api/v1/dags/ping/dagRuns", {}, {"Origin": "http://evil.example"}), 403),
            ("Origin null", req("POST", "/api/v1/dags/ping/dagRuns", {}, {"Origin": "null"}), 403),
            ("two Host headers", req("GET", "/api/v1/dags", None).replace(b"Connection: close", b"Host: evil.example\r\nConnection: close"), (400,)),
            ("existing run id", req("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "good"}), 409),
            ("event name with spaces", req("POST", "/api/v1/events", {"name": "a b"}), 400),
            ("event payload not an object", req("POST", "/api/v1/events", {"name": "poke", "payload": 1}), 400),
            ("pause flag not a boolean", req("PATCH", "/api/v1/dags/ping", {"is_paused": "yes"}), 400),
            ("mark to running", req("PATCH", "/api/v1/dags/ping/dagRuns/good/taskInstances/p", {"new_state": "running"}), 400),
            ("clear unknown task", req("POST", "/api/v1/dags/ping/clearTaskInstances", {"dag_run_id": "good", "task_ids": ["zz"]}), 404),
            ("backfill backwards", req("POST", "/api/v1/dags/ping/backfills", {"from": "2026-02-01", "to": "2026-01-01"}), 400),
            ("backfill too long", req("POST", "/api/v1/dags/ping/backfills", {"from": "1900-01-01", "to": "2026-01-01"}), 400),
            # Paths, methods, queries.
            ("unknown DAG", req("POST", "/api/v1/dags/nope/dagRuns", {}), 404),
            ("unknown run", req("GET", "/api/v1/dags/ping/dagRuns/nope"), 404),
            ("encoded traversal in DAG id", req("GET", "/api/v1/dags/..%2F..%2Fetc"), 404),
            ("traversal in a log path", req("GET", "/api/v1/dags/ping/dagRuns/good/taskInstances/..%2F..%2Fdagd.db/logs/1"), 404),
            # An id made only of dots is bad input, refused before any lookup (issue 14).
            ("dot-dot task id in a log path", req("GET", "/api/v1/dags/ping/dagRuns/good/taskInstances/../logs/1"), 400),
            ("dot-dot run id in a path", req("GET", "/api/v1/dags/ping/dagRuns/%2E%2E"), 400),
            ("try number not a number", req("GET", "/api/v1/dags/ping/dagRuns/good/taskInstances/p/logs/x"), 400),
            ("negative limit", req("GET", "/api/v1/dags/ping/dagRuns?limit=-1"), 400),
            ("unknown state filter", req("GET", "/api/v1/dags/ping/dagRuns?state=bogus"), 400),
            ("DELETE a DAG", req("DELETE", "/api/v1/dags/ping"), 405),
            ("PUT events", req("PUT", "/api/v1/events", {"name": "poke"}), 405),
            ("unknown path", req("GET", "/api/v2/whatever"), 404),
            # HTTP itself.
            ("garbage request line", b"GARBAGE\r\n\r\n", (400, 501)),
            ("bad HTTP version", b"GET /health HTTP/9.9\r\nHost: 127.0.0.1\r\n\r\n", (505, 400)),
            ("unknown method", b"BREW /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (501, 400)),
            ("header section over 16 KiB", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\nX-Big: " + b"a" * 20000 + b"\r\n\r\n", 431),
            ("too many headers", b"GET /health HTTP/1.1\r\n" + b"".join(b"X-%d: 1\r\n" % i for i in range(300)) + b"\r\n", 431),
            ("unknown transfer coding", b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: gzip\r\n\r\n", (501, 400)),
            ("bad chunk size", b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nTransfer-Encoding: chunked\r\n\r\nzz\r\n", 400),
            ("bad content length", b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Length: -5\r\n\r\n", 400),
            ("unknown expectation", b"POST /api/v1/events HTTP/1.1\r\nHost: 127.0.0.1\r\nExpect: coffee\r\nContent-Length: 2\r\n\r\n", 417),
            ("NUL in the path", b"GET /api/v1/dags/pi%00ng HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n", (400, 404)),
            ("pipelined garbage after a good request", b"GET /health HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\nGARBAGE\r\n\r\n", 200),
        ]
        for name, data, want in cases:
            wants = want if isinstance(want, tuple) else (want,)
            got = raw(port, data)
            if got in wants:
                passed += 1
            else:
                failed += 1
                print(f"FAIL: {name}: status {got}, want {want}")
        after = count()
        if after == before:
            passed += 1
        else:
            failed += 1
            print(f"FAIL: state changed by bad requests: {before} -> {after}")
        # dagd is still healthy and scheduling.
        if raw(port, req("GET", "/health")) == 200:
            passed += 1
        else:
            failed += 1
            print("FAIL: health after the bad requests")
        with open(log) as f:
            text = f.read()
        if ADMIN in text or READER in text or AM_SECRET in text:
            failed += 1
            print("FAIL: a secret appears in the daemon log")
        else:
            passed += 1
        print(f"{len(cases)} bad requests")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", work])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
