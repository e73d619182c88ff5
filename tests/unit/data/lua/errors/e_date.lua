local dagd = require "dagd"
local d = dagd.dag { id = "date",
  start_date = "2026-02-30" }
