local dagd = require "dagd"

local d = dagd.dag { id = "badcron", schedule = "0 25 * * *" }
d:shell { id = "a", cmd = "true" }
