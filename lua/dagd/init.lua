-- SPDX-License-Identifier: MIT
-- The `dagd` module that DAG files require: dagd.dag{...}, the task
-- constructors (d:shell, d:docker, ...), edges (deps, d:chain, t:after,
-- a >> b), and the validation that turns every mistake into
-- `file:line: message`. Runs as trusted code in each DAG file's own Lua
-- state; the C loader (src/lua/loader.c) passes `core`, its private helpers,
-- and reads back the normalized records collected in DAG_LIST.

local core = ...

-- Captured before any DAG code runs, so a DAG file that changes the
-- string or table library cannot change how it is validated.
local type, next, ipairs, pairs, select, error, tostring = type, next, ipairs, pairs, select, error, tostring
local tonumber = tonumber
local setmetatable, rawlen, rawequal, rawget, load = setmetatable, rawlen, rawequal, rawget, load
local sfmt, sfind, smatch, sbyte, slower, supper, ssub = string.format, string.find, string.match,
  string.byte, string.lower, string.upper, string.sub
local tconcat, tsort = table.concat, table.sort
local mtype, mfloor, mmin, mabs, mtointeger = math.type, math.floor, math.min, math.abs, math.tointeger
local HUGE = math.huge
local io_stderr = io.stderr
-- Reads confined to the DAG folder, regular files only, never blocking.
local core_open = core.open

local PATH = core.path              -- the DAG file, as the loader names it
local DIR = core.dir                -- its folder: relative paths start here
local userline, fieldline = core.userline, core.fieldline
local MAX_SECONDS = 100 * 366 * 86400

-- Lists the C side must emit as JSON arrays even when empty.
local LIST = { __metatable = "dagd.list" }

local DAGS = {}      -- DAG object -> DAG record
local TASKS = {}     -- task object -> task record
local GROUPS = {}    -- group object (result of `a >> {b, c}`) -> DAG record
local DAG_LIST = {}  -- DAG records in declaration order (read by C)
local DAG_BY_ID = {}

---------------------------------------------------------------------------
-- Errors

-- Raises `file:line: msg`. The line is the innermost frame of the DAG
-- file (the call to d:shell{...}, d:chain(...), ...), moved to the line of
-- `field` inside that call's table constructor when the field can be found.
local function fail(msg, field)
  local line = userline()
  if field and line > 0 then
    line = fieldline(line, smatch(field, "([%w_]+)$") or field)
  end
  error(sfmt("%s:%d: %s", PATH, line, msg), 0)
end

local function describe(v)
  local t = type(v)
  if t == "string" then
    if #v > 40 then v = ssub(v, 1, 37) .. "..." end
    return sfmt("string %q", v)
  elseif t == "number" then
    return sfmt("%s %s", mtype(v) == "integer" and "integer" or "number", tostring(v))
  elseif t == "table" then
    if TASKS[v] then return "a task" end
    if DAGS[v] then return "a DAG" end
    return "a table"
  end
  return t
end

local function bad(what, field, expected, v)
  fail(sfmt('%s: field "%s" must be %s, got %s', what, field, expected, describe(v)), field)
end

-- Optimal string alignment distance (Levenshtein plus transpositions),
-- only ever computed on the error path.
local function distance(a, b)
  local la, lb = #a, #b
  if mabs(la - lb) > 2 then return 99 end
  local prev2, prev = {}, {}
  for j = 0, lb do prev[j] = j end
  for i = 1, la do
    local cur = { [0] = i }
    local ca = sbyte(a, i)
    for j = 1, lb do
      local cb = sbyte(b, j)
      local v = mmin(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (ca == cb and 0 or 1))
      if i > 1 and j > 1 and ca == sbyte(b, j - 1) and sbyte(a, i - 1) == cb then
        v = mmin(v, prev2[j - 2] + 1)
      end
      cur[j] = v
    end
    prev2, prev = prev, cur
  end
  return prev[lb]
end

-- Names people reach for from other schedulers.
local ALIASES = {
  depends_on = "deps", upstream = "deps", dependencies = "deps", command = "cmd",
  bash_command = "cmd", timeout_seconds = "execution_timeout", task_id = "id", dag_id = "id",
  schedule_interval = "schedule", tz = "timezone", weight = "priority_weight",
}

local function suggest(name, candidates)
  local lname, best, bd = slower(name), nil, 99
  for i = 1, #candidates do
    local c = candidates[i]
    local d = distance(lname, c)
    if d < bd or (d == bd and best ~= nil and c < best) then best, bd = c, d end
  end
  if bd <= (#name <= 4 and 1 or 2) then return best end
  local alias = ALIASES[lname]
  for i = 1, #candidates do
    if candidates[i] == alias then return alias end
  end
  return nil
end

---------------------------------------------------------------------------
-- Value validators: f(value, what, field, dag) -> normalized value.
-- `what` names the object for messages ('shell task "collect"').

local ID_PAT = "^[A-Za-z0-9_%.%-]+$"
local KEY_PAT = "^[A-Za-z_][A-Za-z0-9_]*$"

-- An id names a folder under logs_folder, so one made only of dots ("."
-- or "..", a path component) is refused, as dagd_id_problem in C does.
local function is_id(s)
  return type(s) == "string" and #s <= 250 and sfind(s, ID_PAT) ~= nil and sfind(s, "^%.+$") == nil
end

local function v_string(v, what, field)
  if type(v) ~= "string" then bad(what, field, "a string", v) end
  return v
end

local function v_nonempty(v, what, field)
  if type(v) ~= "string" or v == "" then bad(what, field, "a non-empty string", v) end
  return v
end

local function v_id(v, what, field)
  if not is_id(v) then
    if type(v) ~= "string" then bad(what, field, "a string", v) end
    local why = sfind(v, "^%.+$") and "must not be made only of dots" or "must match ^[A-Za-z0-9_.-]{1,250}$"
    fail(sfmt('%s: invalid %s "%s": %s', what, field, v, why), field)
  end
  return v
end

local function v_bool(v, what, field)
  if type(v) ~= "boolean" then bad(what, field, "true or false", v) end
  return v
end

local function v_int(min, max, desc)
  return function(v, what, field)
    if mtype(v) ~= "integer" then
      local i = mtype(v) == "float" and mtointeger(v) or nil
      if not i then bad(what, field, desc, v) end
      v = i
    end
    if v < min or v > max then
      fail(sfmt('%s: field "%s" must be %s between %d and %d, got %d', what, field, desc, min, max, v), field)
    end
    return v
  end
end

local function v_number(min)
  return function(v, what, field)
    if type(v) ~= "number" or v ~= v or v < min or v == HUGE then
      bad(what, field, sfmt("a number >= %s", tostring(min)), v)
    end
    return v
  end
end

local core_duration = core.duration
local function v_duration(v, what, field)
  local t = type(v)
  if t == "number" then
    if v ~= v or v < 0 or v > MAX_SECONDS then
      fail(sfmt('%s: field "%s" must be a duration between 0 and 100 years, got %s', what, field,
        describe(v)), field)
    end
    return mfloor(v + 0.5)
  elseif t == "string" then
    local secs, err = core_duration(v)
    if not secs then fail(sfmt('%s: field "%s": %s', what, field, err), field) end
    return secs
  end
  bad(what, field, 'a duration ("30s", "5m", "1h30m") or a number of seconds', v)
end

local core_checkdate = core.checkdate
local function v_date(v, what, field)
  if type(v) == "string" then
    local ok, err = core_checkdate(v)
    if not ok then fail(sfmt('%s: field "%s": %s', what, field, err), field) end
    return v
  elseif mtype(v) == "integer" then
    return v
  end
  bad(what, field, 'a date ("2026-01-01", "2026-01-01T02:00:00+01:00") or epoch seconds', v)
end

local function v_function(v, what, field)
  if type(v) ~= "function" then bad(what, field, "a function", v) end
  return v
end

local function plain_table(v)
  return type(v) == "table" and not TASKS[v] and not DAGS[v] and not GROUPS[v]
end

-- Length of v when it is a proper sequence (no holes, no other keys).
local function seq_len(t)
  local n, c = rawlen(t), 0
  for k in next, t do
    if mtype(k) ~= "integer" or k < 1 or k > n then return nil end
    c = c + 1
  end
  return c == n and n or nil
end

local function v_list_of(elem_desc, check, allow_empty)
  return function(v, what, field)
    if not plain_table(v) then bad(what, field, "a list of " .. elem_desc, v) end
    local n = seq_len(v)
    if not n then fail(sfmt('%s: field "%s" must be a list ({ ... }), not a map', what, field), field) end
    if n == 0 and not allow_empty then
      fail(sfmt('%s: field "%s" must not be empty', what, field), field)
    end
    local out = setmetatable({}, LIST)
    for i = 1, n do
      local x = check(v[i])
      if x == nil then
        fail(sfmt('%s: %s[%d] must be %s, got %s', what, field, i, elem_desc, describe(v[i])), field)
      end
      out[i] = x
    end
    return out
  end
end

local function as_string(x) return type(x) == "string" and x or nil end
local function as_arg(x)
  local t = type(x)
  if t == "string" then return x end
  if t == "number" then return tostring(x) end
  return nil
end
local function as_key(x) return type(x) == "string" and sfind(x, KEY_PAT) and x or nil end
local function as_id(x) return is_id(x) and x or nil end

local v_argv = v_list_of("a string", as_arg, false)
local v_strlist = v_list_of("a string", as_string, true)
local v_keylist = v_list_of("a name matching [A-Za-z_][A-Za-z0-9_]*", as_key, true)
local v_idlist = v_list_of("a name matching [A-Za-z0-9_.-]", as_id, true)

local function v_cmd(v, what, field)
  if type(v) == "string" then
    if v == "" then bad(what, field, "a non-empty string or an argv list", v) end
    return v
  end
  if not plain_table(v) then bad(what, field, "a command string or an argv list", v) end
  return v_argv(v, what, field)
end

-- string -> string maps (env, headers); numbers and booleans become strings.
local function v_map(keypat, keydesc)
  return function(v, what, field)
    if not plain_table(v) then bad(what, field, "a table of name = value", v) end
    local out = {}
    for k, x in next, v do
      if type(k) ~= "string" or (keypat and not sfind(k, keypat)) then
        fail(sfmt('%s: field "%s": key %s must be %s', what, field, describe(k), keydesc), field)
      end
      local tx = type(x)
      if tx == "string" then
        out[k] = x
      elseif tx == "number" or tx == "boolean" then
        out[k] = tostring(x)
      else
        fail(sfmt('%s: %s.%s must be a string, got %s', what, field, k, describe(x)), field)
      end
    end
    return out
  end
end
local v_env = v_map(KEY_PAT, "an environment variable name ([A-Za-z_][A-Za-z0-9_]*)")
local v_headers = v_map("^[!#$%%&'*+%-.^_`|~0-9A-Za-z]+$", "an HTTP header name")

-- Any JSON-like value (tables are converted by the loader).
local function v_json(v, what, field)
  local t = type(v)
  if t == "table" and not plain_table(v) then bad(what, field, "a plain table", v) end
  if t == "userdata" or t == "thread" then bad(what, field, "a JSON-like value", v) end
  return v
end

local function v_table(v, what, field)
  if not plain_table(v) then bad(what, field, "a table", v) end
  return v
end

-- renamed: old name -> { new name, why }, for names other tools used.
local function v_enum(values, renamed)
  local set = {}
  for i = 1, #values do set[values[i]] = true end
  local desc = '"' .. tconcat(values, '", "') .. '"'
  return function(v, what, field)
    if type(v) ~= "string" then bad(what, field, "one of " .. desc, v) end
    if not set[v] then
      local r = renamed and renamed[slower(v)]
      local hint
      if r then
        hint = sfmt(' (did you mean "%s"? %s)', r[1], r[2])
      else
        local s = suggest(v, values)
        hint = s and sfmt(' (did you mean "%s"?)', s) or ""
      end
      fail(sfmt('%s: field "%s" must be one of %s, got "%s"%s', what, field, desc, v, hint), field)
    end
    return v
  end
end

local TRIGGER_RULES = {
  "all_success", "all_failed", "all_done", "all_skipped", "one_success", "one_failed",
  "one_done", "none_failed", "none_failed_min_one_success", "none_skipped", "always",
}
-- Rule names Airflow used to have.
local TRIGGER_RULES_RENAMED = {
  none_failed_or_skipped = { "none_failed_min_one_success", "Airflow renamed none_failed_or_skipped to it" },
  dummy = { "always", "Airflow renamed dummy to always" },
}
local v_trigger_rule = v_enum(TRIGGER_RULES, TRIGGER_RULES_RENAMED)

local function v_method(v, what, field)
  if type(v) ~= "string" then bad(what, field, "an HTTP method", v) end
  local m = supper(v)
  if not ({ GET = 1, HEAD = 1, POST = 1, PUT = 1, PATCH = 1, DELETE = 1, OPTIONS = 1 })[m] then
    fail(sfmt('%s: field "%s": unknown HTTP method "%s"', what, field, v), field)
  end
  return m
end

local function check_fields(spec, fields, order, what)
  local unknown
  for k in next, spec do
    if type(k) ~= "string" then
      fail(sfmt("%s: fields must be named (id = ...), found a positional value %s", what, describe(spec[k])))
    end
    if fields[k] == nil then
      unknown = unknown or {}
      unknown[#unknown + 1] = k
    end
  end
  if unknown then
    tsort(unknown)
    local k = unknown[1]
    local s = suggest(k, order)
    fail(sfmt('%s: unknown field "%s"%s', what, k, s and sfmt(' (did you mean "%s"?)', s) or ""), k)
  end
end

local NOTIFY_FIELDS = {
  url = v_nonempty, method = v_method, headers = v_headers, body = v_string, timeout = v_duration,
}
local NOTIFY_ORDER = { "url", "method", "headers", "body", "timeout" }

-- A notify spec: { url = "...", method?, headers?, body?, timeout? } or a URL.
local function v_notify(v, what, field)
  if type(v) == "string" then v = { url = v } end
  if not plain_table(v) then bad(what, field, 'a notify spec ({ url = "..." }) or a URL', v) end
  local w = sfmt("%s: %s", what, field)
  check_fields(v, NOTIFY_FIELDS, NOTIFY_ORDER, w)
  local out = {}
  for i = 1, #NOTIFY_ORDER do
    local k = NOTIFY_ORDER[i]
    if v[k] ~= nil then out[k] = NOTIFY_FIELDS[k](v[k], w, k) end
  end
  if out.url == nil then fail(sfmt('%s: missing required field "url"', w), field) end
  return out
end

-- A task object of the same DAG, or a task id.
local function v_taskref(v, what, field, dag)
  local r = TASKS[v]
  if r then
    if r.dag ~= dag then
      fail(sfmt('%s: field "%s": task "%s" belongs to DAG "%s"', what, field, r.id, r.dag.id), field)
    end
    return r.id
  end
  if is_id(v) then return v end
  bad(what, field, "a task or a task id", v)
end

---------------------------------------------------------------------------
-- Edges: kept per DAG as three parallel lists (upstream id, downstream id,
-- line); the loader resolves them, so tasks may be named before they exist.

local function add_edge(dag, up, down, line)
  local n = #dag.e_up + 1
  dag.e_up[n], dag.e_down[n], dag.e_line[n] = up, down, line
end

-- The task ids a value stands for: a task, an id, a group, or a list.
local function node_ids(dag, x, what)
  local r = TASKS[x]
  if r then
    if r.dag ~= dag then fail(sfmt('%s: task "%s" belongs to DAG "%s"', what, r.id, r.dag.id)) end
    return { r.id }
  end
  if type(x) == "string" then
    if not is_id(x) then fail(sfmt('%s: invalid task id "%s"', what, x)) end
    return { x }
  end
  if x == nil then fail(sfmt("%s is nil (a misspelled variable?)", what)) end
  if type(x) == "table" and not DAGS[x] then
    local n = seq_len(x)
    if not n then fail(sfmt("%s must be a task, a task id or a list of them", what)) end
    local out = {}
    for i = 1, n do
      local e = x[i]
      local er = TASKS[e]
      if er then
        if er.dag ~= dag then fail(sfmt('%s: task "%s" belongs to DAG "%s"', what, er.id, er.dag.id)) end
        out[i] = er.id
      elseif is_id(e) then
        out[i] = e
      else
        fail(sfmt("%s: element %d must be a task or a task id, got %s", what, i, describe(e)))
      end
    end
    return out
  end
  fail(sfmt("%s must be a task, a task id or a list of them, got %s", what, describe(x)))
end

local function link(dag, ups, downs, line)
  for i = 1, #ups do
    for j = 1, #downs do add_edge(dag, ups[i], downs[j], line) end
  end
end

local function dag_of(x)
  local r = TASKS[x]
  if r then return r.dag end
  if GROUPS[x] then return GROUPS[x] end
  if type(x) == "table" and not DAGS[x] then
    for _, e in ipairs(x) do
      if TASKS[e] then return TASKS[e].dag end
    end
  end
  return nil
end

local GroupMT
local function as_node(dag, x)
  if TASKS[x] or GROUPS[x] or type(x) ~= "table" then return x end
  local g = setmetatable({}, GroupMT)
  for i, e in ipairs(x) do g[i] = e end
  GROUPS[g] = dag
  return g
end

-- a >> b: b runs after a; the value is b, so `a >> b >> c` chains.
local function shr(a, b)
  local dag = dag_of(a) or dag_of(b)
  if not dag then fail(">>: both sides must be tasks (or lists of tasks)") end
  link(dag, node_ids(dag, a, "left side of >>"), node_ids(dag, b, "right side of >>"), userline())
  return as_node(dag, b)
end

-- a << b: a runs after b; the value is b, as in Airflow.
local function shl(a, b)
  local dag = dag_of(a) or dag_of(b)
  if not dag then fail("<<: both sides must be tasks (or lists of tasks)") end
  link(dag, node_ids(dag, b, "right side of <<"), node_ids(dag, a, "left side of <<"), userline())
  return as_node(dag, b)
end

GroupMT = { __shr = shr, __shl = shl, __metatable = "dagd.group" }

local TaskMethods = {}

function TaskMethods.after(self, ...)
  local r = TASKS[self]
  if not r then fail("use t:after(...) with a colon on a task") end
  local line = userline()
  for i = 1, select("#", ...) do
    link(r.dag, node_ids(r.dag, (select(i, ...)), sfmt("t:after argument %d", i)), { r.id }, line)
  end
  return self
end

function TaskMethods.before(self, ...)
  local r = TASKS[self]
  if not r then fail("use t:before(...) with a colon on a task") end
  local line = userline()
  for i = 1, select("#", ...) do
    link(r.dag, { r.id }, node_ids(r.dag, (select(i, ...)), sfmt("t:before argument %d", i)), line)
  end
  return self
end

TaskMT = {
  __index = function(t, k)
    local r = TASKS[t]
    if k == "id" then return r.id end
    if k == "op" then return r.opname end
    if k == "dag_id" then return r.dag.id end
    if k == "line" then return r.line end
    return TaskMethods[k]
  end,
  __newindex = function(t) fail(sfmt('task "%s" is read-only', TASKS[t].id)) end,
  __shr = shr,
  __shl = shl,
  __tostring = function(t) return sfmt("task %s.%s", TASKS[t].dag.id, TASKS[t].id) end,
  __metatable = "dagd.task",
}

---------------------------------------------------------------------------
-- Task fields

local COMMON_ORDER = {
  "id", "deps", "retries", "retry_delay", "retry_exponential_backoff", "max_retry_delay",
  "execution_timeout", "trigger_rule", "pool", "priority_weight", "env", "env_clear", "cwd",
  "on_failure", "on_success", "on_retry", "sla", "outputs", "doc",
}
local COMMON = {
  id = v_id, deps = true, -- deps are handled by declare()
  retries = v_int(0, 1000, "an integer"),
  retry_delay = v_duration,
  retry_exponential_backoff = v_bool,
  max_retry_delay = v_duration,
  execution_timeout = v_duration,
  trigger_rule = v_trigger_rule,
  pool = v_id,
  priority_weight = v_int(-2147483647, 2147483647, "an integer"),
  env = v_env,
  env_clear = v_bool,
  cwd = v_nonempty,
  on_failure = v_notify,
  on_success = v_notify,
  on_retry = v_notify,
  sla = v_duration,
  outputs = v_keylist,
  doc = v_string,
}
-- default_args may carry every common field but these.
local NOT_DEFAULTABLE = { id = true, deps = true, outputs = true, doc = true }

local v_pull = v_enum({ "always", "missing", "never" })
local v_mode = v_enum({ "poke", "reschedule" })

local function v_gpus(v, what, field)
  if mtype(v) == "integer" and v >= 0 then return v end
  if type(v) == "string" and v ~= "" then return v end
  bad(what, field, 'a GPU count or a docker --gpus value ("all", "device=0")', v)
end

local function v_memory(v, what, field)
  if mtype(v) == "integer" and v > 0 then return v end
  if type(v) == "string" and sfind(v, "^%d+[bkmgBKMG]?$") then return v end
  bad(what, field, 'a memory size ("512m", "4g") or a number of bytes', v)
end

local function v_volumes(v, what, field)
  local out = v_strlist(v, what, field)
  for i = 1, #out do
    if not sfind(out[i], "^[^:]+:/[^:]*:?r?[ow]?$") then
      fail(sfmt('%s: volumes[%d] "%s" must look like "src:/path" or "src:/path:ro"', what, i, out[i]), field)
    end
  end
  return out
end

local function v_entrypoint(v, what, field)
  if type(v) == "string" then return v end
  return v_argv(v, what, field)
end

local function v_wait(v, what, field)
  if type(v) == "boolean" then return v end
  if plain_table(v) then return v end
  bad(what, field, "true/false or a table ({ ['for'] = 'condition=Available' })", v)
end

local function v_status(v, what, field)
  local function ok(x) return mtype(x) == "integer" and x >= 100 and x <= 599 end
  if ok(v) then return v end
  if plain_table(v) then
    local out = v_list_of("an HTTP status (100-599)", function(x) return ok(x) and x or nil end, false)(v, what, field)
    return out
  end
  bad(what, field, "an HTTP status or a list of them", v)
end

local function v_pointers(v, what, field)
  if not plain_table(v) then bad(what, field, 'a table of output key = "/json/pointer"', v) end
  local out = {}
  for k, p in next, v do
    if not as_key(k) then
      fail(sfmt('%s: field "%s": key %s must be an output name ([A-Za-z_][A-Za-z0-9_]*)', what, field,
        describe(k)), field)
    end
    if type(p) ~= "string" or (p ~= "" and ssub(p, 1, 1) ~= "/") then
      fail(sfmt('%s: %s.%s must be a JSON pointer ("" or "/a/0/b"), got %s', what, field, k, describe(p)), field)
    end
    out[k] = p
  end
  return out
end

-- Gate expressions: a comparison, then a number or the baseline.
--   ">= 0.9", "< 100", ">= baseline - 0.01", "!= baseline"
-- A check's expression, in the gate's own grammar (src/util/compare.c):
-- true and whether it uses the baseline, or nil and why.
local core_comparison = core.comparison
local function parse_check(s)
  return core_comparison(s)
end

local function v_checks(v, what, field)
  if not plain_table(v) then bad(what, field, 'a table of output key = ">= 0.9" (or a list of them)', v) end
  local out, uses_baseline = {}, false
  local keys = {}
  for k in next, v do keys[#keys + 1] = k end
  if #keys == 0 then fail(sfmt('%s: field "%s" must not be empty', what, field), field) end
  for _, k in ipairs(keys) do
    if not as_key(k) then
      fail(sfmt('%s: field "%s": key %s must be an output name', what, field, describe(k)), field)
    end
  end
  tsort(keys)
  for _, k in ipairs(keys) do
    local e = v[k]
    local list = type(e) == "string" and { e } or e
    if not plain_table(list) or not seq_len(list) or #list == 0 then
      fail(sfmt('%s: checks.%s must be an expression string or a list of them, got %s', what, k, describe(e)), field)
    end
    local norm = setmetatable({}, LIST)
    for i, s in ipairs(list) do
      if type(s) ~= "string" then
        fail(sfmt('%s: checks.%s[%d] must be a string, got %s', what, k, i, describe(s)), field)
      end
      local ok, base = parse_check(s)
      if not ok then fail(sfmt('%s: checks.%s: bad %s', what, k, base), field) end
      if base then uses_baseline = true end
      norm[i] = s
    end
    out[k] = norm
  end
  return out, uses_baseline
end

local function v_baseline(v, what, field)
  if type(v) == "number" and v == v then return v end
  if v == "last_success" or v == "deployed" then return v end
  bad(what, field, 'a number, "last_success" or "deployed"', v)
end

local function v_steps(v, what, field)
  local out = v_list_of("an integer percentage (1-100)", function(x)
    return mtype(x) == "integer" and x >= 1 and x <= 100 and x or nil
  end, false)(v, what, field)
  for i = 2, #out do
    if out[i] <= out[i - 1] then
      fail(sfmt("%s: steps must be ascending, but %d follows %d", what, out[i], out[i - 1]), field)
    end
  end
  return out
end

local function v_poke(v, what, field)
  if type(v) == "function" then return v end
  return v_enum({ "file", "glob", "http", "registry", "dag" })(v, what, field)
end

local function require_one(cfg, what, names)
  for i = 1, #names do
    if cfg[names[i]] ~= nil then return end
  end
  fail(sfmt('%s: one of "%s" is required', what, tconcat(names, '", "')))
end

local function exclusive(cfg, what, a, b)
  if cfg[a] ~= nil and cfg[b] ~= nil then
    fail(sfmt('%s: "%s" and "%s" cannot be used together', what, a, b), b)
  end
end

-- data_check: tables keyed by column name (any non-empty string, since
-- columns come from files), and thresholds given once or per column.
local function v_columns(check, desc)
  return function(v, what, field)
    if not plain_table(v) then bad(what, field, "a table of column = " .. desc, v) end
    local out = {}
    for k, x in next, v do
      if type(k) ~= "string" or k == "" then
        fail(sfmt('%s: field "%s": key %s must be a column name', what, field, describe(k)), field)
      end
      out[k] = check(x, what, field .. "." .. k)
    end
    return out
  end
end

local function v_per_column(check, desc)
  local cols = v_columns(check, desc)
  return function(v, what, field)
    if type(v) == "number" then return check(v, what, field) end
    if plain_table(v) then return cols(v, what, field) end
    bad(what, field, desc .. " or a table of column = " .. desc, v)
  end
end

local function v_ratio(v, what, field)
  if type(v) ~= "number" or v ~= v or v < 0 or v > 1 then bad(what, field, "a number between 0 and 1", v) end
  return v
end

local v_column_type = v_enum({ "int", "float", "string", "bool", "date" })

-- { min = 0, max = 100 }: numbers, or dates ("2026-01-01") compared as text.
local function v_range(v, what, field)
  if not plain_table(v) then bad(what, field, "{ min = ..., max = ... }", v) end
  for k in next, v do
    if k ~= "min" and k ~= "max" then
      fail(sfmt('%s: %s: unknown key %s (min, max)', what, field, describe(k)), field)
    end
  end
  if v.min == nil and v.max == nil then fail(sfmt("%s: %s needs min or max", what, field), field) end
  for _, k in ipairs({ "min", "max" }) do
    local x = v[k]
    if x ~= nil and not ((type(x) == "number" and x == x) or type(x) == "string") then
      bad(what, field .. "." .. k, "a number or a date string", x)
    end
  end
  if type(v.min) == type(v.max) and v.min > v.max then
    fail(sfmt("%s: %s: min is above max", what, field), field)
  end
  return { min = v.min, max = v.max }
end

local function v_delimiter(v, what, field)
  if type(v) ~= "string" or #v ~= 1 or v == '"' or v == "\n" or v == "\r" then
    bad(what, field, 'one character (",", ";", "\\t", "|")', v)
  end
  return v
end

-- Operators: fields (name -> validator), required fields, cross-field checks.
local OPS = {
  shell = {
    fields = { cmd = v_cmd },
    required = { "cmd" },
  },
  docker = {
    fields = {
      image = v_nonempty, cmd = v_argv, entrypoint = v_entrypoint, volumes = v_volumes,
      workdir = v_nonempty, user = v_nonempty, network = v_nonempty, gpus = v_gpus, pull = v_pull,
      cpus = v_number(0), memory = v_memory, auto_remove = v_bool, executor = v_id, pod_template = v_table,
    },
    required = { "image" },
  },
  kubectl = {
    fields = {
      args = v_argv, apply = v_nonempty, namespace = v_nonempty, context = v_nonempty,
      kubeconfig = v_nonempty, wait = v_wait, wait_timeout = v_duration,
    },
    check = function(cfg, what)
      require_one(cfg, what, { "args", "apply" })
      exclusive(cfg, what, "args", "apply")
    end,
  },
  registry = {
    fields = {
      action = v_enum({ "wait", "resolve", "retag", "promote", "tags", "delete" }),
      image = v_nonempty, tag = v_nonempty, from = v_nonempty, to = v_nonempty, digest = v_nonempty,
      insecure = v_bool, username = v_string, password = v_string, ca_file = v_nonempty,
      interval = v_duration, timeout = v_duration, mode = v_mode,
    },
    required = { "action", "image" },
    check = function(cfg, what)
      local a = cfg.action
      if a == "retag" or a == "promote" then
        if cfg.to == nil then fail(sfmt('%s: action "%s" needs "to" (the new tag)', what, a), "action") end
        require_one(cfg, what, { "from", "tag", "digest" })
      elseif a == "wait" or a == "resolve" or a == "delete" then
        require_one(cfg, what, { "tag", "digest" })
      end
    end,
  },
  http = {
    fields = {
      url = v_nonempty, method = v_method, headers = v_headers, body = v_string, json = v_json,
      expect_status = v_status, outputs_from = v_pointers, timeout = v_duration,
      retries_on_5xx = v_int(0, 100, "an integer"),
    },
    required = { "url" },
    check = function(cfg, what) exclusive(cfg, what, "body", "json") end,
  },
  gate = {
    fields = { from = v_taskref, checks = v_checks, baseline = v_baseline },
    required = { "from", "checks" },
  },
  branch = { fields = { fn = v_function }, required = { "fn" } },
  short_circuit = { fields = { fn = v_function }, required = { "fn" }, model = "branch",
    extra = { short_circuit = true } },
  sensor = {
    fields = {
      poke = v_poke, path = v_nonempty, url = v_nonempty, image = v_nonempty, tag = v_nonempty,
      dag_id = v_id, task_id = v_id,
      state = v_enum({ "success", "failed", "skipped", "running", "queued" }),
      expect_status = v_status, interval = v_duration, timeout = v_duration, mode = v_mode,
      soft_fail = v_bool,
    },
    required = { "poke" },
    check = function(cfg, what)
      local kind = type(cfg.poke) == "function" and "function" or cfg.poke
      local needs = ({ file = { "path" }, glob = { "path" }, http = { "url" }, registry = { "image", "tag" },
        dag = { "dag_id" }, ["function"] = {} })[kind]
      local uses = ({ file = { path = 1 }, glob = { path = 1 }, http = { url = 1, expect_status = 1 },
        registry = { image = 1, tag = 1 }, dag = { dag_id = 1, task_id = 1, state = 1 }, ["function"] = {} })[kind]
      for _, k in ipairs(needs) do
        if cfg[k] == nil then fail(sfmt('%s: a %s sensor needs "%s"', what, kind, k)) end
      end
      for _, k in ipairs({ "path", "url", "image", "tag", "dag_id", "task_id", "state", "expect_status" }) do
        if cfg[k] ~= nil and not uses[k] then
          fail(sfmt('%s: field "%s" is not used by a %s sensor', what, k, kind), k)
        end
      end
    end,
  },
  lua = { fields = { fn = v_function }, required = { "fn" } },
  deploy = {
    fields = {
      strategy = v_enum({ "rolling", "canary", "blue_green", "shadow" }), manifest = v_nonempty,
      image = v_nonempty, deployment = v_nonempty, namespace = v_nonempty, steps = v_steps,
      pause = v_duration, analysis = v_table, rollback = v_bool, duration = v_duration,
      service = v_nonempty, container = v_nonempty, context = v_nonempty, kubeconfig = v_nonempty,
      wait_timeout = v_duration, switch_back = v_bool,
    },
    check = function(cfg, what)
      require_one(cfg, what, { "manifest", "deployment" })
      if cfg.strategy == nil then cfg.strategy = "rolling" end
      if cfg.steps ~= nil and cfg.strategy ~= "canary" then
        fail(sfmt('%s: "steps" applies to strategy "canary" only', what), "steps")
      end
      if cfg.switch_back ~= nil and cfg.strategy ~= "blue_green" then
        fail(sfmt('%s: "switch_back" applies to strategy "blue_green" only', what), "switch_back")
      end
    end,
  },
  data_check = {
    fields = {
      path = v_nonempty, format = v_enum({ "csv", "jsonl" }), delimiter = v_delimiter,
      schema = v_columns(v_column_type, 'a type ("int", "float", "string", "bool", "date")'),
      ranges = v_columns(v_range, "{ min = ..., max = ... }"),
      max_missing = v_per_column(v_ratio, "a number between 0 and 1"),
      unique = v_strlist, min_rows = v_int(0, 1 << 53, "an integer"), max_rows = v_int(0, 1 << 53, "an integer"),
      na_values = v_strlist, reference = v_nonempty, drift = v_strlist,
      psi_max = v_per_column(v_number(0), "a number >= 0"),
      ks_max = v_per_column(v_ratio, "a number between 0 and 1"),
      bins = v_int(2, 1000, "an integer"),
    },
    required = { "path" },
    check = function(cfg, what)
      if cfg.reference == nil then
        for _, k in ipairs({ "drift", "psi_max", "ks_max", "bins" }) do
          if cfg[k] ~= nil then fail(sfmt('%s: "%s" needs a "reference" file', what, k), k) end
        end
      end
      if cfg.min_rows and cfg.max_rows and cfg.min_rows > cfg.max_rows then
        fail(sfmt("%s: min_rows is above max_rows", what), "min_rows")
      end
    end,
  },
  empty = { fields = {} },
}

for name, op in next, OPS do op.name = name end

-- Operators whose outcome a retry cannot change (the same inputs give the
-- same answer): they take `retries` only from their own fields, never from
-- default_args, so a failed gate is not run again for nothing.
local NO_DEFAULT_RETRIES = { gate = true, branch = true, short_circuit = true, data_check = true }

-- An operator's field order and defaults, worked out on first use: most
-- files use a few operators, and every file pays for what runs here.
local function prepare(op)
  local order = {}
  for k in next, op.fields do order[#order + 1] = k end
  tsort(order)
  op.order = order
  op.model = op.model or op.name
  op.required = op.required or {}
  return op
end

local function candidates(op)
  local c = {}
  for _, k in ipairs(COMMON_ORDER) do c[#c + 1] = k end
  for _, k in ipairs(op.order) do c[#c + 1] = k end
  return c
end

local function unknown_task_field(op, what, k)
  local s = suggest(k, candidates(op))
  if s then
    fail(sfmt('%s: unknown field "%s" (did you mean "%s"?)', what, k, s), k)
  end
  local owners = {}
  for name, other in pairs(OPS) do
    if other.fields[k] then owners[#owners + 1] = name end
  end
  tsort(owners)
  if #owners > 0 then
    fail(sfmt('%s: unknown field "%s" (it is a field of %s tasks, not %s)', what, k,
      tconcat(owners, ", "), op.name), k)
  end
  fail(sfmt('%s: unknown field "%s"', what, k), k)
end

local function declare(self, opname, spec)
  local dag = DAGS[self]
  if not dag then
    fail(sfmt("d:%s{...} must be called with a colon on a DAG object: d:%s{ id = ... }", opname, opname))
  end
  local op = OPS[opname]
  if not op.order then prepare(op) end
  if not plain_table(spec) then
    fail(sfmt("d:%s expects a table of fields ({ id = ..., ... }), got %s", opname, describe(spec)))
  end
  local id = spec.id
  local what = sfmt('%s task "%s"', opname, type(id) == "string" and id or "?")
  local unknown
  local fields = op.fields
  for k in next, spec do
    if type(k) ~= "string" then
      fail(sfmt("%s: fields must be named (id = ...), found a positional value %s", what, describe(spec[k])))
    end
    if not COMMON[k] and not fields[k] then
      unknown = unknown or {}
      unknown[#unknown + 1] = k
    end
  end
  if unknown then
    tsort(unknown)
    unknown_task_field(op, what, unknown[1])
  end
  if id == nil then fail(sfmt('%s task: missing required field "id"', opname)) end
  v_id(id, opname .. " task", "id")
  local prev = dag.by_id[id]
  if prev then
    fail(sfmt('duplicate task id "%s" in DAG "%s" (first declared at line %d)', id, dag.id, prev.line), "id")
  end

  local line = userline()
  local rec = { id = id, op = op.model, opname = opname, line = line, dag = dag }
  local defaults = dag.defaults
  for i = 3, #COMMON_ORDER do -- after id and deps
    local k = COMMON_ORDER[i]
    local v = spec[k]
    if v ~= nil then
      rec[k] = COMMON[k](v, what, k, dag)
    elseif defaults and not (k == "retries" and NO_DEFAULT_RETRIES[opname]) then
      rec[k] = defaults[k]
    end
  end

  local cfg = {}
  local order = op.order
  local uses_baseline = false
  for i = 1, #order do
    local k = order[i]
    local v = spec[k]
    if v ~= nil then
      local x, flag = fields[k](v, what, k, dag)
      cfg[k] = x
      if flag then uses_baseline = true end
    end
  end
  for i = 1, #op.required do
    local k = op.required[i]
    if cfg[k] == nil then fail(sfmt('%s: missing required field "%s"', what, k)) end
  end
  if op.check then op.check(cfg, what, dag) end
  if op.extra then
    for k, v in pairs(op.extra) do cfg[k] = v end
  end
  if opname == "gate" then
    if uses_baseline and cfg.baseline == nil then
      fail(sfmt('%s: checks compare with baseline, but no "baseline" is set', what), "checks")
    end
    -- The gate reads the outputs of `from`, so it runs after it.
    add_edge(dag, cfg.from, id, fieldline(line, "from"))
  end
  rec.config = cfg

  local deps = spec.deps
  if deps ~= nil then
    local dline = fieldline(line, "deps")
    local ids
    if TASKS[deps] or type(deps) == "string" then
      ids = node_ids(dag, deps, what .. ": deps")
    elseif plain_table(deps) then
      ids = node_ids(dag, deps, what .. ": deps")
    else
      bad(what, "deps", "a list of tasks or task ids", deps)
    end
    for i = 1, #ids do add_edge(dag, ids[i], id, dline) end
  end

  local obj = setmetatable({}, TaskMT)
  TASKS[obj] = rec
  dag.tasks[#dag.tasks + 1] = rec
  dag.by_id[id] = rec
  return obj
end

---------------------------------------------------------------------------
-- DAGs

local DAG_ORDER = {
  "id", "description", "schedule", "timezone", "start_date", "end_date", "catchup",
  "max_active_runs", "max_active_tasks", "on_event", "event_cooldown", "dagrun_timeout", "params",
  "default_args", "tags", "is_paused_upon_creation", "on_failure", "on_success", "on_retry",
}
local DAG_FIELDS = {
  id = v_id, description = v_string, schedule = v_nonempty, timezone = v_nonempty,
  start_date = v_date, end_date = v_date, catchup = v_bool,
  max_active_runs = v_int(1, 100000, "an integer"), max_active_tasks = v_int(1, 100000, "an integer"),
  on_event = v_idlist, event_cooldown = v_duration, dagrun_timeout = v_duration, params = v_table,
  default_args = true, tags = v_strlist, is_paused_upon_creation = v_bool,
  on_failure = v_notify, on_success = v_notify, on_retry = v_notify,
}

local DEFAULTABLE = {}
for _, k in ipairs(COMMON_ORDER) do
  if not NOT_DEFAULTABLE[k] then DEFAULTABLE[#DEFAULTABLE + 1] = k end
end
local DEFAULTABLE_SET = {}
for _, k in ipairs(DEFAULTABLE) do DEFAULTABLE_SET[k] = COMMON[k] end

-- Going on after a bad task or DAG, so that one load reports every one of
-- them (each as file:line: message), not only the first: the error is
-- reported (the file then yields no DAG), and a stand-in object with the
-- same id lets the rest of the file run as written. Limits still end the
-- file (core.pcall lets them through), and so does a mistake no stand-in
-- can cover (a method called without its object).
local report, cpcall = core.report, core.pcall
local TaskMT, DagMT

local function stand_in_task(dag, opname, spec)
  local id = plain_table(spec) and spec.id or nil
  local rec = { id = is_id(id) and id or "?", op = "empty", opname = opname, line = userline(), dag = dag,
                config = {}, broken = true }
  if is_id(id) and not dag.by_id[id] then dag.by_id[id] = rec end
  local obj = setmetatable({}, TaskMT)
  TASKS[obj] = rec
  return obj
end

local DagMethods = {}
for name in pairs(OPS) do
  DagMethods[name] = function(self, spec)
    local ok, r = cpcall(declare, self, name, spec)
    if ok then return r end
    local dag = DAGS[self]
    if not dag then error(r, 0) end
    report(tostring(r))
    return stand_in_task(dag, name, spec)
  end
end

-- d:chain(a, b, { c, d }, e): each argument runs after the one before it;
-- a list fans out from the previous argument and back in to the next.
function DagMethods.chain(self, ...)
  local dag = DAGS[self]
  if not dag then fail("use d:chain(...) with a colon on a DAG object") end
  local n = select("#", ...)
  local line = userline()
  local prev
  for i = 1, n do
    local ids = node_ids(dag, (select(i, ...)), sfmt("d:chain argument %d", i))
    if prev then link(dag, prev, ids, line) end
    prev = ids
  end
  return (select(n, ...))
end

-- d:task("id"): the task object declared with that id, or nil.
function DagMethods.task(self, id)
  local dag = DAGS[self]
  if not dag then fail("use d:task(id) with a colon on a DAG object") end
  local r = dag.by_id[id]
  if not r then return nil end
  for obj, rec in next, TASKS do
    if rec == r then return obj end
  end
  return nil
end

DagMT = {
  __index = function(t, k)
    if k == "id" then return DAGS[t].id end
    return DagMethods[k]
  end,
  __newindex = function(t) fail(sfmt('DAG "%s" is read-only', DAGS[t].id)) end,
  __tostring = function(t) return "dag " .. DAGS[t].id end,
  __metatable = "dagd.dag",
}

local M = {}

local function declare_dag(spec)
  if rawequal(spec, M) then fail("use dagd.dag{...} with a dot, not a colon") end
  if not plain_table(spec) then
    fail(sfmt("dagd.dag expects a table of fields ({ id = ..., ... }), got %s", describe(spec)))
  end
  local id = spec.id
  local what = sfmt('DAG "%s"', type(id) == "string" and id or "?")
  check_fields(spec, DAG_FIELDS, DAG_ORDER, what)
  if id == nil then fail('dagd.dag: missing required field "id"') end
  v_id(id, "DAG", "id")
  local prev = DAG_BY_ID[id]
  if prev then fail(sfmt('duplicate DAG id "%s" (first declared at line %d)', id, prev.line), "id") end

  local rec = { id = id, line = userline(), tasks = {}, by_id = {}, e_up = {}, e_down = {}, e_line = {} }
  for i = 2, #DAG_ORDER do
    local k = DAG_ORDER[i]
    local v = spec[k]
    if v ~= nil and k ~= "default_args" then rec[k] = DAG_FIELDS[k](v, what, k) end
  end
  local da = spec.default_args
  if da ~= nil then
    if not plain_table(da) then bad(what, "default_args", "a table of task fields", da) end
    local w = what .. ": default_args"
    check_fields(da, DEFAULTABLE_SET, DEFAULTABLE, w)
    local defaults = {}
    for _, k in ipairs(DEFAULTABLE) do
      if da[k] ~= nil then defaults[k] = COMMON[k](da[k], w, k) end
    end
    rec.defaults = defaults
  end
  local obj = setmetatable({}, DagMT)
  DAGS[obj] = rec
  DAG_LIST[#DAG_LIST + 1] = rec
  DAG_BY_ID[id] = rec
  return obj
end

function M.dag(spec)
  local ok, r = cpcall(declare_dag, spec)
  if ok then return r end
  if rawequal(spec, M) then error(r, 0) end
  report(tostring(r))
  -- A stand-in, so that the DAG's tasks are still checked.
  local id = plain_table(spec) and spec.id or nil
  local rec = { id = is_id(id) and id or "?", line = userline(), tasks = {}, by_id = {}, e_up = {}, e_down = {},
                e_line = {}, broken = true }
  if is_id(id) and not DAG_BY_ID[id] then DAG_BY_ID[id] = rec end
  local obj = setmetatable({}, DagMT)
  DAGS[obj] = rec
  return obj
end

-- Relative paths in a DAG file start at the file's own folder.
local function resolve(path)
  if type(path) ~= "string" then return path end
  if ssub(path, 1, 1) == "/" then return path end
  return DIR .. "/" .. path
end

local read_json, glob = core.read_json, core.glob
function M.read_json(path)
  if type(path) ~= "string" then fail("dagd.read_json(path): path must be a string") end
  return read_json(resolve(path), path)
end
function M.glob(pattern)
  if type(pattern) ~= "string" then fail("dagd.glob(pattern): pattern must be a string") end
  return glob(pattern)
end
M.null = core.null
M.file = PATH
M.dir = DIR
M.version = core.version
M.trigger_rules = setmetatable({}, { __index = TRIGGER_RULES, __len = function() return #TRIGGER_RULES end,
  __newindex = function() end, __metatable = false })

---------------------------------------------------------------------------
-- The sandbox: the only globals a DAG file sees.

local ENV = {
  assert = assert, error = error, ipairs = ipairs, next = next, pairs = pairs,
  pcall = core.pcall, xpcall = core.xpcall, select = select, tonumber = tonumber, tostring = tostring,
  type = type, getmetatable = getmetatable, rawequal = rawequal,
  rawget = rawget, rawset = rawset, rawlen = rawlen,
  -- The libraries themselves, not copies: trusted code captured what it
  -- uses above, so a file that changes them only changes its own view.
  string = string, table = table, math = math, utf8 = utf8,
  -- os.getenv hides the daemon's own settings and secrets: DAGD_* names
  -- read as unset.
  os = { time = os.time, date = os.date, clock = os.clock, getenv = core.getenv },
  _VERSION = _VERSION,
}
ENV._G = ENV

-- Finalizers run with hooks off, so a __gc that loops would escape the
-- budget and the time limit: tables with one are refused. (A __gc added to
-- the metatable later never runs, as the manual says.)
function ENV.setmetatable(t, mt)
  if type(mt) == "table" and rawget(mt, "__gc") ~= nil then
    error("setmetatable: __gc metamethods are not allowed in a DAG file", 2)
  end
  return setmetatable(t, mt)
end

function ENV.print(...)
  local n = select("#", ...)
  local parts = {}
  for i = 1, n do parts[i] = tostring((select(i, ...))) end
  io_stderr:write(tconcat(parts, "\t"), "\n")
end

function ENV.require(name)
  if name == "dagd" then return M end
  error(sfmt('module "%s" is not available in a DAG file (only "dagd" is)', tostring(name)), 2)
end

-- Text chunks only, and in the sandbox unless the caller passes an env.
function ENV.load(chunk, name, mode, ...)
  local env = ENV
  if select("#", ...) > 0 then env = (...) end
  if mode ~= nil and mode ~= "t" and mode ~= "bt" then
    return nil, "load: binary chunks are not allowed in a DAG file"
  end
  return load(chunk, name, "t", env)
end

ENV.io = {
  open = function(path, mode)
    if type(path) ~= "string" then error("io.open: path must be a string", 2) end
    if mode ~= nil and mode ~= "r" and mode ~= "rb" then
      error(sfmt('io.open: mode "%s" is not allowed in a DAG file (read-only)', tostring(mode)), 2)
    end
    return core_open(resolve(path), path)
  end,
  lines = function(path, ...)
    if type(path) ~= "string" then error("io.lines: a file name is required in a DAG file", 2) end
    local f, msg = core_open(resolve(path), path)
    if not f then error(msg, 2) end
    -- As io.lines does: the file is closed when the loop ends (4th value).
    return f:lines(...), nil, nil, f
  end,
}

return { module = M, env = ENV, dags = DAG_LIST, list_mt = LIST }
