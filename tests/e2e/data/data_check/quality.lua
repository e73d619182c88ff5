-- A data check before training: schema, ranges, missingness, uniqueness,
-- row count and drift against a reference; training runs only on data
-- that passes. The file to check comes from the run's conf.
local dagd = require "dagd"
local d = dagd.dag { id = "quality" }
local check = d:data_check {
  id = "check",
  path = "data/{{ conf.file | default('clean.csv') }}",
  reference = "data/reference.csv",
  schema = { id = "int", amount = "float", country = "string", fraud = "bool" },
  ranges = { amount = { min = 0, max = 1000 } },
  max_missing = 0.05,
  unique = { "id" },
  min_rows = 100,
  psi_max = 0.2,
  ks_max = { amount = 0.1 },
}
local train = d:shell { id = "train", cmd = "echo trained >> trained.txt" }
d:chain(check, train)
