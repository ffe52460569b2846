/* test_ir.c: the IR's text form (print, parse, round trip, IR-level golden files), the verifier
 * (well-formed modules pass, each kind of breakage is reported) and the reference interpreter's
 * semantics on small modules whose results are known in closed form.
 *
 * Golden files: tests/ir/fixture_*.ir hold the printed fixtures (forward and backward); run
 * with SNN_UPDATE=1 (tests/run.sh --update) to rewrite them after an intended change.
 */
#include <CUnit/CUnit.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "ir/interp.h"
#include "ir/ir.h"
#include "ir_fixtures.h"
#include "unit_util.h"

static char *print_str(const snn_ir_module *m, bool with_backward) {
    char *buf = NULL;
    size_t n = 0;
    FILE *f = open_memstream(&buf, &n);
    snn_ir_print(m, f, with_backward);
    fclose(f);
    return buf;
}

static char *diag_str(const snn_diag *d) { return unit_diag_text(d); }

static char *read_file(const char *path) { return unit_read_file(path, NULL); }

static bool str_eq(const char *a, const char *b) { return a == b || (a && b && strcmp(a, b) == 0); }

static bool values_equal(const snn_ir_value *a, const snn_ir_value *b, int32_t n) {
    for (int32_t i = 0; i < n; i++) {
        const snn_ir_value *x = &a[i], *y = &b[i];
        if (x->op != y->op || x->region != y->region || x->nargs != y->nargs || !snn_shape_eq(x->shape, y->shape) ||
            !str_eq(x->name, y->name) || !str_eq(x->loc.file, y->loc.file) || x->loc.line != y->loc.line ||
            x->loc.col != y->loc.col || memcmp(&x->fval, &y->fval, sizeof x->fval) != 0 || x->ival != y->ival ||
            memcmp(x->attr, y->attr, sizeof x->attr) != 0)
            return false;
        for (int k = 0; k < x->nargs; k++)
            if (x->args[k] != y->args[k]) return false;
    }
    return true;
}

static bool funcs_equal(const snn_ir_func *a, const snn_ir_func *b) {
    if (a->n_values != b->n_values || a->n_states != b->n_states || a->time_dir != b->time_dir) return false;
    if (!values_equal(a->values, b->values, a->n_values)) return false;
    for (int32_t i = 0; i < a->n_states; i++) {
        const snn_ir_state *x = &a->states[i], *y = &b->states[i];
        if (!str_eq(x->name, y->name) || !snn_shape_eq(x->shape, y->shape) || x->init != y->init ||
            x->init_from != y->init_from || x->next != y->next || x->loc.line != y->loc.line || x->loc.col != y->loc.col)
            return false;
    }
    return true;
}

/* Structural equality of everything the text form carries. */
static bool modules_equal(const snn_ir_module *a, const snn_ir_module *b) {
    if (!str_eq(a->name, b->name) || !str_eq(a->source_file, b->source_file) || a->n_inputs != b->n_inputs ||
        a->n_classes != b->n_classes || a->n_params != b->n_params || a->n_surrogates != b->n_surrogates ||
        a->scores_state != b->scores_state || !str_eq(a->loss_name, b->loss_name) ||
        !str_eq(a->metric_name, b->metric_name) || !str_eq(a->train.data_dir, b->train.data_dir) ||
        a->train.steps != b->train.steps || a->train.batch != b->train.batch || a->train.epochs != b->train.epochs ||
        a->train.seed != b->train.seed || a->train.optimizer != b->train.optimizer || a->train.lr != b->train.lr ||
        a->train.beta1 != b->train.beta1 || a->train.beta2 != b->train.beta2 || a->train.eps != b->train.eps ||
        a->train.weight_decay != b->train.weight_decay || a->train.momentum != b->train.momentum)
        return false;
    for (int i = 0; i < a->n_params; i++) {
        const snn_ir_param *x = &a->params[i], *y = &b->params[i];
        if (!str_eq(x->name, y->name) || !snn_shape_eq(x->shape, y->shape) || x->init != y->init ||
            x->init_value != y->init_value || x->fan_in != y->fan_in || x->loc.line != y->loc.line)
            return false;
    }
    for (int i = 0; i < a->n_surrogates; i++) {
        const snn_ir_surrogate *x = &a->surrogates[i], *y = &b->surrogates[i];
        if (!str_eq(x->name, y->name) || x->n_values != y->n_values || x->ret != y->ret ||
            !values_equal(x->values, y->values, x->n_values))
            return false;
    }
    return funcs_equal(&a->forward, &b->forward) && funcs_equal(&a->backward, &b->backward);
}

/* print -> parse -> print is identical, the parsed module equals the original and verifies */
static void round_trip(const snn_ir_module *m) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    char *t1 = print_str(m, true);
    snn_ir_module *m2 = snn_ir_parse(a, d, "rt.ir", t1);
    if (!m2) {
        char *e = diag_str(d);
        printf("\n%s", e);
        free(e);
    }
    CU_ASSERT_PTR_NOT_NULL_FATAL(m2);
    char *t2 = print_str(m2, true);
    CU_ASSERT_STRING_EQUAL(t1, t2);
    CU_ASSERT_TRUE(modules_equal(m, m2));
    CU_ASSERT_TRUE(snn_ir_verify(m2, d));
    free(t1);
    free(t2);
    snn_ir_module_free(m2);
    snn_arena_free(a);
}

/* ---- printing and parsing ---- */

static void test_print_reads_like_the_model(void) {
    snn_arena *a = snn_arena_new();
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = snn_fixture_tutorial5(a, &o);
    char *t = print_str(m, false), *t2 = print_str(m, false);
    CU_ASSERT_STRING_EQUAL(t, t2);    /* deterministic */
    static const char *const want[] = {
        "module tutorial5_small\n",
        "param h.weight : f32[5,7] = uniform_fan_in(7)",
        "surrogate 0 \"atan(alpha=2)\" {\n",
        "  state h.mem : f32[B,5] = 0 next %h.mem ",
        "pre:\n  %x = input : f32[B,7]",
        "  %beta = const 0.95 : f32[]",
        "\nstep:\n  %h.cur = linear %x, %h.weight, %h.bias : f32[B,5]",
        "  %h.mem = sub %h.charged, %h.reset.amount : f32[B,5]",
        "  %h.spk = fire %h.v, surrogate=0 : f32[B,5]",
        "  %loss.ce = loss_add %ce, scale=1 ",
        "# fixture.snn:29:5\n",
    };
    for (size_t i = 0; i < sizeof want / sizeof want[0]; i++) {
        if (!strstr(t, want[i])) printf("\n  missing: %s", want[i]);
        CU_ASSERT_PTR_NOT_NULL(strstr(t, want[i]));
    }
    CU_ASSERT_PTR_NULL(strstr(t, "func backward"));
    free(t);
    free(t2);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void golden(const char *path, const snn_ir_module *m) {
    char *t = print_str(m, true);
    const char *upd = getenv("SNN_UPDATE");
    if (upd && strcmp(upd, "1") == 0) {
        FILE *f = fopen(path, "w");
        if (f) { fputs(t, f); fclose(f); }
    }
    char *want = read_file(path);
    if (!want) printf("\n  %s missing (run tests/run.sh --update from the repository root)\n", path);
    CU_ASSERT_PTR_NOT_NULL(want);
    if (want) {
        if (strcmp(want, t) != 0) printf("\n  %s differs from the printed module (SNN_UPDATE=1 rewrites it)\n", path);
        CU_ASSERT_STRING_EQUAL(want, t);
        /* and the golden file parses back to the same module */
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m2 = snn_ir_parse(a, d, path, want);
        CU_ASSERT_PTR_NOT_NULL(m2);
        if (m2) {
            CU_ASSERT_TRUE(snn_ir_verify(m2, d));
            CU_ASSERT_TRUE(modules_equal(m, m2));
            snn_ir_module_free(m2);
        }
        snn_arena_free(a);
    }
    free(want);
    free(t);
}

static void test_golden_files(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = snn_fixture_tutorial5(a, &o);
    CU_ASSERT_TRUE(snn_autodiff(a, d, m));
    golden("tests/ir/fixture_tutorial5_small.ir", m);
    snn_ir_module_free(m);
    o.learn_beta = o.synaptic = o.hoisted = o.final_loss = true;
    m = snn_fixture_tutorial5(a, &o);
    CU_ASSERT_TRUE(snn_autodiff(a, d, m));
    golden("tests/ir/fixture_tutorial5_variants.ir", m);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void test_round_trip(void) {
    for (int bits = 0; bits < 64; bits++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_fixture_opts o = snn_fixture_defaults();
        o.learn_beta = bits & 1; o.synaptic = bits & 2; o.smooth = bits & 4; o.hoisted = bits & 8;
        o.final_loss = bits & 16; o.recurrent = bits & 32;
        snn_ir_module *m = snn_fixture_tutorial5(a, &o);
        round_trip(m);                  /* forward only */
        CU_ASSERT_TRUE(snn_autodiff(a, d, m));
        round_trip(m);                  /* with backward */
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
    for (int op = 0; op < SNN_OP_COUNT_; op++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m = snn_fixture_op(a, (snn_op)op);
        if (m) {
            snn_autodiff(a, d, m);
            round_trip(m);
            snn_ir_module_free(m);
        }
        snn_arena_free(a);
    }
}

/* Odd names, odd floats, every field: still exact. */
static void test_round_trip_odd_values(void) {
    snn_arena *a = snn_arena_new();
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = snn_fixture_tutorial5(a, &o);
    m->forward.values[0].name = "x with \"quotes\"";
    m->forward.values[1].loc.file = "dir with space/f.snn";
    for (int32_t i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].op == SNN_OP_CONST) { m->forward.values[i].fval = 0.1f; break; }
    m->forward.values[3].attr[2] = -0.0f;
    m->forward.values[4].fval = 1e-30f;
    m->forward.states[0].init = 1.0f / 3.0f;
    m->params[1].init_value = 3.5f;
    m->train.seed = 18446744073709551615ull;
    m->train.data_dir = "a \\ b";
    round_trip(m);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static const char *small_text =
    "module t\n"
    "inputs 2 classes 2\n"
    "train steps=1 batch=1 epochs=1 seed=0 optimizer=0 lr=0 beta1=0 beta2=0 eps=0 weight_decay=0 momentum=0\n"
    "\n"
    "param w : f32[2,2] = uniform_fan_in(2)\n"
    "\n"
    "func forward {\n"
    "  state m : f32[B,2] = 0 next %m2\n"
    "pre:\n"
    "  %x = input : f32[B,2]\n"
    "  %w = param w : f32[2,2]\n"
    "step:\n"
    "  %m1 = state m : f32[B,2]\n"
    "  %y = linear %x, %w : f32[B,2]\n"
    "  %m2 = add %m1, %y : f32[B,2]      # t.snn:3:4\n"
    "  %ce = cross_entropy %m2 : f32[]\n"
    "  %l = loss_add %ce, scale=1\n"
    "post:\n"
    "}\n";

static void test_parse_hand_written(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = snn_ir_parse(a, d, "t.ir", small_text);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    CU_ASSERT_EQUAL(m->forward.n_values, 7);
    CU_ASSERT_EQUAL(m->forward.states[0].next, 4);
    CU_ASSERT_EQUAL(m->forward.values[4].loc.line, 3);
    CU_ASSERT_STRING_EQUAL(m->forward.values[4].loc.file, "t.snn");
    CU_ASSERT_EQUAL(m->forward.values[3].nargs, 2);
    CU_ASSERT_TRUE(snn_autodiff(a, d, m));       /* a parsed module can go through the pipeline */
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    round_trip(m);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* Each broken text gives one error at the right line:col. */
static void test_parse_errors(void) {
    static const struct { const char *from, *to, *where, *what; } cases[] = {
        {"module t", "modul t", "t.ir:1:1:", "'module' expected"},
        {"%y = linear", "%y = linaer", "t.ir:14:8:", "unknown op 'linaer'"},
        {"add %m1, %y", "add %m1, %zz", "t.ir:15:", "unknown value %zz"},
        {"f32[2,2] = uniform", "f32[2,0] = uniform", "t.ir:5:", "dimension must be positive"},
        {"next %m2", "next %nope", "t.ir:", "unknown next value %nope"},
        {"post:\n}\n", "post:\n", "t.ir:", "'}' expected"},
        {"%ce = cross_entropy %m2 : f32[]", "%ce = cross_entropy %m2", "t.ir:16:", "': type' expected"},
        {"%m1 = state m", "%m1 = state q", "t.ir:13:", "unknown state q"},
        {"%m1 = state m", "%x = state m", "t.ir:13:", "value %x defined twice"},
        {"scale=1", "scale=1, colour=2", "t.ir:17:", "unknown attribute 'colour'"},
        {"%w = param w", "%w = param v", "t.ir:11:", "unknown param v"},
        {"seed=0", "seed=-1", "t.ir:3:", "unsigned integer expected"},
        {"%y = linear %x, %w", "%y = linear %x", "t.ir:14:", "linear takes 2 or 3 operands"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        const char *at = strstr(small_text, cases[i].from);
        CU_ASSERT_PTR_NOT_NULL_FATAL(at);
        char *text = snn_sprintf(a, "%.*s%s%s", (int)(at - small_text), small_text, cases[i].to, at + strlen(cases[i].from));
        snn_ir_module *m = snn_ir_parse(a, d, "t.ir", text);
        CU_ASSERT_PTR_NULL(m);
        CU_ASSERT_EQUAL(snn_diag_error_count(d), 1);
        char *e = diag_str(d);
        bool ok = strstr(e, cases[i].where) && strstr(e, cases[i].what) && strstr(e, ": error: ");
        if (!ok) printf("\n  case %zu: got: %s", i, e);
        CU_ASSERT_TRUE(ok);
        free(e);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* ---- the verifier ---- */

static int32_t find(const snn_ir_func *f, const char *name) {
    for (int32_t i = 0; i < f->n_values; i++)
        if (strcmp(f->values[i].name, name) == 0) return i;
    CU_FAIL("fixture value not found");
    return 0;
}

typedef void (*breaker)(snn_arena *a, snn_ir_module *m);

#define BREAK(name, ...) static void name(snn_arena *a, snn_ir_module *m) { (void)a; __VA_ARGS__; }
BREAK(b_operand_after, { snn_ir_value *v = &m->forward.values[find(&m->forward, "h.mem")]; v->args[0] = find(&m->forward, "h.spk"); })
BREAK(b_operand_range, { m->forward.values[find(&m->forward, "h.mem")].args[1] = -3; })
BREAK(b_post_uses_step, {
    snn_ir_value v = {.op = SNN_OP_NEG, .region = SNN_REGION_POST, .nargs = 1, .args = {find(&m->forward, "h.mem")},
                      .shape = snn_shape_2(SNN_DIM_B, 5), .name = "bad"};
    snn_ir_append(a, &m->forward, v);
})
BREAK(b_region_order, { m->forward.values[find(&m->forward, "h.cur")].region = SNN_REGION_POST; })
BREAK(b_arity, { m->forward.values[find(&m->forward, "h.charged")].nargs = 1; })
BREAK(b_elemwise_shape, { m->forward.values[find(&m->forward, "h.charged")].shape = snn_shape_2(SNN_DIM_B, 3); })
BREAK(b_no_broadcast, { snn_ir_value *v = &m->forward.values[find(&m->forward, "o.charged")]; v->args[1] = find(&m->forward, "h.cur"); })
BREAK(b_linear_shape, { m->forward.values[find(&m->forward, "o.cur")].args[1] = find(&m->forward, "h.weight"); })
BREAK(b_sum_to, {
    snn_ir_value v = {.op = SNN_OP_SUM_TO, .region = SNN_REGION_STEP, .nargs = 1, .args = {find(&m->forward, "h.mem")},
                      .shape = snn_shape_1(4), .name = "bad"};
    snn_ir_append(a, &m->forward, v);
})
BREAK(b_loss_shape, { m->forward.values[find(&m->forward, "ce")].shape = snn_shape_1(3); })
BREAK(b_next_pre, { m->forward.states[0].next = find(&m->forward, "x"); })
BREAK(b_next_range, { m->forward.states[1].next = 1000; })
BREAK(b_next_shape, { m->forward.states[1].next = find(&m->forward, "h.mem"); })
BREAK(b_init_from_step, { m->forward.states[0].init_from = find(&m->forward, "h.cur"); })
BREAK(b_dup_name, { m->forward.values[find(&m->forward, "h.v")].name = m->forward.values[find(&m->forward, "h.mem")].name; })
BREAK(b_dup_state, { m->forward.states[1].name = m->forward.states[0].name; })
BREAK(b_fwd_in_forward, { snn_ir_value *v = &m->forward.values[find(&m->forward, "x")]; v->op = SNN_OP_FWD; v->ival = 0; })
BREAK(b_param_range, { m->forward.values[find(&m->forward, "h.bias")].ival = 9; })
BREAK(b_param_shape, { m->forward.values[find(&m->forward, "h.bias")].shape = snn_shape_1(6); })
BREAK(b_state_in_pre, {
    snn_ir_value *v = &m->forward.values[find(&m->forward, "threshold")];
    v->op = SNN_OP_STATE; v->ival = 0; v->shape = m->forward.states[0].shape;
})
BREAK(b_scores, { m->scores_state = 7; })
BREAK(b_surrogate_index, { m->forward.values[find(&m->forward, "h.spk")].ival = 2; })
BREAK(b_const_shape, { m->forward.values[find(&m->forward, "beta")].shape = snn_shape_1(5); })
BREAK(b_input_shape, { m->forward.values[find(&m->forward, "x")].shape = snn_shape_2(SNN_DIM_B, 6); })
BREAK(b_loss_add_operand, { m->forward.values[find(&m->forward, "loss.ce")].args[0] = find(&m->forward, "o.mem"); })
BREAK(b_operand_is_sink, {
    snn_ir_value v = {.op = SNN_OP_NEG, .region = SNN_REGION_STEP, .nargs = 1, .args = {find(&m->forward, "loss.ce")},
                      .name = "bad"};
    snn_ir_append(a, &m->forward, v);
})
BREAK(b_unknown_op, { m->forward.values[find(&m->forward, "h.v")].op = (snn_op)999; })
BREAK(b_surrogate_body, { m->surrogates[0].values[2].op = SNN_OP_MATMUL_NN; })
BREAK(b_surrogate_ret, { m->surrogates[0].ret = 99; })
BREAK(b_ce_classes, { m->n_classes = 4; m->scores_state = -1; })
/* backward */
BREAK(b_bw_fwd_range, {
    for (int32_t i = 0; i < m->backward.n_values; i++)
        if (m->backward.values[i].op == SNN_OP_FWD) { m->backward.values[i].ival = 5000; break; }
})
BREAK(b_bw_fwd_region, {   /* a backward post value reading a forward step value */
    snn_ir_value v = {.op = SNN_OP_FWD, .region = SNN_REGION_POST, .ival = find(&m->forward, "h.mem"),
                      .shape = snn_shape_2(SNN_DIM_B, 5), .name = "bad"};
    snn_ir_append(a, &m->backward, v);
})
BREAK(b_bw_fwd_shape, {
    for (int32_t i = 0; i < m->backward.n_values; i++)
        if (m->backward.values[i].op == SNN_OP_FWD) { m->backward.values[i].shape = snn_shape_1(2); break; }
})
BREAK(b_bw_grad_acc_shape, {
    for (int32_t i = 0; i < m->backward.n_values; i++)
        if (m->backward.values[i].op == SNN_OP_GRAD_ACC) { m->backward.values[i].ival = (m->backward.values[i].ival + 1) % 4; break; }
})
BREAK(b_bw_loss_add, {
    snn_ir_value k = {.op = SNN_OP_CONST, .region = SNN_REGION_POST, .name = "k"};
    snn_ir_value v = {.op = SNN_OP_LOSS_ADD, .region = SNN_REGION_POST, .nargs = 1, .name = "bad"};
    v.args[0] = snn_ir_append(a, &m->backward, k);
    snn_ir_append(a, &m->backward, v);
})
BREAK(b_bw_state_next, { m->backward.states[0].next = -1; })
BREAK(b_bw_time_dir, { m->backward.time_dir = 1; })
BREAK(b_grad_acc_in_forward, {
    snn_ir_value v = {.op = SNN_OP_GRAD_ACC, .region = SNN_REGION_POST, .nargs = 1, .args = {find(&m->forward, "h.bias")},
                      .ival = 1, .name = "bad"};
    snn_ir_append(a, &m->forward, v);
})

static void test_verifier_accepts(void) {
    for (int bits = 0; bits < 64; bits++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_fixture_opts o = snn_fixture_defaults();
        o.learn_beta = bits & 1; o.synaptic = bits & 2; o.smooth = bits & 4; o.hoisted = bits & 8;
        o.final_loss = bits & 16; o.recurrent = bits & 32;
        snn_ir_module *m = snn_fixture_tutorial5(a, &o);
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        CU_ASSERT_TRUE(snn_autodiff(a, d, m));
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        CU_ASSERT_EQUAL(snn_diag_error_count(d), 0);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

static void test_verifier_rejects(void) {
    static const struct { breaker f; const char *what; bool backward; } cases[] = {
        {b_operand_after, "does not precede", 0}, {b_operand_range, "does not precede", 0},
        {b_post_uses_step, "of the step region", 0}, {b_region_order, "regions must be in order", 0},
        {b_arity, "operands, expected 2", 0}, {b_elemwise_shape, "operands broadcast to", 0},
        {b_no_broadcast, "do not broadcast", 0}, {b_linear_shape, "linear: shapes", 0},
        {b_sum_to, "sum_to", 0}, {b_loss_shape, "a loss has shape []", 0},
        {b_next_pre, "is not a step value", 0}, {b_next_range, "does not exist", 0},
        {b_next_shape, "but its next", 0}, {b_init_from_step, "is not a pre value", 0},
        {b_dup_name, "used by values", 0}, {b_dup_state, "used twice", 0},
        {b_fwd_in_forward, "fwd outside the backward function", 0}, {b_param_range, "param index 9 out of range", 0},
        {b_param_shape, "but param h.bias is", 0}, {b_state_in_pre, "state read in the pre region", 0},
        {b_scores, "scores state 7 out of range", 0}, {b_surrogate_index, "surrogate index 2 out of range", 0},
        {b_const_shape, "a const has shape []", 0}, {b_input_shape, "input has shape", 0},
        {b_loss_add_operand, "expected []", 0}, {b_operand_is_sink, "is a sink", 0},
        {b_unknown_op, "unknown op", 0}, {b_surrogate_body, "not allowed in a surrogate", 0},
        {b_surrogate_ret, "return value 99 out of range", 0}, {b_ce_classes, "expected [B,4]", 0},
        {b_grad_acc_in_forward, "grad_acc outside the backward function", 0},
        {b_bw_fwd_range, "does not exist", 1}, {b_bw_fwd_region, "reads forward %h.mem of the step region", 1},
        {b_bw_fwd_shape, "but forward", 1}, {b_bw_grad_acc_shape, "grad_acc: operand", 1},
        {b_bw_loss_add, "loss_add outside the forward function", 1}, {b_bw_state_next, "does not exist", 1},
        {b_bw_time_dir, "time direction", 1},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_fixture_opts o = snn_fixture_defaults();
        snn_ir_module *m = snn_fixture_tutorial5(a, &o);
        if (cases[i].backward) CU_ASSERT_TRUE(snn_autodiff(a, d, m));
        cases[i].f(a, m);
        bool ok = snn_ir_verify(m, d);
        CU_ASSERT_FALSE(ok);
        char *e = diag_str(d);
        bool found = strstr(e, cases[i].what) && strstr(e, "internal error");
        if (ok || !found) printf("\n  case %zu (%s): got: %s", i, cases[i].what, e);
        CU_ASSERT_TRUE(found);
        free(e);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

/* Random small corruptions of fixture modules: whatever the verifier accepts must print, parse
 * back to the same text, differentiate into a module that verifies, and interpret without
 * crashing (run under ASan in CI). Deterministic (fixed seed). */
static uint64_t mut_state;
static uint64_t mut_rnd(void) {
    mut_state = mut_state * 6364136223846793005ull + 1442695040888963407ull;
    return mut_state >> 33;
}

static void test_verified_mutants_are_safe(void) {
    mut_state = 2024;
    int accepted = 0;
    for (int it = 0; it < 600; it++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_fixture_opts o = snn_fixture_defaults();
        int bits = (int)(mut_rnd() % 64);
        o.learn_beta = bits & 1; o.synaptic = bits & 2; o.smooth = bits & 4; o.hoisted = bits & 8;
        o.final_loss = bits & 16; o.recurrent = bits & 32;
        snn_ir_module *m = mut_rnd() % 3 ? snn_fixture_tutorial5(a, &o) : snn_fixture_op(a, (snn_op)(mut_rnd() % SNN_OP_COUNT_));
        if (!m) { snn_arena_free(a); continue; }
        if (mut_rnd() % 2) snn_autodiff(a, d, m);
        snn_ir_func *f = m->backward.n_values && mut_rnd() % 2 ? &m->backward : &m->forward;
        for (int j = 0, k = 1 + (int)(mut_rnd() % 2); j < k && f->n_values; j++) {
            snn_ir_value *v = &f->values[mut_rnd() % (uint64_t)f->n_values];
            switch (mut_rnd() % 8) {
            case 0: if (v->nargs > 0) v->args[mut_rnd() % (uint64_t)v->nargs] = (int32_t)(mut_rnd() % (uint64_t)(f->n_values + 2)) - 1; break;
            case 1: v->op = (snn_op)(mut_rnd() % SNN_OP_COUNT_); break;
            case 2: if (v->shape.rank > 0) v->shape.dim[mut_rnd() % (uint64_t)v->shape.rank] = (int64_t)(mut_rnd() % 8) - 1; break;
            case 3: v->shape.rank = (int32_t)(mut_rnd() % 4); break;
            case 4: v->region = (snn_region)(mut_rnd() % 3); break;
            case 5: v->ival = (int32_t)(mut_rnd() % 12) - 1; break;
            case 6: if (f->n_states) f->states[mut_rnd() % (uint64_t)f->n_states].next = (int32_t)(mut_rnd() % (uint64_t)f->n_values); break;
            default: v->nargs = (int32_t)(mut_rnd() % 4); break;
            }
        }
        if (snn_ir_verify(m, d)) {
            accepted++;
            char *t1 = print_str(m, true);
            snn_ir_module *m2 = snn_ir_parse(a, d, "mutant.ir", t1);
            CU_ASSERT_PTR_NOT_NULL(m2);
            if (m2) {
                char *t2 = print_str(m2, true);
                CU_ASSERT_STRING_EQUAL(t1, t2);
                free(t2);
                snn_ir_module_free(m2);
            }
            free(t1);
            if (m->backward.n_values == 0 && snn_autodiff(a, d, m)) CU_ASSERT_TRUE(snn_ir_verify(m, d));
            double *p[16], *g[16], x[64], loss, scores[64];
            int32_t labels[2] = {0, 1};
            for (int i = 0; i < m->n_params; i++) {
                p[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
                g[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
            }
            snn_fixture_params(m, 1, 1.0, p);
            for (int i = 0; i < 64; i++) x[i] = (i % 7) / 7.0;
            snn_interp_batch b = {2, 3, x, labels, 0};
            snn_interp_run_f64(m, (const double *const *)p, m->backward.n_values ? g : NULL, &b, &loss, scores, NULL);
            for (int i = 0; i < m->n_params; i++) { free(p[i]); free(g[i]); }
        }
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
    CU_ASSERT_TRUE(accepted > 50);
}

/* ---- the interpreter's semantics ---- */

/* inputs 2, classes 2; step: counter state c (init or init_from x) += 1, post: ce of final c */
static snn_ir_module *counter_module(snn_arena *a, bool init_from_x, bool rate) {
    snn_ir_module *m = snn_ir_module_new(a, "counter");
    m->n_inputs = 2;
    m->n_classes = 2;
    snn_ir_func *f = &m->forward;
    snn_ir_state s = {.name = "c", .shape = snn_shape_2(SNN_DIM_B, 2), .init = 0.5f, .init_from = -1, .next = -1};
    snn_ir_add_state(f, s);
    m->scores_state = 0;
    int32_t x = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_INPUT, .name = "x", .shape = snn_shape_2(SNN_DIM_B, 2)});
    if (init_from_x) f->states[0].init_from = x;
    int32_t one = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_CONST, .name = "one", .region = SNN_REGION_STEP, .fval = 1});
    int32_t inc = one;
    if (rate)
        inc = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_RATE, .name = "spikes", .region = SNN_REGION_STEP, .nargs = 1,
                                                 .args = {x}, .shape = snn_shape_2(SNN_DIM_B, 2)});
    int32_t prev = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_STATE, .name = "c.prev", .region = SNN_REGION_STEP,
                                                      .shape = snn_shape_2(SNN_DIM_B, 2)});
    f->states[0].next = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_ADD, .name = "c", .region = SNN_REGION_STEP,
                                                           .nargs = 2, .args = {prev, inc}, .shape = snn_shape_2(SNN_DIM_B, 2)});
    int32_t fin = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_STATE, .name = "c.final", .region = SNN_REGION_POST,
                                                     .shape = snn_shape_2(SNN_DIM_B, 2)});
    int32_t ce = snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_CROSS_ENTROPY, .name = "ce", .region = SNN_REGION_POST,
                                                    .nargs = 1, .args = {fin}});
    snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "l", .region = SNN_REGION_POST, .nargs = 1,
                                       .args = {ce}, .fval = 2.0f});
    snn_ir_value mse = {.op = SNN_OP_MSE_ONEHOT, .name = "mse", .region = SNN_REGION_POST, .nargs = 1, .args = {fin},
                        .attr = {3.0f, 1.0f}};
    int32_t ms = snn_ir_append(a, f, mse);
    snn_ir_append(a, f, (snn_ir_value){.op = SNN_OP_LOSS_ADD, .name = "l2", .region = SNN_REGION_POST, .nargs = 1,
                                       .args = {ms}, .fval = 1.0f});
    return m;
}

static void test_interp_states_and_losses(void) {
    for (int variant = 0; variant < 2; variant++) {
        snn_arena *a = snn_arena_new();
        snn_diag *d = snn_diag_new(a);
        snn_ir_module *m = counter_module(a, variant == 1, false);
        CU_ASSERT_TRUE(snn_ir_verify(m, d));
        const int64_t B = 3, T = 4;
        double x[6] = {0.1, 0.9, 0.4, 0.2, -1, 3}, scores[6], loss = 0;
        int32_t labels[3] = {1, 0, 1};
        snn_interp_batch b = {B, T, x, labels, 0};
        CU_ASSERT_EQUAL(snn_interp_run_f64(m, NULL, NULL, &b, &loss, scores, NULL), 0);
        double want_loss = 0, mse = 0;
        for (int r = 0; r < B; r++) {
            double c0 = (variant ? x[2 * r] : 0.5) + T, c1 = (variant ? x[2 * r + 1] : 0.5) + T;
            CU_ASSERT_DOUBLE_EQUAL(scores[2 * r], c0, 1e-12);
            CU_ASSERT_DOUBLE_EQUAL(scores[2 * r + 1], c1, 1e-12);
            double mx = fmax(c0, c1), lse = mx + log(exp(c0 - mx) + exp(c1 - mx));
            want_loss += 2.0 * (lse - (labels[r] ? c1 : c0)) / B;
            double t0 = labels[r] == 0 ? 3 : 1, t1 = labels[r] == 1 ? 3 : 1;
            mse += ((c0 - t0) * (c0 - t0) + (c1 - t1) * (c1 - t1)) / (B * 2);
        }
        CU_ASSERT_DOUBLE_EQUAL(loss, want_loss + mse, 1e-12);
        snn_ir_module_free(m);
        snn_arena_free(a);
    }
}

static void test_interp_rate(void) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = counter_module(a, false, true);
    CU_ASSERT_TRUE(snn_ir_verify(m, d));
    const int64_t B = 3, T = 50;
    double x[6] = {0.0, 1.0, 0.3, 0.7, -2, 5}, scores[6], loss;
    int32_t labels[3] = {0, 1, 0};
    snn_interp_batch b = {B, T, x, labels, 1234};
    CU_ASSERT_EQUAL(snn_interp_run_f64(m, NULL, NULL, &b, &loss, scores, NULL), 0);
    for (int64_t r = 0; r < B; r++)
        for (int64_t i = 0; i < 2; i++) {
            double p = fmin(1, fmax(0, x[r * 2 + i])), want = 0.5;
            for (int64_t t = 0; t < T; t++) want += snnrt_uniform(1234, (uint64_t)t, (uint64_t)r, (uint64_t)i) < p;
            CU_ASSERT_DOUBLE_EQUAL(scores[r * 2 + i], want, 1e-12);
        }
    CU_ASSERT_DOUBLE_EQUAL(scores[0], 0.5, 1e-12);        /* rate 0: never */
    CU_ASSERT_DOUBLE_EQUAL(scores[1], 0.5 + T, 1e-12);    /* rate 1: always */
    CU_ASSERT_TRUE(scores[2] > 0.5 + 3 && scores[2] < 0.5 + 30);
    /* a different key, different draws; the same key, the same ones */
    double s2[6], s3[6];
    b.seed = 99;
    snn_interp_run_f64(m, NULL, NULL, &b, &loss, s2, NULL);
    b.seed = 1234;
    snn_interp_run_f64(m, NULL, NULL, &b, &loss, s3, NULL);
    CU_ASSERT_TRUE(memcmp(s2, scores, sizeof s2) != 0);
    CU_ASSERT_TRUE(memcmp(s3, scores, sizeof s3) == 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* The leaky membrane of the fixture follows mem = beta mem + I - H(mem - thr) thr exactly. */
static void observe_mem(void *ctx, const snn_ir_func *f, int32_t id, int64_t t, const double *data, int64_t n) {
    double *trace = ctx;
    if (strcmp(f->values[id].name, "h.mem") == 0 && t >= 0 && t < 16) trace[t] = data[0];
    (void)n;
}

static void test_interp_leaky_trace(void) {
    snn_arena *a = snn_arena_new();
    snn_fixture_opts o = snn_fixture_defaults();
    snn_ir_module *m = snn_fixture_tutorial5(a, &o);
    double *p[4];
    for (int i = 0; i < 4; i++) p[i] = calloc((size_t)snn_shape_numel(m->params[i].shape, 1), sizeof(double));
    p[1][0] = 0.3;   /* h.bias[0]: neuron 0 gets current 0.3 at every step */
    double x[7] = {0}, loss, trace[16] = {0};
    int32_t label = 0;
    snn_interp_batch b = {1, 16, x, &label, 0};
    snn_interp_opts opts = {.observe = observe_mem, .ctx = trace};
    CU_ASSERT_EQUAL(snn_interp_run_f64(m, (const double *const *)p, NULL, &b, &loss, NULL, &opts), 0);
    double mem = 0;
    int spikes = 0;
    for (int t = 0; t < 16; t++) {
        double r = mem - 1.0 > 0 ? 1 : 0;
        mem = (double)0.95f * mem + 0.3 - r * 1.0;
        spikes += mem > 1.0;
        CU_ASSERT_DOUBLE_EQUAL(trace[t], mem, 1e-12);
    }
    CU_ASSERT_TRUE(spikes > 0);
    for (int i = 0; i < 4; i++) free(p[i]);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

static void observe_steps(void *ctx, const snn_ir_func *f, int32_t id, int64_t t, const double *data, int64_t n) {
    if (f->values[id].op == SNN_OP_STEPS) *(double *)ctx = data[0];
    (void)t; (void)n;
}

static void test_interp_steps(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = snn_fixture_op(a, SNN_OP_STEPS);
    double p0[3] = {0.5, 0.5, 0.5}, P[9] = {0}, *p[4] = {p0, p0, P, P};
    double x[3] = {0.1, 0.2, 0.3}, loss, seen = 0;
    int32_t label = 2;
    snn_interp_batch b = {1, 7, x, &label, 0};
    snn_interp_opts o = {.observe = observe_steps, .ctx = &seen};
    CU_ASSERT_EQUAL(snn_interp_run_f64(m, (const double *const *)p, NULL, &b, &loss, NULL, &o), 0);
    CU_ASSERT_DOUBLE_EQUAL(seen, 7.0, 0);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

/* step is t at each step (0 .. T-1), read where it stands in the step region */
static void observe_step(void *ctx, const snn_ir_func *f, int32_t id, int64_t t, const double *data, int64_t n) {
    double *seen = ctx;
    if (f->values[id].op == SNN_OP_STEP && t >= 0 && t < 8) seen[t] = data[0] + 1.0;
    (void)n;
}

static void test_interp_step_index(void) {
    snn_arena *a = snn_arena_new();
    snn_ir_module *m = snn_fixture_op(a, SNN_OP_STEP);
    CU_ASSERT_PTR_NOT_NULL_FATAL(m);
    double p0[3] = {0.5, 0.5, 0.5}, P[9] = {0}, *p[4] = {p0, p0, P, P};
    double x[3] = {0.1, 0.2, 0.3}, loss, seen[8] = {0};
    int32_t label = 2;
    snn_interp_batch b = {1, 5, x, &label, 0};
    snn_interp_opts o = {.observe = observe_step, .ctx = seen};
    CU_ASSERT_EQUAL(snn_interp_run_f64(m, (const double *const *)p, NULL, &b, &loss, NULL, &o), 0);
    for (int t = 0; t < 5; t++) CU_ASSERT_DOUBLE_EQUAL(seen[t], t + 1.0, 0);   /* t, stored + 1 */
    CU_ASSERT_DOUBLE_EQUAL(seen[5], 0.0, 0);
    /* the verifier wants it in the step region */
    snn_diag *d = snn_diag_new(a);
    for (int32_t i = 0; i < m->forward.n_values; i++)
        if (m->forward.values[i].op == SNN_OP_STEP) m->forward.values[i].region = SNN_REGION_PRE;
    CU_ASSERT_FALSE(snn_ir_verify(m, d));
    char *e = diag_str(d);
    CU_ASSERT_PTR_NOT_NULL(strstr(e, "a step index outside the step region"));
    free(e);
    snn_ir_module_free(m);
    snn_arena_free(a);
}

void test_ir_register(void) {
    CU_pSuite s = CU_add_suite("ir", NULL, NULL);
    CU_add_test(s, "print reads like the model and is deterministic", test_print_reads_like_the_model);
    CU_add_test(s, "golden files tests/ir/fixture_*.ir", test_golden_files);
    CU_add_test(s, "print -> parse -> print round trip (all fixtures)", test_round_trip);
    CU_add_test(s, "round trip of odd names and floats", test_round_trip_odd_values);
    CU_add_test(s, "parse a hand-written module", test_parse_hand_written);
    CU_add_test(s, "parse errors at line:col", test_parse_errors);
    CU_add_test(s, "verifier accepts every fixture", test_verifier_accepts);
    CU_add_test(s, "verifier rejects broken modules", test_verifier_rejects);
    CU_add_test(s, "verified mutants print, parse, differentiate and run", test_verified_mutants_are_safe);
    CU_add_test(s, "interp: states, init_from, post reads, losses", test_interp_states_and_losses);
    CU_add_test(s, "interp: rate encoding draws snnrt_uniform", test_interp_rate);
    CU_add_test(s, "interp: leaky membrane trace", test_interp_leaky_trace);
    CU_add_test(s, "interp: steps is T", test_interp_steps);
    CU_add_test(s, "interp: step is t; only in the step region", test_interp_step_index);
}
