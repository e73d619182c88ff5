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

typedef struct prune_counts {
  bool dry;
  size_t removed;
} prune_counts;

static void report(void *data, const char *dag_id, const char *run_id, const char *dir, dagd_prune_outcome what,
                   const dagd_err *err) {
  prune_counts *p = data;
  switch (what) {
  case DAGD_PRUNE_REMOVED: p->removed++; break;
  case DAGD_PRUNE_WOULD: printf("would prune %s\n", dir); break;
  case DAGD_PRUNE_INVALID_ID:
    fprintf(stderr, "dagctl db prune: run \"%.250s\" of DAG \"%.250s\" has an invalid id: its log folder %s\n",
            run_id, dag_id, p->dry ? "would be kept" : "is kept");
    break;
  case DAGD_PRUNE_FAILED: fprintf(stderr, "dagctl db prune: %s\n", err->msg); break;
  }
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
  prune_counts p = {.dry = dry};
  dagd_prune_opts o = {.logs = c->cfg.logs_folder, .before = (double)(dagd_time_now() - secs), .dry_run = dry,
                       .report = report, .data = &p};
  int64_t n = 0;
  size_t logs_kept = 0;
  int rc = dagd_store_prune_with_logs(st, &o, &n, &logs_kept, &err);
  dagd_store_close(st);
  if (rc < 0) {
    fprintf(stderr, "dagctl db prune: %s\n", err.msg);
    return CLI_FAILED;
  }
  size_t logs_removed = p.removed;
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
