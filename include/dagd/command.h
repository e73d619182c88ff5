/* The command room (src/command/): operators on the daemon's side, run
 * inside the daemon before a try starts. From a task of the model and
 * what one try knows (run, dates, conf, upstream outputs), it builds the
 * template context and the exact command the try runs: argv, environment
 * and working directory; and it holds the table of operator kinds. A
 * templated value is never shell code: argv elements are rendered as they
 * are, and in a `cmd` string (run by /bin/sh -c) every templated value is
 * quoted for where it stands. Also parses what a task wrote to
 * $DAGD_OUTPUT. No I/O. The other side, what runs inside the try's child
 * as `dagd op SPEC`, is src/operators/.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_COMMAND_H
#define DAGD_COMMAND_H

#include <jansson.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/model.h"
#include "dagd/template.h"

struct dagd_err;

/* Exit statuses with a meaning of their own for the scheduler. */
#define DAGD_EXIT_SKIP 98        /* soft fail: the task instance is skipped */
#define DAGD_EXIT_RESCHEDULE 99  /* a sensor in reschedule mode: poke again later, no try used */

/* Largest $DAGD_OUTPUT accepted. */
#define DAGD_OUTPUT_MAX (64 * 1024)
/* $DAGD_CONF is set only for a conf up to this many bytes (the whole conf
 * is always in the file $DAGD_CONF_FILE names): the kernel refuses any
 * environment string over 128 KiB (MAX_ARG_STRLEN). */
#define DAGD_CONF_ENV_MAX (64 * 1024)
/* The largest argv element or environment string exec accepts
 * (MAX_ARG_STRLEN, the terminating NUL included). */
#define DAGD_ARG_STRLEN_MAX (128 * 1024)

typedef struct dagd_try_info {
  const dagd_dag *dag;
  const dagd_task *task;
  const char *run_id;
  int64_t logical_date;
  bool has_interval;
  int64_t interval_start, interval_end;
  int try_number;
  const char *conf;            /* the run's conf, JSON object text */
  const json_t *outputs;       /* {"task": {"key": "value"}} of the run, may be NULL */
  const char *output_path;     /* $DAGD_OUTPUT */
  char *const *environ;        /* the daemon's environment ("K=V", NULL-ended) */
  const json_t *environ_json;  /* the same as the templates' `env` object, made once by the
                                * caller (dagd_command_environ_json); NULL: made per try */
  const char *self_path;       /* the dagd binary: operators that run inside it */
  const char *spec_path;       /* where the caller writes dagd_command.spec */
  const json_t *extra;         /* inputs the daemon gathered for the operator (gate baselines), may be NULL */
  const char *executor;        /* the config's executor ("local", "kubernetes"), NULL: local */
  const char *conf_path;        /* $DAGD_CONF_FILE: where the caller writes conf (0600), may be NULL */
  char *const *secret_hosts;   /* origins a rendered secret may go to besides the DAG file's own */
  size_t n_secret_hosts;
  dagd_template_secret_cb secret;
  void *secret_data;
} dagd_try_info;

/* The environment as the templates' `env` object ({"K": "V"}): a caller
 * that builds many tries makes it once. */
json_t *dagd_command_environ_json(char *const *environ);

typedef struct dagd_command {
  char **argv;                 /* NULL-terminated */
  char **env;                  /* NULL-terminated "K=V" */
  char *cwd;
  char **secrets;              /* secret values rendered (for masking) */
  size_t n_secrets;
  bool no_process;             /* nothing to run: the try succeeds at once (empty) */
  char *spec;                  /* for operators run by `dagd op`: JSON to write to spec_path first */
} dagd_command;

/* What each operator kind is, in one table (command/kinds.c): how its try
 * runs, what it needs besides its task, what its success means. Every
 * room that treats kinds differently reads it instead of a switch. */
typedef enum {
  DAGD_RUNS_UNKNOWN,   /* not a kind of this version */
  DAGD_RUNS_NOTHING,   /* no process: the try succeeds at once (empty) */
  DAGD_RUNS_COMMAND,   /* its own command (shell) */
  DAGD_RUNS_OP,        /* inside the dagd binary, as `dagd op SPEC` */
  DAGD_RUNS_CHOSEN,    /* its own command, or `dagd op` for what dagd does itself (kubectl apply and wait) */
} dagd_op_runs;

typedef struct dagd_op_kind {
  dagd_op op;
  dagd_op_runs runs;
  bool needs_state;        /* the try reads the state store (a sensor on another DAG's run) */
  bool needs_baseline;     /* the try compares against a baseline the engine supplies (gate) */
  bool records_baseline;   /* the run's success makes what it checked the "deployed" baseline (gate) */
  bool chooses_downstream; /* its success chooses which direct downstream tasks run (branch, short_circuit) */
  bool image_host;         /* `image` names a registry host its secrets may go to (registry, sensor) */
} dagd_op_kind;

/* kubectl's global flags, each from the task's (or the executor's) config
 * key of that name: one table for the command the daemon builds and for
 * the kubectl the `dagd op` operators run. */
typedef struct dagd_kubectl_flag {
  const char *key, *flag;
} dagd_kubectl_flag;
extern const dagd_kubectl_flag dagd_kubectl_flags[];
extern const size_t dagd_kubectl_n_flags;

/* The row of op; a row with DAGD_RUNS_UNKNOWN for a value out of range. */
const dagd_op_kind *dagd_op_kind_of(dagd_op op);

/* True for operators that run inside the dagd binary (`dagd op SPEC`):
 * registry, http, gate, branch, sensor, lua, deploy, data_check. */
bool dagd_command_in_process(dagd_op op);

/* The template context of a try: ds, ds_nodash, ts, logical_date,
 * data_interval_start, data_interval_end, run_id, dag_id, task_id,
 * try_number, params, conf, outputs, env (task_id and try_number only
 * when info->task is set: a run's context has none). New reference. */
json_t *dagd_command_context(const dagd_try_info *info);

/* What a notification is about, besides the try (or run) of its
 * dagd_try_info. */
typedef struct dagd_notify_about {
  const char *event;           /* "success", "failure", "retry", "sla_miss" */
  const char *state;           /* the task instance's state, or the run's */
  const char *what;            /* for the default text: "failed", "missed its SLA of 1s", ... */
  const char *log;             /* the try's log file, or NULL */
  char *const *failed_tasks;   /* a run's failed task instances */
  size_t n_failed_tasks;
} dagd_notify_about;

/* Builds what `dagd notify` sends for a callback: a copy of the notify
 * spec with every string field (url, method, header values, body)
 * rendered, plus "payload", the default JSON body ({text, event, dag_id,
 * run_id, state, logical_date, data_interval_start, data_interval_end,
 * and task_id, try_number, log for a task; failed_tasks for a run}).
 * The templates see the try's context (dagd_command_context) and event,
 * state and failed_tasks; info->task NULL makes it a run's callback
 * (no task_id, try_number). secret() goes through info->secret; the
 * values rendered are added to *secrets (*n_secrets; heap strings the
 * caller frees, with the array). *out is a new reference. A template
 * error (DAGD_ENOENT, DAGD_ESYNTAX) names the field. */
int dagd_command_notify(const dagd_try_info *info, const json_t *spec, const dagd_notify_about *about, json_t **out,
                        char ***secrets, size_t *n_secrets, struct dagd_err *err);

/* Whether a request whose url rendered to `url` may carry a secret. With
 * n_secrets 0 anything goes. Otherwise the scheme and host of the url
 * (the whole scheme://authority) must lie within its first
 * literal_prefix bytes, the template text the DAG file fixed before any
 * expression, or be one of the allow origins (secret_hosts, lowercased
 * scheme://host[:port]). DAGD_EINVAL with the reason; `what` names the
 * request in it ("task \"t\"", "notify"). Pure. */
int dagd_command_secret_url_check(const char *what, const char *url, size_t literal_prefix, size_t n_secrets,
                                  char *const *allow, size_t n_allow, struct dagd_err *err);

/* Builds the command of a try. DAGD_ENOENT/DAGD_ESYNTAX for template
 * errors (the message names the field), DAGD_EINVAL for an operator that
 * has no command-line form yet. Release with dagd_command_close. */
int dagd_command_build(const dagd_try_info *info, dagd_command *out, struct dagd_err *err);
void dagd_command_close(dagd_command *cmd);

/* The secret store of templates: secret("NAME") is the value of the
 * environment variable DAGD_SECRET_NAME (a dagd_template_secret_cb). */
int dagd_command_secret_from_env(void *data, const char *name, char **value, struct dagd_err *err);

/* Parses $DAGD_OUTPUT text: one JSON object (values of any type; non
 * strings are kept as their JSON text), or `key=value` lines (blank lines
 * and lines starting with # ignored). Keys match ^[A-Za-z0-9_.-]{1,250}$.
 * *out gets a new object of string values. */
int dagd_command_parse_outputs(const char *text, size_t len, json_t **out, struct dagd_err *err);

/* "dagd-<dag>-<run>-<task>-<try>" with every character outside
 * [A-Za-z0-9_.-] replaced by '-', at most 128 characters (a Docker
 * container name). Heap string. */
char *dagd_command_container_name(const char *dag_id, const char *run_id, const char *task_id, int try_number);

#endif
