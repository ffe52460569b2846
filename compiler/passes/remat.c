/* remat.c: rematerialization of taped values (pass "remat").
 *
 * The backward function reads forward step values through FWD, and codegen keeps a tape of
 * every forward step value backward reads: T copies of each. Some of them are one cheap
 * elementwise op away from values that are taped anyway, and recomputing them in the backward
 * step costs one op per element while storing them costs T x B x N floats. The typical case is
 * the spike: autodiff reads `h.spk = fire(h.v)` (the input of the next layer's weight
 * gradient) and `h.v = h.mem - threshold` (the surrogate's argument); since h.v is taped,
 * h.spk is recomputed as heaviside(h.v) and leaves the tape. For Tutorial 5 that is the
 * [T, B, 1000] spike tape, a third of the tape.
 *
 * A FWD read of forward value v in the backward step region is replaced by v's op applied to
 * FWD reads of v's operands when
 *   - v is a forward step value computed by an elementwise op other than RATE (a random draw);
 *     FIRE is recomputed as HEAVISIDE (the same forward value; backward is not differentiated);
 *   - every operand of v is a forward pre value (its FWD costs no tape), or a forward step
 *     value that backward reads anyway, not through v (so the tape really shrinks).
 * The recomputation reads the operands through the existing FWD reads of them (moved up to
 * the first use if they came later), so the backward function keeps one read per taped value
 * and its names. It runs first in stage 2, before dce drops what is left over.
 *
 * Requires: a verified module with a backward function. Changes: the backward function only
 * (FWD values replaced by recomputations; new FWD and op values in the step region). Exact:
 * the same op on the same operand values gives the same bits.
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <stdlib.h>

static bool recomputable(snn_op op) {
    return snn_op_infos[op].cls == SNN_CLASS_ELEMWISE && op != SNN_OP_RATE;
}

bool snn_pass_remat(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    if (f != &m->backward) return false;
    const snn_ir_func *F = &m->forward;
    const int32_t nf = F->n_values;
    /* taped[v]: forward step values read by backward step FWDs */
    int32_t *taped = calloc((size_t)(nf > 0 ? nf : 1), sizeof *taped);
    bool *remat = calloc((size_t)(nf > 0 ? nf : 1), sizeof *remat);
    if (!taped || !remat) abort();
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->op == SNN_OP_FWD && v->region == SNN_REGION_STEP && F->values[v->ival].region == SNN_REGION_STEP)
            taped[v->ival]++;
    }
    int32_t n_remat = 0;
    for (int32_t fv = 0; fv < nf; fv++) {
        const snn_ir_value *v = &F->values[fv];
        if (!taped[fv] || !recomputable(v->op)) continue;
        bool ok = true;
        for (int k = 0; k < v->nargs && ok; k++) {
            const snn_ir_value *u = &F->values[v->args[k]];
            ok = u->region == SNN_REGION_PRE ||
                 (u->region == SNN_REGION_STEP && taped[v->args[k]] > 0 && !remat[v->args[k]] && v->args[k] != fv);
        }
        if (ok) { remat[fv] = true; n_remat++; }
    }
    bool changed = false;
    if (n_remat > 0) {
        /* first_read[u]: the first backward step FWD of forward value u that stays */
        int32_t *first_read = malloc((size_t)(nf > 0 ? nf : 1) * sizeof *first_read);
        if (!first_read) abort();
        for (int32_t u = 0; u < nf; u++) first_read[u] = -1;
        for (int32_t i = f->n_values - 1; i >= 0; i--) {
            const snn_ir_value *v = &f->values[i];
            if (v->op == SNN_OP_FWD && v->region == SNN_REGION_STEP && !remat[v->ival]) first_read[v->ival] = i;
        }
        snn_ir_rw rw;
        snn_ir_rw_begin(&rw, a, d, m, f);
        for (int32_t i = 0; i < f->n_values && !rw.failed; i++) {
            const snn_ir_value *b = &f->values[i];
            if (snn_ir_rw_get(&rw, i) >= 0) continue;   /* a read emitted early, below */
            if (!(b->op == SNN_OP_FWD && b->region == SNN_REGION_STEP && remat[b->ival])) {
                snn_ir_rw_copy(&rw, i, b->region);
                continue;
            }
            const snn_ir_value *v = &F->values[b->ival];
            snn_ir_value r = {.op = v->op == SNN_OP_FIRE ? SNN_OP_HEAVISIDE : v->op, .region = SNN_REGION_STEP,
                              .nargs = v->nargs, .shape = v->shape, .loc = b->loc};
            for (int k = 0; k < v->nargs; k++) {
                const snn_ir_value *u = &F->values[v->args[k]];
                snn_ir_value rd = {.op = SNN_OP_FWD, .region = SNN_REGION_STEP, .ival = v->args[k],
                                   .shape = u->shape, .name = u->name, .loc = b->loc};
                int32_t j = first_read[v->args[k]];
                if (j >= 0 && snn_ir_rw_get(&rw, j) >= 0) {         /* read already */
                    r.args[k] = snn_ir_rw_get(&rw, j);
                } else if (j >= 0) {                                /* its read, moved up here */
                    rd.loc = f->values[j].loc;
                    r.args[k] = snn_ir_rw_replace(&rw, j, rd);
                } else {                                            /* a pre value: a new read */
                    r.args[k] = snn_ir_rw_emit(&rw, rd);
                }
            }
            snn_ir_rw_replace(&rw, i, r);
        }
        changed = snn_ir_rw_finish(&rw, NULL) && rw.changed;
        free(first_read);
    }
    free(taped);
    free(remat);
    return changed;
}
