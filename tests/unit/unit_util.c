/* unit_util.c: helpers shared by the CUnit test files (see unit_util.h). */
#define _GNU_SOURCE
#include "unit_util.h"

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
