-- Probes the sandbox from inside; test_lua.c reads the answers from params.
local dagd = require "dagd"
local p = {}
p.os_execute = type(os.execute)
p.os_remove = type(os.remove)
p.os_exit = type(os.exit)
p.io_popen = type(io.popen)
p.string_dump = type(string.dump)
p.string_dump_method = type(("").dump)
p.string_mt = tostring(getmetatable(""))
p.dofile = type(dofile)
p.loadfile = type(loadfile)
p.package = type(package)
p.debug = type(debug)
p.collectgarbage = type(collectgarbage)
p.coroutine = type(coroutine)
p.os_time = type(os.time)
p.os_getenv = type(os.getenv)
local ok, err = pcall(io.open, "sandbox_written.txt", "w")
p.open_write_ok = ok
p.open_write_err = tostring(err)
p.open_append_ok = (pcall(io.open, "sandbox_written.txt", "a+"))
local f = io.open("sandbox.lua", "r")
p.open_read = f ~= nil
if f then
  p.first_line = f:read("l")
  p.write_on_read = (f:write("x")) == nil
  p.file_mt = tostring(getmetatable(f))
  f:close()
end
local n = 0
for _ in io.lines("sandbox.lua") do n = n + 1 end
p.lines = n > 10
local bin = "\27Lua\84\0\25\147\13\10\26\10\4\8\8\120\86"
local fn, lerr = load(bin)
p.load_binary = fn == nil
p.load_binary_err = tostring(lerr)
p.load_binary_b = (load(bin, "x", "b")) == nil
p.load_text = load("return 1 + 1")() == 2
p.load_env_sandboxed = load("return os.execute")() == nil
p.require_os = (pcall(require, "os"))
p.require_dagd = require("dagd") == dagd
p.read_json = dagd.read_json("config.json").models[2].name
p.glob = table.concat(dagd.glob("errors/e_cy*.lua"), ",")
dagd.dag { id = "sandbox", params = p }
