/* test_lexer.c: the .snn lexer (compiler/lex.re).
 *
 * Token kinds, spellings and locations; every keyword and operator of tokens.def (read from
 * the table itself, so a token added there is tested here without an edit); numbers in every
 * form the language accepts; comments; strings and escapes; and the error paths: each bad
 * input is reported once, at the right place, and scanning goes on to EOF. Diagnostics are
 * printed into a memory stream so their exact text can be compared.
 */
#include "lex.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "unit_util.h"

#define MAX_TOKS 256

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_token toks[MAX_TOKS];
    int n;
    int lex_errors;
} lexed;

/* Lexes text (file "t.snn") to EOF; toks[n-1] is the EOF token. */
static void lex_all(lexed *L, const char *text, size_t len) {
    L->a = snn_arena_new();
    L->d = snn_diag_new(L->a);
    const char *file = snn_intern_cstr(L->a, "t.snn");
    snn_diag_add_source(L->d, file, text, len);
    snn_lexer lx;
    snn_lexer_init(&lx, L->a, L->d, file, text, len);
    L->n = 0;
    for (;;) {
        snn_token t = snn_lex_next(&lx);
        if (L->n < MAX_TOKS) L->toks[L->n++] = t;
        if (t.kind == SNN_TOK_EOF) break;
    }
    L->lex_errors = lx.errors;
}

static void lex_str(lexed *L, const char *text) { lex_all(L, text, strlen(text)); }

/* The printed diagnostics (caller frees). */
static char *diag_text(const lexed *L) { return unit_diag_text(L->d); }

static void done(lexed *L) { snn_arena_free(L->a); }

static void expect_tok(const snn_token *t, snn_tok kind, int line, int col, const char *text) {
    CU_ASSERT_EQUAL(t->kind, kind);
    CU_ASSERT_EQUAL(t->loc.line, line);
    CU_ASSERT_EQUAL(t->loc.col, col);
    if (text) {
        CU_ASSERT_EQUAL(t->len, (int32_t)strlen(text));
        CU_ASSERT(strncmp(t->text, text, strlen(text)) == 0);
    }
    if (t->kind != kind || t->loc.line != line || t->loc.col != col)
        fprintf(stderr, "\n  token %s at %d:%d, expected %s at %d:%d\n", snn_tok_name(t->kind), (int)t->loc.line,
                (int)t->loc.col, snn_tok_name(kind), line, col);
}

static void test_locations(void) {
    lexed L;
    lex_str(&L, "model fcn {\n  h = leaky(x, beta = 0.95)\n\toutput h\n}");
    CU_ASSERT_EQUAL(L.n, 17);
    expect_tok(&L.toks[0], SNN_TOK_MODEL, 1, 1, "model");
    expect_tok(&L.toks[1], SNN_TOK_IDENT, 1, 7, "fcn");
    expect_tok(&L.toks[2], SNN_TOK_LBRACE, 1, 11, "{");
    expect_tok(&L.toks[3], SNN_TOK_IDENT, 2, 3, "h");
    expect_tok(&L.toks[4], SNN_TOK_ASSIGN, 2, 5, "=");
    expect_tok(&L.toks[5], SNN_TOK_IDENT, 2, 7, "leaky");
    expect_tok(&L.toks[6], SNN_TOK_LPAREN, 2, 12, "(");
    expect_tok(&L.toks[7], SNN_TOK_IDENT, 2, 13, "x");
    expect_tok(&L.toks[8], SNN_TOK_COMMA, 2, 14, ",");
    expect_tok(&L.toks[9], SNN_TOK_IDENT, 2, 16, "beta");
    expect_tok(&L.toks[10], SNN_TOK_ASSIGN, 2, 21, "=");
    expect_tok(&L.toks[11], SNN_TOK_FLOAT, 2, 23, "0.95");
    expect_tok(&L.toks[12], SNN_TOK_RPAREN, 2, 27, ")");
    expect_tok(&L.toks[13], SNN_TOK_OUTPUT, 3, 2, "output");   /* a tab is one byte: column 2 */
    expect_tok(&L.toks[14], SNN_TOK_IDENT, 3, 9, "h");
    expect_tok(&L.toks[15], SNN_TOK_RBRACE, 4, 1, "}");
    CU_ASSERT_EQUAL(L.lex_errors, 0);
    CU_ASSERT_EQUAL(snn_diag_error_count(L.d), 0);
    done(&L);
}

static void test_eof_location_and_repeat(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    const char *text = "x\n  ";
    snn_lexer lx;
    snn_lexer_init(&lx, a, d, snn_intern_cstr(a, "t.snn"), text, strlen(text));
    snn_token t = snn_lex_next(&lx);
    CU_ASSERT_EQUAL(t.kind, SNN_TOK_IDENT);
    for (int i = 0; i < 3; i++) {   /* EOF, and EOF again on every later call */
        t = snn_lex_next(&lx);
        CU_ASSERT_EQUAL(t.kind, SNN_TOK_EOF);
        CU_ASSERT_EQUAL(t.loc.line, 2);
        CU_ASSERT_EQUAL(t.loc.col, 3);
        CU_ASSERT_EQUAL(t.len, 0);
    }
    snn_arena_free(a);
}

/* Every KEYWORD and PUNCT entry of tokens.def lexes, alone, to its own kind. */
static void test_every_table_token(void) {
    static const struct { snn_tok kind; const char *spelling; const char *cls; } table[] = {
#define TOK(name, spelling, cls) {SNN_TOK_##name, spelling, #cls},
#include "tokens.def"
#undef TOK
    };
    int checked = 0;
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        if (strcmp(table[i].cls, "KEYWORD") != 0 && strcmp(table[i].cls, "PUNCT") != 0) continue;
        char text[64];
        snprintf(text, sizeof text, " %s ", table[i].spelling);
        lexed L;
        lex_str(&L, text);
        CU_ASSERT_EQUAL(L.n, 2);
        expect_tok(&L.toks[0], table[i].kind, 1, 2, table[i].spelling);
        CU_ASSERT_STRING_EQUAL(snn_tok_spelling(table[i].kind), table[i].spelling);
        if (table[i].cls[0] == 'K') CU_ASSERT_PTR_EQUAL(L.toks[0].id, snn_intern_cstr(L.a, table[i].spelling));
        done(&L);
        checked++;
    }
    CU_ASSERT(checked >= 45);
    CU_ASSERT_STRING_EQUAL(snn_tok_name(SNN_TOK_LBRACE), "LBRACE");
    CU_ASSERT_STRING_EQUAL(snn_tok_spelling(SNN_TOK_IDENT), "identifier");
    CU_ASSERT_STRING_EQUAL(snn_tok_spelling((snn_tok)9999), "?");
}

/* Two-character operators win over their one-character prefixes; no spaces needed. */
static void test_operators_maximal_munch(void) {
    lexed L;
    lex_str(&L, "a<=b>=c==d!=e&&f||!g<h>i=j^k?l:m.n");
    static const snn_tok want[] = {
        SNN_TOK_IDENT, SNN_TOK_LE, SNN_TOK_IDENT, SNN_TOK_GE, SNN_TOK_IDENT, SNN_TOK_EQ, SNN_TOK_IDENT,
        SNN_TOK_NE, SNN_TOK_IDENT, SNN_TOK_ANDAND, SNN_TOK_IDENT, SNN_TOK_OROR, SNN_TOK_BANG, SNN_TOK_IDENT,
        SNN_TOK_LT, SNN_TOK_IDENT, SNN_TOK_GT, SNN_TOK_IDENT, SNN_TOK_ASSIGN, SNN_TOK_IDENT, SNN_TOK_CARET,
        SNN_TOK_IDENT, SNN_TOK_QUESTION, SNN_TOK_IDENT, SNN_TOK_COLON, SNN_TOK_IDENT, SNN_TOK_DOT,
        SNN_TOK_IDENT, SNN_TOK_EOF};
    CU_ASSERT_EQUAL(L.n, (int)(sizeof want / sizeof want[0]));
    for (int i = 0; i < L.n && i < (int)(sizeof want / sizeof want[0]); i++) CU_ASSERT_EQUAL(L.toks[i].kind, want[i]);
    done(&L);
}

static void test_identifiers_and_keywords(void) {
    lexed L;
    lex_str(&L, "model models _x x_1 learn learned If if leaky leaky");
    CU_ASSERT_EQUAL(L.toks[0].kind, SNN_TOK_MODEL);
    CU_ASSERT_EQUAL(L.toks[1].kind, SNN_TOK_IDENT);     /* a keyword prefix is not the keyword */
    CU_ASSERT_EQUAL(L.toks[2].kind, SNN_TOK_IDENT);
    CU_ASSERT_EQUAL(L.toks[3].kind, SNN_TOK_IDENT);
    CU_ASSERT_EQUAL(L.toks[4].kind, SNN_TOK_LEARN);
    CU_ASSERT_EQUAL(L.toks[5].kind, SNN_TOK_IDENT);
    CU_ASSERT_EQUAL(L.toks[6].kind, SNN_TOK_IDENT);     /* keywords are case-sensitive */
    CU_ASSERT_EQUAL(L.toks[7].kind, SNN_TOK_IF);
    CU_ASSERT_STRING_EQUAL(L.toks[3].id, "x_1");
    /* interned: the same spelling is the same pointer */
    CU_ASSERT_PTR_EQUAL(L.toks[8].id, L.toks[9].id);
    CU_ASSERT_PTR_EQUAL(L.toks[8].id, snn_intern_cstr(L.a, "leaky"));
    CU_ASSERT_PTR_NOT_EQUAL(L.toks[8].id, L.toks[1].id);
    done(&L);
}

static void test_numbers(void) {
    lexed L;
    lex_str(&L, "0 42 9223372036854775807 1.5 1. .5 1e3 2.5E-3 7e+0 5e-4 0.95 1.0e10 3");
    static const struct { snn_tok kind; double v; } want[] = {
        {SNN_TOK_INT, 0}, {SNN_TOK_INT, 42}, {SNN_TOK_INT, 9223372036854775807.0}, {SNN_TOK_FLOAT, 1.5},
        {SNN_TOK_FLOAT, 1.0}, {SNN_TOK_FLOAT, 0.5}, {SNN_TOK_FLOAT, 1000}, {SNN_TOK_FLOAT, 2.5e-3},
        {SNN_TOK_FLOAT, 7}, {SNN_TOK_FLOAT, 5e-4}, {SNN_TOK_FLOAT, 0.95}, {SNN_TOK_FLOAT, 1e10},
        {SNN_TOK_INT, 3}};
    int nw = (int)(sizeof want / sizeof want[0]);
    CU_ASSERT_EQUAL(L.n, nw + 1);
    for (int i = 0; i < nw && i < L.n; i++) {
        CU_ASSERT_EQUAL(L.toks[i].kind, want[i].kind);
        CU_ASSERT_DOUBLE_EQUAL(L.toks[i].num, want[i].v, 1e-12 * (1 + want[i].v));
    }
    CU_ASSERT_EQUAL(L.toks[1].ival, 42);
    CU_ASSERT_EQUAL(L.toks[2].ival, INT64_MAX);
    CU_ASSERT_EQUAL(L.toks[6].len, 3);     /* "1e3" */
    CU_ASSERT_EQUAL(L.toks[7].len, 6);     /* "2.5E-3" */
    CU_ASSERT_EQUAL(L.lex_errors, 0);
    done(&L);
    /* a minus sign is an operator, not part of the number; a name after a number's dot makes
     * the whole run one malformed number (members are taken of names, never of numbers) */
    lex_str(&L, "-3 1.5.x h.mem");
    CU_ASSERT_EQUAL(L.toks[0].kind, SNN_TOK_MINUS);
    CU_ASSERT_EQUAL(L.toks[1].kind, SNN_TOK_INT);
    CU_ASSERT_EQUAL(L.toks[2].kind, SNN_TOK_INT);
    CU_ASSERT_EQUAL(L.toks[2].len, 5);
    CU_ASSERT_EQUAL(L.toks[3].kind, SNN_TOK_IDENT);
    CU_ASSERT_EQUAL(L.toks[4].kind, SNN_TOK_DOT);
    CU_ASSERT_EQUAL(L.toks[5].kind, SNN_TOK_IDENT);
    CU_ASSERT_EQUAL(L.lex_errors, 1);
    done(&L);
}

static void test_number_errors(void) {
    lexed L;
    lex_str(&L, "x[28x28] 1e 99999999999999999999 1e999 1e-999");
    /* 28x28 and 1e are malformed, each one token standing as INT 0 */
    CU_ASSERT_EQUAL(L.toks[2].kind, SNN_TOK_INT);
    CU_ASSERT_EQUAL(L.toks[2].len, 5);
    CU_ASSERT_EQUAL(L.toks[2].ival, 0);
    CU_ASSERT_EQUAL(L.toks[3].kind, SNN_TOK_RBRACKET);
    CU_ASSERT_EQUAL(L.toks[4].kind, SNN_TOK_INT);
    CU_ASSERT_EQUAL(L.toks[5].kind, SNN_TOK_INT);      /* too large: still a token */
    CU_ASSERT_EQUAL(L.toks[6].kind, SNN_TOK_FLOAT);    /* out of range */
    CU_ASSERT_EQUAL(L.toks[7].kind, SNN_TOK_FLOAT);    /* underflow to 0 is fine */
    CU_ASSERT_EQUAL(L.toks[8].kind, SNN_TOK_EOF);
    CU_ASSERT_EQUAL(L.lex_errors, 4);
    CU_ASSERT_EQUAL(snn_diag_error_count(L.d), 4);
    char *msgs = diag_text(&L);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:3: error: malformed number '28x28'\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:10: error: malformed number '1e'\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:13: error: integer literal '99999999999999999999' is too large\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:34: error: number '1e999' is out of range\n"));
    free(msgs);
    done(&L);
}

static void test_comments(void) {
    lexed L;
    lex_str(&L, "# a whole line\nx # after code ( \" }\n# last line without newline");
    CU_ASSERT_EQUAL(L.n, 2);
    expect_tok(&L.toks[0], SNN_TOK_IDENT, 2, 1, "x");
    expect_tok(&L.toks[1], SNN_TOK_EOF, 3, 28, NULL);
    CU_ASSERT_EQUAL(L.lex_errors, 0);
    done(&L);
    lex_str(&L, "a#b\r\nc");   /* CRLF line ends */
    CU_ASSERT_EQUAL(L.n, 3);
    expect_tok(&L.toks[1], SNN_TOK_IDENT, 2, 1, "c");
    done(&L);
}

static void test_strings(void) {
    lexed L;
    lex_str(&L, "idx(\"/data/x\") \"a\\\"b\\\\c\\nd\\te\" \"\"");
    CU_ASSERT_EQUAL(L.toks[2].kind, SNN_TOK_STRING);
    CU_ASSERT_STRING_EQUAL(L.toks[2].str, "/data/x");
    CU_ASSERT_EQUAL(L.toks[2].len, 9);
    CU_ASSERT_EQUAL(L.toks[4].kind, SNN_TOK_STRING);
    CU_ASSERT_STRING_EQUAL(L.toks[4].str, "a\"b\\c\nd\te");
    CU_ASSERT_EQUAL(L.toks[5].kind, SNN_TOK_STRING);
    CU_ASSERT_STRING_EQUAL(L.toks[5].str, "");
    CU_ASSERT_EQUAL(L.lex_errors, 0);
    done(&L);
}

static void test_string_errors(void) {
    lexed L;
    lex_str(&L, "\"abc\ny \"a\\qb\"");
    CU_ASSERT_EQUAL(L.toks[0].kind, SNN_TOK_STRING);    /* unterminated: still a STRING */
    CU_ASSERT_STRING_EQUAL(L.toks[0].str, "");
    expect_tok(&L.toks[1], SNN_TOK_IDENT, 2, 1, "y");   /* the scan resumes on the next line */
    CU_ASSERT_EQUAL(L.toks[2].kind, SNN_TOK_STRING);
    CU_ASSERT_STRING_EQUAL(L.toks[2].str, "ab");          /* the bad escape is dropped */
    CU_ASSERT_EQUAL(L.lex_errors, 2);
    char *msgs = diag_text(&L);
    CU_ASSERT_STRING_EQUAL(msgs, "t.snn:1:1: error: unterminated string\n"
                                 " \"abc\n"
                                 " ^\n"
                                 "t.snn:2:5: error: unknown escape sequence '\\q' in string\n"
                                 " y \"a\\qb\"\n"
                                 "     ^\n");
    free(msgs);
    done(&L);
}

static void test_bad_characters(void) {
    lexed L;
    const char text[] = "a $ b\x01 c\0d";
    lex_all(&L, text, sizeof text - 1);
    static const char *names[] = {"a", "b", "c", "d"};
    CU_ASSERT_EQUAL(L.n, 5);
    for (int i = 0; i < 4 && i < L.n; i++) {
        CU_ASSERT_EQUAL(L.toks[i].kind, SNN_TOK_IDENT);
        CU_ASSERT_STRING_EQUAL(L.toks[i].id, names[i]);
    }
    CU_ASSERT_EQUAL(L.lex_errors, 3);
    char *msgs = diag_text(&L);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:3: error: unexpected character '$'\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:6: error: unexpected byte 0x01\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "t.snn:1:9: error: unexpected NUL byte\n"));
    free(msgs);
    done(&L);
    /* non-ASCII bytes one by one (UTF-8 is not part of the language) */
    lex_str(&L, "\xc3\xa9");
    CU_ASSERT_EQUAL(L.n, 1);
    CU_ASSERT_EQUAL(L.lex_errors, 2);
    done(&L);
}

static void test_empty_input(void) {
    lexed L;
    lex_all(&L, "", 0);
    CU_ASSERT_EQUAL(L.n, 1);
    expect_tok(&L.toks[0], SNN_TOK_EOF, 1, 1, NULL);
    done(&L);
}

void test_lexer_register(void) {
    CU_pSuite s = CU_add_suite("lexer", NULL, NULL);
    CU_add_test(s, "tokens carry line and column", test_locations);
    CU_add_test(s, "EOF location, and EOF forever", test_eof_location_and_repeat);
    CU_add_test(s, "every keyword and operator of tokens.def", test_every_table_token);
    CU_add_test(s, "two-character operators", test_operators_maximal_munch);
    CU_add_test(s, "identifiers, keywords, interning", test_identifiers_and_keywords);
    CU_add_test(s, "numbers: ints, floats, exponents", test_numbers);
    CU_add_test(s, "malformed and out-of-range numbers", test_number_errors);
    CU_add_test(s, "comments and CRLF", test_comments);
    CU_add_test(s, "strings and escapes", test_strings);
    CU_add_test(s, "unterminated strings, bad escapes", test_string_errors);
    CU_add_test(s, "bad characters are skipped", test_bad_characters);
    CU_add_test(s, "empty input", test_empty_input);
}
