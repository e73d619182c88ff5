local dagd = require "dagd"
local d = dagd.dag { id = "tr" }
d:empty { id = "a" }
d:empty { id = "b", trigger_rule = "all_sucess" }
