/* The kubectl operator's command: kubectl with the task's context,
 * kubeconfig and namespace, then its args or `apply -f` of its manifest.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/util.h"
#include "ops/internal.h"

int dagd__ops_kubectl_argv(builder *b, strv *argv) {
  const dagd_task *t = b->info->task;
  static const struct { const char *key, *flag; } globals[] = {
      {"context", "--context"}, {"kubeconfig", "--kubeconfig"}, {"namespace", "--namespace"}};
  dagd__strv_push(argv, dagd_strdup("kubectl"));
  for (size_t i = 0; i < DAGD_ARRAY_LEN(globals); i++) {
    const char *s = dagd__ops_cfg_str(t, globals[i].key);
    if (s == NULL) continue;
    dagd__strv_push(argv, dagd_strdup(globals[i].flag));
    if (dagd__ops_push_rendered(b, argv, globals[i].key, s) < 0) return -1;
  }
  const json_t *args = json_object_get(t->config, "args");
  if (json_is_array(args)) return dagd__ops_push_array(b, argv, "args", args);
  const char *apply = dagd__ops_cfg_str(t, "apply");
  if (apply == NULL) return dagd_err_set(b->err, DAGD_EINVAL, "task \"%s\": kubectl needs args or apply", t->id);
  dagd__strv_push(argv, dagd_strdup("apply"));
  dagd__strv_push(argv, dagd_strdup("-f"));
  return dagd__ops_push_rendered(b, argv, "apply", apply);
}

