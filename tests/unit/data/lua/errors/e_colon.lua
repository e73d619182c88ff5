local dagd = require "dagd"
local d = dagd.dag { id = "colon" }
d.shell { id = "a", cmd = "true" }
