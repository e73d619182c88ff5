/* Shared by the files of the ops module: the string vector and the
 * builder every operator's command is made with.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_COMMAND_INTERNAL_H
#define DAGD_COMMAND_INTERNAL_H

#include <jansson.h>

#include "dagd/err.h"
#include "dagd/command.h"

/* A growable NULL-terminated string vector. */
typedef struct strv {
  char **v;
  size_t n, cap;
} strv;

void dagd__strv_push(strv *s, char *owned);
void dagd__strv_free(char **v);

typedef struct builder {
  const dagd_try_info *info;
  json_t *ctx; /* the templates' context, made at the first template (dagd__command_ctx) */
  dagd_template_opts plain, quoted;
  dagd_command *out;
  dagd_err *err;
  /* The top-level url of a rendered config: its text's literal head. */
  size_t url_literal;
  size_t image_literal; /* and of its image (a registry's host/repository) */
} builder;

/* The templates' context, made when first needed: most fields hold none. */
json_t *dagd__command_ctx(builder *b);
/* Renders one field's text; the error names the task and field. */
char *dagd__command_render(builder *b, const char *field, const char *text, bool quoted);
int dagd__command_push_rendered(builder *b, strv *v, const char *field, const char *text);
/* Appends each string of a JSON array, rendered. */
int dagd__command_push_array(builder *b, strv *v, const char *field, const json_t *arr);
const char *dagd__command_cfg_str(const dagd_task *t, const char *key);

/* Per operator (docker.c, kubectl.c). */
/* The docker run the try's `dagd op` starts: {"argv", "container",
 * "auto_remove", "stop_grace"}; NULL on a template error (in b->err). */
json_t *dagd__command_docker_spec(builder *b, char *const *task_env);
int dagd__command_kubectl_argv(builder *b, strv *argv);
/* kubectl with apply (a manifest to render) or wait runs as `dagd op`. */
bool dagd__command_kubectl_in_process(const dagd_task *t);
/* A docker task whose try runs as a Kubernetes Job: its own executor
 * field, else the config's executor, is "kubernetes". */
bool dagd__command_on_kubernetes(const dagd_try_info *info);
/* The operator `dagd op` runs: "k8sjob" for those, else the op's name. */
const char *dagd__command_operator_name(const dagd_try_info *info);
/* Adds the Job's environment to the spec ("env": the task's env and the
 * DAGD_* variables, $DAGD_OUTPUT being the pod's termination message). */
void dagd__command_k8s_spec(builder *b, json_t *spec, char *const *task_env);

#endif
