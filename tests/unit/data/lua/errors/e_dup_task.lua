local dagd = require "dagd"
local d = dagd.dag { id = "dup" }
d:shell { id = "a", cmd = "true" }
d:shell { id = "b", cmd = "true" }
d:shell { id = "a", cmd = "false" }
