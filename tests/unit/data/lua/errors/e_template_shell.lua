local dagd = require "dagd"
local d = dagd.dag { id = "tpl_shell" }
d:shell { id = "a",
          cmd = 'echo "day $(date -d {{ ds }})"' }
