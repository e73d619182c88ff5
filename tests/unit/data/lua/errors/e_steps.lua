local dagd = require "dagd"
local d = dagd.dag { id = "steps" }
d:deploy { id = "deploy", strategy = "canary", manifest = "k.yaml", steps = { 5, 50, 25 } }
