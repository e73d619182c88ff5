local dagd = require "dagd"
local d = dagd.dag { id = "shr" }
local a = d:empty { id = "a" }
local b = d:empty { id = "b" }
a >> b
