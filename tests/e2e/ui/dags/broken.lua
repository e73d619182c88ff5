local dagd = require "dagd"
local d = dagd.dag { id = "broken" }
d:shell { id = "x", cmd = }
