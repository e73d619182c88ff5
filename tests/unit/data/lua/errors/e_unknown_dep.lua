local dagd = require "dagd"
local d = dagd.dag { id = "unknowndep" }
local a = d:shell { id = "a", cmd = "true" }
local b = d:shell {
  id = "b",
  cmd = "true",
  deps = { a, "nope" },
}
