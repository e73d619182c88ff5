local dagd = require "dagd"
local d = dagd.dag { id = "dur" }
d:shell { id = "a", cmd = "true",
          retry_delay = "5 minutes" }
