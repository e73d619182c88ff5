/* dagd's options and help: the table main() parses the command line with,
 * `dagd --help`, and `dagd --man` (the manual page, man(7) markup, that the
 * build writes into man/dagd.1), all from the same texts.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/format.h"
#include "dagd/util.h"
#include "daemon.h"

const daemon_option daemon_options[] = {
    {"config", 'c', "FILE", NULL, "the config file (env DAGD_CONFIG; default ./dagd.lua if any)"},
    {"dags-folder", 'D', "DIR", "dags_folder", "the DAG folder (default ./dags)"},
    {"state", 'S', "FILE", "state", "the SQLite state file (default var/dagd.db)"},
    {"logs-folder", 'L', "DIR", "logs_folder", "the task logs folder (default var/logs)"},
    {"listen", 'l', "HOST:PORT", "listen", "the API's address (default 127.0.0.1:8787; port 0: any free one)"},
    {"parallelism", 'p', "N", "parallelism", "worker slots: tries running at once (default 16)"},
    {"executor", 'e', "local|kubernetes", "executor", "where tries run (default local)"},
    {"log-level", 'v', "error|warn|info|debug", NULL, "how much dagd logs (default info)"},
    {"once", '1', NULL, NULL, "load and report the DAG folder, then exit (1 on a file error)"},
    {"check-config", 'C', NULL, NULL, "check the configuration and exit"},
    {"version", 'V', NULL, NULL, "print the version"},
    {"help", 'h', NULL, NULL, "this help"},
    {"man", 'M', NULL, NULL, "print the manual page (man(7) markup)"},
    {NULL, 0, NULL, NULL, NULL}};

static const char description[] =
    "dagd is a workflow scheduler for machine-learning pipelines. It opens the\n"
    "state store, loads the DAG folder (DAGs written in Lua), re-adopts the task\n"
    "tries an earlier dagd left running, serves the HTTP API, and schedules:\n"
    "runs are created when their interval ends, on events and on request, task\n"
    "instances start in dependency order within parallelism, max_active_tasks,\n"
    "max_active_runs and pool slots, and every change is committed to SQLite\n"
    "before it takes effect. dagctl(1) drives it.\n"
    "\n"
    "Every option also comes from the config file (dagd.lua) or a DAGD_<KEY>\n"
    "environment variable; a flag wins over both. Relative paths are made\n"
    "absolute against the working directory, once, at start.\n";

static const char environment[] =
    "  DAGD_CONFIG        the config file, as --config\n"
    "  DAGD_<KEY>         any config key, e.g. DAGD_DAGS_FOLDER, DAGD_LISTEN\n"
    "  DAGD_API_TOKEN     one admin API token\n";

static const char signals[] =
    "  SIGHUP             reload the DAG folder (it is also watched for changes)\n"
    "  SIGINT, SIGTERM    drain: start no new tries, wait for the running ones\n"
    "                     up to drain_timeout (60 s), leave the rest to their\n"
    "                     supervisors for the next start to re-adopt; a second\n"
    "                     signal stops at once\n";

static const char exit_status[] =
    "  0                  stopped after a drain, or --once with no file error\n"
    "  1                  a fatal error (e.g. the address in use, or a\n"
    "                     non-loopback address without api_tokens: nothing is\n"
    "                     created then), or --once with a file error\n"
    "  2                  a usage or configuration error\n";

/* "--name ARG", as the synopsis and the option list show it. */
static void spelling(const daemon_option *o, dagd_buf *b) {
  dagd_buf_printf(b, "--%s", o->name);
  if (o->arg) dagd_buf_printf(b, " %s", o->arg);
}

void daemon_usage(FILE *out) {
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, "usage: dagd");
  size_t col = b.len;
  for (const daemon_option *o = daemon_options; o->name; o++) {
    dagd_buf opt;
    dagd_buf_init(&opt);
    spelling(o, &opt);
    if (col + opt.len + 3 > 80) {
      dagd_buf_puts(&b, "\n           ");
      col = 11;
    }
    dagd_buf_printf(&b, " [%s]", opt.data);
    col += opt.len + 3;
    dagd_buf_close(&opt);
  }
  fprintf(out, "%s\n\n%s\nOptions:\n", b.data, description);
  dagd_buf_close(&b);
  for (const daemon_option *o = daemon_options; o->name; o++) {
    dagd_buf opt;
    dagd_buf_init(&opt);
    spelling(o, &opt);
    /* A long spelling puts its help on the next line. */
    if (opt.len > 20) fprintf(out, "  %s\n  %-20s  %s\n", opt.data, "", o->help);
    else fprintf(out, "  %-20s  %s\n", opt.data, o->help);
    if (o->config_key) fprintf(out, "  %-20s  (config key %s)\n", "", o->config_key);
    dagd_buf_close(&opt);
  }
  fprintf(out, "\nEnvironment:\n%s\nSignals:\n%s\nExit status:\n%s", environment, signals, exit_status);
}

static void esc(dagd_buf *b, const char *s) { dagd_roff_escape(b, s, strlen(s)); }

/* "  NAME   text" lines (the text may go on, indented, on the next lines)
 * as .TP entries. */
static void man_list(dagd_buf *b, const char *text) {
  bool open = false;
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    const char *q = p + (n >= 2 ? 2 : n);
    const char *end = p + n;
    if (*q != ' ') {
      /* A new entry: its name runs to the first two spaces. */
      const char *name_end = strstr(q, "  ");
      if (name_end == NULL || name_end > end) name_end = end;
      const char *rest = name_end;
      while (rest < end && *rest == ' ') rest++;
      dagd_buf_puts(b, ".TP\n.B ");
      dagd_roff_escape(b, q, (size_t)(name_end - q));
      dagd_buf_putc(b, '\n');
      dagd_roff_escape(b, rest, (size_t)(end - rest));
      dagd_buf_putc(b, '\n');
      open = true;
    } else if (open) {
      while (q < end && *q == ' ') q++;
      dagd_roff_escape(b, q, (size_t)(end - q));
      dagd_buf_putc(b, '\n');
    }
    p += n + (nl ? 1 : 0);
  }
}

void daemon_man(FILE *out) {
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, ".\\\" dagd(1), written by `dagd --man` from dagd's own option table and help.\n");
  dagd_buf_printf(&b, ".TH DAGD 1 \"\" \"dagd %s\" \"User Commands\"\n", DAGD_VERSION);
  /* No hyphenation: option names and ids must copy as written. */
  dagd_buf_puts(&b, ".nh\n.ad l\n");
  dagd_buf_puts(&b, ".SH NAME\ndagd \\- the dagd workflow scheduler daemon\n.SH SYNOPSIS\n.B dagd\n");
  for (const daemon_option *o = daemon_options; o->name; o++) {
    dagd_buf_puts(&b, "[\\fB\\-\\-");
    esc(&b, o->name);
    dagd_buf_puts(&b, "\\fR");
    if (o->arg) {
      dagd_buf_puts(&b, " \\fI");
      esc(&b, o->arg);
      dagd_buf_puts(&b, "\\fR");
    }
    dagd_buf_puts(&b, "]\n");
  }
  dagd_buf_puts(&b, ".SH DESCRIPTION\n");
  dagd_roff_help(&b, description);
  dagd_buf_puts(&b, ".SH OPTIONS\n");
  for (const daemon_option *o = daemon_options; o->name; o++) {
    dagd_buf_puts(&b, ".TP\n\\fB\\-\\-");
    esc(&b, o->name);
    dagd_buf_puts(&b, "\\fR");
    if (o->arg) {
      dagd_buf_puts(&b, " \\fI");
      esc(&b, o->arg);
      dagd_buf_puts(&b, "\\fR");
    }
    dagd_buf_putc(&b, '\n');
    esc(&b, o->help);
    if (o->config_key) {
      dagd_buf_puts(&b, " (config key \\fB");
      esc(&b, o->config_key);
      dagd_buf_puts(&b, "\\fR)");
    }
    dagd_buf_putc(&b, '\n');
  }
  dagd_buf_puts(&b, ".SH ENVIRONMENT\n");
  man_list(&b, environment);
  dagd_buf_puts(&b, ".SH SIGNALS\n");
  man_list(&b, signals);
  dagd_buf_puts(&b, ".SH \"EXIT STATUS\"\n");
  man_list(&b, exit_status);
  dagd_buf_puts(&b, ".SH \"SEE ALSO\"\n.BR dagctl (1)\n");
  fwrite(b.data, 1, b.len, out);
  dagd_buf_close(&b);
}
