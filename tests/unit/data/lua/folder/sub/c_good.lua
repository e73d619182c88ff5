local dagd = require "dagd"
dagd.dag { id = "folder_c" }
