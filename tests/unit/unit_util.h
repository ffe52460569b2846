/* unit_util.h: helpers shared by the CUnit test files (tests/unit/unit_util.c).
 * Not a test file itself (its name does not start with test_, see tools/unit_registry.sh). */
#ifndef SNN_UNIT_UTIL_H
#define SNN_UNIT_UTIL_H

#include <stddef.h>
#include <stdint.h>

#include "common.h"

/* The whole file at path, NUL-terminated (caller frees); *len (if not NULL) gets its size.
 * NULL if it cannot be read. */
char *unit_read_file(const char *path, size_t *len);

/* Every diagnostic collected in d, as snn_diag_print writes them (caller frees). */
char *unit_diag_text(const snn_diag *d);

/* max |a - b| / max(max |b|, 1e-6) over n elements; INFINITY where one is NaN and the other
 * not. Per tensor, because elements small by cancellation carry the rounding of large terms. */
double unit_rel_err(const float *a, const float *b, int64_t n);

#endif
