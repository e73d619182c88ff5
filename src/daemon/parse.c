/* Parsing DAG files off the loop: the files go to a `dagd parse` child
 * whose JSON lines come back through a libuv pipe, so the loop (and the
 * API) stays responsive whatever a file does. A file still running past
 * its time limit (plus a grace for the child's own limit to act) gets the
 * child killed and a time-limit error; the files not done yet go to a new
 * child. A child that dies without a word is retried on one thread, so
 * the file that kills it is the one blamed.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <poll.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagd/err.h"
#include "dagd/log.h"
#include "dagd/util.h"
#include "daemon.h"

/* After the limit the child's own hook stops a file; this is for the
 * file that keeps C busy where no hook runs. */
#define KILL_GRACE_MS 1000

enum { FILE_PENDING, FILE_BEGUN, FILE_DONE };

typedef struct parse_child parse_child;

struct daemon_parse {
  daemon_t *d;
  char *const *files; /* borrowed until done */
  size_t n;
  dagd_dagbag *results;
  int *state;
  uint64_t *begun_at; /* loop time, ms */
  size_t n_done;
  bool solo;          /* next child on one thread */
  parse_child *child; /* the current one */
  uv_timer_t timer;   /* the next kill deadline */
  daemon_parse_cb done;
  bool finished;
};

struct parse_child {
  daemon_parse *p; /* NULL once abandoned (killed, or the parse ended) */
  uv_process_t proc;
  uv_pipe_t out;
  dagd_buf buf;
  size_t scanned; /* bytes of buf known to hold no newline */
  size_t *idx; /* child's file k -> parse index */
  size_t n;
  int open_handles;
  bool eof;
};

static uint64_t now_ms(daemon_parse *p) {
  uv_update_time(&p->d->loop);
  return uv_now(&p->d->loop);
}

static void child_closed(uv_handle_t *h) {
  parse_child *c = h->data;
  if (--c->open_handles > 0) return;
  dagd_buf_close(&c->buf);
  free(c->idx);
  free(c);
}

/* Lets go of a child: kills it if it still runs; its handles close. */
static void child_abandon(parse_child *c) {
  if (c == NULL) return;
  if (c->p && c->p->child == c) c->p->child = NULL;
  c->p = NULL;
  if (!uv_is_closing((uv_handle_t *)&c->proc)) uv_process_kill(&c->proc, SIGKILL);
  if (!uv_is_closing((uv_handle_t *)&c->out)) uv_close((uv_handle_t *)&c->out, child_closed);
}

static void set_error(daemon_parse *p, size_t i, const char *fmt, ...) __attribute__((format(printf, 3, 4)));
static void set_error(daemon_parse *p, size_t i, const char *fmt, ...) {
  dagd_buf b;
  dagd_buf_init(&b);
  va_list ap;
  va_start(ap, fmt);
  dagd_buf_vprintf(&b, fmt, ap);
  va_end(ap);
  dagd_dagbag_close(&p->results[i]);
  dagd_dagbag_init(&p->results[i]);
  dagd_dagbag_add_error(&p->results[i], p->files[i], 0, b.data);
  dagd_buf_close(&b);
  p->state[i] = FILE_DONE;
  p->n_done++;
}

static void spawn_child(daemon_parse *p);
static void arm(daemon_parse *p);

static void finish(daemon_parse *p) {
  if (p->finished) return;
  p->finished = true;
  uv_timer_stop(&p->timer);
  child_abandon(p->child);
  p->done(p->d, p, p->results, p->n);
}

/* The child is gone (killed or dead): what it had not finished goes to a
 * new child, unless nothing is left. */
static void go_on(daemon_parse *p) {
  for (size_t i = 0; i < p->n; i++)
    if (p->state[i] == FILE_BEGUN) p->state[i] = FILE_PENDING;
  if (p->n_done == p->n) finish(p);
  else spawn_child(p);
}

static void on_line(daemon_parse *p, const char *line, size_t len) {
  json_error_t je;
  json_t *j = json_loadb(line, len, 0, &je);
  const json_t *begin = json_object_get(j, "begin"), *index = json_object_get(j, "index");
  parse_child *c = p->child;
  json_int_t k = json_is_integer(begin) ? json_integer_value(begin) : json_integer_value(index);
  if (j == NULL || c == NULL || k < 0 || (size_t)k >= c->n || (!begin && !index)) {
    DAGD_LOG(DAGD_LOG_ERROR, "loader", "parser: unreadable answer line (%zu bytes)", len);
    json_decref(j);
    return;
  }
  size_t i = c->idx[k];
  if (begin) {
    if (p->state[i] == FILE_PENDING) {
      p->state[i] = FILE_BEGUN;
      p->begun_at[i] = now_ms(p);
    }
  } else if (p->state[i] != FILE_DONE) {
    dagd_err err;
    dagd_err_init(&err);
    dagd_dagbag_close(&p->results[i]);
    dagd_dagbag_init(&p->results[i]);
    if (dagd_dagbag_from_wire(j, &p->results[i], &err) != 0) {
      set_error(p, i, "internal: the parser's answer could not be read: %s", err.msg);
    } else {
      p->state[i] = FILE_DONE;
      p->n_done++;
    }
  }
  json_decref(j);
}

static void on_eof(daemon_parse *p, parse_child *c) {
  c->eof = true;
  if (p == NULL || p->child != c || p->finished) return;
  /* Gone without finishing: on one thread the file it was on is the
   * cause; on several, run the rest again one at a time to find it. */
  bool blamed = false;
  for (size_t i = 0; i < p->n; i++) {
    if (p->state[i] != FILE_BEGUN || !p->solo) continue;
    set_error(p, i, "the parser process died while loading this file (a crash in the Lua runtime or a limit of "
                    "the system)");
    blamed = true;
  }
  if (!blamed && p->n_done < p->n) {
    if (p->solo) {
      /* Died before it began a file: give up on the rest rather than loop. */
      for (size_t i = 0; i < p->n; i++)
        if (p->state[i] != FILE_DONE) set_error(p, i, "the parser process ended before loading this file");
    }
    p->solo = true;
  }
  child_abandon(c);
  go_on(p);
}

/* Feeds bytes from the child: complete lines are answers. A big DAG's
 * line comes in many reads: only the new bytes are searched. */
static void feed(daemon_parse *p, parse_child *c, const char *data, size_t len) {
  dagd_buf_append(&c->buf, data, len);
  size_t start = 0;
  const char *nl;
  while (c->scanned < c->buf.len && (nl = memchr(c->buf.data + c->scanned, '\n', c->buf.len - c->scanned)) != NULL) {
    size_t i = (size_t)(nl - c->buf.data);
    if (p && p->child == c && !p->finished) on_line(p, c->buf.data + start, i - start);
    start = c->scanned = i + 1;
  }
  if (start > 0) {
    memmove(c->buf.data, c->buf.data + start, c->buf.len - start);
    c->buf.len -= start;
  }
  c->scanned = c->buf.len;
}

static void on_alloc(uv_handle_t *h, size_t suggested, uv_buf_t *buf) {
  buf->base = dagd_malloc(suggested);
  buf->len = suggested;
}

static void on_read(uv_stream_t *s, ssize_t nread, const uv_buf_t *buf) {
  parse_child *c = s->data;
  daemon_parse *p = c->p;
  if (nread > 0) feed(p, c, buf->base, (size_t)nread);
  free(buf->base);
  if (nread < 0 && !c->eof) {
    on_eof(p, c);
    return;
  }
  if (p && p->child == c && !p->finished) {
    if (p->n_done == p->n) finish(p);
    else arm(p);
  }
}

static void on_exit_cb(uv_process_t *proc, int64_t status, int signum) {
  parse_child *c = proc->data;
  if (signum != 0 && c->p != NULL)
    DAGD_LOG(DAGD_LOG_WARN, "loader", "parser process %d ended by signal %d", proc->pid, signum);
  uv_close((uv_handle_t *)proc, child_closed);
}

/* Files past their deadline get their error; the child is killed. */
static void on_deadline(uv_timer_t *h) {
  daemon_parse *p = h->data;
  uint64_t now = now_ms(p);
  uint64_t limit = (uint64_t)p->d->cfg.parse_timeout * 1000;
  bool killed = false;
  for (size_t i = 0; i < p->n; i++) {
    if (p->state[i] != FILE_BEGUN || now < p->begun_at[i] + limit + KILL_GRACE_MS) continue;
    set_error(p, i, "time limit (%llds) exceeded: the file was still running (in C code no limit can stop, such as "
                    "a pattern match) and its parser process was killed",
              (long long)p->d->cfg.parse_timeout);
    killed = true;
  }
  if (!killed) {
    arm(p);
    return;
  }
  child_abandon(p->child);
  go_on(p);
}

static void arm(daemon_parse *p) {
  uint64_t limit = (uint64_t)p->d->cfg.parse_timeout * 1000, first = UINT64_MAX;
  for (size_t i = 0; i < p->n; i++)
    if (p->state[i] == FILE_BEGUN && p->begun_at[i] < first) first = p->begun_at[i];
  if (first == UINT64_MAX) {
    uv_timer_stop(&p->timer);
    return;
  }
  uint64_t at = first + limit + KILL_GRACE_MS, now = now_ms(p);
  uv_timer_start(&p->timer, on_deadline, at > now ? at - now : 0, 0);
}

/* The daemon's environment without its own settings and secrets: the
 * child needs none of them (the Lua library path excepted). */
static char **child_env(void) {
  extern char **environ;
  size_t n = 0;
  for (char **e = environ; *e; e++) n++;
  char **env = dagd_calloc(n + 1, sizeof(*env));
  size_t k = 0;
  for (char **e = environ; *e; e++)
    if (strncmp(*e, "DAGD_", 5) != 0 || strncmp(*e, "DAGD_LUA_PATH=", 14) == 0) env[k++] = *e;
  return env;
}

static void spawn_child(daemon_parse *p) {
  daemon_t *d = p->d;
  parse_child *c = dagd_calloc(1, sizeof(*c));
  dagd_buf_init(&c->buf);
  c->idx = dagd_calloc(p->n, sizeof(*c->idx));
  for (size_t i = 0; i < p->n; i++)
    if (p->state[i] == FILE_PENDING) c->idx[c->n++] = i;
  char limit[32];
  snprintf(limit, sizeof(limit), "%lld", (long long)d->cfg.parse_timeout * 1000);
  char **argv = dagd_calloc(c->n + 12, sizeof(*argv));
  size_t a = 0;
  argv[a++] = d->tries.shim_path;
  argv[a++] = "parse";
  argv[a++] = "--time-limit-ms";
  argv[a++] = limit;
  argv[a++] = "--root";
  argv[a++] = d->cfg.dags_folder;
  if (p->solo) {
    argv[a++] = "--threads";
    argv[a++] = "1";
  }
  argv[a++] = "--";
  for (size_t k = 0; k < c->n; k++) argv[a++] = p->files[c->idx[k]];
  char **env = child_env();
  uv_pipe_init(&d->loop, &c->out, 0);
  c->out.data = c;
  c->proc.data = c;
  uv_stdio_container_t stdio[3] = {{.flags = UV_IGNORE},
                                   {.flags = UV_CREATE_PIPE | UV_WRITABLE_PIPE, .data.stream = (uv_stream_t *)&c->out},
                                   {.flags = UV_INHERIT_FD, .data.fd = 2}};
  uv_process_options_t o = {.exit_cb = on_exit_cb, .file = d->tries.shim_path, .args = argv, .env = env,
                            .stdio_count = 3, .stdio = stdio};
  int rc = uv_spawn(&d->loop, &c->proc, &o);
  free(argv);
  free(env);
  c->open_handles = 1;
  if (rc < 0) {
    uv_close((uv_handle_t *)&c->out, child_closed);
    for (size_t k = 0; k < c->n; k++)
      set_error(p, c->idx[k], "cannot start the parser process (%s parse): %s", d->tries.shim_path, uv_strerror(rc));
    finish(p);
    return;
  }
  c->open_handles = 2;
  c->p = p;
  p->child = c;
  uv_read_start((uv_stream_t *)&c->out, on_alloc, on_read);
}

daemon_parse *daemon_parse_start(daemon_t *d, char *const *files, size_t n, daemon_parse_cb done) {
  daemon_parse *p = dagd_calloc(1, sizeof(*p));
  p->d = d;
  p->files = files;
  p->n = n;
  p->done = done;
  p->results = dagd_calloc(n ? n : 1, sizeof(*p->results));
  for (size_t i = 0; i < n; i++) dagd_dagbag_init(&p->results[i]);
  p->state = dagd_calloc(n ? n : 1, sizeof(*p->state));
  p->begun_at = dagd_calloc(n ? n : 1, sizeof(*p->begun_at));
  uv_timer_init(&d->loop, &p->timer);
  p->timer.data = p;
  d->dags.parse = p; /* before any callback can end it */
  if (n == 0) finish(p);
  else spawn_child(p);
  return p;
}

bool daemon_parse_wait(daemon_parse *p, uint64_t ms) {
  uint64_t until = now_ms(p) + ms;
  while (!p->finished) {
    parse_child *c = p->child;
    uint64_t now = now_ms(p);
    if (now >= until || c == NULL) break;
    uint64_t limit = (uint64_t)p->d->cfg.parse_timeout * 1000, wake = until;
    for (size_t i = 0; i < p->n; i++)
      if (p->state[i] == FILE_BEGUN && p->begun_at[i] + limit + KILL_GRACE_MS < wake)
        wake = p->begun_at[i] + limit + KILL_GRACE_MS;
    uv_os_fd_t fd;
    if (uv_fileno((uv_handle_t *)&c->out, &fd) != 0) break;
    struct pollfd pfd = {.fd = fd, .events = POLLIN};
    int r = poll(&pfd, 1, wake > now ? (int)(wake - now) : 0);
    if (r < 0 && errno != EINTR) break;
    if (r > 0) {
      char chunk[65536];
      ssize_t got = read(fd, chunk, sizeof(chunk));
      if (got > 0) {
        feed(p, c, chunk, (size_t)got);
        if (p->n_done == p->n) finish(p);
      } else if (got == 0 || (errno != EAGAIN && errno != EINTR)) {
        on_eof(p, c);
      }
    } else if (r == 0 && wake < until) {
      on_deadline(&p->timer);
    }
  }
  if (!p->finished) arm(p);
  return p->finished;
}

static void parse_closed(uv_handle_t *h) {
  daemon_parse *p = h->data;
  for (size_t i = 0; i < p->n; i++) dagd_dagbag_close(&p->results[i]);
  free(p->results);
  free(p->state);
  free(p->begun_at);
  free(p);
}

void daemon_parse_free(daemon_parse *p) {
  if (p == NULL) return;
  p->finished = true;
  child_abandon(p->child);
  uv_close((uv_handle_t *)&p->timer, parse_closed);
}

size_t daemon_parse_pending(const daemon_parse *p) { return p->n - p->n_done; }
