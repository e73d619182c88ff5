/* The logs folder's layout (dagd/layout.h).
 * SPDX-License-Identifier: MIT */
#include "dagd/layout.h"
#include "dagd/util.h"

char *dagd_layout_run_dir(const char *logs, const char *dag_id, const char *run_id) {
  return dagd_asprintf("%s/%s/%s", logs, dag_id, run_id);
}

char *dagd_layout_run_base(const char *logs, const char *dag_id, const char *run_id) {
  return dagd_asprintf("%s/%s/%s/run", logs, dag_id, run_id);
}

char *dagd_layout_try_base(const char *logs, const char *dag_id, const char *run_id, const char *task_id,
                           long long try_number) {
  return dagd_asprintf("%s/%s/%s/%s/%lld", logs, dag_id, run_id, task_id, try_number);
}
