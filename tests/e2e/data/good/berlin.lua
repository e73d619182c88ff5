local dagd = require "dagd"
local d = dagd.dag { id = "berlin", schedule = "30 2 * * *", timezone = "Europe/Berlin",
                     start_date = "2026-01-01" }
local extract = d:shell { id = "extract", cmd = "true" }
local left = d:shell { id = "left", cmd = "true" }
local right = d:shell { id = "right", cmd = "true" }
local join = d:shell { id = "join", cmd = "true", trigger_rule = "none_failed" }
d:chain(extract, { left, right }, join)
