#!/usr/bin/env bash
# Liveness of the daemon, end to end, each case one DAG alone in its own
# dagd (own temp dir, state, logs, free loopback port, default settings):
#  1. runs keep coming when a run outlasts its interval (every 2s, a 3 s
#     task): (a) catchup=false, max_active_runs=1; (b) catchup=true;
#     (c) max_active_runs=2;
#  2. SIGTERM while a try runs drains and exits: dagd exits on its own once
#     the try ends, idles meanwhile (little CPU), leaves no zombie child,
#     records the try's end and logs a clean stop;
#  3. manual triggers in the same second are distinct runs (2 back to
#     back, then 40 at once); a client-given run id that exists gets 409.
# Every case runs, and every failure is reported at the end.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"

# Default configuration: no DAGD_* setting from the caller's environment,
# and each daemon runs in its own folder (no ./dagd.lua picked up).
for v in $(compgen -e); do
  case $v in DAGD_BUILD_DIR | DAGD_SOURCE_DIR) ;; DAGD_*) unset "$v" ;; esac
done

TICK=$(getconf CLK_TCK)
PY=/usr/bin/python3
[ -x "$PY" ] || PY=python3
started=() # every dagd this script started
cleanup() {
  local p f
  for p in "${started[@]}"; do kill -9 "$p" 2>/dev/null; done
  # Tries those daemons left behind: the shims and tasks named in the
  # <try>.pid files, when they still belong to this test (pid reuse).
  while IFS= read -r f; do
    while read -r _ p; do
      [ -n "$p" ] && [ -d "/proc/$p" ] || continue
      if grep -qF "$WORK" "/proc/$p/cmdline" 2>/dev/null || [[ $(readlink "/proc/$p/cwd" 2>/dev/null) == "$WORK"/* ]]; then
        kill -9 "$p" 2>/dev/null
      fi
    done <"$f"
  done < <(find "$WORK" -name '*.pid' 2>/dev/null)
  wait 2>/dev/null
  rm -rf "$WORK"
}
trap cleanup EXIT
trap 'exit 130' INT TERM

now_ms() { local t=${EPOCHREALTIME//[.,]/}; echo $((t / 1000)); }

declare -A PID URL LOG
nstarts=0
# start_dagd NAME: dagd on $WORK/NAME/{dags,dagd.db,logs}, listening on a
# free loopback port; sets PID[NAME], URL[NAME], LOG[NAME] (one log per start).
start_dagd() {
  local name=$1 dir=$WORK/$1 deadline=$((SECONDS + 10))
  nstarts=$((nstarts + 1))
  LOG[$name]=$dir/dagd.$nstarts.log
  (cd "$dir" && exec "$DAGD" --listen 127.0.0.1:0 --dags-folder "$dir/dags" --state "$dir/dagd.db" \
    --logs-folder "$dir/logs") >"${LOG[$name]}" 2>&1 &
  PID[$name]=$!
  unset "STATUS[$name]"
  started+=($!)
  until grep -q "listening on" "${LOG[$name]}"; do
    if [ $SECONDS -ge $deadline ] || ! kill -0 "${PID[$name]}" 2>/dev/null; then
      rc=1 out=$(tail -20 "${LOG[$name]}")
      fail "$name: dagd should start and listen within 10 s"
      return 1
    fi
    sleep 0.02
  done
  URL[$name]=http://127.0.0.1:$(sed -n 's/.*listening on .*(port \([0-9]*\)).*/\1/p' "${LOG[$name]}" | tail -1)
}
# stop_dagd NAME...: SIGTERM, up to 10 s to exit, then SIGKILL (not an
# assertion: case 2 is the one about stopping).
stop_dagd() {
  local n deadline=$((SECONDS + 10))
  for n in "$@"; do kill -TERM "${PID[$n]}" 2>/dev/null; done
  for n in "$@"; do
    while kill -0 "${PID[$n]}" 2>/dev/null && [ $SECONDS -lt $deadline ]; do sleep 0.05; done
    kill -0 "${PID[$n]}" 2>/dev/null && { echo "note: $n: dagd still running 10 s after SIGTERM, killed"; kill -9 "${PID[$n]}"; }
    wait "${PID[$n]}" 2>/dev/null
  done
}
# dag_file NAME LUA_FIELDS CMD: the DAG "g", one shell task "t".
dag_file() {
  mkdir -p "$WORK/$1/dags"
  cat >"$WORK/$1/dags/g.lua" <<LUA
local dagd = require "dagd"
local d = dagd.dag { id = "g", $2 }
d:shell { id = "t", cmd = $3 }
LUA
}
# api NAME PATH: GET a JSON body.
api() { curl -sf --max-time 5 "${URL[$1]}$2"; }
# japi NAME PATH CODE: runs the Python CODE on the JSON body (as j); 1,
# quietly, when dagd does not answer.
japi() {
  local body
  body=$(api "$1" "$2") || return 1
  "$PY" -c "import json, sys
j = json.load(sys.stdin)
$3" <<<"$body"
}
declare -A STATUS
# dagd_status NAME: sets $dstat to "running" or to how that dagd ended.
dagd_status() {
  local p=${PID[$1]} st
  if [ -z "${STATUS[$1]:-}" ]; then
    if kill -0 "$p" 2>/dev/null && [ "$(awk '{print $3}' "/proc/$p/stat" 2>/dev/null)" != Z ]; then
      dstat=running
      return
    fi
    wait "$p" 2>/dev/null && st=0 || st=$?
    STATUS[$1]=$st
  fi
  st=${STATUS[$1]}
  if [ "$st" -gt 128 ]; then dstat="died of signal $((st - 128)) (SIG$(kill -l $((st - 128))))"; else dstat="exited with status $st"; fi
}
# expect_alive NAME DESC: that dagd is still running.
expect_alive() {
  dagd_status "$1"
  rc=0 out=$(tail -5 "${LOG[$1]}")
  [ "$dstat" = running ] && ok || fail "$2: want dagd still running; it $dstat"
}
# runs NAME [STATE]: the runs of g, newest first, as lines "run_id run_type state start end".
runs() {
  japi "$1" "/api/v1/dags/g/dagRuns?limit=1000${2:+&state=$2}" '
for r in j["dag_runs"]: print(r["dag_run_id"], r["run_type"], r["state"], r["start_date"], r["end_date"])'
}
count_runs() { runs "$@" | wc -l; }
at_least() { [ "$(count_runs "$1" "$3")" -ge "$2" ]; } # NAME N [STATE]
# wait_for SECS CMD...: polls CMD until it succeeds; 1 when SECS pass first.
wait_for() {
  local deadline=$((SECONDS + $1))
  shift
  until "$@" 2>/dev/null; do
    [ $SECONDS -lt $deadline ] || return 1
    sleep 0.1
  done
}
# report NAME: runs and the scheduler's log, as failure output.
report() { dagd_status "$1"; rc=${rc:-0} out="dagd: $dstat
runs of g (run_id type state start end):
$(runs "$1")
log ${LOG[$1]}:
$(grep -v 'DEVELOPMENT MODE' "${LOG[$1]}" | tail -15)"; }

# ---------------------------------------------------------------- case 1
# A run outlasts its 2 s interval; once it ends, the next run must come
# (the latest interval without catchup, the next missed one with it).
echo "== case 1: runs keep coming when a run outlasts its interval"
past=$(date -u -d '-1 hour' +%Y-%m-%dT%H:%M:%SZ)
recent=$(date -u -d '-10 seconds' +%Y-%m-%dT%H:%M:%SZ)
dag_file c1a "schedule = \"every 2s\", start_date = \"$past\", catchup = false, max_active_runs = 1" '{ "sleep", "3" }'
dag_file c1b "schedule = \"every 2s\", start_date = \"$recent\", catchup = true, max_active_runs = 1" '{ "sleep", "3" }'
# Two slots and a backlog (catchup from 10 s ago, falling further behind):
# both slots must stay busy. (Without catchup, 3 s runs every 2 s never
# fill two slots at a due time, and the end of one run wakes the plan the
# other left, so there is nothing to see.)
dag_file c1c "schedule = \"every 2s\", start_date = \"$recent\", catchup = true, max_active_runs = 2" '{ "sleep", "3" }'
declare -A want=([c1a]=3 [c1b]=3 [c1c]=4)
declare -A what=([c1a]="catchup=false, max_active_runs=1" [c1b]="catchup=true, max_active_runs=1"
                 [c1c]="catchup=true, max_active_runs=2")
# overlap NAME: two runs after the first two (oldest first) ran at once.
overlap() {
  japi "$1" "/api/v1/dags/g/dagRuns?limit=1000" '
from datetime import datetime
t = lambda s: datetime.fromisoformat(s.replace("Z", "+00:00")).timestamp() if s else float("inf")
rs = sorted(j["dag_runs"], key=lambda r: r["logical_date"])[2:]
rs = [(t(r["start_date"]), t(r["end_date"])) for r in rs if r["start_date"]]
sys.exit(0 if any(a[0] < b[1] and b[0] < a[1] for i, a in enumerate(rs) for b in rs[i + 1:]) else 1)'
}
c1_ok() { at_least "$1" "${want[$1]}" success && { [ "$1" != c1c ] || overlap "$1"; }; }
c1=()
for n in c1a c1b c1c; do start_dagd $n && c1+=("$n"); done # three daemons side by side
c1_all() { local n; for n in "${c1[@]}"; do c1_ok $n || return 1; done; }
wait_for 30 c1_all
for n in "${c1[@]}"; do
  got=$(count_runs $n success)
  [ "$got" -ge "${want[$n]}" ] && ok ||
    { report $n; fail "case 1 ($n, ${what[$n]}): want at least ${want[$n]} successful runs within 30 s, got $got"; }
done
if [[ " ${c1[*]} " == *" c1b "* ]]; then
  # Catchup from 10 s ago must not create a flood of runs (some 20
  # intervals exist by now).
  got=$(count_runs c1b)
  [ "$got" -le 25 ] && ok || { report c1b; fail "case 1 (c1b): catchup from 10 s ago: want at most 25 runs, got $got"; }
fi
if [[ " ${c1[*]} " == *" c1c "* ]]; then
  overlap c1c && ok ||
    { report c1c; fail "case 1 (c1c, ${what[c1c]}): with a backlog want both run slots busy again after the first two runs (two later runs running at once), within 30 s; they ran one at a time"; }
fi
for n in "${c1[@]}"; do expect_alive $n "case 1 ($n): at the end of the case"; done
stop_dagd "${c1[@]}"

# ---------------------------------------------------------------- case 2
echo "== case 2: SIGTERM while a try runs drains and exits"
# The schedule's intervals start at E + 2k. dagd is started just after
# such a boundary, so the next run is due about 2 s later: while the 3 s
# try runs and the daemon drains. (Waiting for a clock phase, not a state.)
E=$(($(date +%s) - 600))
dag_file c2 "schedule = \"every 2s\", start_date = \"$(date -u -d @$E +%Y-%m-%dT%H:%M:%SZ)\", catchup = false, max_active_runs = 1" '{ "sleep", "3" }'
while (( ($(now_ms) - E * 1000) % 2000 > 200 )); do sleep 0.01; done
cpu_ticks() { # PID: utime+stime in clock ticks
  local s rest a
  s=$(<"/proc/$1/stat") 2>/dev/null || return 1
  rest=${s##*) }
  read -ra a <<<"$rest"
  echo $((a[11] + a[12]))
}
running_run() { # prints the run id whose task t is running
  local id
  for id in $(runs c2 | awk '{print $1}'); do
    japi c2 "/api/v1/dags/g/dagRuns/$id/taskInstances" \
      'sys.exit(0 if any(t["task_id"] == "t" and t["state"] == "running" for t in j["task_instances"]) else 1)' &&
      { echo "$id"; return 0; }
  done
  return 1
}
if start_dagd c2; then
  pid=${PID[c2]} run_id=""
  deadline=$((SECONDS + 10))
  until run_id=$(running_run 2>/dev/null); do [ $SECONDS -lt $deadline ] || break; sleep 0.05; done
  if [ -z "$run_id" ]; then
    report c2
    fail "case 2: want a try of t running within 10 s"
  else
    echo "try running in $run_id; SIGTERM to dagd $pid"
    cpu0=$(cpu_ticks "$pid") t0=$(now_ms)
    kill -TERM "$pid"
    cpu1=$cpu0 zombie="" exited=0
    declare -A zseen=()
    while :; do
      if [ ! -e "/proc/$pid" ] || [ "$(awk '{print $3}' "/proc/$pid/stat" 2>/dev/null)" = Z ]; then exited=1; break; fi
      [ $(($(now_ms) - t0)) -lt 8000 ] || break
      c=$(cpu_ticks "$pid") && cpu1=$c
      # A zombie child is normal for an instant; one left for 1 s is not reaped.
      while read -r zp zs; do
        [[ $zs == Z* ]] || continue
        [ -n "${zseen[$zp]:-}" ] || zseen[$zp]=$(now_ms)
        [ $(($(now_ms) - zseen[$zp])) -lt 1000 ] || [ -n "$zombie" ] ||
          zombie="$(ps -o pid=,ppid=,stat=,etimes=,args= -p "$zp")"
      done < <(ps -o pid=,stat= --ppid "$pid" 2>/dev/null)
      sleep 0.05
    done
    waited=$(($(now_ms) - t0))
    if [ $exited = 1 ]; then
      dagd_status c2
      status=${STATUS[c2]}
      echo "dagd $dstat ${waited} ms after SIGTERM"
    else
      kill -9 "$pid"
      wait "$pid" 2>/dev/null
      status=137
    fi
    log1=${LOG[c2]}
    # (a) exits on its own within the try's 3 s and a 5 s margin.
    rc=$status out=$(tail -8 "$log1")
    [ $exited = 1 ] && ok ||
      fail "case 2a: want dagd to exit on its own within 8 s of SIGTERM (3 s try + 5 s margin); still running after ${waited} ms, killed with SIGKILL"
    # (b) idle while it waits.
    cpu_ms=$(((cpu1 - cpu0) * 1000 / TICK))
    out="utime+stime: $cpu0 ticks at SIGTERM, $cpu1 at the last sample, $TICK ticks/s"
    [ $cpu_ms -lt 500 ] && ok ||
      fail "case 2b: want dagd to use under 500 ms of CPU while it drains; it used ${cpu_ms} ms in ${waited} ms"
    # (c) the finished try's process reaped.
    out="$zombie"
    [ -z "$zombie" ] && ok || fail "case 2c: want no zombie child of dagd while it drains; one was left unreaped for over 1 s (below: pid ppid stat age-in-s args)"
    # (d) a clean stop, logged, with the try's end in the state file.
    rc=$status out=$(tail -4 "$log1")
    expect_rc 0 "case 2d: want dagd to exit with status 0 after the drain"
    expect_out "daemon: stopped" "case 2d: want the log to say the daemon stopped"
    expect_no_out "leaving" "case 2d: want no try left running at the stop"
    rc=0 out=$("$PY" - "$WORK/c2/dagd.db" "$run_id" <<'PY' 2>&1
import sqlite3, sys
db = sqlite3.connect("file:%s?mode=ro" % sys.argv[1], uri=True)
row = db.execute("SELECT t.state, t.try_number, t.exit_code, t.end_date FROM task_instance t"
                 " JOIN dag_run r ON r.id = t.run_pk WHERE r.dag_id = 'g' AND r.run_id = ? AND t.task_id = 't'",
                 (sys.argv[2],)).fetchone()
print("state, try_number, exit_code, end_date of t:", row)
assert row is not None and row[0] == "success" and row[1] == 1 and row[2] == 0 and row[3] is not None
print("recorded")
PY
)
    expect_out "recorded" "case 2d: want the state file, as the stopped dagd left it, to hold t as success, try 1, exit 0, ended"
    # (d) and a new daemon on the same state agrees (the DAG now has no
    # schedule, so that daemon starts nothing of its own).
    dag_file c2 "" '{ "sleep", "3" }'
    if start_dagd c2; then
      tis() { japi c2 "/api/v1/dags/g/dagRuns/$run_id/taskInstances" \
        'print(*[(t["state"], t["try_number"]) for t in j["task_instances"] if t["task_id"] == "t"])'; }
      deadline=$((SECONDS + 10))
      until [ "$(tis 2>/dev/null)" = "('success', 1)" ]; do [ $SECONDS -lt $deadline ] || break; sleep 0.1; done
      rc=0 out="t in $run_id after a restart: $(tis 2>&1)
$(tail -8 "${LOG[c2]}")"
      expect_out "('success', 1)" "case 2d: want a new dagd on the same state to show t as success with try_number 1"
      expect_alive c2 "case 2d: the new dagd at the end of the case"
      stop_dagd c2
    fi
  fi
fi

# ---------------------------------------------------------------- case 3
echo "== case 3: manual triggers in the same second are distinct runs"
dag_file c3 "" '{ "true" }'
if start_dagd c3; then
  trig() { "$DAGCTL" --server "${URL[c3]}" trigger g; }
  # Both triggers in the first half of one second.
  while [ $((10#$(date +%N) / 1000000)) -ge 500 ]; do sleep 0.01; done
  run trig
  expect_rc 0 "case 3: want the first of two back-to-back triggers to succeed"
  run trig
  expect_rc 0 "case 3: want the second of two back-to-back triggers (same second) to succeed"
  out=$(runs c3) rc=0
  n_manual=$(awk '$2 == "manual"' <<<"$out" | wc -l)
  n_ids=$(awk '$2 == "manual" {print $1}' <<<"$out" | sort -u | wc -l)
  [ "$n_manual" = 2 ] && [ "$n_ids" = 2 ] && ok ||
    fail "case 3: after two triggers want 2 manual runs with distinct run ids, got $n_manual runs, $n_ids ids"
  # 40 at once.
  bp=()
  for i in $(seq 1 40); do
    (trig >"$WORK/c3/burst.$i.out" 2>&1; echo $? >"$WORK/c3/burst.$i.rc") &
    bp+=($!)
  done
  wait "${bp[@]}"
  n_ok=$(cat "$WORK"/c3/burst.*.rc | grep -cx 0)
  rc=0 out=$(for i in $(seq 1 40); do [ "$(cat "$WORK/c3/burst.$i.rc")" = 0 ] || cat "$WORK/c3/burst.$i.out"; done | sort | uniq -c | head -10)
  [ "$n_ok" = 40 ] && ok || fail "case 3: want all 40 concurrent triggers to succeed, $n_ok did (below: the failures, counted)"
  out=$(runs c3) rc=0
  n_runs=$(wc -l <<<"$out")
  n_ids=$(awk '{print $1}' <<<"$out" | sort -u | wc -l)
  [ "$n_runs" = 42 ] && [ "$n_ids" = 42 ] && ok ||
    fail "case 3: after 2 + 40 triggers want 42 runs with distinct run ids, got $n_runs runs, $n_ids ids"
  # A client-given run id: once 2xx, then 409.
  mine() {
    curl -s -o "$WORK/c3/body" -w '%{http_code}' --max-time 5 -X POST -H 'Content-Type: application/json' \
      --data '{"dag_run_id": "mine"}' "${URL[c3]}/api/v1/dags/g/dagRuns"
  }
  code=$(mine) rc=0 out=$(cat "$WORK/c3/body" 2>/dev/null)
  [[ $code == 2?? ]] && ok || fail "case 3: want a trigger with dag_run_id \"mine\" to succeed (2xx), got HTTP $code"
  code=$(mine) out=$(cat "$WORK/c3/body" 2>/dev/null)
  [ "$code" = 409 ] && ok || fail "case 3: want a second trigger with dag_run_id \"mine\" to get HTTP 409, got HTTP $code"
  expect_alive c3 "case 3: at the end of the case"
  stop_dagd c3
fi

finish
