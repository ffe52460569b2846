/* timesum.c: closed-form time sums of linear adjoint recurrences (pass "timesum").
 *
 * The membrane of a leaky neuron whose reset is detached is linear in its previous value,
 * mem[t+1] = beta mem[t] + ..., so autodiff gives its adjoint a linear recurrence, run
 * backward through time, and when the layer's input current is time-invariant (a hoisted
 * linear(x)) it also sums that adjoint over time for the input's gradient:
 *
 *     d.mem[t] = d.mem[t+1] beta + g[t]            (state d.h.mem, next = d.mem beta)
 *     acc     += d.mem[t]                          (state acc.d.h.linear: a time sum)
 *
 * The sum has a closed form in the terms g alone:
 *
 *     sum_t d.mem[t] = sum_t sum_{s>=t} beta^(s-t) g[s] = sum_s w(s) g[s],
 *     w(s) = 1 + beta + ... + beta^s = (1 - beta^(s+1)) / (1 - beta)   (s + 1 if beta = 1)
 *
 * so when nothing else reads d.mem the recurrence is dead: this pass rewrites the sum's term
 * to g[t] * w(t), with w computed per step from the step index t (op `step`), and dce then
 * removes the adjoint state. For Tutorial 5 that drops the [B, 1000] state d.h.mem (read,
 * written and zeroed every iteration) and leaves the layer's backward without any recurrence:
 * its steps are independent (fission then sees a time-parallel loop, not a scan), the
 * precondition for running it in any order (docs/passes.md, "Closed-form time sums").
 *
 * Pattern, in the backward function, per state D:
 *   - D starts at 0 (no init_from), its only read is R in the step region;
 *   - D's next is N = mul(X, c) (either order) with c a constant scalar, and N has no user,
 *     or X itself (c = 1: simplify has removed the multiplication);
 *   - X = add(R, G) (either order), G of X's shape; R has no other user;
 *   - X has exactly one other user: Y = add(RA, X) (either order), the next of a state A whose
 *     step read RA has no other user, and Y has no user (a time sum);
 * then Y becomes add(RA, mul(G, w)).
 *
 * Requires: a verified backward function. Changes: the time sums matched (new values: the
 * step index, the weight w and the product; the old X, N, R become dead, for dce). Not exact:
 * the sum is taken in another order, and w(t) is rounded once instead of beta^k being applied
 * k times, so gradients change by float rounding (checked against -O0 in tests/unit/test_passes.c
 * and against PyTorch by the gradient fixtures).
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <math.h>
#include <stdlib.h>

/* uses[i]: how many operands, state nexts and init_froms refer to value i. */
static int32_t *count_uses(const snn_ir_func *f) {
    int32_t *uses = calloc((size_t)(f->n_values > 0 ? f->n_values : 1), sizeof *uses);
    if (!uses) abort();
    for (int32_t i = 0; i < f->n_values; i++)
        for (int q = 0; q < f->values[i].nargs; q++) uses[f->values[i].args[q]]++;
    for (int32_t s = 0; s < f->n_states; s++) {
        uses[f->states[s].next]++;
        if (f->states[s].init_from >= 0) uses[f->states[s].init_from]++;
    }
    return uses;
}

/* The operand of binary value v other than `one` (-1 if v does not read `one`). */
static int32_t other_arg(const snn_ir_value *v, int32_t one) {
    if (v->nargs != 2) return -1;
    if (v->args[0] == one) return v->args[1];
    if (v->args[1] == one) return v->args[0];
    return -1;
}

/* The only step-region read of state s, or -1 (none, several, or one in another region). */
static int32_t only_read(const snn_ir_func *f, int32_t s) {
    int32_t r = -1;
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->op != SNN_OP_STATE || v->ival != s) continue;
        if (r >= 0 || v->region != SNN_REGION_STEP) return -1;
        r = i;
    }
    return r;
}

/* The state whose next is value id, or -1. */
static int32_t state_of_next(const snn_ir_func *f, int32_t id) {
    for (int32_t s = 0; s < f->n_states; s++)
        if (f->states[s].next == id) return s;
    return -1;
}

typedef struct {
    int32_t sum;     /* Y: the time sum's add, rewritten */
    int32_t read;    /* RA: the time sum's read */
    int32_t term;    /* G: the recurrence's per-step term */
    float beta;      /* c */
} match;

/* If state s of f is a linear adjoint recurrence that only feeds a time sum, fills *mt. */
static bool match_state(const snn_ir_func *f, const int32_t *uses, int32_t s, match *mt) {
    const snn_ir_state *D = &f->states[s];
    if (D->init_from >= 0 || D->init != 0.0f) return false;
    const int32_t r = only_read(f, s), n = D->next;
    if (r < 0 || uses[r] != 1) return false;
    const snn_ir_value *N = &f->values[n];
    int32_t x = -1;
    float c = 1.0f;
    if (N->op == SNN_OP_ADD && other_arg(N, r) >= 0) {
        x = n;   /* decay 1: simplify removed the `mul X, 1` */
    } else {
        if (uses[n] != 1 || N->op != SNN_OP_MUL || N->nargs != 2) return false;   /* D's alone */
        int32_t k = -1;
        for (int q = 0; q < 2; q++) {
            const snn_ir_value *u = &f->values[N->args[q]];
            if (u->op == SNN_OP_CONST && u->shape.rank == 0) k = N->args[q];
            else x = N->args[q];
        }
        if (x < 0 || k < 0 || !isfinite(f->values[k].fval)) return false;
        c = f->values[k].fval;
    }
    const snn_ir_value *X = &f->values[x];
    int32_t g = X->op == SNN_OP_ADD ? other_arg(X, r) : -1;
    if (g < 0 || g == r || !snn_shape_eq(f->values[g].shape, X->shape) || uses[x] != 2) return false;
    /* X's other user: the time sum */
    int32_t y = -1;
    for (int32_t i = x + 1; i < f->n_values && y < 0; i++)
        if (i != n && other_arg(&f->values[i], x) >= 0) y = i;
    if (y < 0 || f->values[y].op != SNN_OP_ADD || uses[y] != 1) return false;
    const int32_t a = state_of_next(f, y), ra = other_arg(&f->values[y], x);
    if (a < 0 || a == s || ra < 0 || ra == x) return false;
    const snn_ir_value *RA = &f->values[ra];
    if (RA->op != SNN_OP_STATE || RA->ival != a || RA->region != SNN_REGION_STEP || uses[ra] != 1 ||
        !snn_shape_eq(f->values[y].shape, X->shape))
        return false;
    *mt = (match){.sum = y, .read = ra, .term = g, .beta = c};
    return true;
}

static int32_t emit_const(snn_ir_rw *rw, float value, const char *name, snn_loc loc) {
    return snn_ir_rw_emit(rw, (snn_ir_value){.op = SNN_OP_CONST, .region = SNN_REGION_STEP,
                                             .shape = snn_shape_scalar(), .fval = value,
                                             .name = name, .loc = loc});
}

static int32_t emit_bin(snn_ir_rw *rw, snn_op op, int32_t x, int32_t y, snn_shape shape,
                        const char *name, snn_loc loc) {
    return snn_ir_rw_emit(rw, (snn_ir_value){.op = op, .region = SNN_REGION_STEP, .nargs = 2,
                                             .args = {x, y}, .shape = shape, .name = name,
                                             .loc = loc});
}

/* Emits w(t) for the current step (new ids): t + 1 for beta = 1, else
 * (1 - beta^(t+1)) * (1 / (1 - beta)), the factor computed in double from the float beta. */
static int32_t emit_weight(snn_ir_rw *rw, const match *mt, const char *base, snn_loc loc) {
    snn_arena *a = rw->a;
    const snn_shape sc = snn_shape_scalar();
    int32_t t = snn_ir_rw_emit(rw, (snn_ir_value){.op = SNN_OP_STEP, .region = SNN_REGION_STEP,
                                                  .shape = sc, .name = "t", .loc = loc});
    int32_t one = emit_const(rw, 1.0f, "one", loc);
    int32_t t1 = emit_bin(rw, SNN_OP_ADD, t, one, sc, "t1", loc);
    if (mt->beta == 1.0f) return t1;
    int32_t decay = emit_const(rw, mt->beta, "decay", loc);
    int32_t pw = emit_bin(rw, SNN_OP_POW, decay, t1, sc, snn_sprintf(a, "w.%s.pow", base), loc);
    int32_t rest = emit_bin(rw, SNN_OP_SUB, one, pw, sc, snn_sprintf(a, "w.%s.rest", base), loc);
    int32_t k = emit_const(rw, (float)(1.0 / (1.0 - (double)mt->beta)), "geo", loc);
    return emit_bin(rw, SNN_OP_MUL, rest, k, sc, snn_sprintf(a, "w.%s", base), loc);
}

bool snn_pass_timesum(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    if (f != &m->backward) return false;
    int32_t *uses = count_uses(f);
    match *at = calloc((size_t)(f->n_values > 0 ? f->n_values : 1), sizeof *at);   /* by Y */
    bool *hit = calloc((size_t)(f->n_values > 0 ? f->n_values : 1), sizeof *hit);
    if (!at || !hit) abort();
    int32_t n_match = 0;
    for (int32_t s = 0; s < f->n_states; s++) {
        match mt;
        if (match_state(f, uses, s, &mt) && !hit[mt.sum]) {
            at[mt.sum] = mt;
            hit[mt.sum] = true;
            n_match++;
        }
    }
    bool changed = false;
    if (n_match > 0) {
        /* the weights first in the step region, so that the step's fused loops can use them */
        int32_t *w_of = calloc((size_t)f->n_values, sizeof *w_of);
        if (!w_of) abort();
        snn_ir_rw rw;
        snn_ir_rw_begin(&rw, a, d, m, f);
        bool weights_done = false;
        for (int32_t i = 0; i < f->n_values && !rw.failed; i++) {
            const snn_ir_value *v = &f->values[i];
            if (!weights_done && v->region != SNN_REGION_PRE) {
                for (int32_t y = 0; y < f->n_values; y++)
                    if (hit[y]) w_of[y] = emit_weight(&rw, &at[y], f->values[at[y].term].name, f->values[y].loc);
                weights_done = true;
            }
            if (!hit[i]) {
                snn_ir_rw_copy(&rw, i, v->region);
                continue;
            }
            const match mt = at[i];
            const char *base = f->values[mt.term].name;
            int32_t w = w_of[i];
            int32_t gw = emit_bin(&rw, SNN_OP_MUL, snn_ir_rw_get(&rw, mt.term), w, v->shape,
                                  snn_sprintf(a, "%s.w", base), v->loc);
            snn_ir_rw_replace(&rw, i, (snn_ir_value){.op = SNN_OP_ADD, .region = v->region,
                                                     .nargs = 2,
                                                     .args = {snn_ir_rw_get(&rw, mt.read), gw},
                                                     .shape = v->shape, .loc = v->loc});
        }
        changed = snn_ir_rw_finish(&rw, NULL) && rw.changed;
        free(w_of);
    }
    free(hit);
    free(at);
    free(uses);
    return changed;
}
