-- The fraud-detection MLOps pipeline (DESIGN.md section 3): collect the
-- day's transactions, clean them, check the data (and its drift from the
-- reference), train, evaluate, gate the new model against the last
-- successful run, promote its image and roll it out as a canary. Runs
-- nightly at 02:00 Berlin time and whenever monitoring reports drift.
--
-- The steps are small stand-ins in examples/fraud/ (Python 3 and sh, no
-- other stack): a seeded generator of synthetic transactions, a cleaner, a
-- logistic regression and its evaluation. So the pipeline runs as shipped
-- against a local docker-registry and any kubectl (tests/e2e/test_pipeline.sh
-- runs it end to end with a recording kubectl). The walk-through is in
-- docs/tutorial.md, "The example pipeline".
local dagd = require "dagd"

-- Where the pipeline's services are: a real cluster's names by default,
-- overridden by dagd's environment (the e2e test points them at stand-ins).
local function setting(name, default) return os.getenv(name) or default end
local REGISTRY = setting("FRAUD_REGISTRY", "registry.local:5000") -- host:port, plain HTTP
local PROMETHEUS = setting("FRAUD_PROMETHEUS", "http://prometheus.monitoring:9090")
local CANARY_PAUSE = setting("FRAUD_CANARY_PAUSE", "5m")
-- One folder per run for its files (relative to this file's folder).
local RUN = setting("FRAUD_DATA", "examples/fraud/data") .. "/{{ run_id }}"

local d = dagd.dag {
  id = "fraud_detection",
  description = "Nightly retraining of the fraud model, also on drift",
  schedule = "0 2 * * *",
  timezone = "Europe/Berlin",
  start_date = "2026-01-01",
  catchup = false,
  max_active_runs = 1,
  max_active_tasks = 8,
  on_event = { "drift_detected" }, -- an Alertmanager alert labelled event=drift_detected
  event_cooldown = "1h",
  dagrun_timeout = "12h",
  params = { psi_warn = 0.2 },
  default_args = { retries = 2, retry_delay = "5m", retry_exponential_backoff = true,
                   max_retry_delay = "1h", execution_timeout = "2h", pool = "default" },
  tags = { "ml", "fraud" },
}

-- The day's transactions. The stand-in generates them, seeded by the
-- logical date (or conf.seed); conf.drift (or an alert annotation `drift`)
-- shifts their distribution, as a changing world would.
local collect = d:shell {
  id = "collect",
  cmd = { "examples/fraud/collect.py", "--ds", "{{ ds }}", "--out", RUN .. "/raw.csv" },
  outputs = { "rows", "seed", "drift", "path" },
}

local clean = d:shell {
  id = "clean",
  cmd = { "examples/fraud/clean.py", RUN .. "/raw.csv", RUN .. "/clean.csv" },
  outputs = { "rows", "dropped_duplicate", "dropped_missing_amount", "dropped_refund" },
}

-- The data check, before any GPU time is spent. Schema, ranges, missing
-- values, unique ids and row counts fail the run. Drift from the reference
-- (the data the current model was trained on) is measured on every feature
-- but does not stop the run: retraining on the new data is the usual answer
-- to drift, and the gate below decides whether the result is good enough.
-- Only a PSI so large that the export must be broken fails here.
local validate = d:data_check {
  id = "validate",
  path = RUN .. "/clean.csv",
  reference = "examples/fraud/reference.csv",
  schema = { id = "int", day = "date", hour = "int", amount = "float", category = "string",
             country = "string", card_present = "bool", is_fraud = "int" },
  ranges = { hour = { min = 0, max = 23 }, amount = { min = 0, max = 100000 }, is_fraud = { min = 0, max = 1 } },
  max_missing = 0,
  unique = { "id" },
  min_rows = 1000,
  drift = { "amount", "hour", "category", "country", "card_present" },
  psi_max = 2,
  retries = 0,
}

-- Says which columns drifted beyond params.psi_warn (a warning in the log,
-- and outputs for the API and the UI); never fails.
local drift = d:lua {
  id = "drift",
  deps = { validate },
  retries = 0,
  fn = function(c)
    local drifted, worst = {}, 0
    for _, col in ipairs({ "amount", "hour", "category", "country", "card_present" }) do
      local psi = tonumber(c.outputs.validate["psi." .. col]) or 0
      if psi > worst then worst = psi end
      if psi > c.params.psi_warn then
        drifted[#drifted + 1] = col
        print(string.format("WARNING: %s drifted from the reference: PSI %.3f > %.2f", col, psi, c.params.psi_warn))
      end
    end
    return { drifted = #drifted > 0, columns = table.concat(drifted, ","), max_psi = string.format("%.4f", worst) }
  end,
}

local train = d:shell {
  id = "train",
  cmd = { "examples/fraud/train.py", RUN .. "/clean.csv", RUN .. "/model.json" },
  pool = "gpu",
  execution_timeout = "6h",
  priority_weight = 10,
  outputs = { "model", "train_rows", "log_loss" },
}

-- Writes f1, auc and latency_ms (p99 of scoring one transaction) to $DAGD_OUTPUT.
local evaluate = d:shell {
  id = "evaluate",
  cmd = { "examples/fraud/evaluate.py", RUN .. "/clean.csv", RUN .. "/model.json" },
  outputs = { "f1", "auc", "latency_ms", "test_rows" },
}

-- The serving image with the model in it, pushed as fraud:candidate.
local package = d:shell {
  id = "package",
  cmd = { "examples/fraud/package.sh", RUN .. "/model.json", REGISTRY, "fraud", "candidate" },
  outputs = { "digest", "image" },
}

-- The new model must be good in absolute terms and no worse than the last
-- model that made it through (the previous successful run). The first
-- model has no baseline: those checks are skipped, the others still apply.
local gate = d:gate {
  id = "gate",
  from = evaluate,
  checks = {
    f1 = { ">= 0.7", ">= baseline - 0.1" },
    auc = { ">= 0.95", ">= baseline - 0.01" },
    latency_ms = "< 50",
  },
  baseline = "last_success",
  retries = 0,
}

-- prod points at the candidate's digest (the manifest is copied, not rebuilt).
local promote = d:registry {
  id = "promote",
  action = "promote",
  image = REGISTRY .. "/fraud",
  digest = "{{ outputs.package.digest }}",
  to = "prod",
  insecure = true,
}

-- 5% -> 25% -> 50% -> 100% of the pods run the new image; after each step
-- the canary's error ratio must stay under 1%, or everything goes back.
local deploy = d:deploy {
  id = "deploy",
  strategy = "canary",
  deployment = "fraud",
  namespace = "fraud",
  manifest = "examples/fraud/k8s/fraud.yaml",
  image = REGISTRY .. "/fraud@{{ outputs.promote.digest }}",
  steps = { 5, 25, 50, 100 },
  pause = CANARY_PAUSE,
  analysis = { prometheus = {
    url = PROMETHEUS,
    query = 'sum(rate(fraud_http_errors_total{track="canary"}[5m])) / sum(rate(fraud_http_requests_total{track="canary"}[5m]))',
    threshold = "< 0.01",
  } },
  rollback = true,
  retries = 0,
}

d:chain(collect, clean, validate, train, { evaluate, package }, gate, promote, deploy)
