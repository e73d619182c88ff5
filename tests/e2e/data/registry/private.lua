-- A registry requiring basic auth: right credentials, wrong ones, none,
-- and a delete the registry refuses. conf.reg is its host:port.
local dagd = require "dagd"
local d = dagd.dag { id = "private" }
local img = "{{ conf.reg }}/team/model"
d:registry { id = "good", action = "resolve", image = img, tag = "candidate",
  username = "ci", password = '{{ secret("REG_PASS") }}' }
d:registry { id = "promote", action = "retag", image = img, from = "candidate", to = "prod",
  username = "ci", password = '{{ secret("REG_PASS") }}' }
d:registry { id = "bad", action = "resolve", image = img, tag = "candidate",
  username = "ci", password = '{{ secret("REG_BAD_PASS") }}' }
d:registry { id = "anonymous", action = "resolve", image = img, tag = "candidate" }
d:registry { id = "refused", action = "delete", image = img, tag = "candidate",
  username = "ci", password = '{{ secret("REG_PASS") }}' }

-- Bearer token auth and Link pagination (a scripted stand-in: Debian's
-- docker-registry neither paginates nor issues tokens). conf.stub is its host:port.
local s = dagd.dag { id = "token" }
s:registry { id = "tags", action = "tags", image = "{{ conf.stub }}/team/model",
  username = "ci", password = '{{ secret("REG_PASS") }}' }
s:registry { id = "bad", action = "tags", image = "{{ conf.stub }}/team/model",
  username = "ci", password = '{{ secret("REG_BAD_PASS") }}' }
