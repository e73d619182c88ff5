/* Shared state of dagctl's commands: parsed global options and helpers.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_CLI_INTERNAL_H
#define DAGD_CLI_INTERNAL_H

#include <stdbool.h>
#include <stdio.h>

#include <jansson.h>

#include "dagd/config.h"
#include "dagd/lua.h"
#include "dagd/util.h"

/* Exit codes of DESIGN.md section 7. */
enum { CLI_OK = 0, CLI_FAILED = 1, CLI_USAGE = 2, CLI_UNREACHABLE = 3 };

/* One option of a command (or a global one): the table each command
 * parses its arguments with (cli_getopt), and that its help, the manual
 * page and the bash completion are written from, so none can drift. */
typedef struct cli_option {
  const char *name;   /* the long name, without "--" */
  int val;            /* what cli_getopt returns for it */
  bool letter;        /* also spelt -<val> */
  const char *arg;    /* the value's name in the help ("JSON", "N"), NULL for a flag */
  const char *values; /* the values it takes, "|"-separated, for completion; or NULL */
  unsigned flags;     /* CLI_OPT_* */
  const char *help;   /* one or more lines, no trailing newline */
} cli_option;

enum {
  CLI_OPT_REQUIRED = 1, /* shown without brackets in the synopsis */
  CLI_OPT_REPEAT = 2,   /* may be given more than once */
};

typedef struct cli_command cli_command;

typedef struct cli {
  const char *server;  /* --server / DAGD_URL */
  const char *token;   /* --token / DAGD_TOKEN */
  bool json;           /* -o json or -o yaml: print documents, not tables */
  bool yaml;           /* -o yaml: those documents as YAML */
  bool colour;         /* colour tables: a terminal, no NO_COLOR, TERM not dumb */
  const cli_command *cmd; /* the command running, whose options cli_getopt parses */
  dagd_config cfg;
} cli;

struct cli_command {
  const char *name;
  const char *args;    /* its positional arguments as the synopsis shows them:
                        * placeholders in capitals (DAG: a DAG id, FILE or
                        * PATH: a file), words in lower case typed as they
                        * are (a|b|c: one of them), [X] optional, X...
                        * repeated */
  const char *summary; /* one line for the command list */
  const char *help;    /* the per-command help text, before its options */
  const cli_option *options; /* ended by an entry with a NULL name */
  int (*run)(cli *c, int argc, char **argv);
  const char *synopsis; /* when the generated one does not fit (db), or NULL */
  bool no_config;      /* runs without loading the config (help, completion) */
};

/* The command table and the global options, for help, man and completion. */
extern const cli_command cli_commands[];
extern const size_t cli_n_commands;
extern const cli_option cli_globals[];
/* What dagctl is, the environment variables and the exit codes, as
 * --help shows them. */
extern const char *const cli_description;
extern const char *const cli_environment_help;
extern const char *const cli_exit_help;

/* getopt_long over the running command's own options (c->cmd), from the
 * start of argv; returns the option's val, -1 at the end, '?' on a bad
 * option (reported by getopt). */
int cli_getopt(cli *c, int argc, char **argv);
/* Appends cmd's synopsis, "trigger DAG [--conf JSON] ...", to out. */
void cli_synopsis(const cli_command *cmd, dagd_buf *out);

/* Prints doc on stdout as -o asks: indented JSON, or YAML. */
void cli_print_doc(const cli *c, const json_t *doc);
/* Prints an API answer's JSON body as -o asks: unchanged for json (the
 * API's bytes), as YAML for yaml. */
void cli_print_body(const cli *c, const char *body);

/* The width to fit a table's lines to: the terminal's when stdout is
 * one, else $COLUMNS, else 80. */
int cli_columns(void);

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
/* `dagctl completion bash` (complete.c). */
int cli_cmd_completion(cli *c, int argc, char **argv);
/* `dagctl --man`: the manual page, in man(7) markup (man.c). */
void cli_man(FILE *out);
/* The commands that call dagd's API; argv[0] names the command. */
int cli_cmd_remote(cli *c, const char *name, int argc, char **argv);

#endif
