/* common.h: what every layer of snnc shares: source locations, the per-compilation arena,
 * interned identifiers, and the diagnostics sink.
 *
 * One arena per compilation, freed at once (no frees of single nodes). Identifiers are interned
 * in the arena's string table so they compare by pointer. Errors are collected into a
 * snn_diag list, never exit()ed, so one run reports every error in a file and in-process tests
 * can compile many programs.
 */
#ifndef SNN_COMMON_H
#define SNN_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdbool.h>
#include <stdarg.h>

/* A place in a source file. file is interned; line and col count from 1 (col in bytes). */
typedef struct snn_loc {
    const char *file;
    int32_t line, col;
} snn_loc;

/* ---- arena (compiler/arena.c) ---- */
typedef struct snn_arena snn_arena;

/* Creates an empty arena; never returns NULL (aborts on out-of-memory, which is not a user
 * error we can report meaningfully). */
snn_arena *snn_arena_new(void);
/* Frees the arena and everything allocated in it. */
void snn_arena_free(snn_arena *a);
/* Zeroed, 16-byte aligned memory that lives as long as the arena. */
void *snn_alloc(snn_arena *a, size_t size);
/* Copy of s[0..len) with a terminating NUL, in the arena. */
char *snn_strndup(snn_arena *a, const char *s, size_t len);
/* printf into the arena. */
char *snn_sprintf(snn_arena *a, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* Interned copy of s[0..len): equal strings give the same pointer within one arena. */
const char *snn_intern(snn_arena *a, const char *s, size_t len);
const char *snn_intern_cstr(snn_arena *a, const char *s);

/* Growable array of anything, in plain malloc memory owned by the caller:
 *   T *items = NULL; int n = 0, cap = 0;  SNN_PUSH(items, n, cap, value);  free(items); */
#define SNN_PUSH(arr, n, cap, value)                                                     \
    do {                                                                                 \
        if ((n) == (cap)) {                                                              \
            (cap) = (cap) ? 2 * (cap) : 8;                                               \
            (arr) = snn_xrealloc((arr), (size_t)(cap) * sizeof *(arr));                  \
        }                                                                                \
        (arr)[(n)++] = (value);                                                          \
    } while (0)
void *snn_xrealloc(void *p, size_t size);

/* ---- diagnostics (compiler/diag.c) ----
 * Output format, one per error:
 *   file:line:col: error: message
 *    <the source line>
 *    <spaces>^
 *   file:line:col: note: related message        (zero or more notes)
 */
typedef enum { SNN_DIAG_ERROR, SNN_DIAG_WARNING, SNN_DIAG_NOTE, SNN_DIAG_INTERNAL } snn_diag_kind;

typedef struct snn_diag snn_diag;

/* A diagnostics sink for one compilation. Sources registered with snn_diag_add_source are used
 * to print the offending line under each message. */
snn_diag *snn_diag_new(snn_arena *a);
void snn_diag_add_source(snn_diag *d, const char *file, const char *text, size_t len);
/* Records a message (printf-style). A NOTE attaches to the previous error. */
void snn_diag_report(snn_diag *d, snn_diag_kind kind, snn_loc loc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
#define snn_error(d, loc, ...) snn_diag_report((d), SNN_DIAG_ERROR, (loc), __VA_ARGS__)
#define snn_note(d, loc, ...) snn_diag_report((d), SNN_DIAG_NOTE, (loc), __VA_ARGS__)
/* A compiler bug, not a user error: printed as "internal error" with the C source place. */
#define snn_internal_error(d, loc, ...) \
    snn_diag_report((d), SNN_DIAG_INTERNAL, (loc), __FILE__ ":" SNN_STR(__LINE__) ": " __VA_ARGS__)
#define SNN_STR_(x) #x
#define SNN_STR(x) SNN_STR_(x)
int snn_diag_error_count(const snn_diag *d);
/* Writes every collected message, in the order reported, to f (stderr in the driver). */
void snn_diag_print(const snn_diag *d, void *file /* FILE* */);

#endif
