local dagd = require "dagd"
local d = dagd.dag {
  id = "dagtypo",
  schedul = "@daily",
}
