-- DAGs for dagctl's habits test (tests/e2e/test_cli.sh).
local dagd = require "dagd"

-- Stores kilobytes of output: the table must not print them on one line.
local o = dagd.dag { id = "outs" }
o:shell { id = "big", outputs = { "big", "small" },
          cmd = "printf 'big=%s\\nsmall=1\\n' \"$(yes x | head -n 3000 | tr -d '\\n')\" > \"$DAGD_OUTPUT\"" }

-- Fails its first try (once the test lets it end, by creating go) and
-- succeeds its second: logs -f must follow it through the retry.
local f = dagd.dag { id = "flaky" }
f:shell { id = "t", retries = 2, retry_delay = "1s",
          cmd = "echo try $DAGD_TRY_NUMBER starts; " ..
                "if [ $DAGD_TRY_NUMBER = 1 ]; then while [ ! -e go ]; do sleep 0.05; done; echo first try fails; exit 1; fi; " ..
                "echo second try succeeds" }

-- Backfill target: never scheduled by itself; two runs at once.
local d = dagd.dag { id = "daily", schedule = "@daily", start_date = "2030-01-01", max_active_runs = 2 }
d:chain(d:shell { id = "a", cmd = "true" }, d:shell { id = "b", cmd = "true" })

-- Takes any conf; for -o yaml against -o json.
local p = dagd.dag { id = "plain" }
p:shell { id = "noop", cmd = "true" }
