local dagd = require "dagd"
local d = dagd.dag { id = "dottask" }
d:shell { id = ".", cmd = "true" }
