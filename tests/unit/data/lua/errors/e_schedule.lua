local dagd = require "dagd"
local d = dagd.dag {
  id = "sched",
  description = "bad hour",
  schedule = "0 25 * * *",
}
