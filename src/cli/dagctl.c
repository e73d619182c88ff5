/* dagctl: the command-line tool. Parses global options, dispatches to a
 * command, prints help. Offline commands (validate, graph, next) work on
 * the DAG files directly; commands that talk to a running dagd arrive with
 * the HTTP API.
 * SPDX-License-Identifier: MIT */
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "dagd/err.h"
#include "dagd/util.h"
#include "internal.h"

extern char **environ;

static int cmd_api(cli *c, int argc, char **argv) { return cli_cmd_remote(c, argv[0], argc, argv); }

static const cli_command commands[] = {
    {"validate", "check DAG files, list every error (offline)", "validate [PATH...]",
     "Load DAG files and report every error as file:line: message.\n"
     "\n"
     "PATH is a DAG file or a folder (its *.lua files, recursively); the default\n"
     "is the DAG folder (DAGD_DAGS_FOLDER, or dags_folder in the config, or ./dags).\n"
     "A file with an error contributes no DAG; the other files still load.\n"
     "\n"
     "With -o json, prints {\"dags\": [...], \"errors\": [{\"file\", \"line\", \"message\"}]}.\n"
     "Exit status: 0 when everything loaded, 1 on any error.\n",
     cli_cmd_validate},
    {"graph", "print a DAG's task graph (offline)", "graph DAG [--format text|dot]",
     "Print the task graph of a DAG: tasks in topological order with their\n"
     "upstream tasks (text), or a Graphviz digraph (dot).\n"
     "\n"
     "  --format text|dot   output format (default text)\n",
     cli_cmd_graph},
    {"next", "next runs and data intervals (offline)", "next DAG [-n N] [--after T]",
     "Print the next scheduled runs of a DAG: when each run becomes due and the\n"
     "data interval it covers, in the DAG's time zone and in UTC.\n"
     "\n"
     "  -n, --count N   how many runs (default 5, at most 1000)\n"
     "  --after T       list runs due strictly after T (default now); T is\n"
     "                  YYYY-MM-DD[THH:MM[:SS]] in the DAG's zone, or with Z or\n"
     "                  an offset (+01:00)\n"
     "\n"
     "With -o json, prints an array of {\"run_after\", \"data_interval_start\",\n"
     "\"data_interval_end\"} in RFC 3339 UTC.\n",
     cli_cmd_next},
    {"test", "run one task now, no state written (offline)", "test DAG TASK [DATE] [--conf JSON]",
     "Run one task now, in the foreground, with the same templates and environment\n"
     "as a scheduled try, writing no state. Its output goes to the terminal and the\n"
     "outputs it writes to $DAGD_OUTPUT are printed (as JSON with -o json).\n"
     "\n"
     "DATE is the logical date (YYYY-MM-DD[THH:MM[:SS]] in the DAG's zone, or with\n"
     "Z or an offset); the default is the start of the latest complete interval.\n"
     "Outputs of upstream tasks are not available: a template that reads them fails.\n"
     "\n"
     "  --conf JSON     the run's conf (default {})\n"
     "\n"
     "Exit status: 0 when the task succeeded, 1 otherwise.\n",
     cli_cmd_test},
    {"dags", "list DAGs with their state", "dags",
     "List the DAGs dagd has loaded: paused or not, schedule, time zone, next run,\n"
     "the state of the latest run. DAG files that failed to load are listed on\n"
     "stderr with file:line.\n",
     cmd_api},
    {"pause", "pause a DAG", "pause DAG", "Pause a DAG: it creates no new runs; running tasks finish.\n", cmd_api},
    {"unpause", "unpause a DAG", "unpause DAG", "Unpause a DAG.\n", cmd_api},
    {"trigger", "start a run", "trigger DAG [--conf JSON] [--date T] [--run-id ID] [--wait]",
     "Start a run of a DAG now.\n"
     "\n"
     "  --conf JSON     the run's conf, a JSON object (templates read it as conf.*)\n"
     "  --date T        the logical date (RFC 3339, default now)\n"
     "  --run-id ID     the run id (default manual__<now to the microsecond>, e.g.\n"
     "                  manual__2026-12-02T14:18:50.123456+00:00); an id that\n"
     "                  exists is refused (409)\n"
     "  --wait          follow the run to its end: a live progress line on a\n"
     "                  terminal, a line per change otherwise; exit 1 if it fails\n",
     cmd_api},
    {"backfill", "create runs for a date range", "backfill DAG --from D --to D [--rerun-failed] [--reset] [--reverse] [--dry-run] [--wait]",
     "Create runs for every interval whose logical date lies in [from, to], both\n"
     "ends included, oldest first, within the DAG's max_active_runs. Successful\n"
     "runs in range are kept.\n"
     "\n"
     "  --rerun-failed  clear the failed runs in range so they run again\n"
     "  --reset         clear every run in range\n"
     "  --reverse       newest first\n"
     "  --dry-run       list what would run, change nothing\n"
     "  --wait          follow the runs to their end; exit 1 if any fails\n",
     cmd_api},
    {"runs", "list a DAG's runs", "runs DAG [--state S] [-n N]",
     "List a DAG's runs, newest first (25 unless -n). --state: queued, running,\n"
     "success or failed.\n",
     cmd_api},
    {"tasks", "list a run's task instances", "tasks DAG RUN_ID", "List a run's task instances: state, try, duration, exit code, outputs.\n", cmd_api},
    {"logs", "print or follow a task's log", "logs DAG RUN_ID TASK [--try N] [-f]",
     "Print a task's log (the latest try unless --try). -f follows it while the try\n"
     "runs.\n",
     cmd_api},
    {"clear", "clear task instances to run them again", "clear DAG RUN_ID [--task T]... [--downstream] [--failed-only]",
     "Clear task instances so they run again (all of the run's unless --task);\n"
     "--downstream adds everything downstream; --failed-only keeps successful ones.\n"
     "The run goes back to running.\n",
     cmd_api},
    {"mark", "set a task instance's state", "mark DAG RUN_ID TASK success|failed", "Set a task instance's state by hand.\n", cmd_api},
    {"db", "check, back up or prune the state file (offline)", "db check | db backup FILE | db prune --older-than D [--dry-run]",
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
     cli_cmd_db},
    {"event", "post an event that starts runs", "event NAME [--payload JSON] [--id ID]",
     "Post an event: every DAG whose on_event lists NAME starts a run with\n"
     "{\"event\": NAME, \"payload\": ...} as conf. --id makes repeats recognisable.\n",
     cmd_api},
};

static void usage(FILE *out) {
  fprintf(out,
          "usage: dagctl [--server URL] [--token TOKEN] [-o table|json] [--config FILE]\n"
          "              COMMAND [ARGS...]\n"
          "\n"
          "Commands:\n");
  for (size_t i = 0; i < DAGD_ARRAY_LEN(commands); i++)
    fprintf(out, "  %-10s %s\n", commands[i].name, commands[i].summary);
  fprintf(out,
          "  %-10s %s\n"
          "\n"
          "`dagctl help COMMAND` shows a command's arguments.\n"
          "\n"
          "Global options:\n"
          "  --server URL      dagd's address (env DAGD_URL, default http://127.0.0.1:8787)\n"
          "  --token TOKEN     API bearer token (env DAGD_TOKEN)\n"
          "  -o table|json     output format (default table)\n"
          "  --config FILE     dagd config file (env DAGD_CONFIG, default ./dagd.lua)\n"
          "  -h, --help        this help; `dagctl help COMMAND` for a command's\n"
          "  --version         print the version\n"
          "\n"
          "Exit status: 0 done, 1 the operation failed, 2 usage error, 3 server unreachable.\n",
          "help", "show a command's help");
}

static const cli_command *find_command(const char *name) {
  for (size_t i = 0; i < DAGD_ARRAY_LEN(commands); i++)
    if (strcmp(commands[i].name, name) == 0) return &commands[i];
  return NULL;
}

static void command_help(const cli_command *cmd, FILE *out) {
  fprintf(out, "usage: dagctl %s\n\n%s", cmd->synopsis, cmd->help);
}

/* Takes the global options out of argv wherever they appear, leaving the
 * command and its own arguments in order. Returns -1 on a usage error. */
static int parse_globals(cli *c, int *argc, char **argv, const char **config, bool *help, bool *version) {
  int out = 1;
  for (int i = 1; i < *argc; i++) {
    const char *a = argv[i];
    const char **slot = NULL;
    const char *value = NULL;
    if (strcmp(a, "--") == 0) {
      while (i < *argc) argv[out++] = argv[i++];
      break;
    }
    if (strcmp(a, "--server") == 0 || strncmp(a, "--server=", 9) == 0) slot = &c->server;
    else if (strcmp(a, "--token") == 0 || strncmp(a, "--token=", 8) == 0) slot = &c->token;
    else if (strcmp(a, "--config") == 0 || strncmp(a, "--config=", 9) == 0) slot = config;
    else if (strcmp(a, "-o") == 0 || strncmp(a, "--output", 8) == 0 || (strncmp(a, "-o", 2) == 0 && a[2])) {
      const char *eq = strchr(a, '=');
      value = eq ? eq + 1 : (a[1] == 'o' && a[2]) ? a + 2 : NULL;
      if (value == NULL) {
        if (i + 1 >= *argc) return -1;
        value = argv[++i];
      }
      if (strcmp(value, "json") == 0) c->json = true;
      else if (strcmp(value, "table") == 0) c->json = false;
      else {
        fprintf(stderr, "dagctl: -o takes table or json, not \"%s\"\n", value);
        return -1;
      }
      continue;
    } else if (strcmp(a, "-h") == 0 || strcmp(a, "--help") == 0) {
      *help = true;
      continue;
    } else if (strcmp(a, "--version") == 0) {
      *version = true;
      continue;
    }
    if (slot != NULL) {
      const char *eq = strchr(a, '=');
      if (eq) value = eq + 1;
      else if (i + 1 < *argc) value = argv[++i];
      else {
        fprintf(stderr, "dagctl: %s needs a value\n", a);
        return -1;
      }
      *slot = value;
      continue;
    }
    argv[out++] = argv[i];
  }
  *argc = out;
  argv[out] = NULL;
  return 0;
}

int main(int argc, char **argv) {
  cli c = {0};
  const char *config = NULL;
  bool help = false, version = false;
  int rc;
  c.server = getenv("DAGD_URL");
  c.token = getenv("DAGD_TOKEN");
  if (c.server == NULL || *c.server == '\0') c.server = "http://127.0.0.1:8787";
  if (parse_globals(&c, &argc, argv, &config, &help, &version) < 0) {
    usage(stderr);
    return CLI_USAGE;
  }
  if (version) {
    printf("dagctl %s\n", DAGD_VERSION);
    return CLI_OK;
  }
  if (argc < 2) {
    usage(help ? stdout : stderr);
    return help ? CLI_OK : CLI_USAGE;
  }
  if (strcmp(argv[1], "help") == 0) {
    if (argc < 3) {
      usage(stdout);
      return CLI_OK;
    }
    const cli_command *cmd = find_command(argv[2]);
    if (cmd == NULL) {
      fprintf(stderr, "dagctl: unknown command \"%s\"\n", argv[2]);
      return CLI_USAGE;
    }
    command_help(cmd, stdout);
    return CLI_OK;
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
  dagd_err err;
  dagd_err_init(&err);
  dagd_config_init(&c.cfg);
  if (dagd_config_load(&c.cfg, config, environ, &err) < 0) {
    fprintf(stderr, "dagctl: %s\n", err.msg);
    dagd_config_close(&c.cfg);
    return CLI_USAGE;
  }
  /* Commands see their own name as argv[0], like a program of their own. */
  rc = cmd->run(&c, argc - 1, argv + 1);
  if (rc == CLI_USAGE) fprintf(stderr, "usage: dagctl %s\n", cmd->synopsis);
  dagd_config_close(&c.cfg);
  return rc;
}
