-- A tiny hello-world DAG: three shell tasks, one fan-out.
local dagd = require "dagd"

local d = dagd.dag {
  id = "hello",
  description = "Says hello, then goodbye, every hour",
  schedule = "@hourly",
  start_date = "2026-01-01",
  tags = { "example" },
}

local hello = d:shell { id = "hello", cmd = "echo hello from {{ dag_id }} for {{ ds }}" }
local date  = d:shell { id = "date",  cmd = { "date", "-u" } }
local bye   = d:shell { id = "goodbye", cmd = { "examples/hello/goodbye.sh", "{{ run_id }}" },
                        retries = 1, retry_delay = "10s" }

d:chain(hello, { date }, bye)
