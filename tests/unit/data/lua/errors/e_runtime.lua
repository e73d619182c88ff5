local dagd = require "dagd"
local d = dagd.dag { id = "runtime" }
local cfg = nil
d:shell { id = "a", cmd = cfg.cmd }
