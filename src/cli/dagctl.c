/* dagctl: the command-line client.
 * SPDX-License-Identifier: MIT */
#include <stdio.h>
#include <string.h>

int main(int argc, char **argv) {
  if (argc > 1 && strcmp(argv[1], "--version") == 0) {
    printf("dagctl %s\n", DAGD_VERSION);
    return 0;
  }
  return 0;
}
