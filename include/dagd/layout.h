/* The logs folder's layout, spelled in one place: a run's files live in
 * <logs>/<dag_id>/<run_id>, a try's in <logs>/<dag_id>/<run_id>/<task_id>
 * under the base name <try_number>, to which each try file adds its
 * suffix (.log, the task's output; .pid, the shim's record and lock;
 * .exit, the end; .out, the outputs the task wrote). The ids are valid
 * ones (dagd_id_problem): each is one path component.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_LAYOUT_H
#define DAGD_LAYOUT_H

#define DAGD_TRY_LOG_SUFFIX ".log"
#define DAGD_TRY_PID_SUFFIX ".pid"
#define DAGD_TRY_EXIT_SUFFIX ".exit"
#define DAGD_TRY_OUT_SUFFIX ".out"
#define DAGD_TRY_CONF_SUFFIX ".conf.json"
/* A run's own notifications log: <run dir>/run.notify.log. */
#define DAGD_RUN_NOTIFY_LOG_SUFFIX ".notify.log"

/* <logs>/<dag_id>/<run_id>: everything of one run (what pruning removes). */
char *dagd_layout_run_dir(const char *logs, const char *dag_id, const char *run_id);
/* <logs>/<dag_id>/<run_id>/run: the base path of the run's own files. */
char *dagd_layout_run_base(const char *logs, const char *dag_id, const char *run_id);
/* <logs>/<dag_id>/<run_id>/<task_id>/<try_number>: a try's base path. */
char *dagd_layout_try_base(const char *logs, const char *dag_id, const char *run_id, const char *task_id,
                           long long try_number);

#endif
