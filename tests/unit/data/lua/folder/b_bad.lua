local dagd = require "dagd"
local d = dagd.dag { id = "folder_b" }
d:empty { id = "a", oops = 1 }
