/* `dagctl db check | backup FILE | prune --older-than D`: maintenance of
 * the state file named by the config, safe while dagd runs (WAL: readers
 * and the online backup do not stop it; pruning takes short transactions).
 * SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/store.h"
#include "dagd/time.h"
#include "dagd/util.h"
#include "internal.h"

typedef struct pruned {
  char **dirs;
  size_t n;
  size_t kept; /* folders not removed */
  bool dry;
  const char *logs;
} pruned;

static void on_pruned(void *data, const char *dag_id, const char *run_id) {
  pruned *p = data;
  /* Ids are checked when they are created; a run recorded before ids made
   * only of dots were refused keeps its folder ("logs/d/.." is not it). */
  if (!dagd_id_valid(dag_id) || !dagd_run_id_valid(run_id)) {
    fprintf(stderr, "dagctl db prune: run \"%.250s\" of DAG \"%.250s\" has an invalid id: its log folder %s\n",
            run_id, dag_id, p->dry ? "would be kept" : "is kept");
    p->kept++;
    return;
  }
  p->dirs = dagd_realloc(p->dirs, (p->n + 1) * sizeof(char *));
  p->dirs[p->n++] = dagd_asprintf("%s/%s/%s", p->logs, dag_id, run_id);
}

static int db_prune(cli *c, int argc, char **argv) {
  const char *older = NULL;
  bool dry = false;
  int opt;
  optind = 0;
  while ((opt = cli_getopt(c, argc, argv)) != -1) {
    if (opt == 'o') older = optarg;
    else if (opt == 'n') dry = true;
    else return CLI_USAGE;
  }
  if (older == NULL || optind != argc) return CLI_USAGE;
  int64_t secs;
  dagd_err err;
  dagd_err_init(&err);
  if (dagd_duration_parse(older, &secs, &err) < 0) {
    fprintf(stderr, "dagctl db prune: --older-than: %s\n", err.msg);
    return CLI_USAGE;
  }
  dagd_store *st;
  if (dagd_store_open(c->cfg.state, &st, &err) < 0) {
    fprintf(stderr, "dagctl: %s\n", err.msg);
    return CLI_FAILED;
  }
  pruned p = {.logs = c->cfg.logs_folder, .dry = dry};
  int64_t n = 0;
  int rc = dagd_store_prune(st, (double)(dagd_time_now() - secs), 0, dry, on_pruned, &p, &n, &err);
  dagd_store_close(st);
  if (rc < 0) {
    fprintf(stderr, "dagctl db prune: %s\n", err.msg);
    for (size_t i = 0; i < p.n; i++) free(p.dirs[i]);
    free(p.dirs);
    return CLI_FAILED;
  }
  size_t logs_removed = 0, logs_kept = p.kept;
  for (size_t i = 0; i < p.n; i++) {
    dagd_err_init(&err);
    if (dry) {
      printf("would prune %s\n", p.dirs[i]);
    } else if (dagd_fs_remove_tree_within(p.logs, p.dirs[i], &err) == 0) {
      logs_removed++;
    } else {
      fprintf(stderr, "dagctl db prune: %s\n", err.msg);
      logs_kept++;
    }
    free(p.dirs[i]);
  }
  free(p.dirs);
  printf("%s%lld finished runs older than %s%s, %zu log folders removed\n", dry ? "dry run: " : "", (long long)n,
         older, dry ? " would go" : " pruned", logs_removed);
  /* The runs are gone; a folder that could not (or must not) be removed
   * is still a failure to report. */
  return logs_kept > 0 && !dry ? CLI_FAILED : CLI_OK;
}

int cli_cmd_db(cli *c, int argc, char **argv) {
  if (argc < 2) return CLI_USAGE;
  const char *sub = argv[1];
  dagd_err err;
  dagd_err_init(&err);
  if (strcmp(sub, "check") == 0 && argc == 2) {
    char report[4096];
    int rc = dagd_store_check_file(c->cfg.state, report, sizeof(report), &err);
    if (rc < 0 && report[0] == '\0') {
      fprintf(stderr, "dagctl db check: %s\n", err.msg);
      return CLI_FAILED;
    }
    printf("%s: %s\n", c->cfg.state, report);
    return rc < 0 ? CLI_FAILED : CLI_OK;
  }
  if (strcmp(sub, "backup") == 0 && argc == 3) {
    dagd_store *st;
    if (dagd_store_open(c->cfg.state, &st, &err) < 0) {
      fprintf(stderr, "dagctl: %s\n", err.msg);
      return CLI_FAILED;
    }
    int rc = dagd_store_backup(st, argv[2], &err);
    dagd_store_close(st);
    if (rc < 0) {
      fprintf(stderr, "dagctl db backup: %s\n", err.msg);
      return CLI_FAILED;
    }
    char report[256];
    dagd_err_init(&err);
    if (dagd_store_check_file(argv[2], report, sizeof(report), &err) < 0) {
      fprintf(stderr, "dagctl db backup: the copy does not check: %s\n", err.msg);
      return CLI_FAILED;
    }
    printf("backed up %s to %s (integrity: %s)\n", c->cfg.state, argv[2], report);
    return CLI_OK;
  }
  if (strcmp(sub, "prune") == 0) return db_prune(c, argc - 1, argv + 1);
  return CLI_USAGE;
}
