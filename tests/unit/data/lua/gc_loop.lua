local dagd = require "dagd"
dagd.dag { id = "gc_loop" }
-- finalizers run with hooks off, so a looping one could hang the loader
setmetatable({}, { __gc = function() while true do end end })
