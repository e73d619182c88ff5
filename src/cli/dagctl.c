/* dagctl: the command-line tool. Holds the table of commands and their
 * options that the command line is parsed with and that --help, the
 * manual page (man.c) and the bash completion (complete.c) are written
 * from; parses the global options and dispatches. Offline commands work
 * on the DAG files directly (offline.c, testcmd.c, db.c); the others call
 * dagd's HTTP API (client.c).
 * SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/util.h"
#include "internal.h"

extern char **environ;

/* Options shared by several commands. */
#define OPT_WAIT(what) {"wait", 'w', false, NULL, NULL, 0, what}
#define OPT_END {NULL, 0, false, NULL, NULL, 0, NULL}

static const cli_option no_options[] = {OPT_END};

static const cli_option graph_options[] = {
    {"format", 'f', false, "text|dot", "text|dot", 0, "text (default) or dot"},
    OPT_END};

static const cli_option next_options[] = {
    {"count", 'n', true, "N", NULL, 0, "how many runs (default 5, at most 1000)"},
    {"after", 'a', false, "T", NULL, 0,
     "list runs due strictly after T (default now); T is\n"
     "YYYY-MM-DD[THH:MM[:SS]] in the DAG's zone, or with Z or\n"
     "an offset (+01:00)"},
    OPT_END};

static const cli_option test_options[] = {
    {"conf", 'c', false, "JSON", NULL, 0, "the run's conf (default {})"},
    OPT_END};

static const cli_option trigger_options[] = {
    {"conf", 'c', false, "JSON", NULL, 0, "the run's conf, a JSON object (templates read it as conf.*)"},
    {"date", 'd', false, "T", NULL, 0,
     "the logical date (default now): YYYY-MM-DD[THH:MM[:SS]] in\n"
     "the DAG's zone, as backfill takes it, or with Z or an\n"
     "offset. The data interval is the one the schedule implies:\n"
     "the latest complete interval ending at or before it (none\n"
     "for a DAG without a schedule)"},
    {"run-id", 'r', false, "ID", NULL, 0,
     "the run id (default manual__<now to the microsecond>, e.g.\n"
     "manual__2026-12-02T14:18:50.123456+00:00); an id that\n"
     "exists is refused (409)"},
    OPT_WAIT("follow the run to its end: a live progress line on a\n"
             "terminal, a line per change otherwise; exit 1 if it fails"),
    OPT_END};

static const cli_option backfill_options[] = {
    {"from", 'f', false, "D", NULL, CLI_OPT_REQUIRED, "the first logical date"},
    {"to", 't', false, "D", NULL, CLI_OPT_REQUIRED, "the last logical date (included)"},
    {"rerun-failed", 'R', false, NULL, NULL, 0, "clear the failed runs in range so they run again"},
    {"reset", 'x', false, NULL, NULL, 0, "clear every run in range"},
    {"reverse", 'v', false, NULL, NULL, 0, "newest first"},
    {"dry-run", 'n', false, NULL, NULL, 0, "list what would run, change nothing"},
    OPT_WAIT("follow the runs to their end with a done/total count: one\n"
             "updating line on a terminal, a line per finished run\n"
             "otherwise; exit 1 if any fails"),
    OPT_END};

static const cli_option runs_options[] = {
    {"state", 's', false, "S", "queued|running|success|failed", CLI_OPT_REPEAT,
     "only runs in state S; repeat it for runs in any of several states"},
    {"count", 'n', true, "N", NULL, 0, "how many runs (default 25)"},
    OPT_END};

static const cli_option logs_options[] = {
    {"try", 't', false, "N", NULL, 0, "try N (default the latest)"},
    {"follow", 'f', true, NULL, NULL, 0,
     "follow the log while the try runs, and on into the next\n"
     "try while the task is retried, until it ends"},
    OPT_END};

static const cli_option clear_options[] = {
    {"task", 't', false, "T", NULL, CLI_OPT_REPEAT, "clear task T (default every task of the run)"},
    {"downstream", 'd', false, NULL, NULL, 0, "also clear everything downstream"},
    {"failed-only", 'f', false, NULL, NULL, 0, "keep the successful ones"},
    {"dry-run", 'n', false, NULL, NULL, 0, "list what would be cleared, change nothing"},
    OPT_END};

static const cli_option mark_options[] = {
    {"dry-run", 'n', false, NULL, NULL, 0, "say what would change, change nothing"},
    OPT_END};

static const cli_option event_options[] = {
    {"payload", 'p', false, "JSON", NULL, 0, "the event's payload, a JSON object"},
    {"id", 'i', false, "ID", NULL, 0, "the event's id: a repeat of an id starts nothing"},
    OPT_END};

static const cli_option db_options[] = {
    {"older-than", 'o', false, "D", NULL, 0, "db prune: finished runs that ended more than D (e.g. 30d) ago"},
    {"dry-run", 'n', false, NULL, NULL, 0, "db prune: list them, delete nothing"},
    OPT_END};

static int cmd_api(cli *c, int argc, char **argv) { return cli_cmd_remote(c, argv[0], argc, argv); }
static int cmd_help(cli *c, int argc, char **argv);

const cli_command cli_commands[] = {
    {"validate", "[PATH...]", "check DAG files, list every error (offline)",
     "Load DAG files and report every error as file:line: message.\n"
     "\n"
     "PATH is a DAG file or a folder (its *.lua files, recursively); the default\n"
     "is the DAG folder (DAGD_DAGS_FOLDER, or dags_folder in the config, or ./dags).\n"
     "A file with an error contributes no DAG; the other files still load.\n"
     "\n"
     "With -o json, prints {\"dags\": [...], \"errors\": [{\"file\", \"line\", \"message\"}]}.\n"
     "Exit status: 0 when everything loaded, 1 on any error.\n",
     no_options, cli_cmd_validate, NULL, false},
    {"graph", "DAG", "print a DAG's task graph (offline)",
     "Print the task graph of a DAG: tasks in topological order with their\n"
     "upstream tasks (text), or a Graphviz digraph (dot).\n",
     graph_options, cli_cmd_graph, NULL, false},
    {"next", "DAG", "next runs and data intervals (offline)",
     "Print the next scheduled runs of a DAG: when each run becomes due and the\n"
     "data interval it covers, in the DAG's time zone and in UTC.\n"
     "\n"
     "With -o json, prints an array of {\"run_after\", \"data_interval_start\",\n"
     "\"data_interval_end\"} in RFC 3339 UTC.\n",
     next_options, cli_cmd_next, NULL, false},
    {"test", "DAG TASK [DATE]", "run one task now, no state written (offline)",
     "Run one task now, in the foreground, with the same templates and environment\n"
     "as a scheduled try, writing no state. Its output goes to the terminal and the\n"
     "outputs it writes to $DAGD_OUTPUT are printed (as JSON with -o json).\n"
     "\n"
     "DATE is the logical date (YYYY-MM-DD[THH:MM[:SS]] in the DAG's zone, or with\n"
     "Z or an offset); the default is the start of the latest complete interval.\n"
     "Outputs of upstream tasks are not available: a template that reads them fails.\n"
     "\n"
     "Exit status: 0 when the task succeeded, 1 otherwise.\n",
     test_options, cli_cmd_test, NULL, false},
    {"dags", "", "list DAGs with their state",
     "List the DAGs dagd has loaded: paused or not, schedule, time zone, next run,\n"
     "the state of the latest run. DAG files that failed to load are listed on\n"
     "stderr with file:line.\n",
     no_options, cmd_api, NULL, false},
    {"pause", "DAG", "pause a DAG", "Pause a DAG: it creates no new runs; running tasks finish.\n", no_options,
     cmd_api, NULL, false},
    {"unpause", "DAG", "unpause a DAG", "Unpause a DAG.\n", no_options, cmd_api, NULL, false},
    {"trigger", "DAG", "start a run", "Start a run of a DAG now.\n", trigger_options, cmd_api, NULL, false},
    {"backfill", "DAG", "create runs for a date range",
     "Create runs for every interval whose logical date lies in [from, to], both\n"
     "ends included, oldest first, within the DAG's max_active_runs. Successful\n"
     "runs in range are kept.\n",
     backfill_options, cmd_api, NULL, false},
    {"runs", "DAG", "list a DAG's runs", "List a DAG's runs, newest first.\n", runs_options, cmd_api, NULL, false},
    {"tasks", "DAG RUN_ID", "list a run's task instances",
     "List a run's task instances: state, try, duration, exit code, outputs.\n"
     "The table cuts OUTPUTS to the width of the terminal (or $COLUMNS), ending\n"
     "a cut value with ...; -o json or -o yaml prints them whole.\n",
     no_options, cmd_api, NULL, false},
    {"logs", "DAG RUN_ID TASK", "print or follow a task's log",
     "Print a task's log (the latest try unless --try).\n"
     "\n"
     "With -o json (or yaml), prints {\"dag_id\", \"dag_run_id\", \"task_id\",\n"
     "\"try_number\", \"content\", \"next_offset\", \"done\"}: one document for the\n"
     "whole log, or with -f one per piece as it comes (a JSON line each).\n",
     logs_options, cmd_api, NULL, false},
    {"clear", "DAG RUN_ID", "clear task instances to run them again",
     "Clear task instances so they run again (all of the run's unless --task).\n"
     "The run goes back to running. (The command sends dry_run and only_failed\n"
     "explicitly: the API's defaults, true as in Airflow, do not apply.)\n",
     clear_options, cmd_api, NULL, false},
    {"mark", "DAG RUN_ID TASK success|failed", "set a task instance's state", "Set a task instance's state by hand (a running try is stopped).\n",
     mark_options, cmd_api, NULL, false},
    {"db", "check|backup|prune [FILE]", "check, back up or prune the state file (offline)",
     "Maintenance of the state file named by the config (state, DAGD_STATE), safe\n"
     "while dagd runs.\n"
     "\n"
     "  db check                  PRAGMA integrity_check; exit 1 on any problem\n"
     "  db backup FILE            a consistent copy through SQLite's online backup\n"
     "                            API (FILE must not exist), then checked\n"
     "  db prune --older-than D   delete finished runs that ended more than D ago\n"
     "                            (e.g. 30d) with their task instances, outputs and\n"
     "                            log folders; --dry-run lists them. A folder is\n"
     "                            removed only strictly below logs_folder, never\n"
     "                            through a symbolic link; one kept is named and\n"
     "                            the exit is 1\n",
     db_options, cli_cmd_db, "db check | db backup FILE | db prune --older-than D [--dry-run]", false},
    {"event", "NAME", "post an event that starts runs",
     "Post an event: every DAG whose on_event lists NAME starts a run with\n"
     "{\"event\": NAME, \"payload\": ...} as conf.\n",
     event_options, cmd_api, NULL, false},
    {"completion", "bash", "print the bash completion script",
     "Print a bash completion script for dagctl: commands, each command's own\n"
     "options and their values, DAG ids (from dagd, else the DAG folder).\n"
     "Load it with: source <(dagctl completion bash)\n",
     no_options, cli_cmd_completion, NULL, true},
    {"help", "[COMMAND]", "show a command's help", "Show the help of COMMAND, or the list of commands.\n", no_options,
     cmd_help, NULL, true},
};
const size_t cli_n_commands = DAGD_ARRAY_LEN(cli_commands);

/* Global options may appear anywhere on the line (parse_globals). */
const cli_option cli_globals[] = {
    {"server", 's', false, "URL", NULL, 0, "dagd's address (env DAGD_URL, default http://127.0.0.1:8787)"},
    {"token", 't', false, "TOKEN", NULL, 0, "API bearer token (env DAGD_TOKEN)"},
    {"output", 'o', true, "table|json|yaml", "table|json|yaml", 0, "table (default), json or yaml"},
    {"config", 'c', false, "FILE", NULL, 0, "dagd config file (env DAGD_CONFIG, default ./dagd.lua)"},
    {"help", 'h', true, NULL, NULL, 0, "this help; `dagctl help COMMAND` for a command's"},
    {"version", 'V', false, NULL, NULL, 0, "print the version"},
    {"man", 'M', false, NULL, NULL, 0, "print the manual page (man(7) markup)"},
    OPT_END};

const char *const cli_description =
    "dagctl operates dagd, the workflow scheduler: the commands that talk to a\n"
    "running dagd over its HTTP API (--server) list DAGs, trigger and backfill\n"
    "runs, follow their progress and logs, and clear or mark task instances; the\n"
    "offline ones (validate, graph, next, test, db) read the DAG files and the\n"
    "state file directly and need no running dagd.\n";

const char *const cli_environment_help =
    "  DAGD_URL           dagd's address, as --server\n"
    "  DAGD_TOKEN         API bearer token, as --token\n"
    "  DAGD_CONFIG        dagd config file, as --config\n"
    "  DAGD_DAGS_FOLDER   the DAG folder of the offline commands\n"
    "  NO_COLOR           any value but empty: no colour\n"
    "  TERM               dumb: no colour, no line updated in place\n"
    "  COLUMNS            the table width when stdout is no terminal\n";

const char *const cli_exit_help =
    "Exit status: 0 done, 1 the operation failed, 2 usage error, 3 server unreachable.\n";

/* "--name ARG" or "-n ARG" (the short spelling when there is one). */
static void option_spelling(const cli_option *o, bool both, dagd_buf *out) {
  if (o->letter && both) dagd_buf_printf(out, "-%c, --%s", o->val, o->name);
  else if (o->letter) dagd_buf_printf(out, "-%c", o->val);
  else dagd_buf_printf(out, "--%s", o->name);
  if (o->arg) dagd_buf_printf(out, " %s", o->arg);
}

void cli_synopsis(const cli_command *cmd, dagd_buf *out) {
  if (cmd->synopsis) {
    dagd_buf_puts(out, cmd->synopsis);
    return;
  }
  dagd_buf_puts(out, cmd->name);
  if (*cmd->args) dagd_buf_printf(out, " %s", cmd->args);
  for (const cli_option *o = cmd->options; o->name; o++) {
    bool required = o->flags & CLI_OPT_REQUIRED;
    dagd_buf_puts(out, required ? " " : " [");
    option_spelling(o, false, out);
    dagd_buf_puts(out, required ? "" : "]");
    if (o->flags & CLI_OPT_REPEAT) dagd_buf_puts(out, "...");
  }
}

/* An aligned option list: spelling, then the help, continued lines under it. */
static void print_options(FILE *out, const cli_option *opts) {
  int width = 16;
  for (const cli_option *o = opts; o->name; o++) {
    dagd_buf b;
    dagd_buf_init(&b);
    option_spelling(o, true, &b);
    if ((int)b.len > width) width = (int)b.len;
    dagd_buf_close(&b);
  }
  for (const cli_option *o = opts; o->name; o++) {
    dagd_buf b;
    dagd_buf_init(&b);
    option_spelling(o, true, &b);
    fprintf(out, "  %-*s  ", width, b.data);
    dagd_buf_close(&b);
    for (const char *h = o->help; *h;) {
      const char *nl = strchr(h, '\n');
      int n = nl ? (int)(nl - h) : (int)strlen(h);
      fprintf(out, "%.*s\n", n, h);
      if (!nl) break;
      h = nl + 1;
      fprintf(out, "  %-*s  ", width, "");
    }
  }
}

static void usage(FILE *out) {
  fprintf(out,
          "usage: dagctl [--server URL] [--token TOKEN] [-o table|json|yaml] [--config FILE]\n"
          "              COMMAND [ARGS...]\n"
          "\n"
          "%s\n"
          "Commands:\n",
          cli_description);
  for (size_t i = 0; i < cli_n_commands; i++) fprintf(out, "  %-10s %s\n", cli_commands[i].name, cli_commands[i].summary);
  fprintf(out, "\n`dagctl help COMMAND` shows a command's arguments.\n\nGlobal options (anywhere on the line):\n");
  print_options(out, cli_globals);
  fprintf(out, "\nEnvironment:\n%s\n%s", cli_environment_help, cli_exit_help);
}

static const cli_command *find_command(const char *name) {
  for (size_t i = 0; i < cli_n_commands; i++)
    if (strcmp(cli_commands[i].name, name) == 0) return &cli_commands[i];
  return NULL;
}

static void command_help(const cli_command *cmd, FILE *out) {
  dagd_buf syn;
  dagd_buf_init(&syn);
  cli_synopsis(cmd, &syn);
  fprintf(out, "usage: dagctl %s\n\n%s", syn.data, cmd->help);
  dagd_buf_close(&syn);
  if (cmd->options[0].name) {
    fprintf(out, "\nOptions:\n");
    print_options(out, cmd->options);
  }
}

static int cmd_help(cli *c, int argc, char **argv) {
  if (argc > 2) return CLI_USAGE;
  if (argc < 2) {
    usage(stdout);
    return CLI_OK;
  }
  const cli_command *cmd = find_command(argv[1]);
  if (cmd == NULL) {
    fprintf(stderr, "dagctl: unknown command \"%s\" (see dagctl --help)\n", argv[1]);
    return CLI_USAGE;
  }
  command_help(cmd, stdout);
  return CLI_OK;
}

int cli_getopt(cli *c, int argc, char **argv) {
  struct option longopts[24];
  char shortopts[48];
  size_t n = 0, s = 0;
  for (const cli_option *o = c->cmd->options; o->name && n + 1 < DAGD_ARRAY_LEN(longopts); o++) {
    longopts[n++] = (struct option){o->name, o->arg ? required_argument : no_argument, NULL, o->val};
    if (o->letter && s + 3 < sizeof(shortopts)) {
      shortopts[s++] = (char)o->val;
      if (o->arg) shortopts[s++] = ':';
    }
  }
  longopts[n] = (struct option){0, 0, 0, 0};
  shortopts[s] = '\0';
  return getopt_long(argc, argv, shortopts, longopts, NULL);
}

/* Takes the global options out of argv wherever they appear, leaving the
 * command and its own arguments in order. Returns -1 on a usage error. */
static int parse_globals(cli *c, int *argc, char **argv, const char **config, bool *help, bool *version,
                         bool *man) {
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    const char *a = argv[i];
    if (strcmp(a, "--") == 0) {
      while (i < *argc) argv[out++] = argv[i++];
      break;
    }
    const cli_option *g = NULL;
    const char *value = NULL;
    for (const cli_option *o = cli_globals; o->name && g == NULL; o++) {
      size_t n = strlen(o->name);
      if (a[0] == '-' && a[1] == '-' && strncmp(a + 2, o->name, n) == 0 && (a[2 + n] == '\0' || a[2 + n] == '=')) {
        g = o;
        if (a[2 + n] == '=') value = a + 3 + n;
      } else if (o->letter && a[0] == '-' && a[1] == o->val && (a[2] == '\0' || o->arg)) {
        g = o;
        if (a[2]) value = a + 2;
      }
    }
    if (g == NULL) {
      argv[out++] = argv[i];
      continue;
    }
    if (g->arg == NULL && value != NULL) {
      fprintf(stderr, "dagctl: --%s takes no value\n", g->name);
      return -1;
    }
    if (g->arg && value == NULL) {
      if (i + 1 >= *argc) {
        fprintf(stderr, "dagctl: --%s needs a value\n", g->name);
        return -1;
      }
      value = argv[++i];
    }
    switch (g->val) {
    case 's': c->server = value; break;
    case 't': c->token = value; break;
    case 'c': *config = value; break;
    case 'h': *help = true; break;
    case 'V': *version = true; break;
    case 'M': *man = true; break;
    case 'o':
      if (strcmp(value, "json") == 0 || strcmp(value, "yaml") == 0) {
        c->json = true;
        c->yaml = value[0] == 'y';
      } else if (strcmp(value, "table") == 0) {
        c->json = c->yaml = false;
      } else {
        fprintf(stderr, "dagctl: -o takes table, json or yaml, not \"%s\"\n", value);
        return -1;
      }
      break;
    default: break;
    }
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

/* Colour in tables only on a terminal, unless NO_COLOR is set to
 * anything (no-color.org) or the terminal is dumb. */
static bool want_colour(void) {
  const char *no = getenv("NO_COLOR");
  const char *term = getenv("TERM");
  if (no != NULL && *no != '\0') return false;
  if (term != NULL && strcmp(term, "dumb") == 0) return false;
  return isatty(STDOUT_FILENO);
}

int main(int argc, char **argv) {
  cli c = {0};
  const char *config = NULL;
  bool help = false, version = false, man = false;
  int rc;
  c.server = getenv("DAGD_URL");
  c.token = getenv("DAGD_TOKEN");
  if (c.server == NULL || *c.server == '\0') c.server = "http://127.0.0.1:8787";
  c.colour = want_colour();
  if (parse_globals(&c, &argc, argv, &config, &help, &version, &man) < 0) {
    usage(stderr);
    return CLI_USAGE;
  }
  if (version) {
    printf("dagctl %s\n", DAGD_VERSION);
    return CLI_OK;
  }
  if (man) {
    cli_man(stdout);
    return CLI_OK;
  }
  if (argc < 2) {
    usage(help ? stdout : stderr);
    return help ? CLI_OK : CLI_USAGE;
  }
  const cli_command *cmd = find_command(argv[1]);
  if (cmd == NULL) {
    fprintf(stderr, "dagctl: unknown command \"%s\" (see dagctl --help)\n", argv[1]);
    return CLI_USAGE;
  }
  if (help) {
    command_help(cmd, stdout);
    return CLI_OK;
  }
  c.cmd = cmd;
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&c.cfg);
  /* Paths absolute as the daemon makes them: `dagctl test` runs a task in
   * its DAG file's folder and hands it $DAGD_OUTPUT and that file. */
  char *cwd = getcwd(NULL, 0);
  int loaded = cmd->no_config ? 0 : dagd_config_load(&c.cfg, config, environ, &err);
  if (loaded == 0 && cwd) loaded = dagd_config_resolve(&c.cfg, cwd, &err);
  if (loaded == 0 && cwd) loaded = dagd_config_absolute_env("DAGD_LUA_PATH", cwd, &err);
  free(cwd);
  if (loaded < 0) {
    fprintf(stderr, "dagctl: %s\n", err.msg);
    dagd_config_close(&c.cfg);
    return CLI_USAGE;
  }
  /* Commands see their own name as argv[0], like a program of their own. */
  rc = cmd->run(&c, argc - 1, argv + 1);
  if (rc == CLI_USAGE) {
    dagd_buf syn;
    dagd_buf_init(&syn);
    cli_synopsis(cmd, &syn);
    fprintf(stderr, "usage: dagctl %s\n", syn.data);
    dagd_buf_close(&syn);
  }
  dagd_config_close(&c.cfg);
  return rc;
}
