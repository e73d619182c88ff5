#!/usr/bin/python3
"""The API as its users reach it, against real dagd and dagctl binaries:
with api_tokens set every endpoint class (reads, logs, run confs, event
payloads, metrics, mutations, webhooks) refuses a request without a token
or with a wrong one (401 with WWW-Authenticate: Bearer), a read token reads
and is refused mutations (403, insufficient_scope), /health stays open and
metrics_public opens /metrics; a dry_run PATCH changes nothing; state=a&state=b
ORs, order_by is honoured or refused, unknown parameters are refused,
execution_date is the logical date; `dagctl trigger DAG --date 2026-10-01`
runs with the schedule's interval; an unknown DAG id gets a "did you mean";
removing a DAG file mid-try keeps its run visible and controllable while
the running try finishes and nothing new starts.
SPDX-License-Identifier: MIT"""
import json
import os
import signal
import sqlite3
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request

BUILD = os.environ["DAGD_BUILD_DIR"]
DAGD, DAGCTL = os.path.join(BUILD, "dagd"), os.path.join(BUILD, "dagctl")
ADMIN, READER, TRIGGER = "admin-tok-e2e", "read-tok-e2e", "trig-tok-e2e"
passed = failed = 0


def check(ok, what, detail=""):
    global passed, failed
    if ok:
        passed += 1
    else:
        failed += 1
        print(f"FAIL: {what} {detail}")


def until(what, fn, secs=20):
    deadline = time.monotonic() + secs
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.02)
    raise AssertionError(f"timed out waiting for {what}")


def start(work, extra_config=""):
    with open(os.path.join(work, "dagd.lua"), "w") as f:
        f.write(f'api_tokens = {{ "{ADMIN}", {{ token = "{READER}", scope = "read" }},'
                f' {{ token = "{TRIGGER}", scope = "trigger" }} }}\n{extra_config}')
    log = os.path.join(work, "dagd.log")
    open(log, "w").close()
    proc = subprocess.Popen([DAGD, "--config", os.path.join(work, "dagd.lua"), "--listen", "127.0.0.1:0",
                             "--dags-folder", os.path.join(work, "dags"), "--state", os.path.join(work, "dagd.db"),
                             "--logs-folder", os.path.join(work, "logs")], cwd=work,
                            stdout=open(log, "a"), stderr=subprocess.STDOUT)

    def port():
        for line in open(log):
            if "(port " in line:
                return int(line.rsplit("(port ", 1)[1].split(")")[0])
        return None
    return proc, until("dagd to listen", port), log


def http(port, method, path, body=None, token=None):
    data = json.dumps(body).encode() if body is not None else None
    r = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method)
    if token:
        r.add_header("Authorization", "Bearer " + token)
    if data is not None:
        r.add_header("Content-Type", "application/json")
    try:
        with urllib.request.urlopen(r, timeout=10) as resp:
            text = resp.read().decode()
            return resp.status, resp.headers, text
    except urllib.error.HTTPError as e:
        return e.code, e.headers, e.read().decode()


def jbody(text):
    try:
        return json.loads(text)
    except ValueError:
        return {}


def dagctl(port, *args, token=None):
    env = dict(os.environ, DAGD_URL=f"http://127.0.0.1:{port}")
    env.pop("DAGD_TOKEN", None)
    if token:
        env["DAGD_TOKEN"] = token
    p = subprocess.run([DAGCTL, *args], env=env, capture_output=True, text=True, timeout=60)
    return p.returncode, p.stdout + p.stderr


def main():
    work = tempfile.mkdtemp()
    dags = os.path.join(work, "dags")
    os.makedirs(dags)
    with open(os.path.join(dags, "nightly.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "nightly_etl", schedule = "@daily", start_date = "2030-01-01",\n'
                '                     on_event = { "poke" } }\n'
                'd:shell { id = "show", cmd = "echo interval=$DAGD_DATA_INTERVAL_START..$DAGD_DATA_INTERVAL_END '
                'ds={{ ds }} secret=$DAGD_CONF" }\n')
    # A DAG whose first task waits for a file the test writes: its file is
    # removed while that try runs.
    with open(os.path.join(dags, "doomed.lua"), "w") as f:
        f.write('local dagd = require "dagd"\n'
                'local d = dagd.dag { id = "doomed" }\n'
                'local a = d:shell { id = "first", cmd = "while [ ! -f ' + work + '/release ]; do sleep 0.05; done; echo done" }\n'
                'local b = d:shell { id = "second", cmd = "echo never" }\n'
                'd:chain(a, b)\n')
    proc, port, log = start(work)
    db = sqlite3.connect(os.path.join(work, "dagd.db"))
    q = lambda sql: db.execute(sql).fetchone()[0]
    try:
        # --- item 4: every endpoint class needs a token; a read token reads.
        st, _, text = http(port, "POST", "/api/v1/dags/nightly_etl/dagRuns",
                           {"dag_run_id": "r1", "conf": {"secret": "conf-value"}}, ADMIN)
        check(st == 200, "trigger with the admin token", text)
        http(port, "POST", "/api/v1/events", {"name": "poke", "payload": {"p": "payload-value"}, "id": "e1"}, ADMIN)
        until("r1 and the event's run to finish", lambda: q("select count(*) from dag_run where state in "
                                                             "('queued', 'running')") == 0)
        reads = ["/api/v1/dags", "/api/v1/dags/nightly_etl", "/api/v1/dags/nightly_etl/tasks",
                 "/api/v1/dags/nightly_etl/dagRuns", "/api/v1/dags/nightly_etl/dagRuns/r1",
                 "/api/v1/dags/nightly_etl/dagRuns/r1/taskInstances",
                 "/api/v1/dags/nightly_etl/dagRuns/r1/taskInstances/show/logs/1",
                 "/api/v1/dags/nightly_etl/dagRuns/r1/taskInstances/show/logs/1?format=text",
                 "/api/v1/events", "/metrics"]
        writes = [("PATCH", "/api/v1/dags/nightly_etl", {"is_paused": True}),
                  ("POST", "/api/v1/dags/nightly_etl/dagRuns", {}),
                  ("PATCH", "/api/v1/dags/nightly_etl/dagRuns/r1", {"state": "failed"}),
                  ("PATCH", "/api/v1/dags/nightly_etl/dagRuns/r1/taskInstances/show",
                   {"new_state": "failed", "dry_run": False}),
                  ("POST", "/api/v1/dags/nightly_etl/clearTaskInstances", {"dag_run_id": "r1", "dry_run": False}),
                  ("POST", "/api/v1/dags/nightly_etl/backfills", {"from": "2030-01-01", "to": "2030-01-02"}),
                  ("POST", "/api/v1/events", {"name": "poke"}),
                  ("POST", "/api/v1/hooks/alertmanager", {"alerts": []}),
                  ("POST", "/api/v1/hooks/grafana", {"alerts": []})]
        before = (q("select count(*) from dag_run"), q("select count(*) from event"),
                  q("select group_concat(state) from task_instance"), q("select is_paused from dag where dag_id='nightly_etl'"))
        for path in reads:
            for tok, what in ((None, "no token"), ("wrong-token", "a wrong token")):
                st, h, text = http(port, "GET", path, token=tok)
                check(st == 401, f"GET {path} with {what}: {st}")
                www = h.get("WWW-Authenticate") or ""
                check(www.startswith('Bearer realm="dagd"'), f"GET {path} with {what}: challenge", www)
                if tok:
                    check('error="invalid_token"' in www, f"GET {path}: invalid_token", www)
                check("conf-value" not in text and "payload-value" not in text and "interval=" not in text,
                      f"GET {path} with {what} leaks nothing", text[:200])
            st, _, text = http(port, "GET", path, token=READER)
            check(st == 200, f"GET {path} with a read token: {st}", text[:200])
        st, _, text = http(port, "GET", "/api/v1/dags/nightly_etl/dagRuns/r1/taskInstances/show/logs/1", token=READER)
        check("interval=" in jbody(text).get("content", ""), "the read token reads the log", text[:200])
        for method, path, body in writes:
            for tok, want in ((None, 401), ("wrong-token", 401), (READER, 403)):
                st, h, text = http(port, method, path, body, tok)
                check(st == want, f"{method} {path} with {tok}: {st}, want {want}", text[:200])
                www = h.get("WWW-Authenticate") or ""
                check(www.startswith('Bearer realm="dagd"'), f"{method} {path} with {tok}: challenge", www)
                if want == 403:
                    check('error="insufficient_scope"' in www, f"{method} {path}: insufficient_scope", www)
        after = (q("select count(*) from dag_run"), q("select count(*) from event"),
                 q("select group_concat(state) from task_instance"), q("select is_paused from dag where dag_id='nightly_etl'"))
        check(before == after, "refused requests changed nothing", f"{before} -> {after}")
        st, _, _ = http(port, "GET", "/health")
        check(st == 200, "/health needs no token")
        st, _, text = http(port, "GET", "/")
        check(st == 200 and "<html" in text, "the UI's page itself is served without a token (it holds no data)")
        st, _, _ = http(port, "GET", "/api/v1/dags/nightly_etl/dagRuns", token=TRIGGER)
        check(st == 200, "a trigger token reads too")
        rc, out = dagctl(port, "runs", "nightly_etl")
        check(rc == 1 and "401" in out, "dagctl runs without a token: 401", out)
        rc, out = dagctl(port, "runs", "nightly_etl", token=READER)
        check(rc == 0 and "r1" in out, "dagctl runs with a read token", out)

        # --- item 5: dry_run changes nothing; dagctl clear/mark behave as before.
        show_state = q("select t.state from task_instance t join dag_run r on r.id = t.run_pk where r.run_id = 'r1'")
        st, _, text = http(port, "PATCH", "/api/v1/dags/nightly_etl/dagRuns/r1/taskInstances/show",
                           {"new_state": "failed" if show_state == "success" else "success", "dry_run": True}, ADMIN)
        j = jbody(text)
        check(st == 200 and j.get("dry_run") is True and j.get("previous_state") == show_state, "dry-run mark answers", text)
        check(q("select t.state from task_instance t join dag_run r on r.id = t.run_pk where r.run_id = 'r1'") == show_state
              and q("select state from dag_run where run_id = 'r1'") == "success", "dry-run mark changed nothing")
        st, _, text = http(port, "POST", "/api/v1/dags/nightly_etl/clearTaskInstances", {"dag_run_id": "r1",
                           "only_failed": False}, ADMIN)
        check(st == 200 and jbody(text).get("total_entries") == 1 and q("select state from dag_run where run_id = 'r1'")
              == "success", "clear defaults to a dry run", text)
        rc, out = dagctl(port, "mark", "nightly_etl", "r1", "show", "failed", "--dry-run", token=ADMIN)
        check(rc == 0 and "nothing changed" in out, "dagctl mark --dry-run", out)
        rc, out = dagctl(port, "mark", "nightly_etl", "r1", "show", "failed", token=ADMIN)
        check(rc == 0 and q("select t.state from task_instance t join dag_run r on r.id = t.run_pk where r.run_id = 'r1'")
              == "failed", "dagctl mark still marks", out)
        rc, out = dagctl(port, "clear", "nightly_etl", "r1", token=ADMIN)
        check(rc == 0 and "cleared show" in out, "dagctl clear still clears (everything, as before)", out)
        until("r1 to run again", lambda: q("select try_number from task_instance t join dag_run r on r.id = t.run_pk "
                                           "where r.run_id = 'r1'") == 2 and
              q("select state from dag_run where run_id = 'r1'") == "success")
        check(True, "the cleared task ran again")

        # --- item 6: Airflow habits honoured or refused.
        http(port, "POST", "/api/v1/dags/nightly_etl/dagRuns", {"dag_run_id": "r2"}, ADMIN)
        http(port, "PATCH", "/api/v1/dags/nightly_etl/dagRuns/r2", {"state": "failed"}, ADMIN)
        st, _, text = http(port, "GET", "/api/v1/dags/nightly_etl/dagRuns?state=failed&state=success", token=READER)
        done = q("select count(*) from dag_run where dag_id = 'nightly_etl' and state in ('failed', 'success')")
        check(st == 200 and jbody(text).get("total_entries") == done == 3, "repeated state ORs", text[:300])
        st, _, text = http(port, "GET", "/api/v1/dags/nightly_etl/dagRuns?order_by=-dag_run_id", token=READER)
        check(st == 200 and jbody(text)["dag_runs"][0]["dag_run_id"] == "r2", "order_by honoured", text[:300])
        st, _, text = http(port, "GET", "/api/v1/dags/nightly_etl/dagRuns?order_by=bogus", token=READER)
        check(st == 400, "order_by naming no field: 400", text)
        st, _, text = http(port, "GET", "/api/v1/dags/nightly_etl/dagRuns?stat=failed", token=READER)
        check(st == 400 and "did you mean" in text, "an unknown parameter: 400 with a suggestion", text)
        st, _, text = http(port, "POST", "/api/v1/dags/nightly_etl/dagRuns",
                           {"dag_run_id": "r3", "execution_date": "2026-03-04T05:06:07Z"}, ADMIN)
        check(st == 200 and jbody(text).get("logical_date") == "2026-03-04T05:06:07Z", "execution_date honoured", text)
        # r3 runs now: count once it has ended, not while it may still run.
        until("r3 to end", lambda: q("select state from dag_run where run_id = 'r3'") in ("success", "failed"))
        rc, out = dagctl(port, "runs", "nightly_etl", "--state", "failed", "--state", "success", "-o", "json", token=READER)
        check(rc == 0 and json.loads(out)["total_entries"] == 4, "dagctl runs --state twice", out[:300])

        # --- item 12: a plain date, and the schedule's interval.
        rc, out = dagctl(port, "trigger", "nightly_etl", "--date", "2026-10-01", "--run-id", "d1", "--wait", token=ADMIN)
        check(rc == 0, "dagctl trigger --date 2026-10-01", out)
        logtext = open(os.path.join(work, "logs", "nightly_etl", "d1", "show", "1.log")).read()
        check("interval=2026-09-30T00:00:00Z..2026-10-01T00:00:00Z" in logtext and "ds=2026-10-01" in logtext,
              "the manual run covers the day before its logical date", logtext)
        rc, out = dagctl(port, "trigger", "nightly_etl", "--date", "2026-10-01T07:30:00Z", "--run-id", "d2", token=ADMIN)
        row = db.execute("select interval_start, interval_end from dag_run where run_id = 'd2'").fetchone()
        check(rc == 0 and row == (1790726400, 1790812800), "07:30Z covers Sep 30", f"{out} {row}")

        # --- item 13: did you mean, and a removed DAG file.
        rc, out = dagctl(port, "trigger", "nightly_elt", token=ADMIN)
        check(rc == 1 and 'did you mean "nightly_etl"' in out, "trigger of a misspelt DAG id", out)
        rc, out = dagctl(port, "trigger", "doomed", "--run-id", "x1", token=ADMIN)
        until("doomed's first try to run", lambda: q("select count(*) from task_instance t join dag_run r on "
              "r.id = t.run_pk where r.run_id = 'x1' and t.task_id = 'first' and t.state = 'running'") == 1)
        os.remove(os.path.join(dags, "doomed.lua"))
        proc.send_signal(signal.SIGHUP)
        until("the reload", lambda: "doomed" not in dagctl(port, "dags", token=READER)[1])
        rc, out = dagctl(port, "runs", "doomed", token=READER)
        check(rc == 0 and "x1" in out, "the removed DAG's runs are listed", out)
        rc, out = dagctl(port, "tasks", "doomed", "x1", token=READER)
        check(rc == 0 and "running" in out, "its task instances are listed", out)
        st, _, text = http(port, "GET", "/api/v1/dags/doomed", token=READER)
        check(st == 200 and jbody(text).get("is_active") is False, "the DAG is shown inactive", text)
        open(os.path.join(work, "release"), "w").close()
        until("the running try to finish and be recorded", lambda: q(
            "select t.state from task_instance t join dag_run r on r.id = t.run_pk where r.run_id = 'x1' "
            "and t.task_id = 'first'") == "success")
        rc, out = dagctl(port, "logs", "doomed", "x1", "first", token=READER)
        check(rc == 0 and "done" in out, "its log is readable", out)
        # Nothing new starts: a pass after the end leaves 'second' unstarted.
        http(port, "POST", "/api/v1/dags/nightly_etl/dagRuns", {"dag_run_id": "kick"}, ADMIN)
        until("a later run to finish", lambda: q("select state from dag_run where run_id = 'kick'") == "success")
        check(q("select t.state from task_instance t join dag_run r on r.id = t.run_pk where r.run_id = 'x1' "
                "and t.task_id = 'second'") in ("none", "scheduled"), "no new try of the removed DAG")
        rc, out = dagctl(port, "mark", "doomed", "x1", "second", "failed", token=ADMIN)
        check(rc == 0, "mark works on the removed DAG's run", out)
        st, _, text = http(port, "PATCH", "/api/v1/dags/doomed/dagRuns/x1", {"state": "failed"}, ADMIN)
        check(st == 200 and jbody(text).get("state") == "failed", "the run can be failed", text)
        rc, out = dagctl(port, "clear", "doomed", "x1", "--task", "second", "--dry-run", token=ADMIN)
        check(rc == 0 and "would clear second" in out, "clear works on it (dry run)", out)
        proc.terminate()
        proc.wait(timeout=30)

        # metrics_public opens /metrics only.
        proc, port, log = start(work, "metrics_public = true\n")
        st, _, text = http(port, "GET", "/metrics")
        check(st == 200 and "dagd_dags" in text, "metrics_public: /metrics without a token", str(st))
        st, _, _ = http(port, "GET", "/api/v1/dags")
        check(st == 401, "metrics_public leaves the rest closed")
        text = open(log).read()
        check(ADMIN not in text and READER not in text, "no token in the log")
    finally:
        proc.terminate()
        proc.wait(timeout=30)
        subprocess.run(["rm", "-rf", work])
    print(f"{passed} passed, {failed} failed")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
