local dagd = require "dagd"
local d = dagd.dag { id = "tr" }
d:empty { id = "a" }
d:empty { id = "b", deps = { "a" }, trigger_rule = "none_failed_or_skipped" }
