/* test_parser.c: the .snn grammar (compiler/parse.y) and the AST printer (ast.c).
 *
 * Snippets are parsed with snn_parse alone (no loader, no sema) and their trees inspected:
 * operator precedence and associativity, every item and statement kind, parameter flags
 * (learn, learn[n], types, defaults), soft keywords used as names, node locations. Error
 * cases check the exact messages and notes (the unclosed-bracket note, follow-on error
 * suppression, recovery that reports errors in several items) and that hostile nesting is
 * refused with a message instead of a crash.
 */
#include "ast.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include "unit_util.h"

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_ast *unit;
} parsed;

static snn_ast *parse(parsed *P, const char *text) {
    P->a = snn_arena_new();
    P->d = snn_diag_new(P->a);
    const char *file = snn_intern_cstr(P->a, "p.snn");
    snn_diag_add_source(P->d, file, text, strlen(text));
    P->unit = snn_parse(P->a, P->d, file, text, strlen(text));
    return P->unit;
}

static char *diag_text(const parsed *P) { return unit_diag_text(P->d); }

static char *inline_of(const snn_ast *n) {   /* the printed tree of n (caller frees) */
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    snn_ast_print(n, f);
    fclose(f);
    return buf;
}

static void done(parsed *P) { snn_arena_free(P->a); }

static snn_ast *item(const parsed *P, int i) {
    return P->unit && i < P->unit->unit.items.n ? P->unit->unit.items.items[i] : NULL;
}

/* The body of `def f(v) = EXPR`, the first item. */
static snn_ast *def_body(parsed *P, const char *expr_text) {
    char text[512];
    snprintf(text, sizeof text, "def f(a, b, c, v) = %s", expr_text);
    if (!parse(P, text)) return NULL;
    snn_ast *f = item(P, 0);
    return f && f->kind == SNN_AST_FUNC ? f->def.body : NULL;
}

static bool is_bin(const snn_ast *e, snn_binop op) { return e && e->kind == SNN_AST_BINARY && e->bin.op == op; }
static bool is_id(const snn_ast *e, const char *name) {
    return e && e->kind == SNN_AST_IDENT && strcmp(e->name, name) == 0;
}

static void test_precedence(void) {
    parsed P;
    /* a + b * c ^ 2 ^ 3  ==  a + (b * (c ^ (2 ^ 3))) */
    snn_ast *e = def_body(&P, "a + b * c ^ 2 ^ 3");
    CU_ASSERT_FATAL(is_bin(e, SNN_BIN_ADD));
    CU_ASSERT(is_id(e->bin.lhs, "a"));
    CU_ASSERT_FATAL(is_bin(e->bin.rhs, SNN_BIN_MUL));
    const snn_ast *pow1 = e->bin.rhs->bin.rhs;
    CU_ASSERT_FATAL(is_bin(pow1, SNN_BIN_POW));
    CU_ASSERT(is_id(pow1->bin.lhs, "c"));
    CU_ASSERT(is_bin(pow1->bin.rhs, SNN_BIN_POW));      /* right associative */
    done(&P);
    /* a - b - c == (a - b) - c; a / b / c likewise */
    e = def_body(&P, "a - b - c");
    CU_ASSERT_FATAL(is_bin(e, SNN_BIN_SUB));
    CU_ASSERT(is_bin(e->bin.lhs, SNN_BIN_SUB));
    CU_ASSERT(is_id(e->bin.rhs, "c"));
    done(&P);
    /* -a ^ 2 == -(a ^ 2), as in mathematics */
    e = def_body(&P, "-a ^ 2");
    CU_ASSERT_FATAL(e && e->kind == SNN_AST_UNARY && e->un.op == SNN_UN_NEG);
    CU_ASSERT(is_bin(e->un.operand, SNN_BIN_POW));
    done(&P);
    /* -a * b == (-a) * b */
    e = def_body(&P, "-a * b");
    CU_ASSERT_FATAL(is_bin(e, SNN_BIN_MUL));
    CU_ASSERT(e->bin.lhs->kind == SNN_AST_UNARY);
    done(&P);
    /* a < b + 1 && !c || v == 2  ==  ((a < (b + 1)) && !c) || (v == 2) */
    e = def_body(&P, "a < b + 1 && !c || v == 2");
    CU_ASSERT_FATAL(is_bin(e, SNN_BIN_OR));
    CU_ASSERT_FATAL(is_bin(e->bin.lhs, SNN_BIN_AND));
    CU_ASSERT(is_bin(e->bin.lhs->bin.lhs, SNN_BIN_LT));
    CU_ASSERT(is_bin(e->bin.lhs->bin.lhs->bin.rhs, SNN_BIN_ADD));
    CU_ASSERT(e->bin.lhs->bin.rhs->kind == SNN_AST_UNARY && e->bin.lhs->bin.rhs->un.op == SNN_UN_NOT);
    CU_ASSERT(is_bin(e->bin.rhs, SNN_BIN_EQ));
    done(&P);
    /* a ? b : c ? v : 1  ==  a ? b : (c ? v : 1); the condition binds looser than || */
    e = def_body(&P, "a > 0 || b > 0 ? b : c ? v : 1");
    CU_ASSERT_FATAL(e && e->kind == SNN_AST_SELECT);
    CU_ASSERT(is_bin(e->sel.cond, SNN_BIN_OR));
    CU_ASSERT(is_id(e->sel.a, "b"));
    CU_ASSERT(e->sel.b->kind == SNN_AST_SELECT);
    done(&P);
    /* parentheses */
    e = def_body(&P, "(a + b) * c");
    CU_ASSERT_FATAL(is_bin(e, SNN_BIN_MUL));
    CU_ASSERT(is_bin(e->bin.lhs, SNN_BIN_ADD));
    done(&P);
}

static void test_comparisons_do_not_chain(void) {
    parsed P;
    CU_ASSERT_PTR_NULL(def_body(&P, "a < b < c"));
    char *msgs = diag_text(&P);
    CU_ASSERT_STRING_EQUAL(msgs, "p.snn:1:27: error: unexpected '<'\n"
                                 " def f(a, b, c, v) = a < b < c\n"
                                 "                           ^\n");
    free(msgs);
    done(&P);
}

static void test_postfix_calls_tuples(void) {
    parsed P;
    snn_ast *e = def_body(&P, "g(a, k = 2, (0.9, 0.999)) + h.mem + z()");
    CU_ASSERT_FATAL(is_bin(e, SNN_BIN_ADD) && is_bin(e->bin.lhs, SNN_BIN_ADD));
    const snn_ast *call = e->bin.lhs->bin.lhs;
    CU_ASSERT_FATAL(call->kind == SNN_AST_CALL);
    CU_ASSERT_STRING_EQUAL(call->name, "g");
    CU_ASSERT_EQUAL(call->call.args.n, 3);
    CU_ASSERT(is_id(call->call.args.items[0], "a"));
    CU_ASSERT_EQUAL(call->call.args.items[1]->kind, SNN_AST_ARG);
    CU_ASSERT_STRING_EQUAL(call->call.args.items[1]->name, "k");
    CU_ASSERT_EQUAL(call->call.args.items[1]->arg.value->kind, SNN_AST_NUM);
    const snn_ast *tup = call->call.args.items[2];
    CU_ASSERT_EQUAL(tup->kind, SNN_AST_TUPLE);
    CU_ASSERT_EQUAL(tup->tuple.elems.n, 2);
    const snn_ast *mem = e->bin.lhs->bin.rhs;
    CU_ASSERT_EQUAL(mem->kind, SNN_AST_MEMBER);
    CU_ASSERT_STRING_EQUAL(mem->name, "mem");
    CU_ASSERT(is_id(mem->member.object, "h"));
    CU_ASSERT_EQUAL(e->bin.rhs->kind, SNN_AST_CALL);
    CU_ASSERT_EQUAL(e->bin.rhs->call.args.n, 0);
    /* locations: a call at its callee, a binary at its operator, a member at its name */
    CU_ASSERT_EQUAL(call->loc.col, 21);
    CU_ASSERT_EQUAL(e->loc.col, 55);
    CU_ASSERT_EQUAL(mem->loc.col, 51);
    done(&P);
}

static void test_literals(void) {
    parsed P;
    snn_ast *e = def_body(&P, "select(3, 2.5, 1e3, true, false, \"s\\n\")");
    CU_ASSERT_FATAL(e && e->kind == SNN_AST_CALL && e->call.args.n == 6);
    snn_ast **a = e->call.args.items;
    CU_ASSERT(a[0]->kind == SNN_AST_NUM && a[0]->num.is_int && a[0]->num.ival == 3);
    CU_ASSERT(a[1]->kind == SNN_AST_NUM && !a[1]->num.is_int && a[1]->num.value == 2.5);
    CU_ASSERT(a[2]->kind == SNN_AST_NUM && !a[2]->num.is_int && a[2]->num.value == 1000);
    CU_ASSERT(a[3]->kind == SNN_AST_BOOL && a[3]->cval == 1);
    CU_ASSERT(a[4]->kind == SNN_AST_BOOL && a[4]->cval == 0);
    CU_ASSERT(a[5]->kind == SNN_AST_STR && strcmp(a[5]->str, "s\n") == 0);
    done(&P);
}

static const char *neuron_text =
    "neuron n(beta = 0.9, learn[n] tau: num = 2, learn th = 1.0, surrogate = atan(alpha = 2), mode) {\n"
    "    state syn = 0\n"
    "    state mem = 0.5 * th\n"
    "    step(input) {\n"
    "        let r = detach(heaviside(mem - th))\n"
    "        syn = beta * syn + input\n"
    "        if mode == zero { mem = (1 - r) * mem + syn }\n"
    "        else if mode == none { mem = mem + syn } else { mem = mem + syn - r }\n"
    "        let spk = fire(mem - th)\n"
    "    }\n"
    "    out spk, syn, mem\n"
    "}\n";

static void test_neuron(void) {
    parsed P;
    CU_ASSERT_PTR_NOT_NULL_FATAL(parse(&P, neuron_text));
    snn_ast *n = item(&P, 0);
    CU_ASSERT_FATAL(n && n->kind == SNN_AST_NEURON);
    CU_ASSERT_STRING_EQUAL(n->name, "n");
    CU_ASSERT_EQUAL(n->loc.line, 1);
    CU_ASSERT_EQUAL(n->loc.col, 8);
    /* parameters */
    CU_ASSERT_EQUAL_FATAL(n->def.params.n, 5);
    snn_ast **p = n->def.params.items;
    for (int i = 0; i < 5; i++) CU_ASSERT_EQUAL(p[i]->param.index, i);
    CU_ASSERT_EQUAL(p[0]->param.learn, SNN_LEARN_NONE);
    CU_ASSERT_EQUAL(p[1]->param.learn, SNN_LEARN_PER_NEURON);
    CU_ASSERT_STRING_EQUAL(p[1]->str, "n");
    CU_ASSERT_STRING_EQUAL(p[1]->param.type_name, "num");
    CU_ASSERT_EQUAL(p[2]->param.learn, SNN_LEARN_SCALAR);
    CU_ASSERT_PTR_NULL(p[2]->param.type_name);
    CU_ASSERT_EQUAL(p[3]->param.def_value->kind, SNN_AST_CALL);
    CU_ASSERT_STRING_EQUAL(p[3]->name, "surrogate");          /* a soft keyword as a name */
    CU_ASSERT_PTR_NULL(p[4]->param.def_value);                /* required */
    /* states, in order */
    CU_ASSERT_EQUAL_FATAL(n->def.states.n, 2);
    CU_ASSERT_STRING_EQUAL(n->def.states.items[0]->name, "syn");
    CU_ASSERT_EQUAL(n->def.states.items[1]->state.index, 1);
    CU_ASSERT(is_bin(n->def.states.items[1]->state.init, SNN_BIN_MUL));
    /* step */
    CU_ASSERT_STRING_EQUAL(n->def.var, "input");
    CU_ASSERT_EQUAL(n->def.step_loc.line, 4);
    CU_ASSERT_EQUAL(n->def.step_loc.col, 5);
    CU_ASSERT_EQUAL_FATAL(n->def.step.n, 4);
    snn_ast **st = n->def.step.items;
    CU_ASSERT_EQUAL(st[0]->kind, SNN_AST_LET);
    CU_ASSERT_EQUAL(st[1]->kind, SNN_AST_ASSIGN);
    CU_ASSERT_EQUAL(st[2]->kind, SNN_AST_IF);
    CU_ASSERT_EQUAL(st[3]->kind, SNN_AST_LET);
    /* if / else if / else: the else-if is the single statement of the else list */
    CU_ASSERT_EQUAL(st[2]->ifs.then_.n, 1);
    CU_ASSERT_EQUAL_FATAL(st[2]->ifs.else_.n, 1);
    snn_ast *elif = st[2]->ifs.else_.items[0];
    CU_ASSERT_EQUAL_FATAL(elif->kind, SNN_AST_IF);
    CU_ASSERT_EQUAL(elif->loc.line, 8);
    CU_ASSERT_EQUAL(elif->ifs.then_.n, 1);
    CU_ASSERT_EQUAL(elif->ifs.else_.n, 1);
    /* outs */
    CU_ASSERT_EQUAL_FATAL(n->def.outs.n, 3);
    CU_ASSERT_STRING_EQUAL(n->def.outs.items[2]->name, "mem");
    CU_ASSERT_EQUAL(snn_diag_error_count(P.d), 0);
    done(&P);
}

static void test_model_train_imports(void) {
    parsed P;
    const char *text =
        "import \"lib/a.snn\"\n"
        "surrogate s(k = 1) { grad(x) = k }\n"
        "model m {\n"
        "    input x[28, 28]; encode x = rate(gain = 0.5)\n"
        "    h = leaky(linear(x, 100))\n"
        "    output h, x\n"
        "}\n"
        "train m { data idx(\"d\") steps 25; loss ce_rate(h) + 0.1 * l1(h) }\n";
    CU_ASSERT_PTR_NOT_NULL_FATAL(parse(&P, text));
    CU_ASSERT_EQUAL_FATAL(P.unit->unit.items.n, 4);
    CU_ASSERT_STRING_EQUAL(P.unit->unit.file, "p.snn");
    snn_ast *imp = item(&P, 0);
    CU_ASSERT_EQUAL(imp->kind, SNN_AST_IMPORT);
    CU_ASSERT_STRING_EQUAL(imp->str, "lib/a.snn");
    CU_ASSERT_PTR_NULL(imp->import.unit);                       /* the loader's job */
    snn_ast *s = item(&P, 1);
    CU_ASSERT_EQUAL(s->kind, SNN_AST_SURROGATE);
    CU_ASSERT_STRING_EQUAL(s->def.var, "x");
    CU_ASSERT(is_id(s->def.body, "k"));
    snn_ast *m = item(&P, 2);
    CU_ASSERT_EQUAL_FATAL(m->kind, SNN_AST_MODEL);
    CU_ASSERT_EQUAL_FATAL(m->model.items.n, 4);
    snn_ast **it = m->model.items.items;
    CU_ASSERT_EQUAL(it[0]->kind, SNN_AST_INPUT);
    CU_ASSERT_EQUAL(it[0]->input.dims.n, 2);
    CU_ASSERT_EQUAL(it[1]->kind, SNN_AST_ENCODE);
    CU_ASSERT_STRING_EQUAL(it[1]->name, "x");
    CU_ASSERT_EQUAL(it[1]->encode.value->kind, SNN_AST_CALL);
    CU_ASSERT_EQUAL(it[2]->kind, SNN_AST_LAYER);
    CU_ASSERT_STRING_EQUAL(it[2]->name, "h");
    CU_ASSERT_EQUAL(it[3]->kind, SNN_AST_OUTPUT);
    CU_ASSERT_EQUAL(it[3]->output.names.n, 2);
    snn_ast *t = item(&P, 3);
    CU_ASSERT_EQUAL_FATAL(t->kind, SNN_AST_TRAIN);
    CU_ASSERT_STRING_EQUAL(t->name, "m");
    CU_ASSERT_EQUAL_FATAL(t->train.settings.n, 3);
    CU_ASSERT_STRING_EQUAL(t->train.settings.items[0]->name, "data");
    CU_ASSERT_STRING_EQUAL(t->train.settings.items[1]->name, "steps");
    CU_ASSERT(is_bin(t->train.settings.items[2]->setting.value, SNN_BIN_ADD));
    done(&P);
}

static void test_printer(void) {
    parsed P;
    CU_ASSERT_PTR_NOT_NULL_FATAL(parse(&P, "def f(v, learn k = 2) = k * -v ^ 2 + (v > 0 ? 1 : 0)"));
    char *out = inline_of(item(&P, 0));
    CU_ASSERT_STRING_EQUAL(out, "def f <1:5>\n"
                                "  param v <1:7>\n"
                                "  param k learn <1:16>\n"
                                "    default:\n"
                                "      num 2 <1:20>\n"
                                "  body:\n"
                                "    binary + <1:36>\n"
                                "      binary * <1:27>\n"
                                "        ident k <1:25>\n"
                                "        unary - <1:29>\n"
                                "          binary ^ <1:32>\n"
                                "            ident v <1:30>\n"
                                "            num 2 <1:34>\n"
                                "      select <1:45>\n"
                                "        binary > <1:41>\n"
                                "          ident v <1:39>\n"
                                "          num 0 <1:43>\n"
                                "        num 1 <1:47>\n"
                                "        num 0 <1:51>\n");
    free(out);
    done(&P);
}

static void test_missing_brace_note(void) {
    parsed P;
    CU_ASSERT_PTR_NULL(parse(&P, "model m {\n  input x[4]\n\ntrain m { steps 1 }\n"));
    char *msgs = diag_text(&P);
    CU_ASSERT_STRING_EQUAL(msgs, "p.snn:4:1: error: unexpected 'train'\n"
                                 " train m { steps 1 }\n"
                                 " ^\n"
                                 "p.snn:1:9: note: '}' expected to close 'model' at line 1\n");
    free(msgs);
    done(&P);
    CU_ASSERT_PTR_NULL(parse(&P, "def f(v) = g(v, (1 + 2)\n"));
    msgs = diag_text(&P);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:2:1: error: unexpected end of file, expecting ')'\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:1:13: note: ')' expected to close this '('\n"));
    free(msgs);
    done(&P);
    /* the owner of a '{' is the block's keyword, not a soft keyword used as a name before it */
    CU_ASSERT_PTR_NULL(parse(&P, "neuron n(surrogate = atan(), step = 1) {\n  state v = 0\n"));
    msgs = diag_text(&P);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:1:40: note: '}' expected to close 'neuron' at line 1\n"));
    free(msgs);
    done(&P);
    /* an unclosed step: `out` is taken for a name, the note still finds the step */
    CU_ASSERT_PTR_NULL(parse(&P, "neuron n() {\n step(i) { v = i\n out v\n}\n"));
    msgs = diag_text(&P);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:3:6: error: unexpected identifier, expecting '='\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:2:10: note: '}' expected to close 'step' at line 2\n"));
    free(msgs);
    done(&P);
}

static void test_recovery_reports_each_item(void) {
    parsed P;
    const char *text = "def a(v) = v +\n"
                       "def b(v) = * v\n"
                       "model m { input x[4]; h = = x; output h }\n"
                       "def c(v) = v v v\n";   /* second error on one line: not reported */
    CU_ASSERT_PTR_NULL(parse(&P, text));
    CU_ASSERT_EQUAL(snn_diag_error_count(P.d), 3);
    char *msgs = diag_text(&P);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:2:1: error: unexpected 'def'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:3:27: error: unexpected '='"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:4:14: error: unexpected identifier"));
    free(msgs);
    done(&P);
}

static void test_stray_else(void) {
    parsed P;
    /* the orphan block (nested braces included) is dropped, so the step's '}' still closes
     * the step and the next real error is found where it is */
    CU_ASSERT_PTR_NULL(parse(&P, "neuron n() {\n step(i) {\n  v = i\n  else { if a > 0 { v = 1 } }\n"
                                 "  let w = * 2\n }\n out v\n}\n"));
    CU_ASSERT_EQUAL(snn_diag_error_count(P.d), 2);
    char *msgs = diag_text(&P);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:4:3: error: 'else' without an 'if': it must follow the '}' of an "
                                        "'if' block\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "p.snn:5:11: error: unexpected '*'\n"));
    free(msgs);
    done(&P);
}

static void test_lexical_error_fails_parse(void) {
    parsed P;
    /* the tree would be complete, but a lexical error means no tree */
    CU_ASSERT_PTR_NULL(parse(&P, "def f(v) = v $ + 1"));
    CU_ASSERT_EQUAL(snn_diag_error_count(P.d), 1);
    done(&P);
    /* a parse error right after a lexical one is not reported again */
    CU_ASSERT_PTR_NULL(parse(&P, "def f(v) = g(\"abc\ndef h(v) = v"));
    CU_ASSERT_EQUAL(snn_diag_error_count(P.d), 1);
    done(&P);
}

static void test_nesting_limits(void) {
    parsed P;
    enum { N = 20000 };
    char *text = malloc(N * 2 + 64);
    strcpy(text, "def f(v) = ");
    size_t len = strlen(text);
    for (int i = 0; i < N; i++) text[len++] = '(';
    text[len++] = 'v';
    for (int i = 0; i < N; i++) text[len++] = ')';
    text[len] = 0;
    CU_ASSERT_PTR_NULL(parse(&P, text));
    char *msgs = diag_text(&P);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "error: program is nested too deeply"));
    free(msgs);
    done(&P);
    /* just under the parser's stack: fine */
    strcpy(text, "def f(v) = ");
    len = strlen(text);
    for (int i = 0; i < 300; i++) text[len++] = '(';
    text[len++] = 'v';
    for (int i = 0; i < 300; i++) text[len++] = ')';
    text[len] = 0;
    CU_ASSERT_PTR_NOT_NULL(parse(&P, text));
    done(&P);
    free(text);
}

static void test_empty_and_separators(void) {
    parsed P;
    CU_ASSERT_PTR_NOT_NULL_FATAL(parse(&P, ""));
    CU_ASSERT_EQUAL(P.unit->kind, SNN_AST_UNIT);
    CU_ASSERT_EQUAL(P.unit->unit.items.n, 0);
    done(&P);
    CU_ASSERT_PTR_NOT_NULL_FATAL(parse(&P, ";;# only separators\n;"));
    CU_ASSERT_EQUAL(P.unit->unit.items.n, 0);
    done(&P);
}

static void test_builtin_decl(void) {
    parsed P;
    CU_ASSERT_PTR_NOT_NULL_FATAL(parse(&P, "builtin optimizer adam(lr = 1e-3, betas: pair = (0.9, 0.999))\n"
                                           "builtin encoder direct"));
    snn_ast *b = item(&P, 0);
    CU_ASSERT_EQUAL(b->kind, SNN_AST_BUILTIN);
    CU_ASSERT_STRING_EQUAL(b->def.kind_word, "optimizer");
    CU_ASSERT_STRING_EQUAL(b->name, "adam");
    CU_ASSERT_EQUAL(b->def.params.n, 2);
    CU_ASSERT_STRING_EQUAL(b->def.params.items[1]->param.type_name, "pair");
    CU_ASSERT_EQUAL(item(&P, 1)->def.params.n, 0);
    done(&P);
}

void test_parser_register(void) {
    CU_pSuite s = CU_add_suite("parser", NULL, NULL);
    CU_add_test(s, "precedence and associativity", test_precedence);
    CU_add_test(s, "comparisons do not chain", test_comparisons_do_not_chain);
    CU_add_test(s, "calls, named arguments, tuples, members", test_postfix_calls_tuples);
    CU_add_test(s, "literals", test_literals);
    CU_add_test(s, "neuron: params, states, step, if/else if, outs", test_neuron);
    CU_add_test(s, "import, surrogate, model, train", test_model_train_imports);
    CU_add_test(s, "AST printer", test_printer);
    CU_add_test(s, "missing closer: note at the opener", test_missing_brace_note);
    CU_add_test(s, "recovery reports each broken item", test_recovery_reports_each_item);
    CU_add_test(s, "stray else", test_stray_else);
    CU_add_test(s, "lexical errors", test_lexical_error_fails_parse);
    CU_add_test(s, "nesting limits", test_nesting_limits);
    CU_add_test(s, "empty file, separators", test_empty_and_separators);
    CU_add_test(s, "builtin declarations", test_builtin_decl);
}
