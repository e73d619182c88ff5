local dagd = require "dagd"
local d = dagd.dag { id = "good_one", schedule = "@daily", start_date = "2026-01-01" }
local a = d:shell { id = "a", cmd = "echo a" }
local b = d:shell { id = "b", cmd = { "echo", "b" } }
d:chain(a, b)
