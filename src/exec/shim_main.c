/* dagd-shim: the per-try supervisor as a small program of its own, so that
 * starting a try does not load the whole daemon and its libraries. It
 * takes the same arguments as `dagd shim`.
 * SPDX-License-Identifier: MIT */
#include <string.h>

#include "dagd/exec.h"

int main(int argc, char **argv) {
  /* Called as `dagd-shim shim --base ...` or `dagd-shim --base ...`. */
  if (argc > 1 && strcmp(argv[1], "shim") == 0) return dagd_shim_main(argc - 1, argv + 1);
  if (argc > 1 && strcmp(argv[1], "supervise") == 0) return dagd_supervisor_main(argc - 1, argv + 1);
  return dagd_shim_main(argc, argv);
}
