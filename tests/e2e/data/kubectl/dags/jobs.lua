-- Docker tasks run as Kubernetes Jobs (executor = "kubernetes" on the task).
local dagd = require "dagd"
local d = dagd.dag { id = "k8s_ok", params = { epochs = 3 } }
d:docker { id = "train", executor = "kubernetes", image = "reg.local/train:1", cmd = { "--epochs", "{{ params.epochs }}" },
  cpus = 2, memory = "4g", gpus = 1, env = { MODE = "full" }, outputs = { "model_uri" },
  pod_template = { spec = { nodeSelector = { pool = "gpu" } } } }
d = dagd.dag { id = "k8s_fail" }
d:docker { id = "train", executor = "kubernetes", image = "reg.local/train:1" }
d = dagd.dag { id = "k8s_timeout" }
d:docker { id = "train", executor = "kubernetes", image = "reg.local/train:1", execution_timeout = "1s" }
