local dagd = require "dagd"
local d = dagd.dag { id = "typo", schedule = "@hourly" }
local a = d:shell { id = "a", cmd = "true" }
local b = d:shell { id = "b", cmd = "true", retires = 3 }
