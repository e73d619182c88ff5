/* Configuration: embedded defaults, then a `dagd.lua` table file, then
 * DAGD_<KEY> environment variables, then command-line flags (each later
 * source overrides the earlier). Pure apart from reading the file and the
 * environment it is given.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_CONFIG_H
#define DAGD_CONFIG_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE) || defined(DAGD_LAYER_API)
#error "dagd/config.h is above this layer (see the layers in CMakeLists.txt)"
#endif

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#include "dagd/model.h"

struct dagd_err;

typedef struct dagd_config {
  char *dags_folder;        /* "dags" */
  char *state;              /* "var/dagd.db" */
  char *logs_folder;        /* "var/logs" */
  char *listen;             /* "127.0.0.1:8787" */
  int parallelism;          /* worker slots, 16 */
  dagd_kv *pools;           /* name -> slot count as text ("default" is implicit) */
  size_t n_pools;
  char **api_tokens;
  char **api_token_scopes;  /* parallel to api_tokens: "read" | "trigger" | "admin" */
  size_t n_api_tokens;
  bool try_cgroups;         /* each try in a cgroup v2 of its own where one can be made; true */
  bool metrics_public;      /* /metrics open without a token even with api_tokens set; false */
  dagd_kv *webhook_secrets; /* hook name -> secret */
  size_t n_webhook_secrets;
  char *grafana_signature_header;  /* "X-Grafana-Alerting-Signature" */
  char *grafana_timestamp_header;  /* "X-Grafana-Alerting-Signature-Timestamp" */
  int64_t grafana_timestamp_window; /* seconds a signed timestamp may be off now, either way; 300 */
  int64_t webhook_timestamp_window; /* the same for X-Dagd-Timestamp; 300 */
  char **allowed_hosts;     /* more names the API answers to ("dagd.example.com", "name:port") */
  size_t n_allowed_hosts;
  char *executor;           /* "local" | "kubernetes" */
  int64_t parse_timeout;    /* seconds per DAG file, 30 */
  int64_t log_retention;    /* seconds, 0 = keep forever; 30d */
  int64_t drain_timeout;    /* seconds a stop waits for running tries, 0 = none; 60 */
  size_t max_conf_size;     /* bytes of a run's conf a trigger or event may bring; 1 MiB */
  char **secret_hosts;      /* scheme://host[:port] a rendered secret may also be sent to */
  size_t n_secret_hosts;
  char *config_file;        /* the file read, or NULL for none */
} dagd_config;

/* Fills the embedded defaults. Release with dagd_config_close. */
void dagd_config_init(dagd_config *cfg);
void dagd_config_close(dagd_config *cfg);

/* Reads a config file (a Lua chunk that returns a table or assigns the
 * keys as globals; run with no library at all). Unknown keys and wrong
 * types are errors naming file:line or the key. */
int dagd_config_load_file(dagd_config *cfg, const char *path, struct dagd_err *err);
/* Applies DAGD_<KEY> variables from envp (NULL-terminated "K=V" strings;
 * pass `environ`). DAGD_API_TOKEN adds one admin token. */
int dagd_config_load_env(dagd_config *cfg, char *const *envp, struct dagd_err *err);
/* Sets one key from text, as a flag or variable would ("parallelism",
 * "8"). DAGD_ENOENT for an unknown key. */
int dagd_config_set(dagd_config *cfg, const char *key, const char *value, struct dagd_err *err);

/* The usual sequence for both binaries: defaults, then `path` (or, when
 * NULL, $DAGD_CONFIG, or ./dagd.lua when it exists), then the environment. */
int dagd_config_load(dagd_config *cfg, const char *path, char *const *envp, struct dagd_err *err);

/* Makes every path setting (dags_folder, state, logs_folder, the config
 * file's own name) absolute against `cwd`, the absolute working directory
 * at start, so that what tasks are handed means the same from their own
 * working directory. "." and empty segments are dropped. Call once, after
 * the last source (flags). DAGD_EINVAL when a path is relative and cwd is
 * not absolute. */
int dagd_config_resolve(dagd_config *cfg, const char *cwd, struct dagd_err *err);
/* One path made absolute against cwd the same way. *out is a heap string
 * (free) on success, NULL otherwise. */
int dagd_config_path_absolute(const char *path, const char *cwd, char **out, struct dagd_err *err);

/* Makes the environment variable `name` (a path, e.g. DAGD_LUA_PATH)
 * absolute against cwd in this process's environment, so the children
 * that inherit it read the same folder from any working directory. Not
 * thread-safe (setenv): call at start. */
int dagd_config_absolute_env(const char *name, const char *cwd, struct dagd_err *err);

/* Whether "host:port" names a loopback address (127.x, [::1], localhost). */
bool dagd_config_listen_is_loopback(const char *listen);
/* The rules that span keys, which the daemon and `dagd --check-config`
 * both apply before anything is created: no listening on a non-loopback
 * address without api_tokens. DAGD_EINVAL with the reason. */
int dagd_config_check(const dagd_config *cfg, struct dagd_err *err);

#endif
