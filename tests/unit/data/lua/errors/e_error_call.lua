local dagd = require "dagd"
local function helper()
  error("config is broken")
end
helper()
