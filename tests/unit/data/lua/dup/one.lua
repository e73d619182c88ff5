local dagd = require "dagd"
dagd.dag { id = "same" }
