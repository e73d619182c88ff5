-- The docker operator against a real engine. conf.image is the imported
-- image; conf.reg the local registry's host:port.
local dagd = require "dagd"
local d = dagd.dag { id = "containers" }
local img = "{{ conf.image }}"
d:docker { id = "ok", image = img, pull = "never", network = "none", cmd = { "0", "0", "f1=0.93" },
  env = { DOCKER_TASK_VAR = "tv-{{ ds }}" } }
d:docker { id = "code", image = img, pull = "never", network = "none", cmd = { "3" } }
d:docker { id = "notfound", image = img, pull = "never", network = "none", entrypoint = "/nope" }
d:docker { id = "noimage", image = "dagd-test/absent:1", pull = "never", network = "none" }
d:docker { id = "timeout", image = img, pull = "never", network = "none", cmd = { "0", "60" },
  execution_timeout = 2 }

local s = dagd.dag { id = "sleepy" }
s:docker { id = "nap", image = img, pull = "never", network = "none", cmd = { "7", "{{ conf.secs }}" } }

-- A scheduled run (default run id, with its colons): the latest daily
-- interval runs as soon as dagd starts.
local n = dagd.dag { id = "nightly", schedule = "@daily", start_date = "2026-01-01", catchup = false }
n:docker { id = "score", image = "dagd-test/app:1", pull = "never", network = "none",
  cmd = { "0", "0", "scored={{ ds }}" } }

-- The image the registry resolved, pulled by its digest.
local p = dagd.dag { id = "pulled" }
local resolve = p:registry { id = "resolve", action = "resolve", image = "{{ conf.reg }}/app", tag = "candidate" }
local run = p:docker { id = "run", image = "{{ outputs.resolve.image }}", pull = "always", network = "none",
  cmd = { "0", "0", "digest={{ outputs.resolve.digest }}" } }
p:chain(resolve, run)
