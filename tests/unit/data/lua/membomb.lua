local dagd = require "dagd"
local t = {}
local s = "x"
for i = 1, 100 do
  s = s .. s
  t[#t + 1] = s
end
