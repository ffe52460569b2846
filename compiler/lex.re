/* lex.re: the .snn lexer, a re2c scanner over a NUL-terminated copy of the source.
 *
 * The scanner is one function over a cursor in a reentrant snn_lexer (no globals). Keywords are
 * scanned as identifiers and then looked up in the keyword entries of tokens.def, so the word
 * list lives in one place; operators are re2c rules returning the matching tokens.def kinds.
 * Lines and columns are counted here: a newline bumps line and records where the line starts,
 * and a token's column is its byte offset from that start, plus one.
 *
 * Errors never stop the scan: the bad bytes are reported and skipped, and scanning goes on, so
 * the parser always sees a well-formed token stream ending in EOF and every error in the file
 * is reported. A NUL byte before the end is an error (the text is NUL-terminated internally).
 */
#include "lex.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>

static const struct { const char *spelling, *name; int is_keyword; } tok_info[] = {
#define TOK(name, spelling, cls) {spelling, #name, sizeof(#cls) == sizeof("KEYWORD") && #cls[0] == 'K'},
#include "tokens.def"
#undef TOK
};
#define N_TOKS ((int)(sizeof tok_info / sizeof tok_info[0]))

const char *snn_tok_spelling(snn_tok k) {
    int i = (int)k - (SNN_TOK_BEFORE_ + 1);
    return i >= 0 && i < N_TOKS ? tok_info[i].spelling : "?";
}

const char *snn_tok_name(snn_tok k) {
    int i = (int)k - (SNN_TOK_BEFORE_ + 1);
    return i >= 0 && i < N_TOKS ? tok_info[i].name : "?";
}

void snn_lexer_init(snn_lexer *lx, snn_arena *a, snn_diag *d, const char *file, const char *text,
                    size_t len) {
    memset(lx, 0, sizeof *lx);
    lx->arena = a;
    lx->diag = d;
    lx->file = file;
    char *copy = snn_strndup(a, text, len);
    lx->cur = lx->line_start = (const unsigned char *)copy;
    lx->lim = (const unsigned char *)copy + len;
    lx->line = 1;
}

static snn_loc loc_at(const snn_lexer *lx, const unsigned char *p) {
    return (snn_loc){lx->file, lx->line, (int32_t)(p - lx->line_start) + 1};
}

/* Counts a lexical error just reported (the parser uses the line to avoid follow-on errors). */
static void lexical_error(snn_lexer *lx) {
    lx->errors++;
    lx->last_error_line = lx->line;
}

static snn_tok keyword_or_ident(const char *s, size_t len) {
    for (int i = 0; i < N_TOKS; i++)
        if (tok_info[i].is_keyword && strlen(tok_info[i].spelling) == len &&
            memcmp(tok_info[i].spelling, s, len) == 0)
            return (snn_tok)(SNN_TOK_BEFORE_ + 1 + i);
    return SNN_TOK_IDENT;
}

/* Processes the escapes of a string literal's body [s, e); reports bad ones. */
static const char *unescape(snn_lexer *lx, const unsigned char *s, const unsigned char *e) {
    char *out = snn_alloc(lx->arena, (size_t)(e - s) + 1), *o = out;
    for (const unsigned char *p = s; p < e; p++) {
        if (*p != '\\') { *o++ = (char)*p; continue; }
        p++;
        switch (*p) {
        case 'n': *o++ = '\n'; break;
        case 't': *o++ = '\t'; break;
        case '\\': *o++ = '\\'; break;
        case '"': *o++ = '"'; break;
        default:
            snn_error(lx->diag, loc_at(lx, p - 1), "unknown escape sequence '\\%c' in string",
                      *p >= 32 && *p < 127 ? *p : '?');
            lexical_error(lx);
            break;
        }
    }
    *o = 0;
    return out;
}

snn_token snn_lex_next(snn_lexer *lx) {
    const unsigned char *YYCURSOR = lx->cur, *YYMARKER = YYCURSOR, *start;
    snn_token t;
    for (;;) {
        start = YYCURSOR;
        memset(&t, 0, sizeof t);
        t.loc = loc_at(lx, start);
        t.text = (const char *)start;
/*!re2c
        re2c:yyfill:enable = 0;
        re2c:define:YYCTYPE = "unsigned char";

        digits = [0-9]+;
        exp    = [eE] [+-]? digits;
        ident  = [a-zA-Z_] [a-zA-Z0-9_]*;
        schar  = [^"\\\n\x00] | "\\" [^\n\x00];

        "\x00" {
            if (start == lx->lim) { YYCURSOR = start; t.kind = SNN_TOK_EOF; t.len = 0; goto done; }
            snn_error(lx->diag, t.loc, "unexpected NUL byte");
            lexical_error(lx);
            continue;
        }
        [ \t\r\f\v]+      { continue; }
        "\n"              { lx->line++; lx->line_start = YYCURSOR; continue; }
        "#" [^\n\x00]*    { continue; }

        ident {
            t.kind = keyword_or_ident((const char *)start, (size_t)(YYCURSOR - start));
            t.id = snn_intern(lx->arena, (const char *)start, (size_t)(YYCURSOR - start));
            goto done;
        }
        digits {
            char buf[64];
            size_t n = (size_t)(YYCURSOR - start);
            t.kind = SNN_TOK_INT;
            if (n >= sizeof buf) goto too_large;
            memcpy(buf, start, n); buf[n] = 0;
            errno = 0;
            long long v = strtoll(buf, NULL, 10);
            if (errno == ERANGE) goto too_large;
            t.ival = v; t.num = (double)v;
            goto done;
        too_large:
            snn_error(lx->diag, t.loc, "integer literal '%.*s' is too large", (int)(n > 40 ? 40 : n),
                      (const char *)start);
            lexical_error(lx);
            t.ival = 0; t.num = 0;
            goto done;
        }
        digits "." [0-9]* exp? | "." digits exp? | digits exp {
            size_t n = (size_t)(YYCURSOR - start);
            char *buf = snn_strndup(lx->arena, (const char *)start, n);
            t.kind = SNN_TOK_FLOAT;
            errno = 0;
            t.num = strtod(buf, NULL);
            if (errno == ERANGE && (t.num > 1.0 || t.num < -1.0)) {
                snn_error(lx->diag, t.loc, "number '%.*s' is out of range", (int)(n > 40 ? 40 : n), buf);
                lexical_error(lx);
                t.num = 0;
            }
            goto done;
        }
        digits [0-9a-zA-Z_.]* {
            size_t n = (size_t)(YYCURSOR - start);
            snn_error(lx->diag, t.loc, "malformed number '%.*s'", (int)(n > 40 ? 40 : n),
                      (const char *)start);
            lexical_error(lx);
            t.kind = SNN_TOK_INT;           /* stands in for the number: no follow-on errors */
            goto done;
        }
        "\"" schar* "\"" {
            t.kind = SNN_TOK_STRING;
            t.str = unescape(lx, start + 1, YYCURSOR - 1);
            goto done;
        }
        "\"" schar* {
            snn_error(lx->diag, t.loc, "unterminated string");
            lexical_error(lx);
            t.kind = SNN_TOK_STRING;
            t.str = "";
            goto done;
        }

        "("  { t.kind = SNN_TOK_LPAREN; goto done; }
        ")"  { t.kind = SNN_TOK_RPAREN; goto done; }
        "["  { t.kind = SNN_TOK_LBRACKET; goto done; }
        "]"  { t.kind = SNN_TOK_RBRACKET; goto done; }
        "{"  { t.kind = SNN_TOK_LBRACE; goto done; }
        "}"  { t.kind = SNN_TOK_RBRACE; goto done; }
        ","  { t.kind = SNN_TOK_COMMA; goto done; }
        ";"  { t.kind = SNN_TOK_SEMI; goto done; }
        ":"  { t.kind = SNN_TOK_COLON; goto done; }
        "="  { t.kind = SNN_TOK_ASSIGN; goto done; }
        "+"  { t.kind = SNN_TOK_PLUS; goto done; }
        "-"  { t.kind = SNN_TOK_MINUS; goto done; }
        "*"  { t.kind = SNN_TOK_STAR; goto done; }
        "/"  { t.kind = SNN_TOK_SLASH; goto done; }
        "^"  { t.kind = SNN_TOK_CARET; goto done; }
        "<"  { t.kind = SNN_TOK_LT; goto done; }
        "<=" { t.kind = SNN_TOK_LE; goto done; }
        ">"  { t.kind = SNN_TOK_GT; goto done; }
        ">=" { t.kind = SNN_TOK_GE; goto done; }
        "==" { t.kind = SNN_TOK_EQ; goto done; }
        "!=" { t.kind = SNN_TOK_NE; goto done; }
        "&&" { t.kind = SNN_TOK_ANDAND; goto done; }
        "||" { t.kind = SNN_TOK_OROR; goto done; }
        "!"  { t.kind = SNN_TOK_BANG; goto done; }
        "?"  { t.kind = SNN_TOK_QUESTION; goto done; }
        "."  { t.kind = SNN_TOK_DOT; goto done; }

        * {
            if (*start >= 32 && *start < 127)
                snn_error(lx->diag, t.loc, "unexpected character '%c'", *start);
            else
                snn_error(lx->diag, t.loc, "unexpected byte 0x%02x", *start);
            lexical_error(lx);
            continue;
        }
*/
    }
done:
    t.len = (int32_t)(YYCURSOR - start);
    lx->cur = YYCURSOR;
    return t;
}
