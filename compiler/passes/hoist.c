/* hoist.c: time-invariance hoisting (pass "hoist").
 *
 * Lowering computes everything in the step region, so the direct-encoded input and
 * linear(x, h.weight, h.bias) of it are computed T times although they are the same at every
 * step. This pass moves every step value that does not depend on t into the pre region, where
 * it is computed once per batch. For Tutorial 5 that is the layer-1 matmul: 25 x 128 x 784 x
 * 1000 multiply-adds per iteration become 1/25 of that. Run before autodiff it also shapes the
 * gradient: autodiff sums the adjoints of pre values used in the loop over time (in an
 * accumulator state) and differentiates the pre region once, after the loop, so the weight
 * gradient of a hoisted linear is one matmul of the time-summed gradient, not T matmuls.
 *
 * A step value is time-invariant if its op is pure (CONST, PARAM, INPUT, STEPS, elementwise,
 * linear algebra, reductions) and every operand is a pre value or a time-invariant step value.
 * Not invariant: STATE reads (the previous step's value), RATE (a new random draw every step),
 * FWD of a forward step value (backward only; FWD of a forward pre value is invariant), and
 * anything that uses one of these. Never moved: sinks (LOSS_ADD and GRAD_ACC act once per
 * step) and loss ops (CROSS_ENTROPY, ...; autodiff seeds losses where the sink is). A value
 * that is a state's next moves too, but the state needs a step value as its next (ir.h), so it
 * gets a step copy `NAME.step = mul NAME, 1` (exact for every float, nan and -0 included; simplify
 * leaves it alone since its replacement would not be a step value).
 *
 * Requires: a verified function. Changes: the regions of the moved values and the value ids
 * (the array is rebuilt: pre values, then the hoisted ones in their old order, then the rest),
 * with every reference renumbered (compiler/ir/rewrite.h); adds the step copies above and their
 * constant 1. Values keep their names. Exact: a moved value is computed by the same op on the
 * same operands, once instead of T times.
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <stdlib.h>

static bool movable(const snn_ir_module *m, const snn_ir_func *f, const snn_ir_value *v) {
    if (v->op == SNN_OP_FWD)   /* backward: the tape of a forward pre value is its one value */
        return f == &m->backward && v->ival >= 0 && v->ival < m->forward.n_values &&
               m->forward.values[v->ival].region == SNN_REGION_PRE;
    if (!snn_ir_op_is_pure(v->op)) return false;
    return snn_op_infos[v->op].cls != SNN_CLASS_LOSS;
}

/* Is v, a state's next, already the step copy `mul p, 1` of a pre value p? (Moving it would
 * only make another copy.) */
static bool is_step_copy(const snn_ir_func *f, const snn_ir_value *v) {
    if (v->op != SNN_OP_MUL || v->nargs != 2) return false;
    const snn_ir_value *p = &f->values[v->args[0]], *one = &f->values[v->args[1]];
    return p->region == SNN_REGION_PRE && one->op == SNN_OP_CONST && one->fval == 1.0f;
}

bool snn_pass_hoist(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    const int32_t n = f->n_values;
    bool *is_next = snn_ir_state_next_mask(f);
    bool *in_pre = calloc((size_t)(n > 0 ? n : 1), sizeof *in_pre);  /* pre after the pass */
    if (!in_pre) abort();
    int32_t n_hoisted = 0, n_next = 0;
    for (int32_t i = 0; i < n; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->region == SNN_REGION_PRE) { in_pre[i] = true; continue; }
        if (v->region != SNN_REGION_STEP || !movable(m, f, v) || (is_next[i] && is_step_copy(f, v))) continue;
        bool inv = true;
        for (int k = 0; k < v->nargs && inv; k++) inv = in_pre[v->args[k]];
        if (inv) { in_pre[i] = true; n_hoisted++; n_next += is_next[i]; }
    }
    bool changed = false;
    if (n_hoisted > 0) {
        snn_ir_rw rw;
        snn_ir_rw_begin(&rw, a, d, m, f);
        for (int32_t i = 0; i < n; i++)
            if (in_pre[i]) snn_ir_rw_copy(&rw, i, SNN_REGION_PRE);
        /* step copies for hoisted state nexts: copy[i] = new id of `mul v, 1` */
        int32_t *copy = calloc((size_t)(n > 0 ? n : 1), sizeof *copy);
        if (!copy) abort();
        if (n_next > 0) {
            snn_loc none = {m->source_file, 0, 0};
            int32_t one = snn_ir_rw_emit(&rw, (snn_ir_value){.op = SNN_OP_CONST, .region = SNN_REGION_PRE,
                                                              .name = "one", .fval = 1.0f, .loc = none});
            for (int32_t i = 0; i < n && one >= 0; i++) {
                if (!in_pre[i] || !is_next[i] || f->values[i].region != SNN_REGION_STEP) continue;
                const snn_ir_value *v = &f->values[i];
                copy[i] = snn_ir_rw_emit(&rw, (snn_ir_value){.op = SNN_OP_MUL, .region = SNN_REGION_STEP,
                    .nargs = 2, .args = {snn_ir_rw_get(&rw, i), one}, .shape = v->shape,
                    .name = snn_sprintf(a, "%s.step", v->name), .loc = v->loc});
            }
        }
        for (int32_t i = 0; i < n; i++)
            if (!in_pre[i]) snn_ir_rw_copy(&rw, i, f->values[i].region);
        /* the old ids of the states' nexts, before finish renumbers them */
        int32_t *next_old = calloc((size_t)(f->n_states > 0 ? f->n_states : 1), sizeof *next_old);
        if (!next_old) abort();
        for (int s = 0; s < f->n_states; s++) next_old[s] = f->states[s].next;
        changed = snn_ir_rw_finish(&rw, NULL) && rw.changed;
        if (changed && n_next > 0)
            for (int s = 0; s < f->n_states; s++) {
                int32_t o = next_old[s];
                if (o >= 0 && o < n && in_pre[o] && is_next[o] && copy[o] > 0) f->states[s].next = copy[o];
            }
        free(next_old);
        free(copy);
    }
    free(is_next);
    free(in_pre);
    return changed;
}
