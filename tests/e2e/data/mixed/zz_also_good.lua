local dagd = require "dagd"
local d = dagd.dag { id = "also_good", schedule = "0 2 * * *", timezone = "Europe/Berlin",
                     start_date = "2026-03-01" }
d:shell { id = "only", cmd = "true" }
