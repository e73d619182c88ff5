local dagd = require "dagd"
local d = dagd.dag { id = "looper" }
while true do end
