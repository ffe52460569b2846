/* diag.c: the diagnostics sink (API in common.h).
 *
 * Messages are collected in report order and printed together, so one run reports every
 * error of a file and in-process callers (unit tests, the fuzzer) can inspect them. An error
 * prints as
 *
 *   file:line:col: error: message
 *    <the source line>
 *    <spaces>^
 *
 * (chibicc's error_tok), followed by its notes, one line each. The caret line copies the tabs
 * of the source line so the caret lines up whatever the tab width. A location without a file
 * prints as "snnc: error: ..."; one without a line as "file: error: ..."; one whose file text
 * was not registered, or whose line is past the end of it, without the source line. Internal
 * errors (a compiler bug, not the user's) say "internal error" and carry the C source place.
 */
#include "common.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    snn_diag_kind kind;
    snn_loc loc;
    const char *msg;
} message;

typedef struct {
    const char *file, *text;
    size_t len;
} source;

struct snn_diag {
    snn_arena *arena;
    message *msgs; int n_msgs, cap_msgs;
    source *srcs; int n_srcs, cap_srcs;
    int errors;
};

/* The sink's arrays live in the arena (copied on growth), so freeing the arena frees them. */
static void *arena_grow(snn_arena *a, void *old, size_t old_bytes, size_t new_bytes) {
    void *p = snn_alloc(a, new_bytes);
    if (old_bytes) memcpy(p, old, old_bytes);
    return p;
}

snn_diag *snn_diag_new(snn_arena *a) {
    snn_diag *d = snn_alloc(a, sizeof *d);
    d->arena = a;
    return d;
}

void snn_diag_add_source(snn_diag *d, const char *file, const char *text, size_t len) {
    if (d->n_srcs == d->cap_srcs) {
        int cap = d->cap_srcs ? 2 * d->cap_srcs : 8;
        d->srcs = arena_grow(d->arena, d->srcs, (size_t)d->n_srcs * sizeof *d->srcs,
                             (size_t)cap * sizeof *d->srcs);
        d->cap_srcs = cap;
    }
    d->srcs[d->n_srcs++] = (source){file, snn_strndup(d->arena, text, len), len};
}

void snn_diag_report(snn_diag *d, snn_diag_kind kind, snn_loc loc, const char *fmt, ...) {
    va_list ap, ap2;
    va_start(ap, fmt);
    va_copy(ap2, ap);
    int n = vsnprintf(NULL, 0, fmt, ap);
    va_end(ap);
    if (n < 0) n = 0;
    char *msg = snn_alloc(d->arena, (size_t)n + 1);
    vsnprintf(msg, (size_t)n + 1, fmt, ap2);
    va_end(ap2);
    if (d->n_msgs == d->cap_msgs) {
        int cap = d->cap_msgs ? 2 * d->cap_msgs : 16;
        d->msgs = arena_grow(d->arena, d->msgs, (size_t)d->n_msgs * sizeof *d->msgs,
                             (size_t)cap * sizeof *d->msgs);
        d->cap_msgs = cap;
    }
    d->msgs[d->n_msgs++] = (message){kind, loc, msg};
    if (kind == SNN_DIAG_ERROR || kind == SNN_DIAG_INTERNAL) d->errors++;
}

int snn_diag_error_count(const snn_diag *d) { return d->errors; }

static const source *find_source(const snn_diag *d, const char *file) {
    if (!file) return NULL;
    for (int i = d->n_srcs - 1; i >= 0; i--)
        if (d->srcs[i].file == file || strcmp(d->srcs[i].file, file) == 0) return &d->srcs[i];
    return NULL;
}

/* Prints the source line of loc and a caret under its column, if the source is known. */
static void print_line(const snn_diag *d, snn_loc loc, FILE *f) {
    const source *s = find_source(d, loc.file);
    if (!s || loc.line <= 0) return;
    const char *p = s->text, *end = s->text + s->len;
    int line = 1;
    for (; line < loc.line && p < end; p++)
        if (*p == '\n') line++;
    if (line < loc.line) return;    /* past the end of the text (the empty line after a final
                                       newline still counts: that is where EOF is) */
    const char *e = p;
    while (e < end && *e != '\n') e++;
    if (e > p && e[-1] == '\r') e--;
    fputc(' ', f);
    for (const char *q = p; q < e; q++) fputc(*q ? *q : ' ', f);
    fputc('\n', f);
    fputc(' ', f);
    for (int c = 1; c < loc.col && p + c - 1 < e; c++) fputc(p[c - 1] == '\t' ? '\t' : ' ', f);
    fputs("^\n", f);
}

static void print_head(snn_loc loc, const char *label, const char *msg, FILE *f) {
    if (!loc.file) fprintf(f, "snnc: %s: %s\n", label, msg);
    else if (loc.line <= 0) fprintf(f, "%s: %s: %s\n", loc.file, label, msg);
    else fprintf(f, "%s:%d:%d: %s: %s\n", loc.file, loc.line, loc.col, label, msg);
}

void snn_diag_print(const snn_diag *d, void *file) {
    FILE *f = file;
    for (int i = 0; i < d->n_msgs; i++) {
        const message *m = &d->msgs[i];
        switch (m->kind) {
        case SNN_DIAG_ERROR: print_head(m->loc, "error", m->msg, f); print_line(d, m->loc, f); break;
        case SNN_DIAG_WARNING: print_head(m->loc, "warning", m->msg, f); print_line(d, m->loc, f); break;
        case SNN_DIAG_INTERNAL:
            print_head(m->loc, "internal error", m->msg, f);
            print_line(d, m->loc, f);
            break;
        case SNN_DIAG_NOTE: print_head(m->loc, "note", m->msg, f); break;
        }
    }
}
