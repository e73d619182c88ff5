local dagd = require "dagd"
local d = dagd.dag { id = "typo2" }
d:shell { id = "a", cmd = "true", image = "x" }
