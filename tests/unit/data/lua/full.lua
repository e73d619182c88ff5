-- Every constructor and edge form of the DAG API (test_lua.c checks the model).
local dagd = require "dagd"

local d = dagd.dag {
  id = "full",
  description = "all the things",
  schedule = "0 2 * * *",
  timezone = "Europe/Berlin",
  start_date = "2026-01-01",
  end_date = "2027-01-01T00:00:00Z",
  catchup = true,
  max_active_runs = 2,
  max_active_tasks = 4,
  on_event = { "drift_detected", "manual.retrain" },
  event_cooldown = "1h",
  dagrun_timeout = 7200,
  params = { min_f1 = 0.9, regions = { "eu", "us" }, nested = { k = true } },
  default_args = { retries = 2, retry_delay = "5m", retry_exponential_backoff = true,
                   max_retry_delay = "1h", execution_timeout = "2h", pool = "default" },
  tags = { "ml", "fraud" },
  is_paused_upon_creation = true,
  on_failure = { url = "http://127.0.0.1:9/hook", method = "post", headers = { ["X-Token"] = "t" } },
  on_success = "http://127.0.0.1:9/ok",
}

local collect = d:shell { id = "collect", cmd = { "scripts/collect.sh", "{{ ds }}", 3 },
                          env = { REGION = "eu", N = 3 }, env_clear = true, cwd = "/tmp",
                          outputs = { "rows" }, doc = "collects", sla = "30m" }
local clean = d:docker { id = "clean", image = "registry.local:5000/etl:1.4",
                         cmd = { "python", "clean.py" }, entrypoint = "/bin/sh",
                         volumes = { "/data:/data:ro" }, workdir = "/w", user = "1000",
                         network = "none", gpus = "all", pull = "missing", cpus = 1.5,
                         memory = "4g", auto_remove = true, retries = 0 }
local apply = d:kubectl { id = "apply", apply = "k8s/job.yaml", namespace = "ml",
                          wait = { ["for"] = "condition=complete" }, wait_timeout = "10m" }
local kargs = d:kubectl { id = "kargs", args = { "get", "pods" }, context = "kind" }
local probe = d:http { id = "probe", url = "http://127.0.0.1:9/health", method = "get",
                       expect_status = { 200, 204 }, outputs_from = { ok = "/ok" },
                       timeout = "5s", retries_on_5xx = 2 }
local train = d:docker { id = "train", image = "trainer:1", pool = "gpu", execution_timeout = "6h",
                         priority_weight = 5 }
local evaluate = d:docker { id = "evaluate", image = "trainer:1", outputs = { "f1", "latency_ms" } }
local gate = d:gate { id = "gate", from = evaluate,
                      checks = { f1 = { ">= 0.9", ">= baseline - 0.01" }, latency_ms = "< 100" },
                      baseline = "last_success" }
local promote = d:registry { id = "promote", action = "retag", image = "registry.local:5000/fraud",
                             from = "{{ run_id }}", to = "prod", insecure = true }
local deploy = d:deploy { id = "deploy", strategy = "canary", steps = { 5, 25, 50, 100 },
                          manifest = "k8s/fraud.yaml", analysis = { metric = "error_rate", max = 0.01 },
                          rollback = true, pause = "2m" }
local pick = d:branch { id = "pick", fn = function(ctx) return "deploy" end }
local guard = d:short_circuit { id = "guard", fn = function() return true end }
local wait = d:sensor { id = "wait", poke = "file", path = "/data/ready", interval = 30,
                        timeout = "1h", mode = "reschedule", soft_fail = true }
local custom = d:sensor { id = "custom", poke = function() return true end }
local luatask = d:lua { id = "luatask", fn = function() end,
                        trigger_rule = "all_done", on_retry = { url = "http://x/r" } }
local done = d:empty { id = "done", trigger_rule = "none_failed_min_one_success" }

-- every edge form
d:chain(collect >> clean)
d:chain(clean, { train, probe }, evaluate)
promote:after(gate)
d:chain(promote >> pick >> deploy)
guard:after(promote, "probe")
wait:before(custom)
d:chain({ apply, kargs }, luatask)
done:after(deploy, custom, luatask)
d:chain(clean << wait)

-- a second DAG in the same file, deps by id string and by task object
local d2 = dagd.dag { id = "second" }
local x = d2:empty { id = "x" }
d2:empty { id = "y", deps = { x, "z" } }
d2:empty { id = "z" }
assert(d2:task("x") == x)
assert(x.id == "x" and x.op == "empty" and x.dag_id == "second")
