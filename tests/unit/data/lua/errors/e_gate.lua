local dagd = require "dagd"
local d = dagd.dag { id = "gatebad" }
local e = d:empty { id = "evaluate" }
d:gate { id = "gate", from = e,
         checks = { f1 = ">= 0.9", latency = "about 100" } }
