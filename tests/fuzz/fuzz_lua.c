/* Fuzzes the DAG file loader: the input is written to a temp file and
 * loaded under the sandbox with a small instruction budget, time limit and
 * memory cap, so a file that loops or allocates without end is reported
 * rather than obeyed. A load either yields DAGs or records errors.
 * SPDX-License-Identifier: MIT */
#include <unistd.h>

#include "dagd/lua.h"
#include "fuzz_common.h"

static char dir[128], path[160];
static dagd_load_opts opts;

int LLVMFuzzerInitialize(int *argc, char ***argv);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

static void cleanup(void) {
  unlink(path);
  rmdir(dir);
}

int LLVMFuzzerInitialize(int *argc, char ***argv) {
  (void)argc;
  (void)argv;
  const char *base = access("/dev/shm", W_OK) == 0 ? "/dev/shm" : "/tmp";
  snprintf(dir, sizeof(dir), "%s/dagd-fuzz-lua-XXXXXX", base);
  if (!mkdtemp(dir)) abort();
  snprintf(path, sizeof(path), "%s/dag.lua", dir);
  dagd_load_opts_default(&opts);
  opts.instruction_budget = 2000000;
  opts.time_limit_ms = 200;
  opts.memory_limit = (size_t)64 * 1024 * 1024;
  opts.lua_dir = DAGD_SOURCE_DIR "/lua";
  opts.threads = 1;
  atexit(cleanup);
  return 0;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size > 16 * 1024) return -1;
  FILE *fp = fopen(path, "wb");
  if (!fp) abort();
  if (size && fwrite(data, 1, size, fp) != size) abort();
  fclose(fp);
  dagd_dagbag bag;
  dagd_dagbag_init(&bag);
  int rc = dagd_lua_load_file(path, &opts, &bag);
  if (rc == 0) FUZZ_CHECK(bag.n_errors == 0);
  else FUZZ_CHECK(bag.n_errors > 0);
  for (size_t i = 0; i < bag.n_errors; i++) FUZZ_CHECK(bag.errors[i].message != NULL);
  dagd_dagbag_close(&bag);
  return 0;
}
