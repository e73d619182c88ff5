/* dagctl's offline commands: validate, graph and next work on the DAG
 * files directly and need no running dagd.
 * SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <jansson.h>

#include "dagd/cron.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/tz.h"
#include "dagd/util.h"
#include "internal.h"

void cli_load_dags(cli *c, const char *const *paths, size_t n, dagd_dagbag *bag) {
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  if (c->cfg.parse_timeout > 0) opts.time_limit_ms = c->cfg.parse_timeout * 1000;
  dagd_dagbag_init(bag);
  if (n == 0) {
    const char *folder = c->cfg.dags_folder;
    dagd_lua_load_paths(&folder, 1, &opts, bag);
  } else {
    dagd_lua_load_paths(paths, n, &opts, bag);
  }
}

static void print_load_error(FILE *out, const dagd_load_error *e) {
  if (e->line > 0) fprintf(out, "%s:%d: %s\n", e->file, e->line, e->message);
  else fprintf(out, "%s: %s\n", e->file, e->message);
}

const dagd_dag *cli_find_dag(cli *c, dagd_dagbag *bag, const char *dag_id) {
  cli_load_dags(c, NULL, 0, bag);
  const dagd_dag *dag = dagd_dagbag_find(bag, dag_id);
  if (dag != NULL) return dag;
  fprintf(stderr, "dagctl: no DAG \"%s\" in %s\n", dag_id, c->cfg.dags_folder);
  for (size_t i = 0; i < bag->n_errors; i++) print_load_error(stderr, &bag->errors[i]);
  return NULL;
}

/* getopt_long over a command's own options; globals were taken already. */
static void reset_getopt(void) {
  optind = 0; /* 0 makes glibc re-initialise, permuting again */
  opterr = 1;
}

int cli_cmd_validate(cli *c, int argc, char **argv) {
  reset_getopt();
  if (cli_getopt(c, argc, argv) != -1) return CLI_USAGE;
  dagd_dagbag bag;
  cli_load_dags(c, (const char *const *)argv + optind, (size_t)(argc - optind), &bag);
  if (c->json) {
    json_t *root = json_object(), *dags = json_array(), *errors = json_array();
    for (size_t i = 0; i < bag.n_dags; i++) {
      const dagd_dag *d = bag.dags[i];
      json_t *tasks = json_array();
      for (size_t t = 0; t < d->n_tasks; t++) json_array_append_new(tasks, json_string(d->tasks[t]->id));
      json_array_append_new(dags, json_pack("{s:s, s:s, s:s?, s:s, s:o}", "dag_id", d->id, "fileloc",
                                            d->fileloc ? d->fileloc : "", "schedule",
                                            d->schedule ? dagd_cron_text(d->schedule) : NULL, "timezone",
                                            dagd_tz_name(d->tz), "tasks", tasks));
    }
    for (size_t i = 0; i < bag.n_errors; i++) {
      const dagd_load_error *e = &bag.errors[i];
      json_array_append_new(errors, json_pack("{s:s, s:i, s:s}", "file", e->file, "line", e->line, "message",
                                              e->message));
    }
    json_object_set_new(root, "dags", dags);
    json_object_set_new(root, "errors", errors);
    cli_print_doc(c, root);
    json_decref(root);
  } else {
    for (size_t i = 0; i < bag.n_errors; i++) print_load_error(stdout, &bag.errors[i]);
    printf("%zu file%s, %zu DAG%s, %zu error%s\n", bag.n_files, bag.n_files == 1 ? "" : "s", bag.n_dags,
           bag.n_dags == 1 ? "" : "s", bag.n_errors, bag.n_errors == 1 ? "" : "s");
  }
  int rc = bag.n_errors > 0 || bag.n_files == 0 ? CLI_FAILED : CLI_OK;
  if (bag.n_files == 0 && !c->json) fprintf(stderr, "dagctl: no DAG files found\n");
  dagd_dagbag_close(&bag);
  return rc;
}

/* Longest-path layer of each task (0 for roots), over the topological order. */
static size_t *task_layers(const dagd_dag *dag) {
  size_t *layer = dagd_calloc(dag->n_tasks, sizeof(size_t));
  for (size_t i = 0; i < dag->n_tasks; i++) {
    size_t t = dag->topo[i];
    const dagd_task *task = dag->tasks[t];
    for (size_t u = 0; u < task->n_upstream; u++)
      if (layer[task->upstream[u]] + 1 > layer[t]) layer[t] = layer[task->upstream[u]] + 1;
  }
  return layer;
}

int cli_cmd_graph(cli *c, int argc, char **argv) {
  const char *format = "text";
  int opt;
  reset_getopt();
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt != 'f') return CLI_USAGE;
    format = optarg;
  }
  if (strcmp(format, "text") != 0 && strcmp(format, "dot") != 0) {
    fprintf(stderr, "dagctl graph: --format takes text or dot, not \"%s\"\n", format);
    return CLI_USAGE;
  }
  if (argc - optind != 1) return CLI_USAGE;
  dagd_dagbag bag;
  const dagd_dag *dag = cli_find_dag(c, &bag, argv[optind]);
  if (dag == NULL) {
    dagd_dagbag_close(&bag);
    return CLI_FAILED;
  }
  size_t *layer = task_layers(dag);
  if (strcmp(format, "dot") == 0) {
    /* Ids are [A-Za-z0-9_.-], so they need no escaping inside quotes. */
    printf("digraph \"%s\" {\n  rankdir=LR;\n  node [shape=box, style=rounded];\n", dag->id);
    for (size_t i = 0; i < dag->n_tasks; i++) {
      const dagd_task *t = dag->tasks[dag->topo[i]];
      printf("  \"%s\" [label=\"%s\\n(%s)\"];\n", t->id, t->id, dagd_op_name(t->op));
    }
    for (size_t i = 0; i < dag->n_tasks; i++) {
      const dagd_task *t = dag->tasks[dag->topo[i]];
      for (size_t d = 0; d < t->n_downstream; d++)
        printf("  \"%s\" -> \"%s\";\n", t->id, dag->tasks[t->downstream[d]]->id);
    }
    printf("}\n");
  } else {
    size_t width = 4;
    for (size_t i = 0; i < dag->n_tasks; i++)
      if (strlen(dag->tasks[i]->id) > width) width = strlen(dag->tasks[i]->id);
    printf("%s: %zu task%s, schedule %s\n", dag->id, dag->n_tasks, dag->n_tasks == 1 ? "" : "s",
           dag->schedule ? dagd_cron_text(dag->schedule) : "none");
    printf("%-5s  %-*s  %-8s  %s\n", "LAYER", (int)width, "TASK", "OPERATOR", "AFTER");
    for (size_t i = 0; i < dag->n_tasks; i++) {
      size_t ti = dag->topo[i];
      const dagd_task *t = dag->tasks[ti];
      printf("%-5zu  %-*s  %-8s  ", layer[ti] + 1, (int)width, t->id, dagd_op_name(t->op));
      for (size_t u = 0; u < t->n_upstream; u++)
        printf("%s%s", u ? ", " : "", dag->tasks[t->upstream[u]]->id);
      printf("%s\n", t->n_upstream ? "" : "-");
    }
  }
  free(layer);
  dagd_dagbag_close(&bag);
  return CLI_OK;
}

/* Reads --after: an instant when the text carries an offset, otherwise a
 * wall time in the DAG's zone (a time in a DST gap is shifted forward, a
 * repeated one is taken at its first occurrence). */
static int parse_after(const dagd_dag *dag, const char *text, int64_t *out) {
  int has_offset;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_time_parse(text, out, &has_offset, &err) < 0) {
    fprintf(stderr, "dagctl next: --after: %s\n", err.msg);
    return -1;
  }
  if (!has_offset) {
    dagd_tm wall;
    int64_t at[2];
    dagd_epoch_to_tm(*out, &wall);
    dagd_tz_mktime(dag->tz, &wall, at);
    *out = at[0];
  }
  return 0;
}

int cli_cmd_next(cli *c, int argc, char **argv) {
  const char *after_text = NULL;
  long count = 5;
  int opt;
  reset_getopt();
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    char *end;
    switch (opt) {
    case 'n':
      count = strtol(optarg, &end, 10);
      if (*optarg == '\0' || *end != '\0' || count < 1 || count > 1000) {
        fprintf(stderr, "dagctl next: -n takes a number in 1-1000\n");
        return CLI_USAGE;
      }
      break;
    case 'a': after_text = optarg; break;
    default: return CLI_USAGE;
    }
  }
  if (argc - optind != 1) return CLI_USAGE;
  dagd_dagbag bag;
  const dagd_dag *dag = cli_find_dag(c, &bag, argv[optind]);
  int rc = CLI_OK;
  if (dag == NULL) {
    rc = CLI_FAILED;
    goto out;
  }
  if (dag->schedule == NULL) {
    fprintf(stderr, "dagctl next: DAG \"%s\" has no schedule (it runs on events or on request)\n", dag->id);
    rc = CLI_FAILED;
    goto out;
  }
  int64_t after = dagd_time_now();
  if (after_text && parse_after(dag, after_text, &after) < 0) {
    rc = CLI_USAGE;
    goto out;
  }
  json_t *list = c->json ? json_array() : NULL;
  if (!c->json)
    printf("%s: schedule %s, time zone %s\n%-25s  %-25s  %-25s  %-20s\n", dag->id, dagd_cron_text(dag->schedule),
           dagd_tz_name(dag->tz), "RUN AFTER", "DATA INTERVAL START", "DATA INTERVAL END", "RUN AFTER (UTC)");
  for (long i = 0; i < count; i++) {
    dagd_interval iv;
    if (dagd_dag_next_interval(dag, after, &iv) < 0) {
      if (i == 0 && !c->json) printf("(no further runs)\n");
      break;
    }
    after = iv.run_after;
    char ra[32], s[32], e[32];
    if (c->json) {
      dagd_time_format_utc(iv.run_after, ra);
      dagd_time_format_utc(iv.start, s);
      dagd_time_format_utc(iv.end, e);
      json_array_append_new(list, json_pack("{s:s, s:s, s:s}", "run_after", ra, "data_interval_start", s,
                                            "data_interval_end", e));
    } else {
      char rau[32];
      dagd_time_format_offset(iv.run_after, dagd_tz_offset(dag->tz, iv.run_after), ra);
      dagd_time_format_offset(iv.start, dagd_tz_offset(dag->tz, iv.start), s);
      dagd_time_format_offset(iv.end, dagd_tz_offset(dag->tz, iv.end), e);
      dagd_time_format_utc(iv.run_after, rau);
      printf("%-25s  %-25s  %-25s  %-20s\n", ra, s, e, rau);
    }
  }
  if (list) {
    cli_print_doc(c, list);
    json_decref(list);
  }
out:
  dagd_dagbag_close(&bag);
  return rc;
}
