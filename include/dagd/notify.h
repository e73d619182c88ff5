/* Notifications of task outcomes: `dagd notify SPEC` posts one (see
 * src/operators/notify.c); the daemon starts it when a try ends.
 * SPDX-License-Identifier: MIT */
#ifndef DAGD_NOTIFY_H
#define DAGD_NOTIFY_H

/* `dagd notify SPEC`: SPEC is a JSON file {url, method?, headers?, body?,
 * timeout?, payload}; returns the process exit status (0 delivered). */
int dagd_notify_main(int argc, char **argv);

#endif
