/* man(7) markup from plain text, for the manual pages dagd and dagctl
 * write from their help tables (`dagd --man`, `dagctl --man`).
 * SPDX-License-Identifier: MIT */
#include <stdbool.h>
#include <string.h>

#include "dagd/format.h"

void dagd_roff_escape(dagd_buf *out, const char *text, size_t n) {
  const unsigned char *p = (const unsigned char *)text;
  bool line_start = true;
  for (size_t i = 0; i < n; i++) {
    unsigned c = p[i];
    /* A line starting with . or ' would be a request. */
    if (line_start && (c == '.' || c == '\'')) dagd_buf_puts(out, "\\&");
    line_start = c == '\n';
    switch (c) {
    case '\\': dagd_buf_puts(out, "\\e"); continue;
    case '-': dagd_buf_puts(out, "\\-"); continue;
    case '"': dagd_buf_puts(out, "\\(dq"); continue;
    /* Plain quotes, not typographic ones, so a command copies as typed. */
    case '\'': dagd_buf_puts(out, "\\(aq"); continue;
    case '`': dagd_buf_puts(out, "\\(ga"); continue;
    default: break;
    }
    if (c < 0x80) {
      dagd_buf_putc(out, (char)c);
      continue;
    }
    /* Non-ASCII: a named code point, whatever the reader's locale. */
    size_t len = c < 0xE0 ? 2 : c < 0xF0 ? 3 : 4;
    unsigned cp = len == 2 ? c & 0x1F : len == 3 ? c & 0x0F : c & 0x07;
    for (size_t k = 1; k < len && i + k < n; k++) cp = (cp << 6) | (p[i + k] & 0x3F);
    i += len - 1;
    dagd_buf_printf(out, "\\[u%04X]", cp);
  }
}

/* Lines indented by at least two spaces belong to a no-fill block. */
static bool indented(const char *line, size_t n) { return n >= 2 && line[0] == ' ' && line[1] == ' '; }

void dagd_roff_help(dagd_buf *out, const char *text) {
  const char *p = text;
  enum { NONE, PROSE, BLOCK } in = NONE;
  while (*p) {
    const char *nl = strchr(p, '\n');
    size_t n = nl ? (size_t)(nl - p) : strlen(p);
    if (n == 0) {
      if (in == BLOCK) dagd_buf_puts(out, ".fi\n.RE\n");
      in = NONE;
    } else if (indented(p, n)) {
      if (in == PROSE || in == NONE) dagd_buf_puts(out, ".PP\n.RS 4\n.nf\n");
      in = BLOCK;
      /* The block keeps its layout, less the two spaces .RS stands for. */
      dagd_roff_escape(out, p + 2, n - 2);
      dagd_buf_putc(out, '\n');
    } else {
      if (in == BLOCK) dagd_buf_puts(out, ".fi\n.RE\n");
      if (in != PROSE) dagd_buf_puts(out, ".PP\n");
      in = PROSE;
      dagd_roff_escape(out, p, n);
      dagd_buf_putc(out, '\n');
    }
    p += n + (nl ? 1 : 0);
  }
  if (in == BLOCK) dagd_buf_puts(out, ".fi\n.RE\n");
}
