/* arena.c: the per-compilation bump allocator and identifier interning (see common.h).
 * Blocks are chained and freed together; the intern table is an open-addressing hash set of
 * arena strings, so interned identifiers compare by pointer. */
#include "common.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct block { struct block *next; size_t used, cap; } block;

struct snn_arena {
    block *head;
    const char **table; size_t table_cap, table_n;
};

void *snn_xrealloc(void *p, size_t size) {
    void *q = realloc(p, size ? size : 1);
    if (!q) { fputs("snnc: out of memory\n", stderr); abort(); }
    return q;
}

snn_arena *snn_arena_new(void) {
    snn_arena *a = calloc(1, sizeof *a);
    if (!a) { fputs("snnc: out of memory\n", stderr); abort(); }
    return a;
}

void snn_arena_free(snn_arena *a) {
    if (!a) return;
    for (block *b = a->head, *n; b; b = n) { n = b->next; free(b); }
    free(a->table);
    free(a);
}

void *snn_alloc(snn_arena *a, size_t size) {
    size = (size + 15) & ~(size_t)15;
    block *b = a->head;
    if (!b || b->used + size > b->cap) {
        size_t cap = size > 65536 ? size : 65536;
        b = calloc(1, sizeof(block) + 16 + cap);
        if (!b) { fputs("snnc: out of memory\n", stderr); abort(); }
        b->cap = cap; b->next = a->head; a->head = b;
    }
    char *base = (char *)(((uintptr_t)(b + 1) + 15) & ~(uintptr_t)15);
    void *p = base + b->used;
    b->used += size;
    return p;
}

char *snn_strndup(snn_arena *a, const char *s, size_t len) {
    char *p = snn_alloc(a, len + 1);
    memcpy(p, s, len);
    p[len] = 0;
    return p;
}

char *snn_sprintf(snn_arena *a, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    char *p = snn_alloc(a, (size_t)n + 1);
    vsnprintf(p, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    return p;
}

static uint64_t hash_bytes(const char *s, size_t len) {
    uint64_t h = 1469598103934665603ull;                  /* FNV-1a */
    for (size_t i = 0; i < len; i++) h = (h ^ (unsigned char)s[i]) * 1099511628211ull;
    return h;
}

const char *snn_intern(snn_arena *a, const char *s, size_t len) {
    if (a->table_n * 2 >= a->table_cap) {                 /* grow and rehash */
        size_t cap = a->table_cap ? a->table_cap * 2 : 256;
        const char **t = calloc(cap, sizeof *t);
        if (!t) { fputs("snnc: out of memory\n", stderr); abort(); }
        for (size_t i = 0; i < a->table_cap; i++) {
            const char *e = a->table[i];
            if (!e) continue;
            size_t j = hash_bytes(e, strlen(e)) & (cap - 1);
            while (t[j]) j = (j + 1) & (cap - 1);
            t[j] = e;
        }
        free(a->table);
        a->table = t; a->table_cap = cap;
    }
    size_t j = hash_bytes(s, len) & (a->table_cap - 1);
    for (; a->table[j]; j = (j + 1) & (a->table_cap - 1))
        if (strncmp(a->table[j], s, len) == 0 && a->table[j][len] == 0) return a->table[j];
    a->table[j] = snn_strndup(a, s, len);
    a->table_n++;
    return a->table[j];
}

const char *snn_intern_cstr(snn_arena *a, const char *s) { return snn_intern(a, s, strlen(s)); }
