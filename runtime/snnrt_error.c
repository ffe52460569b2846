/* snnrt_error.c: the small services every other runtime file leans on.
 *
 * Errors travel as values: a function that can fail formats one line into the caller's
 * snnrt_error and returns -1; only the trainer's main turns that into an exit status. This keeps
 * the library usable from unit tests and harnesses that run many cases in one process, and it
 * lets the message name the file or flag at the place that knows it.
 *
 * Also here: 64-byte aligned allocation (whole cache lines, AVX-512-friendly, the alignment
 * snnrt.h promises for work buffers), a monotonic clock, the process's peak RSS, and the
 * shortest-decimal conversion that makes float hyperparameters behave like Python literals.
 */
#define _GNU_SOURCE
#include "snnrt_lib.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

int snnrt_fail(snnrt_error *err, const char *fmt, ...) {
    if (err) {
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(err->msg, sizeof err->msg, fmt, ap);
        va_end(ap);
    }
    return -1;
}

void *snnrt_alloc(size_t bytes, const char *what, snnrt_error *err) {
    size_t rounded = (bytes + 63) & ~(size_t)63;
    if (rounded < bytes) { /* overflow */
        snnrt_fail(err, "out of memory allocating %s (%zu bytes)", what, bytes);
        return NULL;
    }
    if (rounded == 0) rounded = 64;
    void *p = aligned_alloc(64, rounded);
    if (!p) {
        snnrt_fail(err, "out of memory allocating %s (%.1f MiB)", what,
                   (double)bytes / (1024.0 * 1024.0));
        return NULL;
    }
    memset(p, 0, rounded);
    return p;
}

void snnrt_free(void *p) { free(p); }

double snnrt_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

int64_t snnrt_peak_rss_bytes(void) {
    struct rusage ru;
    if (getrusage(RUSAGE_SELF, &ru) != 0) return -1;
    return (int64_t)ru.ru_maxrss * 1024; /* Linux reports KiB */
}

double snnrt_float_decimal(float f) {
    char buf[64];
    for (int prec = 1; prec <= 9; prec++) {
        snprintf(buf, sizeof buf, "%.*g", prec, (double)f);
        if (strtof(buf, NULL) == f) return strtod(buf, NULL);
    }
    return (double)f; /* NaN: every float round-trips with 9 digits otherwise */
}
