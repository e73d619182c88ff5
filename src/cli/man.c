/* `dagctl --man`: dagctl's manual page in man(7) markup, written from the
 * command and option tables the command line is parsed with and the help
 * texts `dagctl help` prints, so the page cannot drift from the program.
 * The build writes it into man/dagctl.1 and `cmake --install` installs it.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/format.h"
#include "internal.h"

static void esc(dagd_buf *b, const char *s) { dagd_roff_escape(b, s, strlen(s)); }

/* .TP entries, one per option: its spellings in bold, its value in italics. */
static void man_options(dagd_buf *b, const cli_option *opts) {
  for (const cli_option *o = opts; o->name; o++) {
    dagd_buf_puts(b, ".TP\n");
    if (o->letter) dagd_buf_printf(b, "\\fB\\-%c\\fR, ", o->val);
    dagd_buf_puts(b, "\\fB\\-\\-");
    esc(b, o->name);
    dagd_buf_puts(b, "\\fR");
    if (o->arg) {
      dagd_buf_puts(b, " \\fI");
      esc(b, o->arg);
      dagd_buf_puts(b, "\\fR");
    }
    dagd_buf_putc(b, '\n');
    /* The help's lines are filled into one paragraph. */
    esc(b, o->help);
    dagd_buf_putc(b, '\n');
  }
}

/* "  NAME   what it is" lines as .TP entries. */
static void man_list(dagd_buf *b, const char *text) {
  for (const char *p = text; *p;) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    const char *q = p;
    while (q < p + n && *q == ' ') q++;
    const char *name_end = q;
    while (name_end < p + n && *name_end != ' ') name_end++;
    const char *rest = name_end;
    while (rest < p + n && *rest == ' ') rest++;
    if (name_end > q) {
      dagd_buf_puts(b, ".TP\n.B ");
      dagd_roff_escape(b, q, (size_t)(name_end - q));
      dagd_buf_putc(b, '\n');
      dagd_roff_escape(b, rest, (size_t)(p + n - rest));
      dagd_buf_putc(b, '\n');
    }
    p += n + (nl ? 1 : 0);
  }
}

void cli_man(FILE *out) {
  dagd_buf b;
  dagd_buf_init(&b);
  dagd_buf_puts(&b, ".\\\" dagctl(1), written by `dagctl --man` from dagctl's own help tables.\n");
  dagd_buf_printf(&b, ".TH DAGCTL 1 \"\" \"dagd %s\" \"User Commands\"\n", DAGD_VERSION);
  /* No hyphenation: option names and ids must copy as written. */
  dagd_buf_puts(&b, ".nh\n.ad l\n");
  dagd_buf_puts(&b, ".SH NAME\ndagctl \\- trigger, backfill, inspect and repair the runs of dagd\n");
  dagd_buf_puts(&b, ".SH SYNOPSIS\n.B dagctl\n[\\fIGLOBAL OPTIONS\\fR] \\fICOMMAND\\fR [\\fIARGS\\fR...]\n");
  dagd_buf_puts(&b, ".SH DESCRIPTION\n");
  dagd_roff_help(&b, cli_description);
  dagd_buf_puts(&b, ".SH \"GLOBAL OPTIONS\"\nThey may appear anywhere on the line.\n");
  man_options(&b, cli_globals);
  dagd_buf_puts(&b, ".SH COMMANDS\n");
  for (size_t i = 0; i < cli_n_commands; i++) {
    const cli_command *cmd = &cli_commands[i];
    dagd_buf syn;
    dagd_buf_init(&syn);
    cli_synopsis(cmd, &syn);
    dagd_buf_puts(&b, ".SS \"");
    esc(&b, cmd->name);
    dagd_buf_puts(&b, "\"\n.B dagctl\n");
    esc(&b, syn.data);
    dagd_buf_putc(&b, '\n');
    dagd_buf_close(&syn);
    dagd_roff_help(&b, cmd->help);
    if (cmd->options[0].name) {
      dagd_buf_puts(&b, ".PP\nOptions:\n.RS 4\n");
      man_options(&b, cmd->options);
      dagd_buf_puts(&b, ".RE\n");
    }
  }
  dagd_buf_puts(&b, ".SH ENVIRONMENT\n");
  man_list(&b, cli_environment_help);
  dagd_buf_puts(&b, ".SH \"EXIT STATUS\"\n");
  dagd_roff_help(&b, cli_exit_help);
  dagd_buf_puts(&b, ".SH \"SEE ALSO\"\n.BR dagd (1)\n");
  fwrite(b.data, 1, b.len, out);
  dagd_buf_close(&b);
}
