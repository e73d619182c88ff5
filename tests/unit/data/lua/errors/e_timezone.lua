local dagd = require "dagd"
local d = dagd.dag { id = "tzbad",
  timezone = "Europe/Berln" }
