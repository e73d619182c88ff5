-- Run as a Kubernetes Job because the daemon's executor is kubernetes.
local dagd = require "dagd"
local d = dagd.dag { id = "k8s_adopt" }
d:docker { id = "train", image = "reg.local/train:1" }
