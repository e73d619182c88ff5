local dagd = require "dagd"
local d = dagd.dag {
  id = "defaults",
  default_args = {
    retries = 1,
    retry_dealy = "5m",
  },
}
