-- DAGs for tests/e2e/test_operators.sh: http, branch, short_circuit, lua
-- and sensor operators against a local HTTP server the test starts.
local dagd = require "dagd"

-- http: a templated JSON body and a secret-looking header; two response
-- fields reach the next task's argv through outputs.
local h = dagd.dag { id = "http_chain", params = { model = "fraud" } }
local call = h:http { id = "call", url = "{{ conf.base }}/score", method = "POST",
  headers = { Authorization = "Bearer {{ conf.token }}" },
  json = { ds = "{{ ds }}", model = "{{ params.model }}", rows = 3 },
  expect_status = 200, timeout = "10s",
  outputs_from = { score = "/result/score", label = "/result/labels/1" } }
local use = h:shell { id = "use", cmd = { "/bin/sh", "-c", 'echo "$0 $1" > used.txt',
  "{{ outputs.call.score }}", "{{ outputs.call.label }}" } }
h:chain(call, use)

-- http: 503 twice, then 200.
local r = dagd.dag { id = "http_retry" }
r:http { id = "flaky", url = "{{ conf.base }}/flaky", retries_on_5xx = 3, outputs_from = { ok = "/ok" } }

-- branch: the function picks one path; the join still runs.
local b = dagd.dag { id = "branching" }
local choose = b:branch { id = "choose", fn = function(c) return c.conf.path or "path_a" end }
local pa = b:shell { id = "path_a", cmd = "true" }
local pb = b:shell { id = "path_b", cmd = "true" }
local join = b:shell { id = "join", cmd = "true", trigger_rule = "none_failed_min_one_success" }
b:chain(choose, { pa, pb }, join)

-- short_circuit: false skips everything downstream.
local s = dagd.dag { id = "shorty" }
local check = s:short_circuit { id = "check", fn = function(c) return c.conf.go == true end }
local after = s:shell { id = "after", cmd = "true" }
local later = s:shell { id = "later", cmd = "true" }
s:chain(check, after, later)

-- lua: a function of the context returns outputs used downstream.
local l = dagd.dag { id = "luaop", params = { k = 21 } }
local compute = l:lua { id = "compute", fn = function(c)
  return { rows = c.params.k * 2, day = "d" .. c.ds, tags = { "a", "b" } }
end }
local report = l:shell { id = "report", cmd = { "/bin/sh", "-c", 'echo "$0 $1" > rows.txt',
  "{{ outputs.compute.rows }}", "{{ outputs.compute.tags }}" } }
l:chain(compute, report)

-- sensor in reschedule mode: it pokes first (higher priority), frees the
-- only worker slot, and `other` checks the sensor's log to prove it ran
-- while the sensor waited.
local w = dagd.dag { id = "waiting" }
w:sensor { id = "wait_file", poke = "file", path = "flag.txt", mode = "reschedule", interval = "1s",
  timeout = "60s", priority_weight = 10 }
w:shell { id = "other", priority_weight = 1,
  cmd = 'grep -q "worker slot released" "$OPS_LOGS/waiting/$DAGD_RUN_ID/wait_file/1.log"' }

-- sensor with soft_fail: times out and is skipped, and so is what follows.
local f = dagd.dag { id = "soft" }
local never = f:sensor { id = "never", poke = "file", path = "never.txt", interval = "1s", timeout = "1s",
  soft_fail = true }
local next_ = f:shell { id = "next", cmd = "true" }
f:chain(never, next_)

-- sensor on another DAG: a manual run watches the latest run of `up`, and
-- its task `t`, read-only from the state store.
local up = dagd.dag { id = "up" }
up:shell { id = "t", cmd = "true" }
local down = dagd.dag { id = "down" }
down:sensor { id = "watch", poke = "dag", dag_id = "up", task_id = "t", mode = "reschedule", interval = "1s",
  timeout = "60s" }
