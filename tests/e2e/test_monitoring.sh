#!/usr/bin/env bash
# The monitoring kit in contrib/monitoring against the real tools and a
# real dagd: promtool checks the scrape config and the rules and runs the
# rules' unit tests, amtool checks the Alertmanager config; a real
# Prometheus scrapes dagd with the kit's config (a read token), loads the
# rules and evaluates every one of them and every query of the Grafana
# dashboard without error, and those name only metrics dagd exports (each
# documented in docs/api.md); a real Alertmanager with the kit's config
# fires dagd's webhook with its bearer token and starts the retraining run.
# SPDX-License-Identifier: MIT
. "$(dirname "$0")/lib.sh"
rc=0 out=

KIT="$DAGD_SOURCE_DIR/contrib/monitoring"
PY=/usr/bin/python3
for tool in promtool amtool prometheus prometheus-alertmanager; do
  command -v $tool >/dev/null || { echo "$tool is not installed (scripts/dev deps installs it)"; exit 1; }
done
free_port() { $PY -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
poll() { # DESC SECONDS CMD...: polls CMD with a deadline
  local desc=$1 deadline=$((SECONDS + $2))
  shift 2
  until "$@"; do
    [ $SECONDS -lt $deadline ] || { echo "timed out waiting for: $desc"; return 1; }
    sleep 0.2
  done
}

# --- the files, as shipped ---
run promtool check config --syntax-only "$KIT/prometheus.yml"
expect_rc 0 "promtool check config --syntax-only prometheus.yml"
run promtool check rules --lint=all "$KIT/dagd-rules.yml" "$KIT/model-drift-rules.yml"
expect_rc 0 "promtool check rules"
expect_out "SUCCESS: 5 rules found" "the dagd rules load"
run sh -c "cd '$KIT/tests' && promtool test rules dagd-rules.test.yml"
expect_rc 0 "promtool test rules (DAG late, run failed, down, loop lag)"
run amtool check-config "$KIT/alertmanager.yml"
expect_rc 0 "amtool check-config alertmanager.yml"
expect_out "2 receivers" "alertmanager.yml: operators and dagd-retrain"
run $PY -c 'import json,sys; d=json.load(open(sys.argv[1])); print(d["title"], len(d["panels"]))' "$KIT/grafana-dashboard.json"
expect_rc 0 "the Grafana dashboard is JSON"

# --- a dagd with tokens, a DAG that succeeds, one that fails, one that retrains ---
mkdir -p "$WORK/dags"
cat >"$WORK/dags/kit.lua" <<'LUA'
local dagd = require "dagd"
local ok = dagd.dag { id = "nightly", schedule = "@daily", start_date = "2026-01-01" }
ok:shell { id = "t", cmd = { "true" } }
local bad = dagd.dag { id = "broken_etl" }
bad:shell { id = "t", cmd = { "false" }, retries = 0 }
local r = dagd.dag { id = "retrain", on_event = { "drift_detected" } }
r:shell { id = "train", cmd = { "echo", "retraining {{ conf.labels.model }}" } }
LUA
echo read-secret-1 >"$WORK/read.token"
echo trigger-secret-1 >"$WORK/trigger.token"
cat >"$WORK/dagd.lua" <<'LUA'
api_tokens = { "admin-secret-1", { token = "read-secret-1", scope = "read" },
               { token = "trigger-secret-1", scope = "trigger" } }
pools = { gpu = 2 }
LUA
dport=$(free_port)
export DAGD_URL="http://127.0.0.1:$dport" DAGD_TOKEN=admin-secret-1
"$DAGD" --config "$WORK/dagd.lua" --listen "127.0.0.1:$dport" --dags-folder "$WORK/dags" --state "$WORK/dagd.db" \
  --logs-folder "$WORK/logs" >"$WORK/dagd.log" 2>&1 &
dpid=$!
pids="$dpid"
trap 'kill $pids 2>/dev/null; wait 2>/dev/null; rm -rf "$WORK"' EXIT
poll "dagd to answer" 10 curl -sf "$DAGD_URL/health" -o /dev/null || { cat "$WORK/dagd.log"; exit 1; }
run "$DAGCTL" trigger broken_etl --wait
expect_rc 1 "the failing DAG's run fails"
nightly_done() { "$DAGCTL" runs nightly -o json | grep -q '"state": *"success"'; }
poll "nightly's run to succeed" 20 nightly_done || fail "nightly's run did not succeed"

curl -s -H "Authorization: Bearer read-secret-1" "$DAGD_URL/metrics" >"$WORK/metrics.txt"
run promtool check metrics <"$WORK/metrics.txt"
expect_rc 0 "promtool check metrics on dagd's /metrics"
out=$(cat "$WORK/metrics.txt")
expect_out "dagd_build_info{version=\"$("$DAGD" --version | cut -d' ' -f2)\"" "build info with dagd's version"
expect_out 'dagd_runs_finished_total{dag_id="broken_etl",state="failed"} 1' "the failed run is counted"
expect_out 'dagd_dag_run_duration_seconds_count{dag_id="broken_etl",state="failed"} 1' "run duration by final state"
expect_out 'dagd_pool_slots{pool="gpu"} 2' "configured pool slots"
expect_out 'dagd_pool_slots_used{pool="gpu"} 0' "a configured pool with nothing running"
# The process figures are this dagd's.
$PY - "$WORK/metrics.txt" "$dpid" <<'PY' && ok || { out="see above"; fail "process_* figures"; }
import os, sys, time
m = {}
for line in open(sys.argv[1]):
    if line.startswith("process_"):
        k, v = line.split()
        m[k] = float(v)
pid = sys.argv[2]
fds = len(os.listdir(f"/proc/{pid}/fd"))
start = os.stat(f"/proc/{pid}").st_mtime
checks = [
    ("process_cpu_seconds_total" in m and m["process_cpu_seconds_total"] >= 0, "cpu"),
    (m.get("process_resident_memory_bytes", 0) > 1 << 20, "rss over 1 MiB"),
    (m.get("process_open_fds", 0) > 3 and abs(m["process_open_fds"] - fds) <= 2, f"open fds {m.get('process_open_fds')} vs {fds}"),
    (m.get("process_max_fds", 0) >= m.get("process_open_fds", 1), "max fds"),
    (abs(m.get("process_start_time_seconds", 0) - start) < 5 and m["process_start_time_seconds"] <= time.time(),
     f"start time {m.get('process_start_time_seconds')} vs {start}"),
]
bad = [what for good, what in checks if not good]
print("process figures wrong:", bad) if bad else None
sys.exit(1 if bad else 0)
PY
# Every metric dagd exports is documented.
for name in $(sed -n 's/^# TYPE \([a-z_]*\) .*/\1/p' "$WORK/metrics.txt"); do
  grep -qF "\`$name\`" "$DAGD_SOURCE_DIR/docs/api.md" && ok || { out=$name; fail "docs/api.md lists metric $name"; }
done

# --- a real Prometheus with the kit's scrape config and rules ---
pport=$(free_port)
aport=$(free_port)
mkdir -p "$WORK/prom"
cp "$KIT/dagd-rules.yml" "$WORK/prom/"
sed -e "s|127.0.0.1:8787|127.0.0.1:$dport|" -e "s|127.0.0.1:9093|127.0.0.1:$aport|" \
  -e "s|/etc/prometheus/dagd-read.token|$WORK/read.token|" \
  -e 's|scrape_interval: 15s|scrape_interval: 1s|' -e 's|evaluation_interval: 15s|evaluation_interval: 1s|' \
  "$KIT/prometheus.yml" >"$WORK/prom/prometheus.yml"
run promtool check config "$WORK/prom/prometheus.yml"
expect_rc 0 "promtool check config (with its token file and rules in place)"
prometheus --config.file="$WORK/prom/prometheus.yml" --storage.tsdb.path="$WORK/prom/data" \
  --web.listen-address="127.0.0.1:$pport" >"$WORK/prom.log" 2>&1 &
pids="$pids $!"
PROM="http://127.0.0.1:$pport"
scraped() { curl -sf "$PROM/api/v1/query" --data-urlencode 'query=up{job="dagd"} == 1' | grep -q '"value"'; }
poll "Prometheus to scrape dagd with the read token" 60 scraped && ok ||
  { out=$(tail -5 "$WORK/prom.log"); fail "Prometheus scrapes dagd"; }
rules_ok() { # every rule evaluated, none unhealthy
  curl -sf "$PROM/api/v1/rules" | $PY -c '
import json, sys
rules = [r for g in json.load(sys.stdin)["data"]["groups"] for r in g["rules"]]
sys.exit(0 if len(rules) == 5 and all(r.get("health") == "ok" for r in rules) else 1)'
}
poll "the rules to be evaluated" 30 rules_ok && ok || { out=$(curl -s "$PROM/api/v1/rules"); fail "rules healthy"; }

# Every query of the dashboard and every rule runs, and names only metrics
# dagd exports (or Prometheus' own up).
curl -sf "$PROM/api/v1/rules" >"$WORK/rules.json"
run $PY - "$KIT/grafana-dashboard.json" "$WORK/rules.json" "$WORK/metrics.txt" "$PROM" <<'PY'
import json, re, sys, urllib.parse, urllib.request
dash = json.load(open(sys.argv[1]))
rules = [r for g in json.load(open(sys.argv[2]))["data"]["groups"] for r in g["rules"]]
exported = set()
for line in open(sys.argv[3]):
    if line and not line.startswith("#"):
        exported.add(re.match(r"[a-zA-Z_:][a-zA-Z0-9_:]*", line).group(0))
exported.add("up")
queries = []
def walk(panels):
    for p in panels:
        for t in p.get("targets", []):
            queries.append((f"panel {p['title']!r}", t["expr"]))
        walk(p.get("panels", []))
walk(dash["panels"])
for v in dash["templating"]["list"]:
    if v["type"] == "query":
        queries.append((f"variable {v['name']}", v["definition"]))
queries += [(f"rule {r['name']}", r["query"]) for r in rules]
bad = []
for where, q in queries:
    names = set(re.findall(r"\b(?:dagd|process)_[a-z0-9_]+|\bup\b", q))
    if not names:
        bad.append(f"{where}: names no dagd metric: {q}")
    for n in names - exported:
        bad.append(f"{where}: {n} is not exported by dagd")
    if q.startswith("label_values("):
        continue
    expr = q.replace("$__rate_interval", "1m").replace("$dag_id", ".*")
    url = sys.argv[4] + "/api/v1/query?" + urllib.parse.urlencode({"query": expr})
    try:
        body = json.load(urllib.request.urlopen(url))
        if body.get("status") != "success":
            bad.append(f"{where}: {body}")
    except Exception as e:
        bad.append(f"{where}: Prometheus refused {expr!r}: {e}")
print(f"{len(queries)} queries checked")
for b in bad:
    print(b)
sys.exit(1 if bad else 0)
PY
expect_rc 0 "dashboard and rule queries run and name only exported metrics"
# With the data in, the lateness query answers for the scheduled DAG.
late() { curl -sf "$PROM/api/v1/query" --data-urlencode 'query=time() - dagd_dag_next_run_after_timestamp_seconds' |
  grep -q '"dag_id":"nightly"'; }
poll "the lateness query to see nightly" 30 late && ok || fail "lateness of nightly"
run curl -sf "$PROM/api/v1/query" --data-urlencode 'query=dagd_dag_next_run_after_timestamp_seconds{dag_id="retrain"}'
expect_out '"result":[]' "no next run for an event-only DAG"

# --- a real Alertmanager with the kit's config fires the retraining webhook ---
mkdir -p "$WORK/am"
sed -e "s|127.0.0.1:8787|127.0.0.1:$dport|" -e "s|/etc/alertmanager/dagd-trigger.token|$WORK/trigger.token|" \
  -e 's|group_wait: 10s|group_wait: 0s|' "$KIT/alertmanager.yml" >"$WORK/am/am.yml"
run amtool check-config "$WORK/am/am.yml"
expect_rc 0 "amtool check-config (test copy)"
prometheus-alertmanager --config.file="$WORK/am/am.yml" --storage.path="$WORK/am/data" \
  --web.listen-address="127.0.0.1:$aport" --cluster.listen-address= >"$WORK/am.log" 2>&1 &
pids="$pids $!"
poll "alertmanager to be ready" 30 curl -sf "http://127.0.0.1:$aport/-/ready" -o /dev/null || { tail -5 "$WORK/am.log"; exit 1; }
now=$(date -u +%Y-%m-%dT%H:%M:%SZ)
later=$(date -u -d '+1 hour' +%Y-%m-%dT%H:%M:%SZ)
run curl -s -o /dev/null -w '%{http_code}' -X POST -H 'Content-Type: application/json' \
  "http://127.0.0.1:$aport/api/v2/alerts" \
  --data "[{\"labels\": {\"alertname\": \"FeatureDrift\", \"event\": \"drift_detected\", \"model\": \"fraud\"},
            \"annotations\": {\"summary\": \"PSI 0.31\"}, \"startsAt\": \"$now\", \"endsAt\": \"$later\"}]"
expect_out 200 "the drift alert is accepted by alertmanager"
retrained() { "$DAGCTL" runs retrain -o json | grep -q '"run_type": *"event"'; }
poll "the retraining run" 60 retrained && ok || { out=$(tail -5 "$WORK/am.log"; tail -5 "$WORK/dagd.log"); fail "the webhook (with its bearer token) started retrain"; }
run "$DAGCTL" runs retrain -o json
expect_out '"model":"fraud"' "the run's conf carries the alert's labels"

finish
