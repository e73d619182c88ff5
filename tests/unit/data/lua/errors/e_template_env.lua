local dagd = require "dagd"
local d = dagd.dag { id = "tpl_env" }
d:shell { id = "a", cmd = "true",
          env = { MODEL = "{{ conf.model | default(fraud) }}" } }
