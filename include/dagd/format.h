/* Output formats for people and programs: YAML from JSON values (dagctl
 * -o yaml) and man(7) markup from plain help text (the manual pages of
 * dagd and dagctl, written from the same tables as their --help).
 * Pure: they append to a buffer, no I/O.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_FORMAT_H
#define DAGD_FORMAT_H

#include <stddef.h>

#include <jansson.h>

#include "dagd/util.h"

/* Appends v as one YAML document in block style, ending in a newline, that
 * a YAML 1.1 or 1.2 parser (PyYAML, libyaml, yq) reads back as the same
 * value: a string that would read as anything else (yes, no, null, 012,
 * 1e3, 12:30, a timestamp, an empty string, one with ": " or " #", a
 * control character) is double-quoted; a multi-line printable string is a
 * literal block (|); every real keeps a decimal point so it stays a
 * float. Object keys keep the order of v. */
void dagd_yaml_dump(const json_t *v, dagd_buf *out);

/* Appends the n bytes of text escaped for a roff text line or macro
 * argument: backslashes, hyphens (as \-, so options copy as typed),
 * double quotes, a leading . or ', and every non-ASCII character (as
 * \[uXXXX], so the page renders the same in any locale). */
void dagd_roff_escape(dagd_buf *out, const char *text, size_t n);

/* Appends plain help text as man(7) body markup: paragraphs split by
 * blank lines become .PP paragraphs, filled; a block of lines indented by
 * two or more spaces is kept as written (no fill), indented. */
void dagd_roff_help(dagd_buf *out, const char *text);

#endif
