local dagd = require "dagd"
local d = dagd.dag { id = "types" }
d:shell {
  id = "a",
  cmd = "true",
  retries = "three",
}
