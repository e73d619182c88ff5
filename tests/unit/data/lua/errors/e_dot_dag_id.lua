local dagd = require "dagd"
-- A DAG id made only of dots would name logs_folder itself.
local d = dagd.dag { id = ".." }
d:shell { id = "a", cmd = "true" }
