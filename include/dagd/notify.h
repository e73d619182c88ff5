/* Notifications of task outcomes: `dagd notify SPEC` posts one (see
 * src/operators/notify.c); the daemon starts it when a try or a run ends.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_NOTIFY_H
#define DAGD_NOTIFY_H

#if defined(DAGD_LAYER_PURE) || defined(DAGD_LAYER_LUA) || defined(DAGD_LAYER_STORE) || defined(DAGD_LAYER_ENGINE) || defined(DAGD_LAYER_API)
#error "dagd/notify.h is above this layer (see the layers in CMakeLists.txt)"
#endif

/* `dagd notify SPEC`: SPEC is a JSON file (or "-": the standard input)
 * {url, method?, headers?, body?, timeout?, payload}, rendered already
 * (dagd_command_notify); returns the process exit status (0 delivered). */
int dagd_notify_main(int argc, char **argv);

#endif
