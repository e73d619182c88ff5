local dagd = require "dagd"
local d = dagd.dag { id = "typo" }
local a = d:shell {
  id = "a",
  cmdd = "true",
}
