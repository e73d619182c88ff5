-- default_args.retries reaches the tasks whose outcome a retry can change,
-- not gates, branches, short circuits and data checks (unless they set it).
local dagd = require "dagd"
local d = dagd.dag { id = "retries", default_args = { retries = 3, retry_delay = "1m" } }
local train = d:shell { id = "train", cmd = "true", outputs = { "f1" } }
d:gate { id = "gate", from = train, checks = { f1 = ">= 0.9" } }
d:gate { id = "gate_own", from = train, checks = { f1 = ">= 0.9" }, retries = 1 }
d:branch { id = "pick", fn = function() return nil end }
d:short_circuit { id = "guard", fn = function() return true end }
d:data_check { id = "check", path = "data.csv", min_rows = 1 }
d:lua { id = "calc", fn = function() return {} end }
