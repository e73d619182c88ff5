local dagd = require "dagd"
local d = dagd.dag { id = "badid" }
d:shell { id = "has space", cmd = "true" }
