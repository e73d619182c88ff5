local dagd = require "dagd"
local d = dagd.dag { id = "tpl_filter" }
d:shell { id = "a",
          cmd = { "echo", "{{ ds | uppercase }}" } }
