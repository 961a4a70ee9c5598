/* progress.c — progress bar (terminal) or periodic lines (pipe). */
#include "cli/progress.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

double pl_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec * 1e-9;
}

void pl_progress_start(pl_progress *p, const char *label, size_t total)
{
    p->tty = isatty(STDERR_FILENO);
    p->total = total ? total : 1;
    p->start = pl_now();
    p->last_print = 0;
    p->last_done = (size_t)-1;
    snprintf(p->label, sizeof p->label, "%s", label);
}

void pl_progress_update(pl_progress *p, size_t done, double loss, double rate)
{
    double now = pl_now();
    /* Redraw a terminal bar at most 10x/s; print a plain line every 10 s. */
    double every = p->tty ? 0.1 : 10.0;
    int finished = done >= p->total && p->last_done != done;
    if (!finished && now - p->last_print < every)
        return;
    if (!p->tty && done == p->last_done)
        return;
    p->last_print = now;
    p->last_done = done;
    double frac = (double)done / (double)p->total;
    if (p->tty) {
        char bar[31];
        int fill = (int)(frac * 30.0);
        for (int i = 0; i < 30; i++)
            bar[i] = i < fill ? '#' : '.';
        bar[30] = '\0';
        fprintf(stderr, "\r%s [%s] %3.0f%% loss %.4f", p->label, bar, frac * 100.0, loss);
        if (rate > 0)
            fprintf(stderr, "  %.0f img/s", rate);
        fprintf(stderr, "  %.0fs ", now - p->start);
    } else {
        fprintf(stderr, "%s %zu/%zu (%.0f%%) loss %.4f", p->label, done, p->total, frac * 100.0, loss);
        if (rate > 0)
            fprintf(stderr, " %.0f img/s", rate);
        fprintf(stderr, " %.0fs\n", now - p->start);
    }
    fflush(stderr);
}

void pl_progress_end(pl_progress *p)
{
    if (p->tty)
        fputc('\n', stderr);
}
