/* load.c: from a file name to an snn_program: the main file, its imports, the standard library.
 *
 * Loading is separate from parsing (one file, no I/O) and from sema (names, no I/O): this is
 * the only front-end file that touches the file system. The main file is unit 0; each
 * `import "path"` is resolved relative to the directory of the file that contains it (absolute
 * paths as they are), loaded once however many files import it (cycles are therefore harmless),
 * and appended in the order first seen, depth first. Importing a name that is not a file but is
 * one of the embedded standard library files ("leaky.snn") is allowed and does nothing, since the
 * standard library is always loaded. The standard library's units come last, marked is_stdlib,
 * named "<stdlib>/NAME.snn" in diagnostics.
 */
#include "ast.h"
#include "stdlib_embed.h"

#include <errno.h>
#include <limits.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define MAX_FILE_BYTES (64u << 20)

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_program *prog;
    const snn_load_options *opt;
    const char **seen; int n_seen, cap_seen;     /* canonical paths already loaded */
} loader;

/* Reads a regular file into the arena. On failure returns NULL and sets *why. */
static char *read_file(snn_arena *a, const char *path, size_t *len, const char **why) {
    FILE *f = fopen(path, "rb");
    if (!f) { *why = strerror(errno); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fclose(f);
        *why = S_ISDIR(st.st_mode) ? "is a directory" : "not a regular file";
        return NULL;
    }
    if ((unsigned long long)st.st_size > MAX_FILE_BYTES) { fclose(f); *why = "file too large"; return NULL; }
    char *buf = snn_alloc(a, (size_t)st.st_size + 1);
    size_t n = fread(buf, 1, (size_t)st.st_size, f);
    int err = ferror(f);
    fclose(f);
    if (err) { *why = "read error"; return NULL; }
    buf[n] = 0;
    *len = n;
    return buf;
}

static void add_unit(loader *L, snn_ast *u) {   /* the array lives in the arena */
    snn_program *P = L->prog;
    if (P->n_units == P->cap_units) {
        int32_t cap = P->cap_units ? 2 * P->cap_units : 16;
        snn_ast **units = snn_alloc(L->a, (size_t)cap * sizeof *units);
        if (P->n_units) memcpy(units, P->units, (size_t)P->n_units * sizeof *units);
        P->units = units;
        P->cap_units = cap;
    }
    P->units[P->n_units++] = u;
}

static bool seen_before(loader *L, const char *canon) {
    for (int i = 0; i < L->n_seen; i++)
        if (strcmp(L->seen[i], canon) == 0) return true;
    SNN_PUSH(L->seen, L->n_seen, L->cap_seen, canon);
    return false;
}

static const char *canonical(snn_arena *a, const char *path) {
    char buf[PATH_MAX];
    if (realpath(path, buf)) return snn_intern_cstr(a, buf);
    return snn_intern_cstr(a, path);
}

static bool is_stdlib_name(const char *path) {
    for (int i = 0; i < snn_stdlib_file_count; i++)
        if (strcmp(snn_stdlib_files[i].name, path) == 0) return true;
    return false;
}

static void load_imports(loader *L, snn_ast *unit);

/* Parses text as file and, if it parsed, appends it and loads what it imports. */
static snn_ast *load_text(loader *L, const char *file, const char *text, size_t len) {
    snn_diag_add_source(L->d, file, text, len);
    snn_ast *u = snn_parse(L->a, L->d, file, text, len);
    if (!u) return NULL;
    add_unit(L, u);
    load_imports(L, u);
    return u;
}

static void load_imports(loader *L, snn_ast *unit) {
    for (int i = 0; i < unit->unit.items.n; i++) {
        snn_ast *imp = unit->unit.items.items[i];
        if (imp->kind != SNN_AST_IMPORT) continue;
        if (L->opt && L->opt->no_imports) {
            snn_error(L->d, imp->loc, "imports are disabled here");
            continue;
        }
        const char *path = imp->str;
        if (!path || !*path) { snn_error(L->d, imp->loc, "empty import path"); continue; }
        if (strlen(path) >= PATH_MAX) {
            snn_error(L->d, imp->loc, "invalid import path");
            continue;
        }
        const char *full = path;
        if (path[0] != '/') {
            const char *slash = strrchr(unit->unit.file, '/');
            if (slash)
                full = snn_sprintf(L->a, "%.*s/%s", (int)(slash - unit->unit.file), unit->unit.file, path);
        }
        size_t len = 0;
        const char *why = NULL;
        struct stat st;
        if (stat(full, &st) != 0 && is_stdlib_name(path)) continue;   /* always loaded anyway */
        const char *canon = canonical(L->a, full);
        if (seen_before(L, canon)) continue;
        char *text = read_file(L->a, full, &len, &why);
        if (!text) {
            snn_error(L->d, imp->loc, "cannot import '%s': %s", full, why);
            continue;
        }
        int errors_before = snn_diag_error_count(L->d);
        imp->import.unit = load_text(L, snn_intern_cstr(L->a, full), text, len);
        if (snn_diag_error_count(L->d) > errors_before)   /* say where the broken file came from */
            snn_note(L->d, imp->loc, "'%s' is imported here", path);
    }
}

snn_program *snn_load_program(snn_arena *a, snn_diag *d, const char *path, const char *text,
                              size_t len, const snn_load_options *opt) {
    snn_program *prog = snn_alloc(a, sizeof *prog);
    loader L = {a, d, prog, opt, NULL, 0, 0};
    const char *file = snn_intern_cstr(a, path);
    prog->main_file = file;
    if (!text) {
        const char *why = NULL;
        text = read_file(a, path, &len, &why);
        if (!text) {
            snn_error(d, ((snn_loc){NULL, 0, 0}), "cannot open '%s': %s", path, why);
            free(L.seen);
            return NULL;
        }
    }
    int errors_before = snn_diag_error_count(d);
    seen_before(&L, canonical(a, path));
    snn_ast *main_unit = load_text(&L, file, text, len);
    if (!opt || !opt->no_stdlib) {
        for (int i = 0; i < snn_stdlib_file_count; i++) {
            const char *name = snn_sprintf(a, "<stdlib>/%s", snn_stdlib_files[i].name);
            const char *sfile = snn_intern_cstr(a, name);
            const char *stext = snn_stdlib_files[i].text;
            size_t slen = strlen(stext);
            snn_diag_add_source(d, sfile, stext, slen);
            snn_ast *u = snn_parse(a, d, sfile, stext, slen);
            if (!u) continue;
            u->unit.is_stdlib = true;
            add_unit(&L, u);
        }
    }
    free(L.seen);
    if (!main_unit || snn_diag_error_count(d) > errors_before) return NULL;
    return prog;
}
