local dagd = require "dagd"
local d = dagd.dag { id = "model" }
local evaluate = d:shell { id = "evaluate",
  cmd = "echo f1={{ conf.f1 | default('0.93') }} > \"$DAGD_OUTPUT\"; echo latency_ms=42 >> \"$DAGD_OUTPUT\"" }
local gate = d:gate { id = "gate", from = "evaluate", baseline = "last_success",
  checks = { f1 = { ">= 0.9", ">= baseline - 0.01" }, latency_ms = "< 100" } }
local deploy = d:shell { id = "deploy", cmd = "echo deployed >> deploys.txt" }
d:chain(evaluate, gate, deploy)
