-- The deploy and kubectl operators against the recording kubectl stand-in;
-- analyses go to the test's HTTP server on $ANALYSIS_PORT.
local dagd = require "dagd"
local function url(path) return "http://127.0.0.1:{{ env.ANALYSIS_PORT }}" .. path end
local ERRORS = 'sum(rate(http_errors_total{track="canary"}[1m]))'

local d = dagd.dag { id = "canary_ok" }
d:deploy { id = "deploy", strategy = "canary", deployment = "api", image = "reg.local/api:2", namespace = "ml",
  steps = { 5, 25, 50, 100 }, wait_timeout = "2m",
  analysis = { http = { url = url("/health"), expect_status = 200, expect_body = "ok" },
               prometheus = { url = url("/good"), query = ERRORS, threshold = "< 0.05" } } }

d = dagd.dag { id = "canary_bad" }
d:deploy { id = "deploy", strategy = "canary", deployment = "api", image = "reg.local/api:2", namespace = "ml",
  steps = { 5, 25, 50, 100 }, wait_timeout = "2m",
  analysis = { prometheus = { url = url("/bad"), query = ERRORS, threshold = "< 0.05" } } }

d = dagd.dag { id = "bg" }
d:deploy { id = "deploy", strategy = "blue_green", deployment = "api", service = "api", namespace = "ml",
  manifest = "k8s/api.yaml", image = "reg.local/api:2", wait_timeout = "2m",
  analysis = { http = { url = url("/health") } } }

d = dagd.dag { id = "bg_back" }
d:deploy { id = "switch_back", strategy = "blue_green", deployment = "api", service = "api", namespace = "ml",
  switch_back = true, wait_timeout = "2m" }

d = dagd.dag { id = "rolling" }
d:deploy { id = "deploy", strategy = "rolling", deployment = "api", image = "reg.local/api:3", context = "prod",
  wait_timeout = "2s" }

d = dagd.dag { id = "apply", params = { replicas = 3 } }
d:kubectl { id = "migrate", apply = "k8s/migrate.yaml", namespace = "ml", wait = true, wait_timeout = "90s" }
