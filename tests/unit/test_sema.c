/* test_sema.c: semantic analysis (compiler/sema.c) through the loader (load.c).
 *
 * Programs are compiled in process from strings, with the embedded standard library, and the
 * annotations sema.h promises are checked directly on the tree: widths of inputs, layers and
 * tensor expressions; resolved references (params, states, locals, the step input, layers,
 * symbols, pi); bound parameters with defaults filled in; the identifier-to-call rewrite;
 * fire()'s implicit surrogate argument; the program's model and train block; shadowing of
 * the standard library; constant folding and snn_const_eval with an environment. Error cases
 * check counts (every error reported, not only the first) and that sema returns false.
 */
#include "sema.h"

#include <CUnit/CUnit.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_program *prog;
    bool ok;
} compiled;

static bool compile_opt(compiled *C, const char *text, const snn_load_options *opt) {
    C->a = snn_arena_new();
    C->d = snn_diag_new(C->a);
    C->prog = snn_load_program(C->a, C->d, "s.snn", text, strlen(text), opt);
    C->ok = C->prog && snn_sema(C->a, C->d, C->prog);
    return C->ok;
}

static bool compile(compiled *C, const char *text) { return compile_opt(C, text, NULL); }

static char *diag_text(const compiled *C) {
    char *buf = NULL;
    size_t size = 0;
    FILE *f = open_memstream(&buf, &size);
    snn_diag_print(C->d, f);
    fclose(f);
    return buf;
}

static void done(compiled *C) { snn_arena_free(C->a); }

static snn_ast *lookup(const compiled *C, const char *name) {
    return snn_program_lookup(C->prog, snn_intern_cstr(C->a, name));
}

/* The model item named name (LAYER or INPUT) of the program's model. */
static snn_ast *model_item(const compiled *C, const char *name) {
    const snn_ast *m = C->prog->model;
    for (int i = 0; m && i < m->model.items.n; i++)
        if (m->model.items.items[i]->name && strcmp(m->model.items.items[i]->name, name) == 0)
            return m->model.items.items[i];
    return NULL;
}

static const char *tutorial5 =
    "model fcn {\n"
    "    input x[28, 28]\n"
    "    encode x = direct\n"
    "    h = leaky(linear(x, 1000), beta = 0.95)\n"
    "    o = leaky(linear(h, 10), beta = 0.95)\n"
    "    output o\n"
    "}\n"
    "train fcn {\n"
    "    data idx(\"/usr/share/datasets/fashion-mnist\")\n"
    "    steps 25; batch 128; epochs 1\n"
    "    loss ce_membrane(o)\n"
    "    optimizer adam(lr = 5e-4, betas = (0.9, 0.999))\n"
    "    metric rate_accuracy(o)\n"
    "    seed 0\n"
    "}\n";

static void test_widths_and_program(void) {
    compiled C;
    CU_ASSERT_FATAL(compile(&C, tutorial5));
    CU_ASSERT_EQUAL(snn_diag_error_count(C.d), 0);
    CU_ASSERT_PTR_NOT_NULL_FATAL(C.prog->model);
    CU_ASSERT_STRING_EQUAL(C.prog->model->name, "fcn");
    CU_ASSERT_PTR_NOT_NULL_FATAL(C.prog->train);
    CU_ASSERT_PTR_EQUAL(C.prog->train->train.model, C.prog->model);
    CU_ASSERT_PTR_EQUAL(lookup(&C, "fcn"), C.prog->model);
    snn_ast *x = model_item(&C, "x"), *h = model_item(&C, "h"), *o = model_item(&C, "o");
    CU_ASSERT_FATAL(x && h && o);
    CU_ASSERT_EQUAL(x->width, 784);
    CU_ASSERT_EQUAL(h->width, 1000);
    CU_ASSERT_EQUAL(o->width, 10);
    /* the encode item and the layer's pieces */
    snn_ast *enc = C.prog->model->model.items.items[1];
    CU_ASSERT_EQUAL_FATAL(enc->kind, SNN_AST_ENCODE);
    CU_ASSERT_PTR_EQUAL(enc->encode.input, x);
    CU_ASSERT_EQUAL(enc->width, 784);
    /* `direct` was an identifier; sema made it a call of the builtin */
    CU_ASSERT_EQUAL(enc->encode.value->kind, SNN_AST_CALL);
    CU_ASSERT_PTR_EQUAL(enc->encode.value->call.def, lookup(&C, "direct"));
    CU_ASSERT_EQUAL(enc->encode.value->type, SNN_TY_ENCODER);
    snn_ast *call = h->layer.value;
    CU_ASSERT_PTR_EQUAL(h->layer.neuron, call);
    CU_ASSERT_PTR_EQUAL(call->call.def, lookup(&C, "leaky"));
    CU_ASSERT_EQUAL(call->type, SNN_TY_TENSOR);
    snn_ast *lin = call->call.input;
    CU_ASSERT_EQUAL_FATAL(lin->kind, SNN_AST_CALL);
    CU_ASSERT_EQUAL(lin->width, 1000);
    CU_ASSERT_EQUAL(lin->call.args.items[0]->width, 784);
    CU_ASSERT_EQUAL(lin->call.args.items[0]->ident.ref.kind, SNN_REF_INPUT);
    CU_ASSERT_PTR_EQUAL(lin->call.args.items[0]->ident.ref.decl, x);
    /* outputs resolve to layers */
    snn_ast *out = C.prog->model->model.items.items[4];
    CU_ASSERT_EQUAL(out->output.names.items[0]->ident.ref.kind, SNN_REF_LAYER);
    CU_ASSERT_PTR_EQUAL(out->output.names.items[0]->ident.ref.decl, o);
    done(&C);
}

static void test_bound_parameters(void) {
    compiled C;
    CU_ASSERT_FATAL(compile(&C, tutorial5));
    snn_ast *call = model_item(&C, "h")->layer.value;
    snn_ast *beta = snn_call_bound(call, "beta"), *th = snn_call_bound(call, "threshold");
    snn_ast *sg = snn_call_bound(call, "surrogate"), *reset = snn_call_bound(call, "reset");
    CU_ASSERT_FATAL(beta && th && sg && reset);
    CU_ASSERT(beta->is_const);
    CU_ASSERT_DOUBLE_EQUAL(beta->cval, 0.95, 1e-15);       /* given */
    CU_ASSERT(th->is_const);
    CU_ASSERT_DOUBLE_EQUAL(th->cval, 1.0, 0);              /* the default */
    CU_ASSERT_EQUAL_FATAL(sg->kind, SNN_AST_CALL);          /* atan(): a bound call itself */
    CU_ASSERT_PTR_EQUAL(sg->call.def, lookup(&C, "atan"));
    CU_ASSERT_DOUBLE_EQUAL(snn_call_bound(sg, "alpha")->cval, 2.0, 0);
    CU_ASSERT_EQUAL(reset->ident.ref.kind, SNN_REF_SYMBOL);
    CU_ASSERT_EQUAL(reset->ident.ref.index, SNN_SYM_SUBTRACT);
    CU_ASSERT_PTR_NULL(snn_call_bound(call, "no_such"));
    CU_ASSERT_EQUAL(snn_def_param_index(lookup(&C, "leaky"), "reset"), 3);
    CU_ASSERT_EQUAL(snn_def_param_index(lookup(&C, "leaky"), "gamma"), -1);
    /* train settings */
    snn_ast *steps = snn_train_setting(C.prog->train, "steps");
    CU_ASSERT_FATAL(steps != NULL);
    CU_ASSERT(steps->setting.value->is_const);
    CU_ASSERT_EQUAL(steps->setting.value->cval, 25);
    CU_ASSERT_PTR_NULL(snn_train_setting(C.prog->train, "momentum"));
    snn_ast *opt = snn_train_setting(C.prog->train, "optimizer")->setting.value;
    CU_ASSERT_DOUBLE_EQUAL(snn_call_bound(opt, "lr")->cval, 5e-4, 1e-18);
    CU_ASSERT_DOUBLE_EQUAL(snn_call_bound(opt, "eps")->cval, 1e-8, 1e-20);   /* default */
    CU_ASSERT_EQUAL(snn_call_bound(opt, "betas")->kind, SNN_AST_TUPLE);
    CU_ASSERT_EQUAL(snn_call_bound(opt, "betas")->type, SNN_TY_PAIR);
    snn_ast *loss = snn_train_setting(C.prog->train, "loss")->setting.value;
    CU_ASSERT_EQUAL(loss->type, SNN_TY_LOSS);
    CU_ASSERT_EQUAL(snn_call_bound(loss, "out")->ident.ref.kind, SNN_REF_LAYER);
    done(&C);
}

/* The standard library's leaky, resolved: every name in its step points where it should. */
static void test_resolved_references(void) {
    compiled C;
    CU_ASSERT_FATAL(compile(&C, ""));
    snn_ast *leaky = lookup(&C, "leaky");
    CU_ASSERT_FATAL(leaky && leaky->kind == SNN_AST_NEURON);
    CU_ASSERT(leaky->def.unit->unit.is_stdlib);
    snn_ast **p = leaky->def.params.items;
    CU_ASSERT_EQUAL(p[0]->type, SNN_TY_NUM);
    CU_ASSERT_EQUAL(p[2]->type, SNN_TY_SURROGATE);
    CU_ASSERT_EQUAL(p[3]->type, SNN_TY_RESET);
    /* let r = detach(heaviside(mem - threshold)) */
    snn_ast *let_r = leaky->def.step.items[0];
    CU_ASSERT_EQUAL_FATAL(let_r->kind, SNN_AST_LET);
    snn_ast *det = let_r->stmt.value;
    CU_ASSERT_EQUAL(det->call.intrinsic, SNN_INTR_DETACH);
    snn_ast *hv = det->call.args.items[0];
    CU_ASSERT_EQUAL(hv->call.intrinsic, SNN_INTR_HEAVISIDE);
    snn_ast *sub = hv->call.args.items[0];
    CU_ASSERT_EQUAL(sub->bin.lhs->ident.ref.kind, SNN_REF_STATE);
    CU_ASSERT_PTR_EQUAL(sub->bin.lhs->ident.ref.decl, leaky->def.states.items[0]);
    CU_ASSERT_EQUAL(sub->bin.rhs->ident.ref.kind, SNN_REF_PARAM);
    CU_ASSERT_EQUAL(sub->bin.rhs->ident.ref.index, 1);
    /* if reset == subtract { mem = b * mem + input - r * threshold } */
    snn_ast *ifs = leaky->def.step.items[2];
    CU_ASSERT_EQUAL_FATAL(ifs->kind, SNN_AST_IF);
    CU_ASSERT_EQUAL(ifs->ifs.cond->type, SNN_TY_BOOL);
    CU_ASSERT_EQUAL(ifs->ifs.cond->bin.rhs->ident.ref.kind, SNN_REF_SYMBOL);
    snn_ast *assign = ifs->ifs.then_.items[0];
    CU_ASSERT_EQUAL_FATAL(assign->kind, SNN_AST_ASSIGN);
    CU_ASSERT_PTR_EQUAL(assign->stmt.target, leaky->def.states.items[0]);
    /* b * mem + input - r * threshold: ((b * mem) + input) - (r * threshold) */
    snn_ast *e = assign->stmt.value;
    CU_ASSERT_EQUAL(e->bin.lhs->bin.lhs->bin.lhs->ident.ref.kind, SNN_REF_LOCAL);
    CU_ASSERT_EQUAL(e->bin.lhs->bin.rhs->ident.ref.kind, SNN_REF_VAR);
    /* let spk = fire(mem - threshold): the surrogate parameter was appended */
    snn_ast *fire = leaky->def.step.items[3]->stmt.value;
    CU_ASSERT_EQUAL(fire->call.intrinsic, SNN_INTR_FIRE);
    CU_ASSERT_EQUAL_FATAL(fire->call.args.n, 2);
    CU_ASSERT_EQUAL(fire->call.args.items[1]->ident.ref.kind, SNN_REF_PARAM);
    CU_ASSERT_PTR_EQUAL(fire->call.args.items[1]->ident.ref.decl, p[2]);
    /* outs: spk is the top-level local, mem the state */
    CU_ASSERT_EQUAL(leaky->def.outs.items[0]->ident.ref.kind, SNN_REF_LOCAL);
    CU_ASSERT_EQUAL(leaky->def.outs.items[1]->ident.ref.kind, SNN_REF_STATE);
    /* atan's grad: alpha / 2 / (1 + (pi / 2 * alpha * x) ^ 2) */
    snn_ast *atan = lookup(&C, "atan");
    snn_ast *pw = atan->def.body->bin.rhs->bin.rhs;
    CU_ASSERT_EQUAL_FATAL(pw->bin.op, SNN_BIN_POW);
    snn_ast *pi = pw->bin.lhs->bin.lhs->bin.lhs->bin.lhs;
    CU_ASSERT_EQUAL(pi->ident.ref.kind, SNN_REF_CONST);
    CU_ASSERT_DOUBLE_EQUAL(pi->cval, 3.14159265358979, 1e-13);
    CU_ASSERT_EQUAL(pw->bin.lhs->bin.rhs->ident.ref.kind, SNN_REF_VAR);
    /* no train block, no model */
    CU_ASSERT_PTR_NULL(C.prog->train);
    CU_ASSERT_PTR_NULL(C.prog->model);
    done(&C);
}

static void test_members_recurrent_and_sums(void) {
    compiled C;
    const char *text = "model r {\n"
                       "    input x[10]\n"
                       "    h = rleaky(linear(x, 20), reset = zero)\n"
                       "    s = synaptic(linear(h.mem, 5) - 0.5 * linear(h, 5), alpha = 0.9, beta = 0.8)\n"
                       "    output s\n"
                       "}\n";
    CU_ASSERT_FATAL(compile(&C, text));
    CU_ASSERT_PTR_NOT_NULL_FATAL(C.prog->model);       /* the only model, without a train block */
    snn_ast *s = model_item(&C, "s");
    CU_ASSERT_EQUAL(s->width, 5);
    snn_ast *diff = s->layer.value->call.input;
    CU_ASSERT_EQUAL(diff->kind, SNN_AST_BINARY);
    CU_ASSERT_EQUAL(diff->width, 5);
    CU_ASSERT_EQUAL(diff->type, SNN_TY_TENSOR);
    snn_ast *member = diff->bin.lhs->call.args.items[0];
    CU_ASSERT_EQUAL_FATAL(member->kind, SNN_AST_MEMBER);
    CU_ASSERT_PTR_EQUAL(member->member.layer, model_item(&C, "h"));
    CU_ASSERT_EQUAL(member->member.out_index, 1);          /* rleaky: out spk, mem */
    CU_ASSERT_EQUAL(member->width, 20);
    CU_ASSERT_EQUAL(diff->bin.rhs->width, 5);
    done(&C);
}

static void test_shadowing_and_options(void) {
    compiled C;
    /* a user neuron named like a stdlib one replaces it everywhere */
    const char *text = "neuron leaky(k = 2.0, surrogate = atan()) {\n"
                       "    state v = 0\n"
                       "    step(i) { v = v + k * i; let spk = fire(v - 1) }\n"
                       "    out spk, v\n"
                       "}\n"
                       "model m { input x[3]; o = leaky(linear(x, 2), k = 3); output o }\n";
    CU_ASSERT_FATAL(compile(&C, text));
    snn_ast *user = lookup(&C, "leaky");
    CU_ASSERT_FALSE(user->def.unit->unit.is_stdlib);
    CU_ASSERT_PTR_EQUAL(model_item(&C, "o")->layer.value->call.def, user);
    done(&C);
    /* without the standard library, leaky and linear are unknown */
    snn_load_options no_std = {.no_stdlib = true};
    CU_ASSERT_FALSE(compile_opt(&C, "model m { input x[3]; o = leaky(linear(x, 2)); output o }", &no_std));
    CU_ASSERT(snn_diag_error_count(C.d) >= 1);
    char *msgs = diag_text(&C);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "unknown function 'leaky'"));
    free(msgs);
    done(&C);
    /* imports can be turned off (the fuzzer does) */
    snn_load_options no_imp = {.no_imports = true};
    CU_ASSERT_FALSE(compile_opt(&C, "import \"x.snn\"\n", &no_imp));
    CU_ASSERT_PTR_NULL(C.prog);
    msgs = diag_text(&C);
    CU_ASSERT_STRING_EQUAL(msgs, "s.snn:1:8: error: imports are disabled here\n"
                                 " import \"x.snn\"\n"
                                 "        ^\n");
    free(msgs);
    done(&C);
}

static void test_const_eval(void) {
    compiled C;
    CU_ASSERT_FATAL(compile(&C, "def f(v, k = 3) = 2 ^ 3 * k + (pi > 3 ? 1 : 0) + clamp(-v, 0, 1)\n"
                                "def g(v) = max(2, 5) - abs(-1.5) + sqrt(16) / exp(0)\n"));
    snn_ast *f = lookup(&C, "f"), *g = lookup(&C, "g");
    /* g folds completely */
    CU_ASSERT(g->def.body->is_const);
    CU_ASSERT_DOUBLE_EQUAL(g->def.body->cval, 5 - 1.5 + 4, 1e-12);
    double out = 0;
    CU_ASSERT(snn_const_eval(g->def.body, NULL, &out));
    CU_ASSERT_DOUBLE_EQUAL(out, 7.5, 1e-12);
    /* f needs its parameters: not without an environment, yes with one */
    CU_ASSERT_FALSE(f->def.body->is_const);
    CU_ASSERT_FALSE(snn_const_eval(f->def.body, NULL, &out));
    snn_ast v = {.kind = SNN_AST_NUM, .num = {.value = -0.25}};
    snn_ast k = {.kind = SNN_AST_NUM, .num = {.value = 0.5}};
    snn_ast *env[2] = {&v, &k};
    CU_ASSERT(snn_const_eval(f->def.body, env, &out));
    CU_ASSERT_DOUBLE_EQUAL(out, 8 * 0.5 + 1 + 0.25, 1e-12);
    /* the constant part of f's body was folded by sema: 2 ^ 3 */
    snn_ast *pw = f->def.body->bin.lhs->bin.lhs->bin.lhs;
    CU_ASSERT_EQUAL_FATAL(pw->kind, SNN_AST_BINARY);
    CU_ASSERT(pw->is_const);
    CU_ASSERT_DOUBLE_EQUAL(pw->cval, 8, 0);
    done(&C);
}

/* Error counting: every error in a file is reported, sema returns false, nothing is left
 * half-annotated in a way that crashes the printer. */
static void test_error_counts(void) {
    static const struct { const char *text; int errors; } cases[] = {
        {"model m { input x[4]; o = leaky(linear(x, 2), betta = 1, gamma = 2); output o }", 2},
        {"model m { input x[4]; o = synaptic(linear(x, 2)); output o }", 2},
        {"def f(v) = g(v)\ndef g(v) = f(v)\ndef h(v) = h(v)", 2},
        {"def f(v) = v\ndef f(v) = v\ndef f(w) = w", 2},
        {"model m { input x[4]; h = leaky(linear(x, 3)); o = leaky(linear(h, 2) + linear(x, 3)); output o }", 1},
        {"model m { input x[4]; o = leaky(linear(x, 2)); output o }\n"
         "train m { data idx(\"d\"); steps 0; batch 0; epochs 0; loss ce_count(o); optimizer adam() }", 3},
        {"model m { input x[4]; o = leaky(linear(x, 2)); output o }\n"
         "train m { steps 1 }", 1},
        {"neuron n(learn b = 1, surrogate = atan()) { state v = b step(i) { w = i let s = fire(v) } out s }", 2},
        {"model m { }", 2},
        {"model m { input x[4]; zero = leaky(linear(x, 2)); output zero, zero }", 2},
        {"model m { input x[4]; h = leaky(linear(x, 2), surrogate = atan(1, 2)); o = leaky(h.mem + h); "
         "output o }", 1},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        compiled C;
        bool ok = compile(&C, cases[i].text);
        CU_ASSERT_EQUAL(ok, cases[i].errors == 0);
        CU_ASSERT_EQUAL(snn_diag_error_count(C.d), cases[i].errors);
        if (snn_diag_error_count(C.d) != cases[i].errors) {
            char *msgs = diag_text(&C);
            fprintf(stderr, "\n  case %zu: %d errors, expected %d:\n%s", i, snn_diag_error_count(C.d),
                    cases[i].errors, msgs);
            free(msgs);
        }
        if (C.prog) {   /* printing a tree that failed sema must not crash */
            FILE *f = fopen("/dev/null", "w");
            if (f) { snn_ast_print(C.prog->units[0], f); fclose(f); }
        }
        done(&C);
    }
}

/* The call graph: cycles of any length are found once each, diamonds are not exponential, and
 * a definition that inlines into too many calls is refused. */
static void test_call_graph(void) {
    enum { N = 300 };
    char *text = malloc(N * 64 + 256);
    size_t len = 0;
    for (int i = 0; i < N; i++)   /* one cycle through all N defs, entered from a caller */
        len += (size_t)sprintf(text + len, "def f%d(v) = f%d(v) + 1\n", i, (i + 1) % N);
    len += (size_t)sprintf(text + len, "def caller(v) = f7(v) + f8(v)\n");
    compiled C;
    CU_ASSERT_FALSE(compile(&C, text));
    CU_ASSERT_EQUAL(snn_diag_error_count(C.d), 1);
    char *msgs = diag_text(&C);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "s.snn:1:5: error: recursive definition: 'f0' -> 'f1' -> 'f2'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, " -> ...\n"));
    free(msgs);
    done(&C);
    /* 40 levels of diamonds: 2^40 calls inlined; found in linear time, reported once */
    len = 0;
    for (int i = 0; i < 40; i++) len += (size_t)sprintf(text + len, "def d%d(v) = d%d(v) * d%d(v)\n", i, i + 1, i + 1);
    sprintf(text + len, "def d40(v) = v\n");
    CU_ASSERT_FALSE(compile(&C, text));
    CU_ASSERT_EQUAL(snn_diag_error_count(C.d), 1);
    msgs = diag_text(&C);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "def 'd21' is too large once its calls are inlined"));
    free(msgs);
    done(&C);
    /* 15 levels are fine (32767 calls) */
    len = 0;
    for (int i = 0; i < 15; i++) len += (size_t)sprintf(text + len, "def d%d(v) = d%d(v) * d%d(v)\n", i, i + 1, i + 1);
    sprintf(text + len, "def d15(v) = v\n");
    CU_ASSERT(compile(&C, text));
    done(&C);
    /* two separate cycles, two errors; a self-call */
    CU_ASSERT_FALSE(compile(&C, "def a(v) = b(v)\ndef b(v) = a(v)\ndef c(v) = c(v) + a(v)\n"));
    CU_ASSERT_EQUAL(snn_diag_error_count(C.d), 2);
    msgs = diag_text(&C);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "recursive definition: 'a' -> 'b' -> 'a'"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "def 'c' calls itself"));
    free(msgs);
    done(&C);
    free(text);
}

static void test_suggestions_and_notes(void) {
    compiled C;
    CU_ASSERT_FALSE(compile(&C, "model m { input x[4]; o = leaky(linear(x, 2), treshold = 1); output o }\n"
                                "train m { data idx(\"d\"); steps 1; batch 1; epochs 1; loss ce_count(o)\n"
                                "          optimizer adamw2(); metrik rate_accuracy(o) }"));
    char *msgs = diag_text(&C);
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "s.snn:1:47: error: neuron 'leaky' has no parameter 'treshold'; "
                                        "did you mean 'threshold'?\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "<stdlib>/neurons.snn:8:8: note: 'leaky' is defined here\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "s.snn:3:21: error: unknown optimizer 'adamw2' (optimizers: adam, "
                                        "adamw, sgd); did you mean 'adamw'?\n"));
    CU_ASSERT_PTR_NOT_NULL(strstr(msgs, "s.snn:3:31: error: unknown train setting 'metrik'; did you mean "
                                        "'metric'?\n"));
    free(msgs);
    done(&C);
}

static void test_many_programs_one_process(void) {
    /* the same program compiled repeatedly gives the same answer (no hidden global state) */
    for (int i = 0; i < 20; i++) {
        compiled C;
        CU_ASSERT(compile(&C, tutorial5));
        CU_ASSERT_EQUAL(model_item(&C, "h")->width, 1000);
        done(&C);
    }
}

void test_sema_register(void) {
    CU_pSuite s = CU_add_suite("sema", NULL, NULL);
    CU_add_test(s, "widths, model and train", test_widths_and_program);
    CU_add_test(s, "bound parameters and settings", test_bound_parameters);
    CU_add_test(s, "resolved references in the stdlib", test_resolved_references);
    CU_add_test(s, "members, recurrent layers, tensor sums", test_members_recurrent_and_sums);
    CU_add_test(s, "shadowing, no_stdlib, no_imports", test_shadowing_and_options);
    CU_add_test(s, "constant folding and snn_const_eval", test_const_eval);
    CU_add_test(s, "error counts", test_error_counts);
    CU_add_test(s, "call graph: cycles, diamonds, inlined size", test_call_graph);
    CU_add_test(s, "suggestions and notes", test_suggestions_and_notes);
    CU_add_test(s, "many programs in one process", test_many_programs_one_process);
}
