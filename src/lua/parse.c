/* `dagd parse`: the child process the daemon loads DAG files in, so that a
 * file that keeps C busy (a pathological pattern in string.find), blocks
 * or crashes costs a killed child, never a stuck daemon. It loads the
 * files it is given on a few threads and reports each as one JSON line:
 * {"begin": I} when file I starts (the daemon's clock for the kill) and
 * {"index": I, "dags": [...], "errors": [...]} when it is done.
 * SPDX-License-Identifier: MIT */
#include <errno.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "dagd/lua.h"
#include "dagd/util.h"

typedef struct parse_job {
  char **files;
  size_t n;
  size_t next; /* atomic */
  const dagd_load_opts *opts;
  pthread_mutex_t out_lock; /* one line at a time on stdout */
  bool broken;              /* stdout is gone: the daemon stopped reading */
} parse_job;

static void put_line(parse_job *job, const char *line, size_t len) {
  pthread_mutex_lock(&job->out_lock);
  size_t off = 0;
  while (!job->broken && off < len) {
    ssize_t n = write(STDOUT_FILENO, line + off, len - off);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) job->broken = true;
    else off += (size_t)n;
  }
  pthread_mutex_unlock(&job->out_lock);
}

static void *parse_worker(void *arg) {
  parse_job *job = arg;
  for (;;) {
    size_t i = __atomic_fetch_add(&job->next, 1, __ATOMIC_RELAXED);
    if (i >= job->n || job->broken) break;
    char begin[64];
    int len = snprintf(begin, sizeof(begin), "{\"begin\":%zu}\n", i);
    put_line(job, begin, (size_t)len);
    dagd_dagbag bag;
    dagd_dagbag_init(&bag);
    dagd_lua_load_file(job->files[i], job->opts, &bag);
    json_t *j = dagd_dagbag_to_wire(&bag);
    json_object_set_new(j, "index", json_integer((json_int_t)i));
    char *text = json_dumps(j, JSON_COMPACT);
    json_decref(j);
    dagd_dagbag_close(&bag);
    if (text == NULL) text = dagd_asprintf("{\"index\":%zu,\"dags\":[],\"errors\":[{\"file\":\"?\",\"line\":0,"
                                           "\"message\":\"cannot encode the parse result\"}]}", i);
    dagd_buf line;
    dagd_buf_init(&line);
    dagd_buf_printf(&line, "%s\n", text);
    free(text);
    put_line(job, line.data, line.len);
    dagd_buf_close(&line);
  }
  return NULL;
}

static int usage(void) {
  fprintf(stderr, "usage: dagd parse [--time-limit-ms N] [--root DIR] [--lua-dir DIR] [--threads N] FILE...\n");
  return 2;
}

int dagd_lua_parse_main(int argc, char **argv) {
  dagd_load_opts opts;
  dagd_load_opts_default(&opts);
  int i = 1;
  for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
    if (strcmp(argv[i], "--") == 0) {
      i++;
      break;
    }
    if (i + 1 >= argc) return usage();
    const char *v = argv[++i];
    char *end;
    if (strcmp(argv[i - 1], "--time-limit-ms") == 0) {
      opts.time_limit_ms = strtoll(v, &end, 10);
      if (*end || opts.time_limit_ms <= 0) return usage();
    } else if (strcmp(argv[i - 1], "--threads") == 0) {
      opts.threads = (int)strtol(v, &end, 10);
      if (*end || opts.threads < 0) return usage();
    } else if (strcmp(argv[i - 1], "--root") == 0) {
      opts.read_root = v;
    } else if (strcmp(argv[i - 1], "--lua-dir") == 0) {
      opts.lua_dir = v;
    } else {
      return usage();
    }
  }
  parse_job job = {.files = argv + i, .n = (size_t)(argc - i), .opts = &opts};
  pthread_mutex_init(&job.out_lock, NULL);
  /* A thread costs about as much as loading a few files. */
  long nt = opts.threads > 0 ? opts.threads : sysconf(_SC_NPROCESSORS_ONLN);
  if (nt > 8) nt = 8;
  if ((size_t)nt > job.n / 4) nt = (long)(job.n / 4);
  if (nt < 1) nt = 1;
  pthread_t tids[8];
  int started = 0;
  for (long t = 1; t < nt; t++)
    if (pthread_create(&tids[started], NULL, parse_worker, &job) == 0) started++;
  parse_worker(&job);
  for (int t = 0; t < started; t++) pthread_join(tids[t], NULL);
  pthread_mutex_destroy(&job.out_lock);
  return 0;
}
