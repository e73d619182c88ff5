-- DAGs for the web UI's browser test. Tasks that wait for a file let the
-- test hold a task in "running" and release it, so nothing depends on timing.
local dagd = require "dagd"

-- A small ML pipeline: train waits for the file "release" (at most 30 s),
-- evaluate writes outputs. Scheduled daily but starting in the future, so
-- only the test's runs exist.
local q = dagd.dag { id = "quick", schedule = "30 6 * * 1-5", start_date = "2030-01-01",
                     tags = { "ml", "demo" }, description = "extract, train, evaluate" }
local extract = q:shell { id = "extract", cmd = "echo extracting for lr={{ conf.lr | default('0.1') }}" }
local train = q:shell { id = "train",
  cmd = "for i in $(seq 300); do [ -e release ] && break; echo epoch $i; sleep 0.1; done; echo trained" }
local features = q:shell { id = "features", cmd = "echo features" }
local evaluate = q:shell { id = "evaluate", cmd = "echo f1=0.93 > \"$DAGD_OUTPUT\"; echo evaluated" }
q:chain(extract, train, evaluate)
q:chain(extract, features, evaluate)

-- Fails until the file "fixed" exists; "report" runs after it.
local f = dagd.dag { id = "failing", tags = { "ops" } }
local load = f:shell { id = "load",
  cmd = "if [ -e fixed ]; then echo loaded; else echo 'ERROR: table features.daily is missing' >&2; exit 3; fi" }
local report = f:shell { id = "report", cmd = "echo report" }
f:chain(load, report)

-- A quality gate over evaluate's outputs.
local m = dagd.dag { id = "model", tags = { "ml" } }
local ev = m:shell { id = "evaluate",
  cmd = "echo f1={{ conf.f1 | default('0.93') }} > \"$DAGD_OUTPUT\"; echo latency_ms=42 >> \"$DAGD_OUTPUT\"" }
local gate = m:gate { id = "gate", from = "evaluate", baseline = "last_success",
  checks = { f1 = { ">= 0.9", ">= baseline - 0.01" }, latency_ms = "< 100" } }
local deploy = m:shell { id = "deploy", cmd = "echo deployed" }
m:chain(ev, gate, deploy)

-- Started by events.
local r = dagd.dag { id = "retrain", on_event = { "drift_detected" }, tags = { "ml" } }
r:shell { id = "go", cmd = "echo {{ conf.event }}" }
