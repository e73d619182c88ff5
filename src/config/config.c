/* Configuration sources merged in order: defaults, file, environment,
 * flags. The file is a Lua chunk run with an empty environment (no
 * libraries), so a config file can compute values but not act.
 * SPDX-License-Identifier: MIT */
#include <ctype.h>
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <lauxlib.h>
#include <lua.h>
#include <lualib.h>

#include "dagd/config.h"
#include "dagd/err.h"
#include "dagd/time.h"
#include "dagd/util.h"

void dagd_config_init(dagd_config *cfg) {
  memset(cfg, 0, sizeof(*cfg));
  cfg->dags_folder = dagd_strdup("dags");
  cfg->state = dagd_strdup("var/dagd.db");
  cfg->logs_folder = dagd_strdup("var/logs");
  cfg->listen = dagd_strdup("127.0.0.1:8787");
  cfg->parallelism = 16;
  cfg->executor = dagd_strdup("local");
  cfg->grafana_signature_header = dagd_strdup("X-Grafana-Alerting-Signature");
  cfg->grafana_timestamp_header = dagd_strdup("X-Grafana-Alerting-Signature-Timestamp");
  cfg->grafana_timestamp_window = 300;
  cfg->webhook_timestamp_window = 300;
  cfg->parse_timeout = 30;
  cfg->log_retention = 30 * 86400;
  cfg->drain_timeout = 60;
  cfg->try_cgroups = true;
  cfg->max_conf_size = 1 << 20;
}

static void kv_free(dagd_kv *kv, size_t n) {
  for (size_t i = 0; i < n; i++) {
    free(kv[i].key);
    free(kv[i].value);
  }
  free(kv);
}

void dagd_config_close(dagd_config *cfg) {
  free(cfg->dags_folder);
  free(cfg->state);
  free(cfg->logs_folder);
  free(cfg->listen);
  free(cfg->executor);
  free(cfg->grafana_signature_header);
  free(cfg->grafana_timestamp_header);
  free(cfg->config_file);
  kv_free(cfg->pools, cfg->n_pools);
  kv_free(cfg->webhook_secrets, cfg->n_webhook_secrets);
  for (size_t i = 0; i < cfg->n_api_tokens; i++) {
    free(cfg->api_tokens[i]);
    free(cfg->api_token_scopes[i]);
  }
  free(cfg->api_tokens);
  free(cfg->api_token_scopes);
  for (size_t i = 0; i < cfg->n_secret_hosts; i++) free(cfg->secret_hosts[i]);
  free(cfg->secret_hosts);
  for (size_t i = 0; i < cfg->n_allowed_hosts; i++) free(cfg->allowed_hosts[i]);
  free(cfg->allowed_hosts);
  memset(cfg, 0, sizeof(*cfg));
}

static void set_str(char **slot, const char *v) {
  free(*slot);
  *slot = dagd_strdup(v);
}

static void kv_put(dagd_kv **kv, size_t *n, const char *key, const char *value) {
  for (size_t i = 0; i < *n; i++) {
    if (strcmp((*kv)[i].key, key) == 0) {
      set_str(&(*kv)[i].value, value);
      return;
    }
  }
  *kv = dagd_realloc(*kv, (*n + 1) * sizeof(**kv));
  (*kv)[*n].key = dagd_strdup(key);
  (*kv)[*n].value = dagd_strdup(value);
  (*n)++;
}

static void add_token(dagd_config *cfg, const char *tok, const char *scope) {
  cfg->api_tokens = dagd_realloc(cfg->api_tokens, (cfg->n_api_tokens + 1) * sizeof(char *));
  cfg->api_token_scopes = dagd_realloc(cfg->api_token_scopes, (cfg->n_api_tokens + 1) * sizeof(char *));
  cfg->api_tokens[cfg->n_api_tokens] = dagd_strdup(tok);
  cfg->api_token_scopes[cfg->n_api_tokens++] = dagd_strdup(scope);
}

/* "host:port" with a port in 1-65535 and a non-empty host ("[::1]:80" ok). */
static int listen_valid(const char *v) {
  const char *colon = strrchr(v, ':');
  if (colon == NULL || colon == v || colon[1] == '\0') return 0;
  char *end;
  long port = strtol(colon + 1, &end, 10);
  return *end == '\0' && port >= 0 && port <= 65535;
}

static int parse_pool(dagd_config *cfg, const char *spec, dagd_err *err) {
  /* "gpu=1,default=16" */
  char *copy = dagd_strdup(spec), *save = NULL;
  int rc = 0;
  for (char *item = strtok_r(copy, ",", &save); item; item = strtok_r(NULL, ",", &save)) {
    char *eq = strchr(item, '=');
    char *end = NULL;
    long slots = eq ? strtol(eq + 1, &end, 10) : -1;
    if (eq == NULL || eq == item || *end != '\0' || slots < 1 || slots > 100000) {
      rc = dagd_err_set(err, DAGD_EINVAL, "pools: bad entry \"%s\" (expected name=slots)", item);
      break;
    }
    *eq = '\0';
    if (!dagd_id_valid(item)) {
      rc = dagd_err_set(err, DAGD_EINVAL, "pools: bad pool name \"%s\"", item);
      break;
    }
    kv_put(&cfg->pools, &cfg->n_pools, item, eq + 1);
  }
  free(copy);
  return rc;
}

/* max_conf_size: bytes, or a number with KiB or MiB (k, K, M also). */
static int parse_size(dagd_config *cfg, const char *value, dagd_err *err) {
  char *end = NULL;
  unsigned long long n = strtoull(value, &end, 10);
  unsigned long long unit = 1;
  if (end == value || *value == '-') end = NULL;
  else if (strcmp(end, "KiB") == 0 || strcmp(end, "k") == 0 || strcmp(end, "K") == 0) unit = 1024;
  else if (strcmp(end, "MiB") == 0 || strcmp(end, "M") == 0) unit = 1024 * 1024;
  else if (*end != '\0') end = NULL;
  if (end == NULL || n == 0 || n > (1ULL << 30) / unit)
    return dagd_err_set(err, DAGD_EINVAL, "max_conf_size: \"%s\" is not a size from 1 byte to 1024MiB "
                        "(bytes, or a number with KiB or MiB)", value);
  cfg->max_conf_size = (size_t)(n * unit);
  return 0;
}

/* One secret_hosts entry: scheme://host or scheme://host:port, nothing
 * after it, lowercased. */
static int add_secret_host(dagd_config *cfg, const char *item, dagd_err *err) {
  char *norm = dagd_url_origin(item, true);
  if (norm == NULL)
    return dagd_err_set(err, DAGD_EINVAL, "secret_hosts: \"%s\" is not scheme://host[:port] (http or https, "
                        "no path)", item);
  cfg->secret_hosts = dagd_realloc(cfg->secret_hosts, (cfg->n_secret_hosts + 1) * sizeof(char *));
  cfg->secret_hosts[cfg->n_secret_hosts++] = norm;
  return 0;
}

/* secret_hosts from text: entries separated by commas or spaces. */
static int parse_secret_hosts(dagd_config *cfg, const char *value, dagd_err *err) {
  char *copy = dagd_strdup(value), *save = NULL;
  int rc = 0;
  for (char *item = strtok_r(copy, ", \t", &save); item && rc == 0; item = strtok_r(NULL, ", \t", &save))
    rc = add_secret_host(cfg, item, err);
  free(copy);
  return rc;
}

/* Every key a config file may set (for "did you mean"). */
static const char *const config_keys[] = {
    "dags_folder", "state", "logs_folder", "listen", "parallelism", "executor", "parse_timeout",
    "log_retention", "pools", "api_token", "api_tokens", "webhook_secrets", "grafana_signature_header",
    "grafana_timestamp_header", "grafana_timestamp_window", "webhook_timestamp_window", "allowed_hosts", "metrics_public", "drain_timeout", "max_conf_size", "secret_hosts", "try_cgroups"};

/* Whether an allowed_hosts entry is a host name, an IPv4 address or a
 * bracketed IPv6 one, with an optional ":port". */
static bool host_entry_valid(const char *e) {
  size_t h = 0, len = strlen(e);
  if (e[0] == '[') {
    const char *close = strchr(e, ']');
    if (close == NULL || close == e + 1) return false;
    for (const char *c = e + 1; c < close; c++)
      if (!(isxdigit((unsigned char)*c) || *c == ':' || *c == '.')) return false;
    h = (size_t)(close - e) + 1;
  } else {
    while (e[h] && e[h] != ':') {
      if (!(isalnum((unsigned char)e[h]) || e[h] == '.' || e[h] == '-' || e[h] == '_')) return false;
      h++;
    }
    if (h == 0 || h > 253) return false;
  }
  if (h == len) return true;
  if (e[h] != ':' || len - h < 2 || len - h > 6) return false;
  long port = 0;
  for (const char *c = e + h + 1; *c; c++) {
    if (!isdigit((unsigned char)*c)) return false;
    port = port * 10 + (*c - '0');
  }
  return port >= 1 && port <= 65535;
}

/* Adds each comma-separated name of value to allowed_hosts. */
static int add_allowed_hosts(dagd_config *cfg, const char *value, dagd_err *err) {
  char *copy = dagd_strdup(value);
  int rc = 0;
  for (char *save = NULL, *t = strtok_r(copy, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
    while (*t == ' ') t++;
    size_t n = strlen(t);
    while (n > 0 && t[n - 1] == ' ') t[--n] = '\0';
    if (n == 0) continue;
    if (!host_entry_valid(t)) {
      rc = dagd_err_set(err, DAGD_EINVAL,
                        "allowed_hosts: \"%s\" is not a host name or address with an optional :port", t);
      break;
    }
    cfg->allowed_hosts = dagd_realloc(cfg->allowed_hosts, (cfg->n_allowed_hosts + 1) * sizeof(char *));
    cfg->allowed_hosts[cfg->n_allowed_hosts++] = dagd_strdup(t);
  }
  free(copy);
  return rc;
}

static int unknown_key(const char *key, dagd_err *err) {
  const char *s = dagd_str_suggest(key, config_keys, DAGD_ARRAY_LEN(config_keys));
  if (s) return dagd_err_set(err, DAGD_ENOENT, "unknown config key \"%s\" (did you mean \"%s\"?)", key, s);
  return dagd_err_set(err, DAGD_ENOENT, "unknown config key \"%s\"", key);
}

static bool known_key(const char *key) {
  for (size_t i = 0; i < DAGD_ARRAY_LEN(config_keys); i++)
    if (strcmp(config_keys[i], key) == 0) return true;
  return false;
}

int dagd_config_set(dagd_config *cfg, const char *key, const char *value, dagd_err *err) {
  bool path = strcmp(key, "dags_folder") == 0 || strcmp(key, "state") == 0 || strcmp(key, "logs_folder") == 0;
  if (path && *value == '\0') return dagd_err_set(err, DAGD_EINVAL, "%s: empty path", key);
  if (strcmp(key, "dags_folder") == 0) {
    set_str(&cfg->dags_folder, value);
  } else if (strcmp(key, "state") == 0) {
    set_str(&cfg->state, value);
  } else if (strcmp(key, "logs_folder") == 0) {
    set_str(&cfg->logs_folder, value);
  } else if (strcmp(key, "listen") == 0) {
    if (!listen_valid(value))
      return dagd_err_set(err, DAGD_EINVAL, "listen: \"%s\" is not host:port", value);
    set_str(&cfg->listen, value);
  } else if (strcmp(key, "parallelism") == 0) {
    char *end;
    long n = strtol(value, &end, 10);
    if (*value == '\0' || *end != '\0' || n < 1 || n > 10000)
      return dagd_err_set(err, DAGD_EINVAL, "parallelism: \"%s\" is not a number in 1-10000", value);
    cfg->parallelism = (int)n;
  } else if (strcmp(key, "executor") == 0) {
    if (strcmp(value, "local") != 0 && strcmp(value, "kubernetes") != 0)
      return dagd_err_set(err, DAGD_EINVAL, "executor: \"%s\" is not local or kubernetes", value);
    set_str(&cfg->executor, value);
  } else if (strcmp(key, "allowed_hosts") == 0) {
    return add_allowed_hosts(cfg, value, err);
  } else if (strcmp(key, "grafana_timestamp_window") == 0 || strcmp(key, "webhook_timestamp_window") == 0) {
    int64_t secs = 0;
    dagd_err sub;
    dagd_err_init(&sub);
    if (dagd_duration_parse(value, &secs, &sub) < 0) return dagd_err_set(err, sub.code, "%s: %s", key, sub.msg);
    if (secs < 1) return dagd_err_set(err, DAGD_EINVAL, "%s: must be at least 1s", key);
    *(key[0] == 'g' ? &cfg->grafana_timestamp_window : &cfg->webhook_timestamp_window) = secs;
  } else if (strcmp(key, "parse_timeout") == 0 || strcmp(key, "log_retention") == 0 ||
             strcmp(key, "drain_timeout") == 0) {
    /* parse_timeout must be positive; "0" means never for log_retention
     * and no wait at all for drain_timeout. */
    int64_t secs = 0;
    bool zero_ok = key[0] != 'p';
    if (!(zero_ok && strcmp(value, "0") == 0)) {
      dagd_err sub;
      dagd_err_init(&sub);
      if (dagd_duration_parse(value, &secs, &sub) < 0)
        return dagd_err_set(err, sub.code, "%s: %s", key, sub.msg);
    }
    *(key[0] == 'l' ? &cfg->log_retention : key[0] == 'd' ? &cfg->drain_timeout : &cfg->parse_timeout) = secs;
  } else if (strcmp(key, "grafana_signature_header") == 0 || strcmp(key, "grafana_timestamp_header") == 0) {
    for (const char *c = value; *c; c++)
      if (!(isalnum((unsigned char)*c) || *c == '-' || *c == '_'))
        return dagd_err_set(err, DAGD_EINVAL, "%s: \"%s\" is not a header name", key, value);
    if (*value == '\0') return dagd_err_set(err, DAGD_EINVAL, "%s: empty header name", key);
    set_str(key[8] == 's' ? &cfg->grafana_signature_header : &cfg->grafana_timestamp_header, value);
  } else if (strcmp(key, "metrics_public") == 0 || strcmp(key, "try_cgroups") == 0) {
    bool *flag = key[0] == 'm' ? &cfg->metrics_public : &cfg->try_cgroups;
    if (strcmp(value, "true") == 0 || strcmp(value, "1") == 0) *flag = true;
    else if (strcmp(value, "false") == 0 || strcmp(value, "0") == 0) *flag = false;
    else return dagd_err_set(err, DAGD_EINVAL, "%s: \"%s\" is not true or false", key, value);
  } else if (strcmp(key, "max_conf_size") == 0) {
    return parse_size(cfg, value, err);
  } else if (strcmp(key, "secret_hosts") == 0) {
    return parse_secret_hosts(cfg, value, err);
  } else if (strcmp(key, "pools") == 0) {
    return parse_pool(cfg, value, err);
  } else if (strcmp(key, "api_token") == 0 || strcmp(key, "api_tokens") == 0) {
    if (*value == '\0') return dagd_err_set(err, DAGD_EINVAL, "%s: empty token", key);
    add_token(cfg, value, "admin");
  } else {
    return unknown_key(key, err);
  }
  return 0;
}

int dagd_config_load_env(dagd_config *cfg, char *const *envp, dagd_err *err) {
  static const char *const keys[] = {"dags_folder",   "state",    "logs_folder",   "listen",
                                     "parallelism",   "executor", "parse_timeout", "log_retention",
                                     "drain_timeout", "pools",    "api_token",     "metrics_public",
                                     "allowed_hosts", "webhook_timestamp_window", "max_conf_size", "secret_hosts",
                                     "try_cgroups"};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(keys); i++) {
    char name[64] = "DAGD_";
    for (size_t j = 0; keys[i][j] && j < 50; j++) name[5 + j] = (char)toupper((unsigned char)keys[i][j]);
    size_t nlen = strlen(name);
    for (char *const *e = envp; e && *e; e++) {
      if (strncmp(*e, name, nlen) == 0 && (*e)[nlen] == '=') {
        dagd_err sub;
        dagd_err_init(&sub);
        if (dagd_config_set(cfg, keys[i], *e + nlen + 1, &sub) < 0)
          return dagd_err_set(err, sub.code, "%s: %s", name, sub.msg);
      }
    }
  }
  return 0;
}

/* Reads table field `key` (at the top of the stack) as text into cfg. */
static int load_field(lua_State *L, dagd_config *cfg, const char *path, dagd_err *err) {
  /* stack: ... key value */
  const char *key = lua_tostring(L, -2);
  int t = lua_type(L, -1);
  dagd_buf text;
  dagd_buf_init(&text);
  int rc = 0;
  if (!known_key(key)) { /* before its value's type, which a typo makes meaningless */
    dagd_err sub;
    dagd_err_init(&sub);
    unknown_key(key, &sub);
    return dagd_err_set(err, sub.code, "%s: %s", path, sub.msg);
  }
  if (strcmp(key, "pools") == 0 || strcmp(key, "webhook_secrets") == 0) {
    if (t != LUA_TTABLE) {
      rc = dagd_err_set(err, DAGD_EINVAL, "%s: %s must be a table", path, key);
      goto done;
    }
    for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
      /* stack: ... key tbl k v */
      if (lua_type(L, -2) != LUA_TSTRING ||
          (key[0] == 'p' ? !lua_isinteger(L, -1) : lua_type(L, -1) != LUA_TSTRING)) {
        rc = dagd_err_set(err, DAGD_EINVAL, "%s: %s entries must be %s", path, key,
                          key[0] == 'p' ? "name = slots" : "name = \"secret\"");
        lua_pop(L, 2);
        goto done;
      }
      if (key[0] == 'w') {
        kv_put(&cfg->webhook_secrets, &cfg->n_webhook_secrets, lua_tostring(L, -2), lua_tostring(L, -1));
      } else {
        dagd_buf_reset(&text);
        dagd_buf_printf(&text, "%s=%lld", lua_tostring(L, -2), (long long)lua_tointeger(L, -1));
        dagd_err sub;
        dagd_err_init(&sub);
        if (parse_pool(cfg, text.data, &sub) < 0) {
          rc = dagd_err_set(err, sub.code, "%s: %s", path, sub.msg);
          lua_pop(L, 2);
          goto done;
        }
      }
    }
    goto done;
  }
  if (strcmp(key, "secret_hosts") == 0 && t == LUA_TTABLE) { /* {"https://a.example", ...} */
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n && rc == 0; i++) {
      lua_rawgeti(L, -1, i);
      dagd_err sub;
      dagd_err_init(&sub);
      if (lua_type(L, -1) != LUA_TSTRING)
        rc = dagd_err_set(err, DAGD_EINVAL, "%s: secret_hosts entries must be strings (\"https://host\")", path);
      else if (add_secret_host(cfg, lua_tostring(L, -1), &sub) < 0)
        rc = dagd_err_set(err, sub.code, "%s: %s", path, sub.msg);
      lua_pop(L, 1);
    }
    goto done;
  }
  if (strcmp(key, "allowed_hosts") == 0 && t == LUA_TTABLE) {
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    for (lua_Integer i = 1; i <= n && rc == 0; i++) {
      lua_rawgeti(L, -1, i);
      /* stack: ... key tbl entry */
      dagd_err sub;
      dagd_err_init(&sub);
      if (lua_type(L, -1) != LUA_TSTRING)
        rc = dagd_err_set(err, DAGD_EINVAL, "%s: allowed_hosts must be a list of host names", path);
      else if (add_allowed_hosts(cfg, lua_tostring(L, -1), &sub) < 0)
        rc = dagd_err_set(err, sub.code, "%s: %s", path, sub.msg);
      lua_pop(L, 1);
    }
    goto done;
  }
  if (strcmp(key, "api_tokens") == 0) {
    if (t != LUA_TTABLE) {
      rc = dagd_err_set(err, DAGD_EINVAL, "%s: api_tokens must be a list of strings", path);
      goto done;
    }
    lua_Integer n = (lua_Integer)lua_rawlen(L, -1);
    int top = lua_gettop(L);
    for (lua_Integer i = 1; i <= n; i++) {
      lua_settop(L, top);
      lua_rawgeti(L, -1, i);
      /* stack: ... key tbl entry. A string is an admin token; a table
       * {token = "...", scope = "read" | "trigger" | "admin"} names its scope. */
      const char *tok = NULL, *scope = "admin";
      if (lua_type(L, -1) == LUA_TSTRING) {
        tok = lua_tostring(L, -1);
      } else if (lua_type(L, -1) == LUA_TTABLE) {
        lua_getfield(L, -1, "token");
        lua_getfield(L, -2, "scope");
        /* stack: ... entry token scope */
        tok = lua_type(L, -2) == LUA_TSTRING ? lua_tostring(L, -2) : NULL;
        if (lua_type(L, -1) == LUA_TSTRING) scope = lua_tostring(L, -1);
        else if (!lua_isnil(L, -1)) scope = "?";
      }
      bool scope_ok = strcmp(scope, "read") == 0 || strcmp(scope, "trigger") == 0 || strcmp(scope, "admin") == 0;
      if (tok == NULL || *tok == '\0' || !scope_ok) {
        lua_settop(L, top);
        rc = dagd_err_set(err, DAGD_EINVAL,
                          "%s: api_tokens entries are \"token\" or {token = \"...\", scope = \"read|trigger|admin\"}",
                          path);
        goto done;
      }
      add_token(cfg, tok, scope);
    }
    lua_settop(L, top);
    goto done;
  }
  if (t == LUA_TNUMBER) {
    if (lua_isinteger(L, -1))
      dagd_buf_printf(&text, "%lld", (long long)lua_tointeger(L, -1));
    else
      dagd_buf_printf(&text, "%g", lua_tonumber(L, -1));
  } else if (t == LUA_TSTRING) {
    dagd_buf_puts(&text, lua_tostring(L, -1));
  } else if (t == LUA_TBOOLEAN) {
    dagd_buf_puts(&text, lua_toboolean(L, -1) ? "true" : "false");
  } else {
    rc = dagd_err_set(err, DAGD_EINVAL, "%s: %s must be a string, number or boolean, not %s", path, key,
                      lua_typename(L, t));
    goto done;
  }
  dagd_err sub;
  dagd_err_init(&sub);
  if (dagd_config_set(cfg, key, text.data, &sub) < 0) rc = dagd_err_set(err, sub.code, "%s: %s", path, sub.msg);
done:
  dagd_buf_close(&text);
  return rc;
}

int dagd_config_load_file(dagd_config *cfg, const char *path, dagd_err *err) {
  lua_State *L = luaL_newstate();
  int rc = 0;
  if (L == NULL) return dagd_err_set(err, DAGD_ENOMEM, "%s: cannot create a Lua state", path);
  if (access(path, R_OK) != 0) {
    rc = dagd_err_set(err, errno == ENOENT ? DAGD_ENOENT : DAGD_EIO, "cannot read config file %s: %s", path,
                      strerror(errno));
    goto out;
  }
  if (luaL_loadfilex(L, path, "t") != LUA_OK) {
    rc = dagd_err_set(err, DAGD_ESYNTAX, "%s", lua_tostring(L, -1));
    goto out;
  }
  /* stack: chunk. Run it with an empty table as its only environment. */
  lua_newtable(L);
  lua_pushvalue(L, -1);
  lua_setupvalue(L, -3, 1);
  /* stack: chunk env */
  lua_insert(L, -2);
  /* stack: env chunk */
  if (lua_pcall(L, 0, 1, 0) != LUA_OK) {
    rc = dagd_err_set(err, DAGD_ESYNTAX, "%s", lua_tostring(L, -1));
    goto out;
  }
  /* stack: env result. A returned table wins over assigned globals. */
  if (lua_type(L, -1) != LUA_TTABLE) lua_pop(L, 1);
  else lua_remove(L, -2);
  for (lua_pushnil(L); lua_next(L, -2); lua_pop(L, 1)) {
    if (lua_type(L, -2) != LUA_TSTRING) {
      rc = dagd_err_set(err, DAGD_EINVAL, "%s: config keys must be names", path);
      goto out;
    }
    if ((rc = load_field(L, cfg, path, err)) < 0) goto out;
  }
  set_str(&cfg->config_file, path);
out:
  lua_close(L);
  return rc;
}

int dagd_config_load(dagd_config *cfg, const char *path, char *const *envp, dagd_err *err) {
  int rc;
  if (path == NULL) {
    for (char *const *e = envp; e && *e; e++)
      if (strncmp(*e, "DAGD_CONFIG=", 12) == 0 && (*e)[12]) path = *e + 12;
  }
  if (path == NULL && access("dagd.lua", R_OK) == 0) path = "dagd.lua";
  if (path != NULL && (rc = dagd_config_load_file(cfg, path, err)) < 0) return rc;
  return dagd_config_load_env(cfg, envp, err);
}

/* Appends `rel` to the absolute path in `out`, dropping empty and "."
 * segments. ".." stays: folding it would be wrong across a symlink. */
static void path_append(dagd_buf *out, const char *rel) {
  const char *p = rel;
  while (*p) {
    const char *end = strchr(p, '/');
    size_t n = end ? (size_t)(end - p) : strlen(p);
    if (n > 0 && !(n == 1 && p[0] == '.')) {
      if (out->len == 0 || out->data[out->len - 1] != '/') dagd_buf_putc(out, '/');
      dagd_buf_append(out, p, n);
    }
    p += n;
    if (*p == '/') p++;
  }
  if (out->len == 0) dagd_buf_putc(out, '/');
}

int dagd_config_path_absolute(const char *path, const char *cwd, char **out, dagd_err *err) {
  *out = NULL;
  if (path == NULL || *path == '\0') return dagd_err_set(err, DAGD_EINVAL, "empty path");
  if (path[0] != '/' && (cwd == NULL || cwd[0] != '/'))
    return dagd_err_set(err, DAGD_EINVAL, "%s: relative, and no absolute working directory to resolve it in", path);
  dagd_buf b;
  dagd_buf_init(&b);
  if (path[0] != '/') path_append(&b, cwd);
  path_append(&b, path);
  *out = dagd_strdup(b.data);
  dagd_buf_close(&b);
  return 0;
}

int dagd_config_resolve(dagd_config *cfg, const char *cwd, dagd_err *err) {
  struct { const char *key; char **slot; } paths[] = {{"dags_folder", &cfg->dags_folder}, {"state", &cfg->state},
                                                       {"logs_folder", &cfg->logs_folder},
                                                       {"config file", &cfg->config_file}};
  for (size_t i = 0; i < DAGD_ARRAY_LEN(paths); i++) {
    if (*paths[i].slot == NULL) continue;
    char *abs;
    dagd_err sub;
    dagd_err_init(&sub);
    if (dagd_config_path_absolute(*paths[i].slot, cwd, &abs, &sub) < 0)
      return dagd_err_set(err, sub.code, "%s: %s", paths[i].key, sub.msg);
    free(*paths[i].slot);
    *paths[i].slot = abs;
  }
  return 0;
}

bool dagd_config_listen_is_loopback(const char *listen) {
  return strncmp(listen, "127.", 4) == 0 || strncmp(listen, "[::1]:", 6) == 0 || strncmp(listen, "localhost:", 10) == 0;
}

int dagd_config_check(const dagd_config *cfg, dagd_err *err) {
  if (cfg->n_api_tokens == 0 && !dagd_config_listen_is_loopback(cfg->listen))
    return dagd_err_set(err, DAGD_EINVAL,
                        "refusing to listen on %s with no api_tokens configured: set api_tokens (or "
                        "DAGD_API_TOKEN), or listen on a loopback address",
                        cfg->listen);
  return 0;
}

int dagd_config_absolute_env(const char *name, const char *cwd, dagd_err *err) {
  const char *v = getenv(name);
  if (v == NULL || *v == '\0' || v[0] == '/') return 0;
  char *abs;
  dagd_err sub;
  dagd_err_init(&sub);
  if (dagd_config_path_absolute(v, cwd, &abs, &sub) < 0) return dagd_err_set(err, sub.code, "%s: %s", name, sub.msg);
  int rc = setenv(name, abs, 1) == 0 ? 0 : dagd_err_set(err, DAGD_ENOMEM, "%s: %s", name, strerror(errno));
  free(abs);
  return rc;
}
