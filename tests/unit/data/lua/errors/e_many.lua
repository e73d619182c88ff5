-- Several mistakes in one file: each is reported, in order.
local dagd = require "dagd"
local d = dagd.dag { id = "many", schedul = "@daily" }
local a = d:shell { id = "a", cmdd = "true" }
local b = d:shell { id = "b", cmd = "true", retries = "three" }
local c = d:shell { id = "c", cmd = "true" }
d:chain(a, b, c)
d:empty { id = "j", trigger_rule = "none_failed_or_skipped", deps = { a } }
local e = dagd.dag { id = "many", schedule = "@hourly" }
e:docker { id = "x" }
d:chain(c, nope) -- the last: a mistake that stops the file
