/* lex.h: the .snn lexer (compiler/lex.re, compiled by re2c).
 *
 * A reentrant struct, no globals: snn_lexer_init over a text, then snn_lex_next until
 * SNN_TOK_EOF. Every token carries its {file, line, col}. Bad input (an unknown character,
 * an unterminated string, a malformed number, a NUL byte) is reported to the diagnostics sink
 * and skipped (a malformed number still yields an INT token 0, so the parser does not report a
 * second error for the missing number), so the lexer always makes progress and ends with EOF.
 *
 * Token kinds come from tokens.def; their numbers are also the parser's token numbers
 * (tools/tokens_y.sh), so the parser consumes snn_tok values directly.
 */
#ifndef SNN_LEX_H
#define SNN_LEX_H

#include "common.h"

typedef enum {
    SNN_TOK_BEFORE_ = 257,
#define TOK(name, spelling, cls) SNN_TOK_##name,
#include "tokens.def"
#undef TOK
    SNN_TOK_END_
} snn_tok;

typedef struct {
    snn_tok kind;
    snn_loc loc;
    const char *text;   /* the token's bytes in the lexer's copy of the source */
    int32_t len;
    const char *id;     /* IDENT and keywords: interned spelling */
    const char *str;    /* STRING: contents with escapes processed (arena) */
    double num;         /* INT and FLOAT */
    int64_t ival;       /* INT */
} snn_token;

typedef struct {
    snn_arena *arena;
    snn_diag *diag;
    const char *file;
    const unsigned char *cur, *lim;     /* lim points at the terminating NUL */
    const unsigned char *line_start;
    int32_t line;
    int32_t errors;                     /* lexical errors reported so far */
    int32_t last_error_line;            /* line of the latest lexical error (0: none) */
} snn_lexer;

/* Prepares lx to scan text[0..len) of file (interned). The text is copied into the arena
 * (NUL-terminated), so the caller's buffer may go away. */
void snn_lexer_init(snn_lexer *lx, snn_arena *a, snn_diag *d, const char *file, const char *text,
                    size_t len);
/* The next token; SNN_TOK_EOF at the end (and on every call after). */
snn_token snn_lex_next(snn_lexer *lx);
/* The table's spelling: the word or operator, or a description ("identifier"). */
const char *snn_tok_spelling(snn_tok k);
/* The enum name without prefix ("IDENT", "LBRACE"), for --emit=tokens. */
const char *snn_tok_name(snn_tok k);

#endif
