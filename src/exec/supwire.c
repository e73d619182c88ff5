/* The supervisor's packets and journal records: encoding and decoding,
 * plain code shared by the supervisor and the daemon.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "supervisor.h"

void dagd_sup_paths_init(dagd_sup_paths *p, const char *state) {
  p->journal = dagd_asprintf("%s.supervisor", state);
  p->lock = dagd_asprintf("%s.supervisor.lock", state);
}

void dagd_sup_paths_close(dagd_sup_paths *p) {
  free(p->journal);
  free(p->lock);
  memset(p, 0, sizeof(*p));
}

size_t dagd_sup_socket_name(int lock_fd, char *out, size_t size) {
  struct stat st;
  if (fstat(lock_fd, &st) < 0) return 0;
  /* The lock file's identity: one name per state file, whatever path
   * reaches it, and a new one if the file is made anew. */
  int n = snprintf(out, size, "%cdagd-supervisor-%llx-%llx", '\0', (unsigned long long)st.st_dev,
                   (unsigned long long)st.st_ino);
  return n > 0 && (size_t)n < size ? (size_t)n : 0;
}

static void put_u32(dagd_buf *b, uint32_t v) { dagd_buf_append(b, &v, sizeof(v)); }
static void put_str(dagd_buf *b, const char *s) { dagd_buf_append(b, s ? s : "", strlen(s ? s : "") + 1); }

/* The start's flags byte. */
enum { START_STDIN = 1, START_CONF = 2 };

void dagd_sup_encode_start(dagd_buf *out, const char *base, const char *cwd, char *const *argv, char *const *env,
                           const char *const *secrets, int grace_ms, bool has_stdin, const char *conf) {
  uint32_t argc = 0, envc = 0, nsec = 0;
  while (argv[argc]) argc++;
  while (env && env[envc]) envc++;
  while (secrets && secrets[nsec]) nsec++;
  dagd_buf_putc(out, 'S');
  put_u32(out, (uint32_t)grace_ms);
  put_u32(out, argc);
  put_u32(out, envc);
  put_u32(out, nsec);
  dagd_buf_putc(out, (char)((has_stdin ? START_STDIN : 0) | (conf ? START_CONF : 0)));
  put_str(out, base);
  put_str(out, cwd);
  if (conf) put_str(out, conf);
  for (uint32_t i = 0; i < argc; i++) put_str(out, argv[i]);
  for (uint32_t i = 0; i < envc; i++) put_str(out, env[i]);
  for (uint32_t i = 0; i < nsec; i++) put_str(out, secrets[i]);
}

/* The next string at *at, NULL past the end or without its NUL. */
static const char *take_str(const char *p, size_t len, size_t *at) {
  if (*at >= len) return NULL;
  const char *s = p + *at;
  const char *nul = memchr(s, '\0', len - *at);
  if (nul == NULL) return NULL;
  *at += (size_t)(nul - s) + 1;
  return s;
}

static bool take_strs(const char *p, size_t len, size_t *at, uint32_t n, char ***out) {
  if (n > len) return false; /* each takes a byte at least */
  char **v = dagd_calloc((size_t)n + 1, sizeof(*v));
  for (uint32_t i = 0; i < n; i++) {
    const char *s = take_str(p, len, at);
    if (s == NULL) {
      free(v);
      return false;
    }
    v[i] = (char *)s;
  }
  *out = v;
  return true;
}

bool dagd_sup_decode_start(const char *p, size_t len, dagd_sup_start *out) {
  memset(out, 0, sizeof(*out));
  uint32_t grace, argc, envc, nsec;
  if (len < 18 || p[0] != 'S') return false;
  memcpy(&grace, p + 1, 4);
  memcpy(&argc, p + 5, 4);
  memcpy(&envc, p + 9, 4);
  memcpy(&nsec, p + 13, 4);
  out->grace_ms = (int)grace;
  unsigned flags = (unsigned char)p[17];
  out->has_stdin = flags & START_STDIN;
  size_t at = 18;
  out->base = take_str(p, len, &at);
  out->cwd = take_str(p, len, &at);
  if (out->base == NULL || out->base[0] == '\0' || out->cwd == NULL || argc == 0 || grace > 86400000u ||
      (flags & ~(START_STDIN | START_CONF)))
    return false;
  if ((flags & START_CONF) && (out->conf = take_str(p, len, &at)) == NULL) return false;
  if (out->cwd[0] == '\0') out->cwd = NULL;
  if (!take_strs(p, len, &at, argc, &out->argv)) return false;
  if (!take_strs(p, len, &at, envc, &out->env) || !take_strs(p, len, &at, nsec, &out->secrets) || at != len) {
    dagd_sup_start_close(out);
    return false;
  }
  return true;
}

void dagd_sup_start_close(dagd_sup_start *s) {
  free(s->argv);
  free(s->env);
  free(s->secrets);
  s->argv = s->env = s->secrets = NULL;
}

void dagd_sup_encode_str(dagd_buf *out, char t, const char *s) {
  dagd_buf_putc(out, t);
  put_str(out, s);
}

const char *dagd_sup_decode_str(const char *p, size_t len) {
  size_t at = 1;
  const char *s = take_str(p, len, &at);
  return s && at == len && s[0] ? s : NULL;
}

void dagd_sup_encode_end(dagd_buf *out, const dagd_try_result *r, double ended, const char *base) {
  int32_t code = r->code;
  dagd_buf_putc(out, 'E');
  dagd_buf_putc(out, (char)r->how);
  dagd_buf_append(out, &code, sizeof(code));
  dagd_buf_append(out, &ended, sizeof(ended));
  put_str(out, base);
}

bool dagd_sup_decode_end(const char *p, size_t len, dagd_try_result *r, double *ended, const char **base) {
  if (len < 15 || p[0] != 'E') return false;
  int32_t code;
  int how = (unsigned char)p[1];
  if (how != DAGD_TRY_EXITED && how != DAGD_TRY_SIGNALED && how != DAGD_TRY_VANISHED) return false;
  memcpy(&code, p + 2, 4);
  memcpy(ended, p + 6, 8);
  *r = (dagd_try_result){(dagd_try_end)how, code};
  size_t at = 14;
  *base = take_str(p, len, &at);
  return *base && at == len && (*base)[0];
}

/* --- the journal --- */

static void put_escaped(dagd_buf *b, const char *s) {
  for (; *s; s++) {
    if (*s == '\\') dagd_buf_puts(b, "\\\\");
    else if (*s == '\t') dagd_buf_puts(b, "\\t");
    else if (*s == '\n') dagd_buf_puts(b, "\\n");
    else dagd_buf_putc(b, *s);
  }
}

static char *unescape(const char *s, size_t len) {
  char *out = dagd_malloc(len + 1), *o = out;
  for (size_t i = 0; i < len; i++) {
    if (s[i] != '\\' || i + 1 == len) {
      *o++ = s[i];
      continue;
    }
    char c = s[++i];
    *o++ = c == 't' ? '\t' : c == 'n' ? '\n' : c;
  }
  *o = '\0';
  return out;
}

void dagd_sup_journal_start(dagd_buf *out, long long seq, pid_t pid, const char *cgroup, const char *base) {
  dagd_buf_printf(out, "S\t%lld\t%ld\t", seq, (long)pid);
  put_escaped(out, cgroup);
  dagd_buf_putc(out, '\t');
  put_escaped(out, base);
  dagd_buf_putc(out, '\n');
}

static const char *how_word(dagd_try_end how) {
  return how == DAGD_TRY_EXITED ? "exit" : how == DAGD_TRY_SIGNALED ? "signal" : "vanished";
}

void dagd_sup_journal_end(dagd_buf *out, long long seq, const dagd_try_result *r, double ended) {
  dagd_buf_printf(out, "E\t%lld\t%s\t%d\t%.6f\n", seq, how_word(r->how), r->code, ended);
}

void dagd_sup_journal_forget(dagd_buf *out, long long seq) { dagd_buf_printf(out, "F\t%lld\n", seq); }

/* Splits line at tabs into at most max fields; the count. */
static size_t fields(const char *line, size_t len, const char **f, size_t *flen, size_t max) {
  size_t n = 0, start = 0;
  for (size_t i = 0; i <= len && n < max; i++) {
    if (i < len && line[i] != '\t') continue;
    f[n] = line + start;
    flen[n++] = i - start;
    start = i + 1;
  }
  return n;
}

static bool parse_ll(const char *s, size_t len, long long *v) {
  char tmp[32];
  if (len == 0 || len >= sizeof(tmp)) return false;
  memcpy(tmp, s, len);
  tmp[len] = '\0';
  char *end;
  *v = strtoll(tmp, &end, 10);
  return *end == '\0';
}

bool dagd_sup_journal_parse(const char *line, size_t len, dagd_sup_record *rec) {
  memset(rec, 0, sizeof(*rec));
  const char *f[6];
  size_t fl[6];
  size_t n = fields(line, len, f, fl, 6);
  if (n < 2 || fl[0] != 1 || !parse_ll(f[1], fl[1], &rec->seq)) return false;
  rec->kind = f[0][0];
  long long v;
  switch (rec->kind) {
  case 'S':
    if (n != 5 || !parse_ll(f[2], fl[2], &v) || fl[4] == 0) return false;
    rec->pid = (pid_t)v;
    rec->cgroup = unescape(f[3], fl[3]);
    rec->base = unescape(f[4], fl[4]);
    return true;
  case 'E': {
    if (n != 5 || !parse_ll(f[3], fl[3], &v)) return false;
    char word[16], num[40];
    if (fl[2] >= sizeof(word) || fl[4] == 0 || fl[4] >= sizeof(num)) return false;
    memcpy(word, f[2], fl[2]);
    word[fl[2]] = '\0';
    memcpy(num, f[4], fl[4]);
    num[fl[4]] = '\0';
    char *end;
    rec->ended = strtod(num, &end);
    if (*end != '\0') return false;
    if (strcmp(word, "exit") == 0) rec->r.how = DAGD_TRY_EXITED;
    else if (strcmp(word, "signal") == 0) rec->r.how = DAGD_TRY_SIGNALED;
    else if (strcmp(word, "vanished") == 0) rec->r.how = DAGD_TRY_VANISHED;
    else return false;
    rec->r.code = (int)v;
    return true;
  }
  case 'F': return n == 2;
  default: return false;
  }
}

void dagd_sup_record_close(dagd_sup_record *rec) {
  free(rec->cgroup);
  free(rec->base);
  rec->cgroup = rec->base = NULL;
}
