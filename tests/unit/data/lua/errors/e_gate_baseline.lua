local dagd = require "dagd"
local d = dagd.dag { id = "gatebase" }
local e = d:empty { id = "evaluate" }
d:gate { id = "gate", from = e, checks = { f1 = ">= baseline - 0.01" } }
