local dagd = require "dagd"
local d = dagd.dag { id = "t", schedule = "0 6 * * *", timezone = "Europe/Berlin", start_date = "2026-01-01" }
d:shell { id = "ok", cmd = "echo hello {{ ds }} $DAGD_RUN_ID; echo k=v > \"$DAGD_OUTPUT\"" }
d:shell { id = "bad", cmd = { "sh", "-c", "exit 3" } }
d:shell { id = "conf", cmd = { "echo", "x={{ conf.x }}" } }
d:shell { id = "reads", cmd = { "echo", "{{ outputs.ok.k }}" } }
