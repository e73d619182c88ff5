local dagd = require "dagd"
local lfs = require "lfs"
