#!/usr/bin/env bash
# dagctl's habits against a real dagd on a free loopback port: -o yaml
# reads back (PyYAML) as -o json for the API commands; logs -o json prints
# JSON; logs -f follows a task through its retry to its end; backfill
# --wait shows done/total runs (one line updated in place on a terminal,
# plain lines into a pipe); the OUTPUTS column is cut to the width;
# NO_COLOR and TERM=dumb turn colour off; completion offers the running
# dagd's DAG ids.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

mkdir -p "$WORK/dags"
cp "$DATA/cli/cli.lua" "$WORK/dags/"
cd "$WORK/dags"
log="$WORK/dagd.log"
"$DAGD" --listen 127.0.0.1:0 --dags-folder "$WORK/dags" --state "$WORK/dagd.db" --logs-folder "$WORK/logs" \
  >"$log" 2>&1 &
pid=$!
trap 'kill -TERM $pid 2>/dev/null; wait $pid 2>/dev/null; rm -rf "$WORK"' EXIT
deadline=$((SECONDS + 10))
until grep -q "listening on" "$log"; do
  [ $SECONDS -lt $deadline ] || { echo "dagd did not start"; tail -5 "$log"; exit 1; }
  sleep 0.02
done
port=$(sed -n 's/.*(port \([0-9]*\)).*/\1/p' "$log" | tail -1)
export DAGD_URL="http://127.0.0.1:$port"
unset NO_COLOR

# pty_run FD OUTFILE CMD...: runs CMD with its fd FD (1 or 2) on a
# terminal of 80 columns, the other outputs to /dev/null, and writes what
# the terminal received to OUTFILE. Exits with CMD's status.
pty_run() {
  /usr/bin/python3 - "$@" <<'PY'
import fcntl, os, pty, struct, subprocess, sys, termios
fd, outfile, argv = int(sys.argv[1]), sys.argv[2], sys.argv[3:]
master, slave = pty.openpty()
fcntl.ioctl(slave, termios.TIOCSWINSZ, struct.pack("HHHH", 24, 80, 0, 0))
kw = {"stdin": subprocess.DEVNULL, "stdout": subprocess.DEVNULL, "stderr": subprocess.DEVNULL}
kw["stdout" if fd == 1 else "stderr"] = slave
p = subprocess.Popen(argv, **kw)
os.close(slave)
data = b""
while True:
    try:
        chunk = os.read(master, 65536)
    except OSError:  # EIO: the terminal's last writer is gone
        break
    if not chunk:
        break
    data += chunk
rc = p.wait()
open(outfile, "wb").write(data)
sys.exit(rc)
PY
}
# wait_state DAG RUN TASK STATE: polls until the task instance is in STATE.
wait_state() {
  local deadline=$((SECONDS + 30))
  until "$DAGCTL" -o json tasks "$1" "$2" 2>/dev/null | /usr/bin/python3 -c '
import json, sys
tis = {t["task_id"]: t for t in json.load(sys.stdin)["task_instances"]}
sys.exit(0 if tis.get(sys.argv[1], {}).get("state") == sys.argv[2] else 1)' "$3" "$4"; do
    [ $SECONDS -lt $deadline ] || { fail "$1 $2 $3 never reached $4"; return 1; }
    sleep 0.05
  done
}
# widest: the longest line on stdin, in characters.
widest() { /usr/bin/python3 -c 'import sys; print(max(len(l.rstrip("\n")) for l in sys.stdin))'; }
# same_doc WHAT JSON_TEXT YAML_TEXT: the YAML reads back as the JSON.
same_doc() {
  /usr/bin/python3 -c '
import json, sys, yaml
j, y = json.loads(sys.argv[1]), yaml.safe_load(sys.argv[2])
if j != y:
    print("json:", j); print("yaml:", y); sys.exit(1)' "$2" "$3" && ok || { out=$3; fail "$1: -o yaml reads back as -o json"; }
}

# ---- -o yaml: the API commands, a conf full of YAML traps ----
conf='{"a": "yes", "b": "012", "c": "12:30", "d": "", "e": null, "f": [1, 2.5, {"g": "#x"}],
       "h": "line\nbreak\n", "i": "2026-01-01", "j": "a: b", "k": "~", "l": true, "m": 1e300}'
run "$DAGCTL" -o yaml trigger plain --conf "$conf" --run-id y1 --wait
expect_rc 0 "trigger -o yaml"
y=$("$DAGCTL" -o yaml trigger plain --run-id y2) && ok || fail "trigger -o yaml"
/usr/bin/python3 -c '
import sys, yaml
d = yaml.safe_load(sys.argv[1])
assert d["dag_run_id"] == "y2" and d["dag_id"] == "plain", d' "$y" && ok || { out=$y; fail "trigger -o yaml is the run"; }
for args in "dags" "runs plain" "tasks plain y1"; do
  # shellcheck disable=SC2086
  j=$("$DAGCTL" -o json $args) && y=$("$DAGCTL" $args -o yaml) && ok || fail "$args -o json|yaml"
  same_doc "$args" "$j" "$y"
done
j=$("$DAGCTL" -o json runs plain)
/usr/bin/python3 -c '
import json, sys
conf = [r for r in json.loads(sys.argv[1])["dag_runs"] if r["dag_run_id"] == "y1"][0]["conf"]
assert conf == json.loads(sys.argv[2]), conf' "$j" "$conf" && ok || fail "the tricky conf went through"

# ---- logs -f follows the retry; logs -o json prints JSON ----
run "$DAGCTL" trigger flaky --run-id f1
expect_rc 0 "trigger flaky"
wait_state flaky f1 t running
timeout 60 "$DAGCTL" logs flaky f1 t -f >"$WORK/follow.out" 2>"$WORK/follow.err" &
follow=$!
timeout 60 "$DAGCTL" -o json logs flaky f1 t -f >"$WORK/follow.json" 2>&1 &
follow_json=$!
# Let try 1 end (create go) only once both followers have shown its
# first line, so each of them follows it from try 1 into try 2.
deadline=$((SECONDS + 30))
until grep -q "try 1 starts" "$WORK/follow.out" 2>/dev/null && grep -q "try 1 starts" "$WORK/follow.json" 2>/dev/null; do
  [ $SECONDS -lt $deadline ] || break
  sleep 0.05
done
touch go
wait $follow && rc=0 || rc=$?
out="$(cat "$WORK/follow.out" "$WORK/follow.err")"
expect_rc 0 "logs -f through a retry"
expect_out "first try fails" "logs -f shows try 1"
expect_out "second try succeeds" "logs -f follows into try 2 (the retry)"
expect_out "following try 2" "logs -f says it moved to the next try"
wait $follow_json && rc=0 || rc=$?
out=$(cat "$WORK/follow.json")
expect_rc 0 "logs -f -o json"
/usr/bin/python3 -c '
import json, sys
pieces = [json.loads(l) for l in open(sys.argv[1]) if l.strip()]
tries = sorted({p["try_number"] for p in pieces})
assert tries == [1, 2], tries
text = "".join(p["content"] for p in pieces)
assert "first try fails" in text and "second try succeeds" in text, text
assert all(p["dag_id"] == "flaky" and p["dag_run_id"] == "f1" and p["task_id"] == "t" for p in pieces)' \
  "$WORK/follow.json" && ok || fail "logs -f -o json: a JSON line per piece, through both tries"
wait_state flaky f1 t success
run "$DAGCTL" -o json logs flaky f1 t
expect_rc 0 "logs -o json"
/usr/bin/python3 -c '
import json, sys
d = json.loads(sys.argv[1])
assert d["try_number"] == 2 and d["done"] is True, d
assert "second try succeeds" in d["content"], d' "$out" && ok || fail "logs -o json prints one JSON document"
run "$DAGCTL" logs flaky f1 t --try 1 -o yaml
expect_rc 0 "logs -o yaml"
/usr/bin/python3 -c '
import sys, yaml
d = yaml.safe_load(sys.argv[1])
assert d["try_number"] == 1 and "first try fails" in d["content"], d' "$out" && ok || fail "logs --try 1 -o yaml"
run "$DAGCTL" logs flaky f1 t --try 1
expect_out "first try fails" "logs --try 1 as text"
expect_no_out "second try" "logs --try 1 is that try only"

# ---- backfill --wait: done/total runs ----
run timeout 120 "$DAGCTL" backfill daily --from 2026-01-01 --to 2026-01-05 --wait
expect_rc 0 "backfill --wait into a pipe"
expect_out "5/5 runs done, 5 success, 0 failed" "backfill --wait ends with the done/total summary"
grep -q $'[\r\033]' <<<"$out" && fail "no control characters into a pipe" || ok
lines=$(grep -c "runs done" <<<"$out")
[ "$lines" -ge 1 ] && [ "$lines" -le 6 ] && ok || fail "a line per finished run at most, not per task ($lines)"
pty_run 2 "$WORK/tty.out" timeout 120 "$DAGCTL" backfill daily --from 2026-02-01 --to 2026-02-04 --wait && rc=0 || rc=$?
out=$(cat -v "$WORK/tty.out")
expect_rc 0 "backfill --wait on a terminal"
expect_out "^M^[[Kbackfill" "on a terminal the progress line is updated in place"
expect_out "4/4 runs done, 4 success, 0 failed" "the final count on a terminal"
TERM=dumb pty_run 2 "$WORK/dumb.out" timeout 120 "$DAGCTL" backfill daily --from 2026-03-01 --to 2026-03-02 --wait &&
  rc=0 || rc=$?
out=$(cat -v "$WORK/dumb.out")
expect_rc 0 "backfill --wait on a dumb terminal"
expect_out "2/2 runs done" "the final count on a dumb terminal"
expect_no_out "^[" "no escape sequence for TERM=dumb"

# ---- OUTPUTS: cut to the width, whole in -o json ----
run "$DAGCTL" trigger outs --run-id o1 --wait
expect_rc 0 "trigger outs"
out=$(COLUMNS=100 LC_ALL=C "$DAGCTL" tasks outs o1 2>"$WORK/tasks.err") rc=$?
expect_rc 0 "tasks outs"
longest=$(awk '{ if (length($0) > n) n = length($0) } END { print n }' <<<"$out")
[ "$longest" -le 100 ] && ok || fail "tasks fits COLUMNS=100 (longest line $longest)"
expect_out '{"big":"xxxxxxxxxx' "the outputs' start is shown"
expect_out "..." "a cut value ends with an ellipsis"
out=$(cat "$WORK/tasks.err")
expect_out "dagctl -o json tasks outs o1" "the cut says how to see the whole values"
out=$(COLUMNS=100 LC_ALL=C.UTF-8 "$DAGCTL" tasks outs o1 2>/dev/null)
expect_out "…" "one ellipsis character in a UTF-8 locale"
longest=$(widest <<<"$out")
[ "$longest" -le 100 ] && ok || fail "UTF-8: tasks fits COLUMNS=100 (longest line $longest)"
run "$DAGCTL" -o json tasks outs o1
/usr/bin/python3 -c '
import json, sys
t = json.loads(sys.argv[1])["task_instances"][0]
assert t["outputs"]["big"] == "x" * 3000, len(t["outputs"]["big"])' "$out" && ok || fail "-o json keeps the whole output"
pty_run 1 "$WORK/tasks.tty" "$DAGCTL" tasks outs o1 && rc=0 || rc=$?
longest=$(tr -d '\r' <"$WORK/tasks.tty" | sed 's/\x1b\[[0-9;]*m//g' | widest)
[ "$longest" -le 80 ] && ok || fail "on a terminal of 80 columns, tasks fits it (longest line $longest)"

# ---- colour: a terminal gets it, NO_COLOR and TERM=dumb turn it off ----
TERM=xterm pty_run 1 "$WORK/c.out" "$DAGCTL" runs plain && rc=0 || rc=$?
grep -q $'\033\[32m' "$WORK/c.out" && ok || { out=$(cat -v "$WORK/c.out"); fail "colour on a terminal"; }
NO_COLOR= TERM=xterm pty_run 1 "$WORK/c.out" "$DAGCTL" runs plain && rc=0 || rc=$?
grep -q $'\033\[32m' "$WORK/c.out" && ok || { out=$(cat -v "$WORK/c.out"); fail "an empty NO_COLOR keeps colour"; }
NO_COLOR=1 TERM=xterm pty_run 1 "$WORK/c.out" "$DAGCTL" runs plain && rc=0 || rc=$?
out=$(cat -v "$WORK/c.out")
expect_out "success" "runs under NO_COLOR"
grep -q $'\033' "$WORK/c.out" && fail "NO_COLOR=1 turns colour off" || ok
TERM=dumb pty_run 1 "$WORK/c.out" "$DAGCTL" runs plain && rc=0 || rc=$?
out=$(cat -v "$WORK/c.out")
expect_out "success" "runs under TERM=dumb"
grep -q $'\033' "$WORK/c.out" && fail "TERM=dumb turns colour off" || ok
"$DAGCTL" runs plain | grep -q $'\033' && fail "no colour into a pipe" || ok

# ---- completion: DAG ids from the running dagd ----
ids=$(PATH="$DAGD_BUILD_DIR:$PATH" DAGD_DAGS_FOLDER=/nonexistent bash --norc --noprofile -c '
  source <(dagctl completion bash)
  COMP_WORDS=(dagctl trigger ""); COMP_CWORD=2
  _dagctl dagctl "" trigger
  printf "%s\n" "${COMPREPLY[@]}" | sort | tr "\n" " "')
[ "$ids" = "daily flaky outs plain " ] && ok || { out=$ids; fail "completion offers the running dagd's DAG ids"; }

finish
