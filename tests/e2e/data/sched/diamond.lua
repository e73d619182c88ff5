-- A diamond on a 2-second schedule: a -> {b, c} -> d, where b fails on its
-- first try and succeeds on the retry, a's output reaches d's argv, and a
-- timed-out task is followed by an all_done cleanup.
local dagd = require "dagd"

local d = dagd.dag {
  id = "diamond",
  schedule = "every 2s",
  start_date = "2026-01-01",
  max_active_runs = 1,
  params = { label = "p1" },
}

local work = os.getenv("SCHED_WORK")

local a = d:shell { id = "a", cmd = "echo a >> order; echo path=" .. work .. "/data-{{ ds }}.csv > \"$DAGD_OUTPUT\"" }
local b = d:shell { id = "b", retries = 1, retry_delay = "1s",
                    cmd = "echo b$DAGD_TRY_NUMBER >> order; [ -e b-failed-once ] || { touch b-failed-once; exit 1; }" }
local c = d:shell { id = "c", cmd = { "sh", "-c", "echo c >> order" } }
local dd = d:shell { id = "d", cmd = { "sh", "-c", "echo d >> order; echo got $1 {{ params.label }}", "sh",
                                       "{{ outputs.a.path }}" } }
local slow = d:shell { id = "slow", execution_timeout = "1s",
                       cmd = "sleep 3600 & echo $! >> slow-child.pid; wait" }
local cleanup = d:shell { id = "cleanup", trigger_rule = "all_done", cmd = "echo cleanup >> order" }

d:chain(a, { b, c }, dd)
d:chain(a, slow, cleanup)
