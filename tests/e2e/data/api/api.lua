-- DAGs for the API end-to-end test.
local dagd = require "dagd"

-- Conf reaches a template; b runs after a.
local c = dagd.dag { id = "confd" }
local a = c:shell { id = "a", cmd = "echo x={{ conf.x }} >> confd.out" }
local b = c:shell { id = "b", cmd = "echo b >> confd.out" }
c:chain(a, b)

-- Backfill target: never scheduled by itself (start_date in the future),
-- two runs at once at most; each try records when it ran; the run of
-- 2026-01-03 fails until fix-0103 exists.
local bf = dagd.dag { id = "bf", schedule = "@daily", start_date = "2030-01-01", max_active_runs = 2 }
bf:shell { id = "work", cmd = "echo start {{ ds }} $(date +%s.%N) >> bf.trace; sleep 0.3; " ..
                              "echo end {{ ds }} $(date +%s.%N) >> bf.trace; " ..
                              "[ {{ ds }} != 2026-01-03 ] || [ -e fix-0103 ]" }

-- A task whose log grows while it runs.
local l = dagd.dag { id = "slowlog" }
l:shell { id = "talk", cmd = "for i in 1 2 3 4; do echo line$i; sleep 0.25; done" }

-- Fails: --wait must exit 1.
local f = dagd.dag { id = "fails" }
f:shell { id = "boom", cmd = "exit 4" }

-- Listens to events.
local e = dagd.dag { id = "retrain", on_event = { "drift_detected", "HighDrift" } }
e:shell { id = "go", cmd = "echo {{ conf.event }} {{ conf.payload.psi | default('-') }} >> retrain.out" }

-- Triggered in bursts: every trigger is a run.
local t = dagd.dag { id = "burst" }
t:shell { id = "noop", cmd = "true" }
