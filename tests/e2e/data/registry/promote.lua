-- The registry operator against a real docker-registry: wait for the
-- candidate tag, resolve its digest, promote it to prod, list the tags,
-- delete an old manifest. conf.reg is the registry's host:port.
local dagd = require "dagd"
local d = dagd.dag { id = "promote" }
local img = "{{ conf.reg }}/team/model"
local wait = d:registry { id = "wait", action = "wait", image = img, tag = "candidate", interval = 1, timeout = 30 }
local resolve = d:registry { id = "resolve", action = "resolve", image = img, tag = "candidate" }
local promote = d:registry { id = "promote", action = "promote", image = img,
  digest = "{{ outputs.resolve.digest }}", to = "prod" }
local tags = d:registry { id = "tags", action = "tags", image = img }
local delete = d:registry { id = "delete", action = "delete", image = img, tag = "old" }
d:chain(wait, resolve, promote, tags, delete)

-- A tag that appears while the tasks wait: one polls within its try, one
-- is rescheduled between pokes.
local w = dagd.dag { id = "waiter" }
w:registry { id = "poll", action = "wait", image = img, tag = "{{ conf.tag }}", interval = 1, timeout = 60 }
w:registry { id = "resched", action = "wait", image = img, tag = "{{ conf.tag }}", interval = 1, mode = "reschedule" }
w:registry { id = "missing", action = "wait", image = img, tag = "never", interval = 1, timeout = 2 }
