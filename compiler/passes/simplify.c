/* simplify.c: algebraic simplification (pass "simplify").
 *
 * Lowering folds the constants of one neuron expression, but inlining, user-written neurons
 * and autodiff's rules (an adjoint times a constant 1, a sum with a zero start) leave identities
 * behind. This pass removes the ones that are exact in IEEE float arithmetic, for values and
 * for gradients alike:
 *
 *   x * 1, 1 * x, x / 1, x - 0, pow(x, 1)       -> x
 *   x + 0, 0 + x                                -> x   (for x = -0 the result was +0: the
 *                                                       sign of a zero, which no op of the IR
 *                                                       but division can observe)
 *   neg(neg(x)), detach(detach(x))              -> x, detach(x)
 *   x + neg(y), neg(y) + x, x - neg(y)          -> x - y, x - y, x + y (IEEE defines x - y as
 *                                                  x + (-y); autodiff writes the adjoint of a
 *                                                  subtrahend as neg(g) and sums it: one pass
 *                                                  over the data less)
 *   select(c, a, b) with c a constant           -> a if c != 0, else b
 *   pow(x, 2)                                   -> x * x (the atan surrogate's square, inlined
 *                                                  by autodiff into every backward step: a
 *                                                  multiply instead of a libm call; exact, since
 *                                                  pow is exact on squares of floats, and the
 *                                                  gradients 2x*g and x*g + x*g are equal)
 *   an exact op of constants only               -> a constant: add, sub, mul, div, min, max,
 *                                                  the comparisons, neg, abs, sqrt,
 *                                                  heaviside, detach (clamp(c, lo, hi) is
 *                                                  min(max(c, lo), hi), so it folds too)
 *
 * Folding computes in double and rounds to float once, which is what a float32 op does for
 * these correctly rounded operations, so the folded value is bit-identical to the computed one.
 * Deliberately not done: x * 0 -> 0 (wrong for x = inf or nan, and the loss must stay nan if it
 * was), x - x -> 0 (same), folding exp, log, tanh, pow, sigmoid (libm results differ between
 * the compiler's host and the trainer's). A replacement must have the value's exact shape
 * (x + 0 with x of shape [] and a [B,N] result is kept), and a state's next value is only
 * replaced by a step value.
 *
 * Requires: a verified function. Changes: users of a simplified value read the replacement;
 * folded constants take the folded value's name and region; the old values are dropped (the
 * array is rebuilt, compiler/ir/rewrite.h). Leaves unused constants for dce.
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <math.h>
#include <stdlib.h>

static bool const_of(const snn_ir_rw *rw, int32_t id, double *out) {
    const snn_ir_value *v = snn_ir_rw_new(rw, id);
    if (v->op != SNN_OP_CONST) return false;
    *out = v->fval;
    return true;
}

/* Folds op over constant operands; false if op is not folded. */
static bool fold(snn_op op, const double *x, int nargs, double *out) {
    double a = nargs > 0 ? x[0] : 0, b = nargs > 1 ? x[1] : 0;
    switch (op) {
    case SNN_OP_ADD: *out = a + b; return true;
    case SNN_OP_SUB: *out = a - b; return true;
    case SNN_OP_MUL: *out = a * b; return true;
    case SNN_OP_DIV: *out = a / b; return true;
    case SNN_OP_MIN: *out = a <= b ? a : b; return true;
    case SNN_OP_MAX: *out = a >= b ? a : b; return true;
    case SNN_OP_GT: *out = a > b; return true;
    case SNN_OP_GE: *out = a >= b; return true;
    case SNN_OP_LT: *out = a < b; return true;
    case SNN_OP_LE: *out = a <= b; return true;
    case SNN_OP_EQ: *out = a == b; return true;
    case SNN_OP_NE: *out = a != b; return true;
    case SNN_OP_NEG: *out = -a; return true;
    case SNN_OP_ABS: *out = fabs(a); return true;
    case SNN_OP_SQRT: *out = sqrt(a); return true;
    case SNN_OP_HEAVISIDE: *out = a > 0 ? 1.0 : 0.0; return true;
    case SNN_OP_DETACH: *out = a; return true;
    default: return false;
    }
}

/* The existing new value that old value v (operands already mapped) equals, or -1. */
static int32_t identity(const snn_ir_rw *rw, const snn_ir_value *c) {
    double k;
    int32_t x = c->nargs > 0 ? c->args[0] : -1, y = c->nargs > 1 ? c->args[1] : -1;
    switch (c->op) {
    case SNN_OP_MUL:
        if (const_of(rw, y, &k) && k == 1) return x;
        if (const_of(rw, x, &k) && k == 1) return y;
        return -1;
    case SNN_OP_ADD:
        if (const_of(rw, y, &k) && k == 0) return x;
        if (const_of(rw, x, &k) && k == 0) return y;
        return -1;
    case SNN_OP_SUB:
        return const_of(rw, y, &k) && k == 0 ? x : -1;
    case SNN_OP_DIV: case SNN_OP_POW:
        return const_of(rw, y, &k) && k == 1 ? x : -1;
    case SNN_OP_NEG: {
        const snn_ir_value *in = snn_ir_rw_new(rw, x);
        return in->op == SNN_OP_NEG ? in->args[0] : -1;
    }
    case SNN_OP_DETACH:
        return snn_ir_rw_new(rw, x)->op == SNN_OP_DETACH ? x : -1;
    case SNN_OP_SELECT:
        if (!const_of(rw, x, &k)) return -1;
        return k != 0 ? y : c->args[2];
    default:
        return -1;
    }
}

bool snn_pass_simplify(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    const int32_t n = f->n_values;
    bool *is_next = snn_ir_state_next_mask(f);
    snn_ir_rw rw;
    snn_ir_rw_begin(&rw, a, d, m, f);
    for (int32_t i = 0; i < n && !rw.failed; i++) {
        const snn_ir_value *v = &f->values[i];
        if (snn_op_infos[v->op].cls != SNN_CLASS_ELEMWISE || v->op == SNN_OP_RATE || v->op == SNN_OP_FIRE) {
            snn_ir_rw_copy(&rw, i, v->region);
            continue;
        }
        snn_ir_value c = *v;
        for (int k = 0; k < c.nargs; k++) c.args[k] = snn_ir_rw_get(&rw, c.args[k]);
        int32_t r = identity(&rw, &c);
        if (r >= 0 && snn_shape_eq(snn_ir_rw_new(&rw, r)->shape, v->shape) &&
            (!is_next[i] || snn_ir_rw_new(&rw, r)->region == SNN_REGION_STEP)) {
            snn_ir_rw_alias(&rw, i, r);
            continue;
        }
        /* x + neg(y) -> x - y, neg(y) + x -> x - y, x - neg(y) -> x + y */
        if ((v->op == SNN_OP_ADD || v->op == SNN_OP_SUB) && c.nargs == 2) {
            int32_t x = c.args[0], y = c.args[1];
            const snn_ir_value *nx = snn_ir_rw_new(&rw, x), *ny = snn_ir_rw_new(&rw, y);
            snn_ir_value e = {.region = v->region, .nargs = 2, .shape = v->shape};
            bool hit = true;
            if (ny->op == SNN_OP_NEG) { e.op = v->op == SNN_OP_ADD ? SNN_OP_SUB : SNN_OP_ADD; e.args[0] = x; e.args[1] = ny->args[0]; }
            else if (v->op == SNN_OP_ADD && nx->op == SNN_OP_NEG) { e.op = SNN_OP_SUB; e.args[0] = y; e.args[1] = nx->args[0]; }
            else hit = false;
            if (hit) {
                snn_ir_rw_replace(&rw, i, e);
                continue;
            }
        }
        double two;
        if (v->op == SNN_OP_POW && const_of(&rw, c.args[1], &two) && two == 2 &&
            snn_shape_eq(snn_ir_rw_new(&rw, c.args[0])->shape, v->shape)) {
            snn_ir_value sq = {.op = SNN_OP_MUL, .region = v->region, .nargs = 2, .args = {c.args[0], c.args[0]},
                               .shape = v->shape};
            snn_ir_rw_replace(&rw, i, sq);
            continue;
        }
        double x[SNN_IR_MAX_ARGS], val;
        bool all_const = c.nargs > 0 && v->shape.rank == 0;
        for (int k = 0; k < c.nargs && all_const; k++) all_const = const_of(&rw, c.args[k], &x[k]);
        if (all_const && fold(v->op, x, c.nargs, &val)) {
            snn_ir_value k = {.op = SNN_OP_CONST, .region = v->region, .shape = snn_shape_scalar(),
                              .fval = (float)val, .loc = v->loc};
            snn_ir_rw_replace(&rw, i, k);
            continue;
        }
        snn_ir_rw_copy(&rw, i, v->region);
    }
    bool changed = false;
    if (rw.changed || rw.failed) changed = snn_ir_rw_finish(&rw, NULL) && rw.changed;
    else snn_ir_rw_abort(&rw);
    free(is_next);
    return changed;
}
