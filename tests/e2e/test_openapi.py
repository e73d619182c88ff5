#!/usr/bin/python3
"""Checks real answers of every endpoint against docs/openapi.yaml.

Starts the real dagd on loopback with a DAG folder, tokens and a webhook
secret, and drives each operation of the document to a success and to at
least one error (and every path to a 405). Each answer's status must be
one the operation documents, its content type one that status documents,
its required headers present, and its body valid against the schema
(JSON Schema 2020-12, Debian's python3-jsonschema), which closes response
objects with additionalProperties: false: a field the document lacks, or a
required one missing, fails. The test also checks that /api/v1/openapi.json
is the docs file, that every response object in the document is closed,
and that the validator does reject a doctored answer.
SPDX-License-Identifier: MIT"""
import copy
import hashlib
import hmac
import http.client
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import jsonschema
import yaml

BUILD = os.environ["DAGD_BUILD_DIR"]
SOURCE = os.environ["DAGD_SOURCE_DIR"]
ADMIN, READER, TRIGGER, GRAFANA_SECRET = "admin-tok-1", "read-tok-2", "trigger-tok-3", "grafana-secret-4"
METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
passed = failed = 0


def check(cond, what):
    global passed, failed
    if cond:
        passed += 1
    else:
        failed += 1
        print("FAIL:", what)
    return cond


# --- the document -----------------------------------------------------------

DOC = yaml.safe_load(open(os.path.join(SOURCE, "docs", "openapi.yaml"), encoding="utf-8"))

RFC3339 = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d+)?(Z|[+-]\d{2}:\d{2})$")
formats = jsonschema.FormatChecker()


@formats.checks("date-time")
def is_datetime(value):
    return not isinstance(value, str) or RFC3339.match(value) is not None


def schema_validator(schema):
    resolver = jsonschema.RefResolver.from_schema(DOC)
    return jsonschema.Draft202012Validator(schema, resolver=resolver, format_checker=formats)


def deref(obj):
    while isinstance(obj, dict) and "$ref" in obj:
        node = DOC
        for part in obj["$ref"].lstrip("#/").split("/"):
            node = node[part.replace("~1", "/").replace("~0", "~")]
        obj = node
    return obj


def template_regex(template):
    return re.compile("^" + re.sub(r"\\\{[^}]+\\\}", "[^/]+", re.escape(template)) + "$")


ROUTES = [(template_regex(p), p) for p in DOC["paths"]]


def find_path(path):
    for rx, template in ROUTES:
        if rx.match(path):
            return template
    return None


def closed_objects(schema, where, seen):
    """Yields where an object schema with properties leaves
    additionalProperties open."""
    if isinstance(schema, dict) and "$ref" in schema:
        if schema["$ref"] in seen:
            return
        seen.add(schema["$ref"])
        yield from closed_objects(deref(schema), schema["$ref"], seen)
        return
    if not isinstance(schema, dict):
        return
    if "properties" in schema and schema.get("additionalProperties") is not False and where != "openapi.json":
        yield where
    for k, sub in schema.get("properties", {}).items():
        yield from closed_objects(sub, f"{where}.{k}", seen)
    for key in ("items", "additionalProperties"):
        if isinstance(schema.get(key), dict):
            yield from closed_objects(schema[key], f"{where}[]", seen)
    for key in ("oneOf", "anyOf", "allOf"):
        for i, sub in enumerate(schema.get(key, [])):
            yield from closed_objects(sub, f"{where}/{key}{i}", seen)


# --- the daemon -------------------------------------------------------------

class Answer:
    def __init__(self, status, headers, body):
        self.status, self.headers, self.body = status, headers, body
        self.content_type = headers.get("content-type", "")

    def json(self):
        return json.loads(self.body)


class Client:
    def __init__(self, port):
        self.port = port
        # operation -> statuses seen; path -> 405 seen
        self.seen = {}
        self.seen_405 = set()

    def raw(self, method, path, body=None, headers=None):
        conn = http.client.HTTPConnection("127.0.0.1", self.port, timeout=30)
        try:
            conn.request(method, path, body=body, headers=headers or {})
            r = conn.getresponse()
            data = r.read()
            return Answer(r.status, {k.lower(): v for k, v in r.getheaders()}, data)
        finally:
            conn.close()

    def call(self, method, path, body=None, token=ADMIN, ctype="application/json", headers=None, want=None):
        """One request, checked against the document; returns the answer."""
        h = {"Connection": "close"}
        if token:
            h["Authorization"] = "Bearer " + token
        if isinstance(body, (dict, list)):
            body = json.dumps(body).encode()
        elif isinstance(body, str):
            body = body.encode()
        if body is not None and ctype:
            h["Content-Type"] = ctype
        h.update(headers or {})
        a = self.raw(method, path, body, h)
        what = f"{method} {path}"
        if want is not None:
            check(a.status == want, f"{what}: status {a.status}, want {want}: {a.body[:300]!r}")
        self.validate(method, path, a)
        return a

    def validate(self, method, path, a):
        what = f"{method} {path} -> {a.status}"
        template = find_path(path.split("?", 1)[0])
        if not check(template is not None, f"{what}: no path of the document matches"):
            return
        op = DOC["paths"][template].get(method.lower())
        if op is None:
            # A method the path does not take: 405, Allow, a problem document.
            self.seen_405.add(template)
            check(a.status == 405, f"{what}: a method the document lacks, want 405")
            allow = a.headers.get("allow", "")
            check(allow and all(m.lower() in METHODS for m in re.split(r",\s*", allow)), f"{what}: Allow {allow!r}")
            self.check_body(what, a, "application/problem+json", {"$ref": "#/components/schemas/Problem"})
            return
        self.seen.setdefault((template, method.lower()), set()).add(a.status)
        responses = op["responses"]
        resp = responses.get(str(a.status)) or responses.get(f"{a.status // 100}XX") or responses.get("default")
        if not check(resp is not None, f"{what}: status not documented ({', '.join(responses)})"):
            return
        resp = deref(resp)
        for name, header in resp.get("headers", {}).items():
            header = deref(header)
            value = a.headers.get(name.lower())
            if header.get("required"):
                check(value is not None, f"{what}: lacks the required header {name}")
            if value is not None and "schema" in header:
                errors = list(schema_validator(header["schema"]).iter_errors(value))
                check(not errors, f"{what}: header {name}: {errors[:1]}")
        content = resp.get("content")
        if content is None:
            check(a.body == b"", f"{what}: a body the document does not describe")
            return
        essence = a.content_type.split(";", 1)[0].strip().lower()
        if not check(essence in content, f"{what}: content type {a.content_type!r}, want one of {list(content)}"):
            return
        self.check_body(what, a, essence, content[essence].get("schema", {}))

    def check_body(self, what, a, essence, schema):
        check(a.content_type.split(";", 1)[0].strip().lower() == essence,
              f"{what}: content type {a.content_type!r}, want {essence}")
        if essence.endswith("json"):
            try:
                body = a.json()
            except ValueError as e:
                check(False, f"{what}: body is not JSON ({e}): {a.body[:200]!r}")
                return
        else:
            try:
                body = a.body.decode("utf-8")
            except UnicodeDecodeError:
                check(False, f"{what}: body is not UTF-8 text")
                return
        errors = sorted(schema_validator(schema).iter_errors(body), key=lambda e: list(e.absolute_path))
        check(not errors, f"{what}: body does not match the schema: " +
              "; ".join(f"{'/'.join(map(str, e.absolute_path)) or '(top)'}: {e.message}" for e in errors[:3]))


def start_dagd(work):
    dags = os.path.join(work, "dags")
    os.makedirs(dags)
    with open(os.path.join(dags, "ping.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "ping", schedule = "@daily", start_date = "2026-01-01", catchup = false,\n'
                '                     on_event = { "poke", "Drift" }, tags = { "ml" }, description = "a test DAG" }\n'
                'local a = d:shell { id = "a", cmd = "echo hello; echo out=1 > \\"$DAGD_OUTPUT\\"" }\n'
                'local b = d:shell { id = "b", cmd = "echo world" }\n'
                'd:chain(a, b)\n')
    with open(os.path.join(dags, "manual_only.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "manual_only" }\n'
                'd:shell { id = "x", cmd = "true" }\n')
    with open(os.path.join(dags, "broken.lua"), "w") as f:
        f.write('local dagd = require "dagd"\ndagd.dag { id = "broken", schedule = "not a schedule" }\n')
    with open(os.path.join(work, "dagd.lua"), "w") as f:
        f.write(f'api_tokens = {{ "{ADMIN}", {{ token = "{READER}", scope = "read" }},\n'
                f'               {{ token = "{TRIGGER}", scope = "trigger" }} }}\n'
                f'webhook_secrets = {{ grafana = "{GRAFANA_SECRET}" }}\n')
    log = os.path.join(work, "dagd.log")
    proc = subprocess.Popen([os.path.join(BUILD, "dagd"), "--config", os.path.join(work, "dagd.lua"), "--listen",
                             "127.0.0.1:0", "--dags-folder", dags, "--state", os.path.join(work, "dagd.db"),
                             "--logs-folder", os.path.join(work, "logs")],
                            stdout=open(log, "w"), stderr=subprocess.STDOUT, cwd=work)
    deadline = time.monotonic() + 15
    while time.monotonic() < deadline:
        m = re.search(r"\(port (\d+)\)", open(log).read())
        if m:
            return proc, int(m.group(1)), log
        if proc.poll() is not None:
            break
        time.sleep(0.02)
    proc.terminate()
    sys.exit("FAIL: dagd did not start:\n" + open(log).read()[-2000:])


def wait_run_done(c, dag, run_id, seconds=60):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        a = c.call("GET", f"/api/v1/dags/{dag}/dagRuns/{run_id}?wait=10", want=200)
        if a.status != 200 or a.json()["state"] in ("success", "failed"):
            return a.json() if a.status == 200 else None
    check(False, f"run {dag}/{run_id} did not finish in {seconds} s")
    return None


def grafana_signed(body):
    ts = str(int(time.time()))
    mac = hmac.new(GRAFANA_SECRET.encode(), ts.encode() + b":" + body, hashlib.sha256).hexdigest()
    return {"X-Grafana-Alerting-Signature": mac, "X-Grafana-Alerting-Signature-Timestamp": ts}


def exercise(c):
    big_header = {"X-Big": "a" * 20000}
    # Monitoring.
    c.call("GET", "/health", token=None, want=200)
    c.call("GET", "/health", token=None, headers=big_header, want=431)
    a = c.call("GET", "/metrics", want=200)
    check(b"dagd_dags " in a.body, "/metrics has dagd_dags")
    c.call("GET", "/metrics", headers=big_header, want=431)
    a = c.call("GET", "/api/v1/openapi.json", token=None, want=200)
    check(a.status == 200 and a.json() == DOC, "/api/v1/openapi.json is docs/openapi.yaml")
    c.call("GET", "/api/v1/openapi.json", token=None, headers=big_header, want=431)

    # DAGs.
    a = c.call("GET", "/api/v1/dags", want=200)
    body = a.json()
    check([d["dag_id"] for d in body["dags"]] == ["manual_only", "ping"] or
          sorted(d["dag_id"] for d in body["dags"]) == ["manual_only", "ping"], f"the DAGs listed: {body['dags']}")
    check(len(body["import_errors"]) == 1, f"one import error: {body['import_errors']}")
    c.call("GET", "/api/v1/dags?tags=ml&limit=1&offset=0", want=200)
    c.call("GET", "/api/v1/dags?limit=0", want=400)
    c.call("GET", "/api/v1/dags/ping", want=200)
    c.call("GET", "/api/v1/dags/nope", want=404)
    c.call("PATCH", "/api/v1/dags/ping", {"is_paused": True}, want=200)
    c.call("PATCH", "/api/v1/dags/ping", {"is_paused": "yes"}, want=400)
    c.call("PATCH", "/api/v1/dags/ping", {"is_paused": True}, token=None, want=401)
    c.call("PATCH", "/api/v1/dags/ping", {"is_paused": True}, token=READER, want=403)
    c.call("PATCH", "/api/v1/dags/ping", {"is_paused": True}, ctype="text/plain", want=415)
    c.call("PATCH", "/api/v1/dags/nope", {"is_paused": True}, want=404)
    c.call("GET", "/api/v1/dags/ping/tasks", want=200)
    c.call("GET", "/api/v1/dags/nope/tasks", want=404)

    # Events while paused: held.
    a = c.call("POST", "/api/v1/events", {"name": "poke", "id": "held-1"}, want=202)
    check(a.status == 202 and a.json()["held"] == [{"dag_id": "ping", "reason": "paused"}], f"held: {a.body!r}")
    c.call("PATCH", "/api/v1/dags/ping", {"is_paused": False}, want=200)

    # Runs.
    c.call("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "r1", "conf": {"x": 1}}, want=200)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "r2", "logical_date": "2026-01-05T00:00:00Z"},
           token=TRIGGER, want=200)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {"dag_run_id": "r1"}, want=409)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {"conf": [1]}, want=400)
    c.call("POST", "/api/v1/dags/ping/dagRuns", "{bad", want=400)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, token=None, want=401)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, token="not-a-token", want=401)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, token=READER, want=403)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, ctype="text/plain", want=415)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, ctype=None, want=415)
    # Cross-site requests (issue 14): a foreign Host, a foreign Origin.
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, headers={"Host": "evil.example"}, want=421)
    c.call("GET", "/api/v1/dags", headers={"Host": "evil.example"}, want=421)
    c.call("GET", "/health", token=None, headers={"Host": "evil.example"}, want=421)
    c.call("POST", "/api/v1/dags/ping/dagRuns", {}, headers={"Origin": "http://evil.example"}, want=403)
    c.call("POST", "/api/v1/dags/ping/dagRuns", b'{"conf": {"x": "' + b"a" * (1100 * 1024) + b'"}}', want=413)
    c.call("POST", "/api/v1/dags/nope/dagRuns", {}, want=404)
    wait_run_done(c, "ping", "r1")
    wait_run_done(c, "ping", "r2")
    c.call("GET", "/api/v1/dags/ping/dagRuns", want=200)
    c.call("GET", "/api/v1/dags/ping/dagRuns?state=success&limit=5&offset=0", want=200)
    c.call("GET", "/api/v1/dags/ping/dagRuns?state=bogus", want=400)
    c.call("GET", "/api/v1/dags/nope/dagRuns", want=404)
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1", want=200)
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1?wait=x", want=400)
    c.call("GET", "/api/v1/dags/ping/dagRuns/nope", want=404)

    # Task instances and logs.
    a = c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances", want=200)
    check(a.status == 200 and a.json()["task_instances"][0]["outputs"] == {"out": "1"}, f"outputs: {a.body[:300]!r}")
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances?limit=1&offset=1", want=200)
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances?limit=0", want=400)
    c.call("GET", "/api/v1/dags/ping/dagRuns/nope/taskInstances", want=404)
    a = c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances/a/logs/1", want=200)
    check(a.status == 200 and "hello" in a.json()["content"], f"the log: {a.body[:200]!r}")
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances/a/logs/1?format=text&offset=0", want=200)
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances/a/logs/x", want=400)
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances/a/logs/9", want=404)
    c.call("GET", "/api/v1/dags/ping/dagRuns/r1/taskInstances/zz/logs/1", want=404)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2/taskInstances/b", {"new_state": "failed", "dry_run": False},
           want=200)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2/taskInstances/b", {"new_state": "running"}, want=400)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2/taskInstances/zz", {"new_state": "failed", "dry_run": False},
           want=404)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2/taskInstances/b", {"new_state": "failed"}, token=TRIGGER, want=403)
    wait_run_done(c, "ping", "r2")
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2", {"state": "success"}, want=200)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2", {"state": "running"}, want=400)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/nope", {"state": "success"}, want=404)
    c.call("PATCH", "/api/v1/dags/ping/dagRuns/r2", {"state": "success"}, token=None, want=401)
    a = c.call("POST", "/api/v1/dags/ping/clearTaskInstances",
               {"dag_run_id": "r1", "task_ids": ["b"], "only_failed": False, "dry_run": True}, want=200)
    check(a.status == 200 and a.json()["total_entries"] == 1, f"a dry clear lists b: {a.body!r}")
    c.call("POST", "/api/v1/dags/ping/clearTaskInstances",
           {"dag_run_id": "r1", "task_ids": ["a"], "include_downstream": True, "only_failed": False,
            "dry_run": False}, want=200)
    c.call("POST", "/api/v1/dags/ping/clearTaskInstances", {"task_ids": ["a"]}, want=400)
    c.call("POST", "/api/v1/dags/ping/clearTaskInstances", {"dag_run_id": "r1", "task_ids": ["zz"]}, want=404)
    c.call("POST", "/api/v1/dags/ping/clearTaskInstances", {"dag_run_id": "nope"}, want=404)
    c.call("POST", "/api/v1/dags/ping/clearTaskInstances", {"dag_run_id": "r1"}, token=READER, want=403)
    wait_run_done(c, "ping", "r1")

    # Backfills.
    c.call("POST", "/api/v1/dags/ping/backfills", {"from": "2026-01-01", "to": "2026-01-03", "dry_run": True},
           want=200)
    a = c.call("POST", "/api/v1/dags/ping/backfills", {"from": "2026-01-04", "to": "2026-01-06", "reverse": True},
               want=201)
    bid = a.json()["id"] if a.status == 201 else 1
    # 2026-01-05 has r2's logical date but r2 is manual: the backfill makes its own run.
    c.call("POST", "/api/v1/dags/ping/backfills", {"from": "2026-01-04", "to": "2026-01-06", "rerun_failed": True},
           want=201)
    c.call("POST", "/api/v1/dags/ping/backfills", {"from": "2026-02-01", "to": "2026-01-01"}, want=400)
    c.call("POST", "/api/v1/dags/manual_only/backfills", {"from": "2026-01-01", "to": "2026-01-02"}, want=400)
    c.call("POST", "/api/v1/dags/nope/backfills", {"from": "2026-01-01", "to": "2026-01-02"}, want=404)
    c.call("POST", "/api/v1/dags/ping/backfills", {"from": "2026-01-01", "to": "2026-01-02"}, token=TRIGGER, want=403)
    c.call("GET", f"/api/v1/backfills/{bid}", want=200)
    c.call("GET", "/api/v1/backfills/999999", want=404)
    c.call("GET", "/api/v1/backfills/x", want=400)

    # Events and webhooks.
    a = c.call("POST", "/api/v1/events", {"name": "poke", "id": "ev-1", "payload": {"k": "v"}}, token=TRIGGER,
               want=202)
    check(a.status == 202 and len(a.json()["dag_runs"]) == 1, f"the event started a run: {a.body!r}")
    a = c.call("POST", "/api/v1/events", {"name": "poke", "id": "ev-1"}, want=202)
    check(a.status == 202 and a.json()["duplicate"] is True, f"a repeat is a duplicate: {a.body!r}")
    c.call("POST", "/api/v1/events", {"name": "a b"}, want=400)
    c.call("POST", "/api/v1/events", {"name": "poke"}, token=None, want=401)
    c.call("POST", "/api/v1/events", {"name": "poke"}, token=READER, want=403)
    c.call("POST", "/api/v1/events", {"name": "poke"}, ctype="text/plain", want=415)
    c.call("GET", "/api/v1/events", want=200)
    c.call("GET", "/api/v1/events?limit=2&offset=1", want=200)
    c.call("GET", "/api/v1/events?offset=-1", want=400)
    alerts = {"version": "4", "groupKey": "{}:{alertname=\"Drift\"}", "status": "firing", "receiver": "dagd",
              "alerts": [{"status": "firing", "labels": {"alertname": "Drift", "model": "fraud"},
                          "annotations": {"summary": "drift"}, "startsAt": "2026-01-01T00:00:00Z",
                          "fingerprint": "fp-1", "generatorURL": "http://prometheus.local/graph"}]}
    c.call("POST", "/api/v1/hooks/alertmanager", alerts, token=TRIGGER, want=202)
    c.call("POST", "/api/v1/hooks/alertmanager", {"alerts": 3}, want=400)
    c.call("POST", "/api/v1/hooks/alertmanager", alerts, token=None, want=401)
    c.call("POST", "/api/v1/hooks/alertmanager", alerts, token=READER, want=403)
    grafana = json.dumps(dict(alerts, alerts=[dict(alerts["alerts"][0], fingerprint="fp-g")], orgId=1,
                              title="[FIRING:1] Drift")).encode()
    signed_grafana = grafana_signed(grafana)
    c.call("POST", "/api/v1/hooks/grafana", grafana, token=None, headers=signed_grafana, want=202)
    # The same signed delivery again: a replay (issue 14).
    c.call("POST", "/api/v1/hooks/grafana", grafana, token=None, headers=signed_grafana, want=409)
    c.call("POST", "/api/v1/hooks/grafana", grafana, want=401)
    bad = b'{"alerts": [1]}'
    c.call("POST", "/api/v1/hooks/grafana", bad, token=None, headers=grafana_signed(bad), want=400)

    # Every path refuses a method it does not take.
    for template, item in DOC["paths"].items():
        path = re.sub(r"\{try\}", "1", re.sub(r"\{id\}", "1", template))
        path = path.replace("{dag_id}", "ping").replace("{run_id}", "r1").replace("{task_id}", "a")
        method = next(m for m in ("DELETE", "PUT", "POST", "GET") if m.lower() not in item)
        c.call(method, path, want=405)


def self_checks(c):
    """The document closes its response objects, and the validator rejects
    a doctored answer: an extra field, a missing one, a wrong type."""
    open_objects = []
    for template, item in DOC["paths"].items():
        for method, op in item.items():
            if method not in METHODS:
                continue
            for status, resp in op["responses"].items():
                for media, content in deref(resp).get("content", {}).items():
                    where = "openapi.json" if template == "/api/v1/openapi.json" else f"{method} {template} {status}"
                    open_objects += closed_objects(content.get("schema", {}), where, set())
    check(not open_objects, f"response objects not closed with additionalProperties: false: {open_objects[:5]}")
    a = c.raw("GET", "/api/v1/dags/ping/dagRuns/r1", headers={"Authorization": "Bearer " + ADMIN})
    run = a.json()
    v = schema_validator({"$ref": "#/components/schemas/DAGRun"})
    check(v.is_valid(run), "the real run is valid")
    extra, missing, wrong, bad_time = (copy.deepcopy(run) for _ in range(4))
    extra["surprise"] = 1
    del missing["state"]
    wrong["state"] = "exploded"
    bad_time["start_date"] = "yesterday"
    for name, doc in (("an extra field", extra), ("a missing field", missing), ("a state no enum has", wrong),
                      ("a time that is not RFC 3339", bad_time)):
        check(not v.is_valid(doc), f"the validator rejects {name}")
    p = c.raw("GET", "/api/v1/dags/nope", headers={"Authorization": "Bearer " + ADMIN}).json()
    pv = schema_validator({"$ref": "#/components/schemas/Problem"})
    check(pv.is_valid(p) and not pv.is_valid(dict(p, error=p["detail"])) and
          not pv.is_valid({k: p[k] for k in ("title", "status", "detail")}), "the problem schema is strict")


def main():
    work = tempfile.mkdtemp()
    proc, port, log = start_dagd(work)
    c = Client(port)
    try:
        exercise(c)
        self_checks(c)
        # Coverage: every operation got a success and an error, every path a 405.
        for template, item in DOC["paths"].items():
            check(template in c.seen_405, f"{template}: no 405 checked")
            for method in item:
                if method not in METHODS:
                    continue
                got = c.seen.get((template, method), set())
                check(any(200 <= s < 300 for s in got), f"{method.upper()} {template}: no success checked")
                check(any(s >= 400 for s in got), f"{method.upper()} {template}: no error checked")
        print(f"{sum(len(s) for s in c.seen.values())} (operation, status) pairs over {len(c.seen)} operations")
    finally:
        proc.terminate()
        try:
            proc.wait(timeout=30)
        except subprocess.TimeoutExpired:
            proc.kill()
        if failed:
            print("---- dagd log ----")
            print(open(log).read()[-3000:])
        subprocess.run(["rm", "-rf", work])
    print(f"{passed} passed, {failed} failed")
    sys.exit(1 if failed else 0)


if __name__ == "__main__":
    main()
