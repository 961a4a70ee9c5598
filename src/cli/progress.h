/* progress.h — one progress line on stderr: a redrawn bar on a terminal,
 * plain periodic lines otherwise (logs, CI). */
#ifndef PEERLESS_CLI_PROGRESS_H
#define PEERLESS_CLI_PROGRESS_H

#include <stddef.h>

typedef struct pl_progress {
    int tty;
    size_t total;
    size_t last_done; /* `done` of the last printed update */
    double start, last_print;
    char label[64];
} pl_progress;

/* Monotonic seconds. */
double pl_now(void);
void pl_progress_start(pl_progress *p, const char *label, size_t total);
/* Report `done` of `total` units with a loss and a throughput (items/s). */
void pl_progress_update(pl_progress *p, size_t done, double loss, double rate);
/* Finish the line (newline on a terminal). */
void pl_progress_end(pl_progress *p);

#endif
