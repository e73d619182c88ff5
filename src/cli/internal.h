/* Shared state of dagctl's commands: parsed global options and helpers.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_CLI_INTERNAL_H
#define DAGD_CLI_INTERNAL_H

#include <stdbool.h>

#include "dagd/config.h"
#include "dagd/lua.h"

/* Exit codes of DESIGN.md section 7. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

typedef struct cli {
  const char *server;  /* --server / DAGD_URL */
  const char *token;   /* --token / DAGD_TOKEN */
  bool json;           /* -o json */
  dagd_config cfg;
} cli;

typedef struct cli_command {
  const char *name;
  const char *summary; /* one line for the command list */
  const char *synopsis;
  const char *help;    /* the per-command help text */
  int (*run)(cli *c, int argc, char **argv);
} cli_command;

/* Loads the DAG folder (or the given paths) into bag with the configured
 * limits. */
void cli_load_dags(cli *c, const char *const *paths, size_t n, dagd_dagbag *bag);
/* Finds dag_id after loading the DAG folder; on failure prints why (and
 * the load errors of the folder, which may explain it) and returns NULL. */
const dagd_dag *cli_find_dag(cli *c, dagd_dagbag *bag, const char *dag_id);

int cli_cmd_validate(cli *c, int argc, char **argv);
int cli_cmd_graph(cli *c, int argc, char **argv);
int cli_cmd_next(cli *c, int argc, char **argv);
int cli_cmd_test(cli *c, int argc, char **argv);
int cli_cmd_db(cli *c, int argc, char **argv);
/* The commands that call dagd's API; argv[0] names the command. */
int cli_cmd_remote(cli *c, const char *name, int argc, char **argv);

#endif
