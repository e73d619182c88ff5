local dagd = require "dagd"
local d = dagd.dag { id = "syntax" }
d:shell { id = "a" cmd = "true" }
