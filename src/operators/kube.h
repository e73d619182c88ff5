/* Shared by the operators that drive kubectl (kubectl.c, deploy.c,
 * k8sjob.c): running kubectl as a child with the task's context,
 * kubeconfig and namespace, logging every command; SIGTERM handling so a
 * timed-out try can clean up in the cluster before it exits; rendering a
 * templated manifest file; and the pure pieces the unit tests cover (Job
 * names, labels and manifests, canary replicas, analysis thresholds,
 * Prometheus answers).
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_OPERATORS_KUBE_H
#define DAGD_OPERATORS_KUBE_H

#include <jansson.h>
#include <stdbool.h>
#include <stdio.h>

#include "dagd/err.h"
#include "dagd/operators.h"
#include "dagd/util.h"

/* --- running kubectl (kubectl.c) --- */

typedef struct dagd_kube {
  char **prefix;   /* "kubectl" [--context C] [--kubeconfig K] [--namespace N], NULL-ended */
  size_t n_prefix;
  FILE *log;
} dagd_kube;

/* The prefix from the config's context, kubeconfig and namespace. */
void dagd__kube_init(dagd_kube *k, const json_t *config, FILE *log);
void dagd__kube_close(dagd_kube *k);

/* Runs `kubectl PREFIX ARGS...` (NULL-ended), logging the command line
 * first. out NULL: kubectl's stdout goes straight to the log (streaming);
 * otherwise it is captured into out (replaced) and copied to the log.
 * stderr always goes to the log. Returns kubectl's exit status, 128+N
 * when a signal N ended it, or -1 when it could not be started. */
int dagd__kube_run(dagd_kube *k, dagd_buf *out, ...) __attribute__((sentinel));
/* The same with input as kubectl's standard input (from memory: it may
 * hold secrets), for `-f -`. */
int dagd__kube_run_input(dagd_kube *k, dagd_buf *out, const char *input, ...) __attribute__((sentinel));
/* The same with an argument vector (NULL-ended); input may be NULL. */
int dagd__kube_runv(dagd_kube *k, dagd_buf *out, const char *input, char *const *args);

/* Installs a SIGTERM/SIGINT handler that only records the request: the
 * daemon signals the try's process group on a timeout or a kill, and the
 * operator still has to undo its work in the cluster before exiting. */
void dagd__kube_catch_stop(void);
bool dagd__kube_stopping(void);
/* Sleeps, returning early (-1) when a stop was requested. */
int dagd__kube_sleep(double seconds);

/* A file for the try next to its $DAGD_OUTPUT (the try's folder), or in
 * $TMPDIR: "<try base><suffix>". Heap string. */
char *dagd__kube_scratch_path(const char *suffix);

/* A manifest for kubectl: its text, which may hold secrets and which
 * kubectl reads on its standard input (`-f -`), and the path of the copy
 * written for people, with the secrets masked (mode 0600). */
typedef struct dagd_kube_doc {
  char *text;
  char *copy;
} dagd_kube_doc;

/* Takes text (heap) into doc and writes its masked copy to
 * dagd__kube_scratch_path(suffix). */
int dagd__kube_doc_set(const dagd_op_ctx *ctx, char *text, const char *suffix, dagd_kube_doc *doc, dagd_err *err);
void dagd__kube_doc_close(dagd_kube_doc *doc);

/* Renders the manifest file at path (relative to the working directory)
 * with the try's template context, plus vars (an object, may be NULL)
 * added at the top level, into doc (suffix: of its copy). The secrets it
 * rendered join ctx->secrets. Close doc in every case. */
int dagd__kube_render_file(const dagd_op_ctx *ctx, const char *path, const json_t *vars, const char *suffix,
                           dagd_kube_doc *doc, dagd_err *err);

/* "300s" from the config's wait_timeout (seconds), default 300. */
void dagd__kube_timeout_flag(const json_t *config, char out[32]);

/* --- Kubernetes Jobs (k8sjob.c), pure --- */

/* "dagd-<dag>-<run>-<task>-<try>" lowercased, reduced to [a-z0-9-],
 * cut so that with an 8-hex hash of the exact ids it fits 63 characters
 * (a DNS label, and the job-name label value). Deterministic per try.
 * Heap string. */
char *dagd__k8s_job_name(const char *dag_id, const char *run_id, const char *task_id, int try_number);
/* The 8-hex hash of the exact ids that ends the Job's name, also the
 * Job's dagd.key label: the other labels fold ids together (a run id's
 * colons become '-', long ids are cut), this one tells them apart, so a
 * try never adopts the Job of another run. Heap string. */
char *dagd__k8s_try_key(const char *dag_id, const char *run_id, const char *task_id, int try_number);
/* A label value: [A-Za-z0-9._-], at most 63, starting and ending with an
 * alphanumeric ("x" when nothing is left). Heap string. */
char *dagd__k8s_label_value(const char *s);
/* A docker memory size ("512m", "4g", 1048576) as a Kubernetes quantity
 * ("512Mi", "4Gi", "1048576"). Heap string, NULL for a bad value. */
char *dagd__k8s_quantity(const json_t *memory);
/* The Job of a docker task: config is the task's rendered docker fields,
 * env an object of variables, labels an object. The pod runs once
 * (backoffLimit 0, restartPolicy Never; retries are dagd's) and
 * config.pod_template is merged over the pod template. New reference. */
json_t *dagd__k8s_job_manifest(const json_t *config, const json_t *env, const char *name, const json_t *labels);
/* Merges patch into target: objects key by key, anything else replaced. */
void dagd__k8s_merge(json_t *target, const json_t *patch);

/* --- the deploy operator's pure parts (deploy.c) --- */

/* The numbers of a Prometheus /api/v1/query answer (a scalar, or each
 * sample of a vector). *values is heap (free), *n may be 0 (no data).
 * DAGD_ESYNTAX for an answer that is not a successful query. */
int dagd__deploy_prom_values(const char *body, double **values, size_t *n, dagd_err *err);
/* Replicas for a canary at weight percent of total: the canary gets
 * ceil(total * weight / 100), at least 1, the stable version the rest. */
void dagd__deploy_canary_replicas(int total, int weight, int *canary, int *stable);

#endif
