/* The kubectl operator's command: kubectl with the task's context,
 * kubeconfig and namespace and its args; and which kubectl and docker
 * tasks run in the dagd binary instead (apply and wait; the Kubernetes
 * executor).
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "command/internal.h"

const dagd_kubectl_flag dagd_kubectl_flags[] = {
    {"context", "--context"}, {"kubeconfig", "--kubeconfig"}, {"namespace", "--namespace"}};
const size_t dagd_kubectl_n_flags = DAGD_ARRAY_LEN(dagd_kubectl_flags);

int dagd__command_kubectl_argv(builder *b, strv *argv) {
  const dagd_task *t = b->info->task;
  dagd__strv_push(argv, dagd_strdup("kubectl"));
  for (size_t i = 0; i < dagd_kubectl_n_flags; i++) {
    const char *s = dagd__command_cfg_str(t, dagd_kubectl_flags[i].key);
    if (s == NULL) continue;
    dagd__strv_push(argv, dagd_strdup(dagd_kubectl_flags[i].flag));
    if (dagd__command_push_rendered(b, argv, dagd_kubectl_flags[i].key, s) < 0) return -1;
  }
  const json_t *args = json_object_get(t->config, "args");
  if (json_is_array(args)) return dagd__command_push_array(b, argv, "args", args);
  const char *apply = dagd__command_cfg_str(t, "apply");
  if (apply == NULL) return dagd_err_set(b->err, DAGD_EINVAL, "task \"%s\": kubectl needs args or apply", t->id);
  dagd__strv_push(argv, dagd_strdup("apply"));
  dagd__strv_push(argv, dagd_strdup("-f"));
  return dagd__command_push_rendered(b, argv, "apply", apply);
}


bool dagd__command_kubectl_in_process(const dagd_task *t) {
  return json_object_get(t->config, "apply") != NULL || json_object_get(t->config, "wait") != NULL;
}

bool dagd__command_on_kubernetes(const dagd_try_info *info) {
  if (info->task->op != DAGD_OP_DOCKER) return false;
  const char *own = dagd__command_cfg_str(info->task, "executor");
  const char *ex = own ? own : info->executor;
  return ex != NULL && strcmp(ex, "kubernetes") == 0;
}

const char *dagd__command_operator_name(const dagd_try_info *info) {
  return dagd__command_on_kubernetes(info) ? "k8sjob" : dagd_op_name(info->task->op);
}

void dagd__command_k8s_spec(builder *b, json_t *spec, char *const *task_env) {
  /* The try's own variables only: never the daemon's environment (its
   * DAGD_SECRET_* least of all), which would land in the Job manifest. */
  static const char *const try_vars[] = {"DAGD_DAG_ID", "DAGD_RUN_ID", "DAGD_TASK_ID", "DAGD_TRY_NUMBER",
                                         "DAGD_LOGICAL_DATE", "DAGD_DS", "DAGD_DATA_INTERVAL_START",
                                         "DAGD_DATA_INTERVAL_END", "DAGD_CONF"};
  const dagd_task *t = b->info->task;
  json_t *env = json_object();
  for (char *const *e = task_env; e && *e; e++) {
    const char *eq = strchr(*e, '=');
    if (eq == NULL) continue;
    size_t klen = (size_t)(eq - *e);
    bool keep = false;
    for (size_t i = 0; !keep && i < DAGD_ARRAY_LEN(try_vars); i++)
      keep = strlen(try_vars[i]) == klen && strncmp(*e, try_vars[i], klen) == 0;
    for (size_t i = 0; !keep && i < t->n_env; i++)
      keep = strlen(t->env[i].key) == klen && strncmp(*e, t->env[i].key, klen) == 0;
    if (!keep) continue;
    char *key = dagd_strndup(*e, klen);
    json_t *v = json_string(eq + 1);
    json_object_set_new(env, key, v ? v : json_string(""));
    free(key);
  }
  /* The pod cannot reach the try's folder: it writes its outputs to its
   * termination message, which the operator reads back. */
  json_object_set_new(env, "DAGD_OUTPUT", json_string("/dev/termination-log"));
  json_object_set_new(spec, "env", env);
}
