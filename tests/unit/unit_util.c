/* unit_util.c: helpers shared by the CUnit test files (see unit_util.h). */
#define _GNU_SOURCE
#include "unit_util.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>

char *unit_read_file(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) return NULL;
    if (fseek(f, 0, SEEK_END) != 0) { fclose(f); return NULL; }
    long n = ftell(f);
    if (n < 0 || fseek(f, 0, SEEK_SET) != 0) { fclose(f); return NULL; }
    char *s = malloc((size_t)n + 1);
    if (!s) { fclose(f); return NULL; }
    size_t got = fread(s, 1, (size_t)n, f);
    s[got] = 0;
    fclose(f);
    if (len) *len = got;
    return s;
}

char *unit_diag_text(const snn_diag *d) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    if (!f) return NULL;
    snn_diag_print(d, f);
    fclose(f);
    return buf;
}

double unit_rel_err(const float *a, const float *b, int64_t n) {
    double num = 0, den = 1e-6;
    for (int64_t i = 0; i < n; i++) {
        if (isnan(a[i]) != isnan(b[i])) return INFINITY;
        num = fmax(num, fabs((double)a[i] - b[i]));
        den = fmax(den, fabs((double)b[i]));
    }
    return num / den;
}
