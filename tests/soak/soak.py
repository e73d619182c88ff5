#!/usr/bin/python3
"""Crash and fault soak, the long version of tests/e2e/test_crash.sh (not
part of the CI suite; see docs/operations.md and bench/README.md).

  tests/soak/soak.py BUILD_DIR [--cycles N] [--dags N] [--interval S] [--keep]

A workload of many DAGs (tasks with retries and timeouts, runs started by
events POSTed to /api/v1/events with ids, some sent again) runs while dagd
is killed with SIGKILL at random points, CYCLES times. After each kill the
invariants are checked from the database and the try files:
  - every event answered 2xx is in the database once, accepted, and
    started exactly one run per DAG listening to it;
  - no run or task instance duplicated;
  - no task try ran twice, or beside another try of its task instance
    (each try appends start/end lines with its try number to a trace file);
  - every finished try has its true exit code in the database;
  - no file under the logs folder holds the secret every try prints.
Then the faults: a writer holding the SQLite write lock for 3 s, the logs
folder of one DAG replaced by a read-only file system, a full disk under
the logs folder, and at the end no run may stay unfinished. Last, a
corrupted state file at start (refused, naming it), and a deleted one
(dagd killed with tries in flight, the file removed with its -wal left
behind): dagd must start on a new, empty state, log that it did, run new
events to the end and stop cleanly. Prints the figures; exit
status 1 on any violation.
SPDX-License-Identifier: MIT"""
import json
import os
import random
import shutil
import signal
import socket
import sqlite3
import subprocess
import sys
import tempfile
import threading
import time
import urllib.error
import urllib.request

EVENTS = ["ev0", "ev1", "ev2", "ev3"]
# Every try prints this secret (DAGD_SECRET_SOAK); no file under the logs
# folder may ever hold it, whenever dagd was killed.
SECRET = "soak-secret-%08x" % random.getrandbits(32)


def free_port():
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    p = s.getsockname()[1]
    s.close()
    return p


def write_dags(folder, n):
    os.makedirs(folder, exist_ok=True)
    for i in range(n):
        # Task b fails its first try (exit 7); task c overruns its 1 s
        # timeout on the first try of odd DAGs; both succeed on a retry.
        slow = "3" if i % 2 else "0.2"
        with open(os.path.join(folder, f"soak{i:02d}.lua"), "w") as f:
            f.write(f"""local dagd = require "dagd"
local d = dagd.dag {{ id = "soak{i:02d}", on_event = {{ "{EVENTS[i % len(EVENTS)]}" }}, max_active_runs = 4,
                     default_args = {{ retries = 2, retry_delay = "1s" }} }}
local function step(id, body, extra)
  local t = {{ id = id, cmd = 'echo "token=$DAGD_SECRET_SOAK"; f=$SOAK_TRACE/$DAGD_DAG_ID.$DAGD_RUN_ID.$DAGD_TASK_ID; '
                    .. 'echo "start $DAGD_TRY_NUMBER" >> "$f"; '
                    -- A try killed by its timeout (SIGTERM to its group) still records its end.
                    .. 'trap \\'echo "end $DAGD_TRY_NUMBER 143" >> "$f"; exit 143\\' TERM; ' .. body
                    .. '; rc=$?; echo "end $DAGD_TRY_NUMBER $rc" >> "$f"; exit $rc' }}
  for k, v in pairs(extra or {{}}) do t[k] = v end
  return d:shell(t)
end
local a = step("a", "sleep 0.2")
local b = step("b", "sleep 0.1; [ $DAGD_TRY_NUMBER -gt 1 ] || (exit 7)")
local c = step("c", 'if [ $DAGD_TRY_NUMBER -eq 1 ]; then sleep {slow}; else sleep 0.1; fi', {{ execution_timeout = "1s" }})
local e = step("e", "sleep 0.1")
d:chain(a, {{ b, c }}, e)
""")


class Soak:
    def __init__(self, build, n_dags, interval):
        self.build = build
        self.interval = interval
        self.n_dags = n_dags
        self.work = tempfile.mkdtemp(prefix="dagd-soak-")
        self.trace = os.path.join(self.work, "trace")
        os.makedirs(self.trace)
        write_dags(os.path.join(self.work, "dags"), n_dags)
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        self.db = os.path.join(self.work, "dagd.db")
        self.logs = os.path.join(self.work, "logs")
        self.proc = None
        self.accepted = {}  # event id -> name, for events answered 2xx
        self.sent = 0
        self.repeats = 0
        self.violations = []
        self.lock = threading.Lock()
        self.next_event = 0
        self.mounts = []

    def start(self, state=None):
        log = open(os.path.join(self.work, "dagd.log"), "ab")
        self.proc = subprocess.Popen(
            [os.path.join(self.build, "dagd"), "--listen", f"127.0.0.1:{self.port}", "--dags-folder",
             os.path.join(self.work, "dags"), "--state", state or self.db, "--logs-folder", self.logs,
             "--parallelism", "8"],
            stdout=log, stderr=subprocess.STDOUT, env=dict(os.environ, SOAK_TRACE=self.trace, DAGD_SECRET_SOAK=SECRET))
        log.close()

    def kill(self):
        self.proc.send_signal(signal.SIGKILL)
        self.proc.wait()

    def post_event(self, eid, name):
        body = json.dumps({"name": name, "id": eid, "payload": {"n": eid}}).encode()
        req = urllib.request.Request(f"{self.url}/api/v1/events", data=body, method="POST",
                                     headers={"Content-Type": "application/json"})
        try:
            with urllib.request.urlopen(req, timeout=10) as r:
                return r.status
        except urllib.error.HTTPError as e:
            return e.code
        except OSError:
            return None

    def feed(self, stop):
        """Posts new events and, one time in four, an event already accepted."""
        while not stop.is_set():
            with self.lock:
                if self.accepted and random.random() < 0.25:
                    eid = random.choice(list(self.accepted))
                    name = self.accepted[eid]
                    repeat = True
                else:
                    eid = f"e{self.next_event}"
                    name = EVENTS[self.next_event % len(EVENTS)]
                    repeat = False
            status = self.post_event(eid, name)
            with self.lock:
                self.sent += 1
                if status is not None and 200 <= status < 300:
                    if repeat:
                        self.repeats += 1
                    elif eid not in self.accepted:
                        self.accepted[eid] = name
                        self.next_event += 1
            # One event per interval (1 s by default): each starts a run in
            # n_dags / 4 DAGs, and the backlog must drain in the settle phase.
            time.sleep(self.interval)

    def check(self, final=False):
        """Invariants from the database, the traces and (under a shim) the try files; dagd is down."""
        db = sqlite3.connect(f"file:{self.db}?mode=ro", uri=True)
        bad = []
        dup = db.execute("SELECT dag_id, run_id, count(*) FROM dag_run GROUP BY dag_id, run_id HAVING count(*) > 1").fetchall()
        bad += [f"duplicated run {r}" for r in dup]
        per_name = {n: sum(1 for i in range(self.n_dags) if EVENTS[i % len(EVENTS)] == n) for n in EVENTS}
        with self.lock:
            accepted = dict(self.accepted)
        for eid, name in accepted.items():
            rows = db.execute("SELECT id, outcome, runs_started FROM event WHERE source = 'generic' AND external_id = ?"
                              " AND outcome != 'duplicate'", (eid,)).fetchall()
            if len(rows) != 1:
                bad.append(f"event {eid}: {len(rows)} accepted records")
                continue
            pk, outcome, started = rows[0]
            runs = db.execute("SELECT count(*) FROM dag_run WHERE event_id = ?", (pk,)).fetchone()[0]
            if outcome != "accepted" or runs != per_name[name] or started != runs:
                bad.append(f"event {eid} ({name}): outcome {outcome}, {runs} runs, runs_started {started}, want {per_name[name]}")
        for pk, dag, run_id in db.execute("SELECT id, dag_id, run_id FROM dag_run"):
            tis = db.execute("SELECT task_id, state, try_number, exit_code FROM task_instance WHERE run_pk = ?", (pk,)).fetchall()
            if len(tis) != 4:
                bad.append(f"{dag}/{run_id}: {len(tis)} task instances")
            for task, state, tries, code in tis:
                if state in ("success", "failed", "up_for_retry") and tries > 0 and code is not None:
                    p = os.path.join(self.logs, dag, run_id, task, f"{tries}.exit")
                    if os.path.exists(p):
                        rec = open(p).read().split()
                        if rec and rec[0] == "exit" and int(rec[1]) != code:
                            bad.append(f"{dag}/{run_id}/{task}: db exit {code}, try file {rec}")
                if final and state not in ("success", "failed", "skipped", "upstream_failed", "removed"):
                    bad.append(f"{dag}/{run_id}/{task}: still {state} at the end")
                tp = os.path.join(self.trace, f"{dag}.{run_id}.{task}")
                if not os.path.exists(tp):
                    continue
                running, seen = None, set()
                for line in open(tp).read().split("\n"):
                    ev = line.split()
                    if not ev:
                        continue
                    if ev[0] == "start":
                        if running is not None:
                            bad.append(f"{dag}/{run_id}/{task}: try {ev[1]} started while try {running} ran")
                        if ev[1] in seen:
                            bad.append(f"{dag}/{run_id}/{task}: try {ev[1]} ran twice")
                        seen.add(ev[1])
                        running = ev[1]
                    else:
                        running = None
                        # The last try's end as the task saw it is the database's: under the
                        # try supervisor there is no try file to compare with, only this.
                        if final and state == "success" and ev[1] == str(tries) and int(ev[2]) != (code or 0):
                            bad.append(f"{dag}/{run_id}/{task}: trace exit {ev[2]}, db {code}")
                        if (state in ("success", "failed") and ev[1] == str(tries) and code is not None
                                and int(ev[2]) != code):
                            bad.append(f"{dag}/{run_id}/{task}: try {tries} trace exit {ev[2]}, db {code}")
        for root, _, files in os.walk(self.logs):
            for name in files:
                try:
                    with open(os.path.join(root, name), "rb") as f:
                        if SECRET.encode() in f.read():
                            bad.append(f"{os.path.join(root, name)}: holds the secret")
                except OSError:
                    pass
        if final:
            left = db.execute("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')").fetchone()[0]
            if left:
                bad.append(f"{left} runs never finished")
        db.close()
        self.violations += bad
        return bad

    def api_ok(self):
        try:
            with urllib.request.urlopen(f"{self.url}/health", timeout=5) as r:
                return r.status == 200
        except OSError:
            return False

    def wait_api(self, deadline=60):
        end = time.monotonic() + deadline
        while time.monotonic() < end:
            if self.proc.poll() is not None:
                return False
            if self.api_ok():
                return True
            time.sleep(0.1)
        return False

    def mount_tmpfs(self, path, opts):
        os.makedirs(path, exist_ok=True)
        if subprocess.run(["mount", "-t", "tmpfs", "-o", opts, "tmpfs", path], capture_output=True).returncode:
            return False
        self.mounts.append(path)
        return True

    def umount(self, path):
        # Lazy: shims of the faulty folder's tries may still hold files open
        # there (they outlive a killed dagd); a plain umount would fail busy
        # and leave the fault in place for every later try.
        r = subprocess.run(["umount", "-l", path], capture_output=True, text=True)
        if r.returncode:
            self.violations.append(f"harness: cannot unmount {path}: {r.stderr.strip()}")
        self.mounts.remove(path)

    def cleanup(self):
        for m in list(self.mounts):
            self.umount(m)
        shutil.rmtree(self.work, ignore_errors=True)


def deleted_state_case(s):
    """Section 7 of main: prints what happened, returns True if all went well."""
    per_name = {n: sum(1 for i in range(s.n_dags) if EVENTS[i % len(EVENTS)] == n) for n in EVENTS}
    s.start()
    if not s.wait_api():
        print("deleted state file: dagd did not start before the deletion")
        return False
    for k in range(4):
        s.post_event(f"before-delete-{k}", EVENTS[k])
    time.sleep(1.5)
    s.kill()
    for suffix in ("-wal", "-shm"):
        if not os.path.exists(s.db + suffix):
            print(f"deleted state file: note: no {suffix} file was left beside the state file")
    os.unlink(s.db)
    log_path = os.path.join(s.work, "dagd.log")
    offset = os.path.getsize(log_path)
    s.start()
    if not s.wait_api():
        print(f"deleted state file: dagd did not come up (exit {s.proc.poll()})")
        return False
    ok = True
    names = {}
    for k in range(4):
        eid = f"after-delete-{k}"
        status = s.post_event(eid, EVENTS[k])
        if status is None or not 200 <= status < 300:
            print(f"deleted state file: event {eid} answered {status}")
            ok = False
        names[eid] = EVENTS[k]
    deadline = time.monotonic() + 120
    while time.monotonic() < deadline and s.proc.poll() is None:
        db = sqlite3.connect(f"file:{s.db}?mode=ro", uri=True)
        left = db.execute("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')").fetchone()[0]
        db.close()
        if left == 0:
            break
        time.sleep(0.5)
    crashed = s.proc.poll() is not None
    if not crashed:
        s.proc.send_signal(signal.SIGTERM)
    rc = s.proc.wait()
    with open(log_path, errors="replace") as f:
        f.seek(offset)
        log = f.read()
    line = next((ln for ln in log.splitlines() if "starting on a new, empty state" in ln), None)
    db = sqlite3.connect(f"file:{s.db}?mode=ro", uri=True)
    integrity = db.execute("PRAGMA integrity_check").fetchone()[0]
    old = db.execute("SELECT count(*) FROM event WHERE external_id LIKE 'before-delete-%'").fetchone()[0]
    left = db.execute("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')").fetchone()[0]
    runs = {eid: db.execute("SELECT count(*) FROM dag_run r JOIN event e ON r.event_id = e.id"
                            " WHERE e.external_id = ? AND r.state = 'success'", (eid,)).fetchone()[0] for eid in names}
    db.close()
    print(f"deleted state file: dagd {'CRASHED' if crashed else 'stopped'} with exit {rc}; log: "
          f"{line.split(' ', 1)[1] if line else 'NO LINE about a new state'}; integrity {integrity}; "
          f"events from before the deletion known: {old}; runs of the new events done: {sum(runs.values())} "
          f"of {sum(per_name[n] for n in names.values())}, unfinished {left}")
    if crashed or rc != 0 or line is None or integrity != "ok" or old != 0 or left != 0:
        ok = False
    for eid, name in names.items():
        if runs[eid] != per_name[name]:
            print(f"deleted state file: event {eid}: {runs[eid]} successful runs, want {per_name[name]}")
            ok = False
    return ok


def main():
    build = sys.argv[1]
    cycles = int(sys.argv[sys.argv.index("--cycles") + 1]) if "--cycles" in sys.argv else 60
    n_dags = int(sys.argv[sys.argv.index("--dags") + 1]) if "--dags" in sys.argv else 20
    interval = float(sys.argv[sys.argv.index("--interval") + 1]) if "--interval" in sys.argv else 1.0
    s = Soak(build, n_dags, interval)
    t0 = time.monotonic()
    stop = threading.Event()
    feeder = threading.Thread(target=s.feed, args=(stop,), daemon=True)
    feeder.start()
    try:
        # 1. Kill at random points: a random delay after each start.
        for i in range(cycles):
            s.start()
            time.sleep(random.uniform(0.2, 2.5))
            s.kill()
            bad = s.check()
            if bad:
                print(f"cycle {i + 1}: " + "; ".join(bad[:5]), flush=True)
        print(f"kill -9 cycles: {cycles}, events accepted so far {len(s.accepted)}", flush=True)

        # 2. SQLite busy: another process holds the write lock for 3 s.
        s.start()
        s.wait_api()
        holder = subprocess.Popen([sys.executable, "-c",
                                   "import sqlite3, sys, time\n"
                                   "db = sqlite3.connect(sys.argv[1], timeout=30, isolation_level=None)\n"
                                   "db.execute('BEGIN IMMEDIATE'); print('held', flush=True); time.sleep(3)\n"
                                   "db.execute('ROLLBACK')", s.db], stdout=subprocess.PIPE)
        holder.stdout.readline()
        holder.wait()
        alive = s.proc.poll() is None and s.wait_api(30)
        print(f"write lock held 3 s: dagd {'kept going' if alive else 'DIED'}", flush=True)
        if not alive:
            s.violations.append("dagd died while another process held the write lock")
            s.start()
            s.wait_api()

        # 3. One DAG's logs folder on a read-only file system.
        ro = os.path.join(s.logs, "soak00")
        if s.mount_tmpfs(ro, "ro,size=1m"):
            time.sleep(4)
            alive = s.proc.poll() is None and s.api_ok()
            print(f"read-only logs folder: dagd {'kept going' if alive else 'DIED'}", flush=True)
            if not alive:
                s.violations.append("dagd died with a read-only logs folder")
            s.umount(ro)
        else:
            print("skip: cannot mount a tmpfs (not root?): read-only logs case not run")
        # 4. A full disk under one DAG's logs folder.
        full = os.path.join(s.logs, "soak01")
        if s.mount_tmpfs(full, "size=64k"):
            subprocess.run(["dd", "if=/dev/zero", f"of={full}/fill", "bs=4k"], capture_output=True)
            time.sleep(4)
            alive = s.proc.poll() is None and s.api_ok()
            print(f"full logs disk: dagd {'kept going' if alive else 'DIED'}", flush=True)
            if not alive:
                s.violations.append("dagd died with a full logs disk")
            if s.proc.poll() is None:
                s.kill()
            s.umount(full)
            s.start()
            s.wait_api()
        stop.set()
        feeder.join()

        # 5. Settle: every run finishes (deadline, polled).
        deadline = time.monotonic() + 900
        while time.monotonic() < deadline:
            db = sqlite3.connect(f"file:{s.db}?mode=ro", uri=True)
            left = db.execute("SELECT count(*) FROM dag_run WHERE state IN ('queued', 'running')").fetchone()[0]
            db.close()
            if left == 0:
                break
            time.sleep(0.5)
        s.proc.send_signal(signal.SIGTERM)
        rc = s.proc.wait()
        if rc != 0:
            s.violations.append(f"dagd exit {rc} on SIGTERM")
        bad = s.check(final=True)
        db = sqlite3.connect(s.db)
        runs = db.execute("SELECT count(*), sum(state = 'success'), sum(state = 'failed') FROM dag_run").fetchone()
        tis = db.execute("SELECT count(*), sum(try_number) FROM task_instance").fetchone()
        evs = db.execute("SELECT outcome, count(*) FROM event GROUP BY outcome").fetchall()
        db.close()

        # 6. A corrupted state file, and a deleted one, at start.
        corrupt = os.path.join(s.work, "corrupt.db")
        shutil.copy(s.db, corrupt)
        with open(corrupt, "r+b") as f:
            f.write(os.urandom(4096))
        try:
            r = subprocess.run([os.path.join(build, "dagd"), "--listen", "127.0.0.1:0", "--dags-folder",
                                os.path.join(s.work, "dags"), "--state", corrupt, "--logs-folder", s.logs],
                               capture_output=True, text=True, timeout=30)
        except subprocess.TimeoutExpired as e:
            r = subprocess.CompletedProcess(e.cmd, 0, e.stdout or "", e.stderr or "")
        msg = (r.stdout + r.stderr).strip().splitlines()
        print(f"corrupted state file: exit {r.returncode}: {msg[-1] if msg else ''}")
        if r.returncode == 0 or "corrupt.db" not in r.stdout + r.stderr:
            s.violations.append("a corrupted state file was not refused with a message naming it")

        # 7. A deleted state file: dagd killed with tries in flight, the state
        # file removed (its -wal and -shm left behind, as an rm of the one
        # file does), then started again on the same path and logs folder. It
        # must start on a new, empty state, say so in its log, run new events
        # to the end and stop cleanly; the old shims finish into old folders.
        fresh_ok = deleted_state_case(s)
        if not fresh_ok:
            s.violations.append("a deleted state file: dagd did not start cleanly on a new state (see above)")

        print(f"soak: {cycles} kill -9 cycles in {time.monotonic() - t0:.0f} s; {n_dags} DAGs; runs {runs[0]} "
              f"(success {runs[1]}, failed {runs[2]}); task instances {tis[0]}, tries {tis[1]}; events posted "
              f"{s.sent}, accepted {len(s.accepted)}, repeats answered {s.repeats}; event rows {dict(evs)}")
        masked = 0
        for root, _, files in os.walk(s.logs):
            for name in files:
                if name.endswith(".log"):
                    with open(os.path.join(root, name), "rb") as f:
                        masked += b"token=***" in f.read()
        print(f"try logs showing the secret masked: {masked}; files holding it: see violations")
        print(f"violations: {len(s.violations)}")
        for v in s.violations[:30]:
            print("  " + v)
        return 1 if s.violations else 0
    finally:
        stop.set()
        if s.proc and s.proc.poll() is None:
            s.kill()
        if "--keep" in sys.argv:
            print(f"kept {s.work}")
        else:
            s.cleanup()


if __name__ == "__main__":
    sys.exit(main())
