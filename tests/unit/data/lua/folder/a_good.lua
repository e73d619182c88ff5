local dagd = require "dagd"
local d = dagd.dag { id = "folder_a" }
d:empty { id = "a" }
