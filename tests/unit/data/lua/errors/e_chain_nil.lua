local dagd = require "dagd"
local d = dagd.dag { id = "chainnil" }
local a = d:empty { id = "a" }
d:chain(a, b)
