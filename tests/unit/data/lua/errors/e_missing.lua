local dagd = require "dagd"
local d = dagd.dag { id = "missing" }

d:docker { id = "a", cmd = { "x" } }
