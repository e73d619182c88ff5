#!/usr/bin/python3
"""contrib/dagd.service against the real dagd, where systemd is not PID 1.

1. The unit: `systemd-analyze security --offline=yes` rates it below 4;
   Type=notify with a watchdog; the dagd user (contrib/dagd.sysusers,
   applied with systemd-sysusers to a scratch root); StateDirectory and
   LogsDirectory are the folders contrib/dagd.lua.example points at;
   TimeoutStopSec is longer than dagd's drain; nothing is set that a try
   outliving a stop would lose (PrivateTmp, RemoveIPC).
2. sd_notify: dagd started with NOTIFY_SOCKET (a datagram socket this test
   opens) and WATCHDOG_USEC says READY=1 only once it listens with its
   DAGs loaded, then WATCHDOG=1 again and again, and STOPPING=1 on
   SIGTERM; its tries do not see those variables.
3. KillMode: a restart must not kill running tries. dagd runs in a cgroup
   of its own (cgroup v2, where writable; else the processes are tracked
   by pid), with a try running; the test stops it as systemd does for the
   unit's KillMode and KillSignal (control-group: the signal to every
   process, SIGKILL to what is left; mixed: the signal to dagd, SIGKILL to
   the rest of the cgroup once dagd has exited; process: the signal to
   dagd only), starts dagd again in the same cgroup, lets the try finish,
   and checks it was re-adopted with its true end recorded: success, exit
   0, its output, one try. drain_timeout = 0 makes dagd leave its tries to
   the try supervisor (or their shims) at once, as it does after the 60 s
   drain.
SPDX-License-Identifier: MIT"""
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.request

BUILD = os.environ["DAGD_BUILD_DIR"]
SRC = os.environ["DAGD_SOURCE_DIR"]
DAGD = os.path.join(BUILD, "dagd")
UNIT = os.path.join(SRC, "contrib", "dagd.service")
failures = []
passed = 0


def check(cond, what):
    global passed
    if cond:
        passed += 1
    else:
        failures.append(what)
        print("FAIL:", what)


def poll(what, fn, seconds=15):
    """Calls fn until it returns a true value, with a deadline."""
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        v = fn()
        if v:
            return v
        time.sleep(0.05)
    print("timed out waiting for", what)
    return None


def unit_settings(path):
    """[Service] settings: name -> list of values, in order."""
    out, section = {}, None
    for line in open(path):
        line = line.strip()
        if not line or line[0] in "#;":
            continue
        if line.startswith("["):
            section = line
            continue
        k, _, v = line.partition("=")
        out.setdefault((section, k.strip()), []).append(v.strip())
    return {k[1]: v for k, v in out.items() if k[0] == "[Service]"}


def seconds(text):
    """systemd time span ("90s", "5min", "1min 30s") in seconds."""
    units = {"": 1, "s": 1, "sec": 1, "min": 60, "m": 60, "h": 3600}
    total = 0
    for n, u in re.findall(r"(\d+)\s*([a-z]*)", text):
        total += int(n) * units[u]
    return total


def read(path):
    try:
        with open(path) as f:
            return f.read()
    except OSError:
        return ""


def check_unit(work):
    s = unit_settings(UNIT)
    r = subprocess.run(["systemd-analyze", "security", "--offline=yes", "--threshold=39", UNIT],
                       capture_output=True, text=True)
    m = re.search(r"Overall exposure level for \S+: ([0-9.]+)", r.stdout)
    check(m is not None and float(m.group(1)) < 4.0 and r.returncode == 0,
          f"systemd-analyze security rates the unit below 4 (got {m.group(1) if m else r.stdout[-300:]})")
    check(s.get("Type") == ["notify"], "Type=notify")
    check(s.get("NotifyAccess", ["main"]) == ["main"], "only dagd itself may notify")
    check(seconds(s.get("WatchdogSec", ["0"])[-1]) > 0, "WatchdogSec is set")
    check(s.get("User") == ["dagd"], "runs as the dagd user")
    check(s.get("StateDirectory") == ["dagd"] and s.get("LogsDirectory") == ["dagd"], "StateDirectory and LogsDirectory")
    example = read(os.path.join(SRC, "contrib", "dagd.lua.example"))
    check(re.search(r'^state\s*=\s*"/var/lib/dagd/', example, re.M) is not None and
          re.search(r'^logs_folder\s*=\s*"/var/log/dagd"', example, re.M) is not None,
          "the example config keeps its state and logs in the unit's StateDirectory and LogsDirectory")
    check(seconds(s.get("TimeoutStopSec", ["90s"])[-1]) > 60, "TimeoutStopSec is longer than the 60 s drain")
    check(s.get("KillMode") == ["process"], "KillMode=process (see the KillMode check below for why)")
    # What a try that outlives dagd's stop would lose: systemd deletes a
    # PrivateTmp when the unit stops, and RemoveIPC its user's IPC objects.
    for k in ("PrivateTmp", "RemoveIPC"):
        check(s.get(k, ["no"])[-1] in ("no", "false", "0"), f"{k} is off, as tries outlive a stop")
    root = os.path.join(work, "sysroot")
    os.makedirs(os.path.join(root, "etc"))
    r = subprocess.run(["systemd-sysusers", "--root=" + root, os.path.join(SRC, "contrib", "dagd.sysusers")],
                       capture_output=True, text=True)
    check(r.returncode == 0 and re.search(r"^dagd:x:\d+:\d+:[^:]*:/var/lib/dagd:", read(os.path.join(root, "etc", "passwd")),
                                          re.M) is not None, "contrib/dagd.sysusers creates the dagd user: " + r.stderr)


def start(work, name, env=None, cgroup=None):
    """dagd on work/{dags,dagd.db,logs}, log in work/NAME.log; returns (proc, log path)."""
    log = os.path.join(work, name + ".log")
    e = dict(os.environ)
    for k in ("NOTIFY_SOCKET", "WATCHDOG_USEC", "WATCHDOG_PID"):
        e.pop(k, None)
    e.update(env or {})

    def enter():
        if cgroup:
            with open(os.path.join(cgroup, "cgroup.procs"), "w") as f:
                f.write("0")
    p = subprocess.Popen([DAGD, "--listen", "127.0.0.1:0", "--dags-folder", os.path.join(work, "dags"),
                          "--state", os.path.join(work, "dagd.db"), "--logs-folder", os.path.join(work, "logs")],
                         stdout=open(log, "w"), stderr=subprocess.STDOUT, env=e, preexec_fn=enter)
    return p, log


def port_of(log):
    m = re.findall(r"listening on .*\(port (\d+)\)", read(log))
    return int(m[-1]) if m else None


def api(port, method, path, body=None):
    data = json.dumps(body).encode() if body is not None else None
    rq = urllib.request.Request(f"http://127.0.0.1:{port}{path}", data=data, method=method,
                                headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(rq, timeout=10) as r:
        return json.loads(r.read())


def write_dag(work, name, body):
    os.makedirs(os.path.join(work, "dags"), exist_ok=True)
    with open(os.path.join(work, "dags", name + ".lua"), "w") as f:
        f.write('local dagd = require "dagd"\n' + body)


def check_notify(work):
    write_dag(work, "envdump", '''
local d = dagd.dag { id = "envdump" }
d:shell { id = "t", cmd = 'echo "notify=${NOTIFY_SOCKET:-none} watchdog=${WATCHDOG_USEC:-none}"' }
''')
    path = os.path.join(work, "notify.sock")
    sock = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    sock.bind(path)
    sock.settimeout(0.2)
    p, log = start(work, "notify", {"NOTIFY_SOCKET": path, "WATCHDOG_USEC": "400000"})
    got = []

    def receive(want):
        try:
            msg = sock.recv(4096).decode()
        except socket.timeout:
            return None
        lines = msg.split("\n")
        got.append((lines, read(log)))
        return want in lines

    ready = poll("READY=1", lambda: receive("READY=1"), 20)
    check(ready, "READY=1 arrives")
    if ready:
        lines, log_then = got[-1]
        check("listening on" in log_then and "1 files, 1 DAGs, 0 errors" in log_then,
              "READY=1 comes only after dagd listens with its DAGs loaded")
    n = [0]

    def pings():
        if receive("WATCHDOG=1"):
            n[0] += 1
        return n[0] >= 2
    check(poll("two WATCHDOG=1", pings, 20), "WATCHDOG=1 arrives, again and again (WATCHDOG_USEC set)")
    port = port_of(log)
    run = api(port, "POST", "/api/v1/dags/envdump/dagRuns", {})["dag_run_id"]

    def done():
        st = api(port, "GET", f"/api/v1/dags/envdump/dagRuns/{run}")["state"]
        return st if st in ("success", "failed") else None
    check(poll("the envdump run", done) == "success", "a try runs under the notifying dagd")
    tlog = read(os.path.join(work, "logs", "envdump", run, "t", "1.log"))
    check("notify=none watchdog=none" in tlog, "tries do not inherit NOTIFY_SOCKET or WATCHDOG_USEC: " + tlog)
    p.send_signal(signal.SIGTERM)
    check(poll("STOPPING=1", lambda: receive("STOPPING=1"), 20), "STOPPING=1 on SIGTERM")
    try:
        check(p.wait(timeout=20) == 0, "dagd exits 0 after SIGTERM")
    except subprocess.TimeoutExpired:
        check(False, "dagd exits after SIGTERM")
    sock.close()
    # Without NOTIFY_SOCKET (not under systemd) nothing is sent and nothing fails.
    p, log = start(work, "plain")
    check(poll("dagd to listen", lambda: port_of(log)), "dagd starts without NOTIFY_SOCKET")
    p.send_signal(signal.SIGTERM)
    p.wait(timeout=20)
    os.remove(os.path.join(work, "dags", "envdump.lua"))


def cgroup_for_test():
    """A fresh cgroup v2 directory below ours, or None where we cannot make one."""
    mount = None
    for line in read("/proc/self/mountinfo").splitlines():
        fields = line.split(" - ")
        if len(fields) == 2 and fields[1].split()[0] == "cgroup2":
            mount = line.split()[4]
    own = next((l[3:] for l in read("/proc/self/cgroup").splitlines() if l.startswith("0::")), None)
    if mount is None or own is None:
        return None
    path = os.path.join(mount + own.rstrip("/"), f"dagd-test-{os.getpid()}")
    try:
        os.mkdir(path)
        with open(os.path.join(path, "cgroup.procs")) as f:
            f.read()
        return path
    except OSError:
        return None


def cgroup_pids(cg):
    """The processes of cgroup cg and of the cgroups below it (each try's own)."""
    pids = []
    for dirpath, _, _ in os.walk(cg):
        pids += [int(x) for x in read(os.path.join(dirpath, "cgroup.procs")).split()]
    return pids


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    stat = read(f"/proc/{pid}/stat")
    return stat != "" and stat.rsplit(")", 1)[1].split()[0] not in ("Z", "X")


def check_killmode(work):
    s = unit_settings(UNIT)
    mode = s.get("KillMode", ["control-group"])[-1]
    sig = getattr(signal, s.get("KillSignal", ["SIGTERM"])[-1])
    marks = os.path.join(work, "marks")
    os.makedirs(marks)
    write_dag(work, "long", f'''
local d = dagd.dag {{ id = "long", default_args = {{ retries = 0 }} }}
d:shell {{ id = "t", cmd = 'echo "task $$ parent $PPID" > {marks}/pids.tmp; mv {marks}/pids.tmp {marks}/pids; touch {marks}/started; while [ ! -e {marks}/go ]; do sleep 0.05; done; echo done=yes > "$DAGD_OUTPUT"' }}
''')
    cg = cgroup_for_test()
    print(f"KillMode={mode}, KillSignal={sig.name}; {'cgroup ' + cg if cg else 'no writable cgroup: processes tracked by pid'}")
    env = {"DAGD_DRAIN_TIMEOUT": "0"}
    p, log = start(work, "first", env, cg)
    shim = task = None
    try:
        port = poll("dagd to listen", lambda: port_of(log))
        run = api(port, "POST", "/api/v1/dags/long/dagRuns", {})["dag_run_id"]
        check(poll("the try to start", lambda: os.path.exists(os.path.join(marks, "started"))), "the try runs")
        # The try's parent is what keeps it: the try supervisor, or its shim
        # where the supervisor has no cgroups.
        w = read(os.path.join(marks, "pids")).split()
        shim, task = int(w[3]), int(w[1])
        check(shim != p.pid, "the try's parent is not dagd itself")
        if cg:
            check(shim in cgroup_pids(cg) and task in cgroup_pids(cg), "the supervisor and the task are in dagd's cgroup")

        # systemd's stop, for this KillMode.
        def rest():
            return [x for x in (cgroup_pids(cg) if cg else [shim, task]) if x != p.pid]

        def kill_rest():
            if cg:
                with open(os.path.join(cg, "cgroup.kill"), "w") as f:
                    f.write("1")
            else:
                for x in (shim, task):
                    try:
                        os.kill(x, signal.SIGKILL)
                    except ProcessLookupError:
                        pass
        if mode == "control-group":
            for x in [p.pid] + rest():
                try:
                    os.kill(x, sig)
                except ProcessLookupError:
                    pass
        elif mode in ("mixed", "process"):
            p.send_signal(sig)
        p.wait(timeout=30)
        check(re.search(r"leaving 1 running tries to (the try supervisor|their shims)", read(log)),
              "dagd leaves the running try to the supervisor or its shim")
        if mode in ("control-group", "mixed"):
            kill_rest()  # what is left once the main process is gone (mixed), or at TimeoutStopSec
            # SIGKILL is delivered asynchronously: wait until it has acted.
            poll("the SIGKILLed processes to go", lambda: not any(alive(x) for x in (rest() if cg else [shim, task])))
        check(alive(shim) and alive(task), f"the try's supervisor and the task outlive `systemctl stop` (KillMode={mode})")

        # The restart: a new dagd in the same cgroup re-adopts the try.
        p, log = start(work, "second", env, cg)
        port = poll("dagd to listen again", lambda: port_of(log))
        check("re-adopting long/" in read(log), "the new dagd re-adopts the try")
        open(os.path.join(marks, "go"), "w").close()

        def done():
            st = api(port, "GET", f"/api/v1/dags/long/dagRuns/{run}")["state"]
            return st if st in ("success", "failed") else None
        check(poll("the run to end", done, 30) == "success", "the re-adopted try's run succeeds")
        ti = api(port, "GET", f"/api/v1/dags/long/dagRuns/{run}/taskInstances")["task_instances"][0]
        check(ti["state"] == "success" and ti["exit_code"] == 0 and ti["try_number"] == 1 and
              ti["outputs"] == {"done": "yes"}, f"its true end is recorded: {ti}")
        p.send_signal(signal.SIGTERM)
        p.wait(timeout=30)
    finally:
        if p.poll() is None:
            p.kill()
            p.wait()
        if cg:
            with open(os.path.join(cg, "cgroup.kill"), "w") as f:
                f.write("1")
            poll("the test cgroup to empty", lambda: not cgroup_pids(cg))
            os.rmdir(cg)
        else:
            for x in (shim, task):
                if x and alive(x):
                    os.kill(x, signal.SIGKILL)


def main():
    for tool in ("systemd-analyze", "systemd-sysusers"):
        if shutil.which(tool) is None:
            print(f"FAIL: {tool} is not installed (scripts/dev deps installs systemd)")
            return 1
    work = tempfile.mkdtemp()
    try:
        check_unit(work)
        check_notify(work)
        check_killmode(work)
    finally:
        if not os.environ.get("KEEP"):
            shutil.rmtree(work, ignore_errors=True)
    print(f"{passed} passed, {len(failures)} failed")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
