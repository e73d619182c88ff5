-- The first DAG is fine, the second is not: the file contributes nothing.
local dagd = require "dagd"
local ok = dagd.dag { id = "fine_but_dropped" }
ok:empty { id = "a" }
local d = dagd.dag { id = "broken" }
d:empty { id = "b", deps = { "ghost" } }
