-- The fraud-detection MLOps pipeline (DESIGN.md section 3): collect the
-- day's transactions, clean them, check the data, train, evaluate, gate the
-- new model against the last successful run, promote its image and roll it
-- out as a canary. Runs nightly at 02:00 Berlin time and whenever
-- monitoring reports drift.
local dagd = require "dagd"

local REGISTRY = "registry.local:5000"

local d = dagd.dag {
  id = "fraud_detection",
  description = "Nightly retraining of the fraud model, also on drift",
  schedule = "0 2 * * *",
  timezone = "Europe/Berlin",
  start_date = "2026-01-01",
  catchup = false,
  max_active_runs = 1,
  max_active_tasks = 8,
  on_event = { "drift_detected" },
  event_cooldown = "1h",
  dagrun_timeout = "12h",
  params = { min_f1 = 0.90, max_latency_ms = 100 },
  default_args = { retries = 2, retry_delay = "5m", retry_exponential_backoff = true,
                   max_retry_delay = "1h", execution_timeout = "2h", pool = "default" },
  tags = { "ml", "fraud" },
}

local collect = d:shell {
  id = "collect",
  cmd = { "examples/fraud/collect.sh", "{{ ds }}" },
  outputs = { "rows" },
  doc = "Pulls the day's transactions into data/raw/{{ ds }}.csv",
}

local clean = d:docker {
  id = "clean",
  image = REGISTRY .. "/etl:1.4",
  cmd = { "python", "clean.py", "--date", "{{ ds }}" },
  volumes = { "data:/data" },
  pull = "missing",
}

-- A data check: schema and row counts, before any GPU time is spent.
local validate = d:shell {
  id = "validate",
  cmd = { "examples/fraud/validate.sh", "data/clean/{{ ds }}.csv" },
  retries = 0,
}

local train = d:docker {
  id = "train",
  image = REGISTRY .. "/fraud-train:2.1",
  cmd = { "python", "train.py", "--date", "{{ ds }}", "--run", "{{ run_id }}" },
  pool = "gpu",
  gpus = "all",
  execution_timeout = "6h",
  priority_weight = 10,
}

local evaluate = d:docker {
  id = "evaluate",
  image = REGISTRY .. "/fraud-train:2.1",
  cmd = { "python", "evaluate.py", "--run", "{{ run_id }}" }, -- writes f1=..., latency_ms=... to $DAGD_OUTPUT
  outputs = { "f1", "latency_ms" },
}

local gate = d:gate {
  id = "gate",
  from = "evaluate",
  checks = {
    f1 = { ">= 0.9", ">= baseline - 0.01" },
    latency_ms = "< 100",
  },
  baseline = "last_success",
}

local promote = d:registry {
  id = "promote",
  action = "retag",
  image = REGISTRY .. "/fraud",
  from = "{{ run_id }}",
  to = "prod",
}

local deploy = d:deploy {
  id = "deploy",
  strategy = "canary",
  steps = { 5, 25, 50, 100 },
  pause = "5m",
  manifest = "examples/fraud/k8s/fraud.yaml",
  namespace = "fraud",
  analysis = { metric = "error_rate", max = 0.01, interval = "1m" },
  rollback = true,
  on_failure = { url = "http://127.0.0.1:9093/api/v2/alerts", method = "POST" },
}

d:chain(collect, clean, validate, train, evaluate, gate, promote, deploy)
