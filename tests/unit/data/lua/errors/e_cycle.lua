local dagd = require "dagd"
local d = dagd.dag { id = "cyclic" }
local a = d:shell { id = "a", cmd = "true" }
local b = d:shell { id = "b", cmd = "true", deps = { a } }
local c = d:shell { id = "c", cmd = "true", deps = { b } }
d:chain(c, a)
