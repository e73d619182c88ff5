local dagd = require "dagd"
local d = dagd.dag { id = "tpl_syntax" }
d:http { id = "notify", url = "http://127.0.0.1:9/hook", method = "POST",
         body = "run {{ run_id } failed" }
