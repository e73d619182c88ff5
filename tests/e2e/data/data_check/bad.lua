local dagd = require "dagd"
local d = dagd.dag { id = "bad" }
d:data_check { id = "check", path = "x.csv",
  psi_max = 0.2 }
