local dagd = require "dagd"

dagd.dag { id = "other" }
dagd.dag { id = "same" }
