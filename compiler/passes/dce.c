/* dce.c: dead code elimination (pass "dce").
 *
 * Removes the values and states whose results nobody needs. What is needed (the roots):
 *   - the sinks: LOSS_ADD (the loss) and GRAD_ACC (the gradients);
 *   - in the forward function, the scores state (the metric reads its final value) and, once
 *     autodiff has run, every forward value the backward function reads through FWD (the tape);
 *   - everything a needed value reads, transitively, through states: a needed STATE read makes
 *     its state needed, and a needed state its next value and its initial value.
 * A state none of whose reads is needed is removed with its reads (e.g. a spike counter no
 * loss or metric uses). Other passes leave dead values behind on purpose (simplify's folded
 * constants, cse's duplicates once redirected, a hoisted value's now unused step copy), so this
 * pass runs last in each stage.
 *
 * Requires: a verified function. Changes: drops values and states; renumbers the rest (values
 * keep their names and order; state indices, scores_state and backward FWD ids follow, see
 * compiler/ir/rewrite.h). Exact: nothing that is computed changes.
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <stdlib.h>

bool snn_pass_dce(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    const int32_t n = f->n_values, ns = f->n_states;
    bool *live = calloc((size_t)(n > 0 ? n : 1), sizeof *live);
    bool *live_state = calloc((size_t)(ns > 0 ? ns : 1), sizeof *live_state);
    if (!live || !live_state) abort();
    for (int32_t i = 0; i < n; i++)
        live[i] = snn_op_infos[f->values[i].op].cls == SNN_CLASS_SINK;
    if (f == &m->forward) {
        if (m->scores_state >= 0 && m->scores_state < ns) live_state[m->scores_state] = true;
        if (m->backward.n_values > 0) {
            bool *read = snn_ir_fwd_read_mask(m);
            for (int32_t i = 0; i < n; i++) live[i] = live[i] || read[i];
            free(read);
        }
    }
    for (bool more = true; more;) {
        more = false;
        for (int32_t i = n - 1; i >= 0; i--) {
            const snn_ir_value *v = &f->values[i];
            if (!live[i]) continue;
            for (int k = 0; k < v->nargs; k++) live[v->args[k]] = true;
            if (v->op == SNN_OP_STATE && v->ival >= 0 && v->ival < ns) live_state[v->ival] = true;
        }
        for (int s = 0; s < ns; s++) {
            const snn_ir_state *st = &f->states[s];
            if (!live_state[s]) continue;
            if (st->next >= 0 && st->next < n && !live[st->next]) live[st->next] = more = true;
            if (st->init_from >= 0 && st->init_from < n && !live[st->init_from]) live[st->init_from] = more = true;
        }
    }
    int32_t n_live = 0, ns_live = 0;
    for (int32_t i = 0; i < n; i++) n_live += live[i];
    for (int s = 0; s < ns; s++) ns_live += live_state[s];
    bool changed = false;
    if (n_live < n || ns_live < ns) {
        snn_ir_rw rw;
        snn_ir_rw_begin(&rw, a, d, m, f);
        for (int32_t i = 0; i < n; i++)
            if (live[i]) snn_ir_rw_copy(&rw, i, f->values[i].region);
        changed = snn_ir_rw_finish(&rw, live_state);
    }
    free(live);
    free(live_state);
    return changed;
}
