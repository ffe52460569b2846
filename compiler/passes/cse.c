/* cse.c: common subexpression elimination (pass "cse").
 *
 * Two values that compute the same thing from the same operands become one: the later one's
 * users read the earlier one. Lowering inlines every neuron, so the same constant appears once
 * per use site and `mem - threshold` is computed for the reset and again for the spike; autodiff
 * clones leaves and FWD reads per rule. "The same thing" is snn_ir_value_same (rewrite.h): op,
 * operands (either order for add, mul, eq, ne), shape, and every attribute (constant bits,
 * surrogate index, loss targets), in one pass over the values in order, with a hash table of
 * the values kept so far.
 *
 * Which values may merge: pure ops (snn_ir_op_is_pure) when the earlier one is visible from the
 * later one's region (pre, or the same region), and STATE and FWD reads only within one region
 * (a state read in the post region is the final value, in the step region the previous one).
 * Never: RATE (each is its own random draw by intent), sinks. A value that is a state's next
 * only merges with a step value (a state's next must stay in the step region).
 *
 * Requires: a verified function. Changes: redirects uses and drops the duplicates (the array is
 * rebuilt, compiler/ir/rewrite.h); the kept value is the earliest one and keeps its name.
 * Exact: the kept value computes bit for bit what the dropped one did.
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <stdlib.h>
#include <string.h>

static bool mergeable(snn_op op) {
    return snn_ir_op_is_pure(op) || op == SNN_OP_STATE || op == SNN_OP_FWD;
}

static uint64_t mix(uint64_t h, uint64_t x) {
    h ^= x + 0x9e3779b97f4a7c15ull + (h << 6) + (h >> 2);
    return h;
}

static uint64_t hash_value(const snn_ir_value *v) {
    uint64_t h = mix(0, (uint64_t)v->op);
    int32_t a0 = v->nargs > 0 ? v->args[0] : -1, a1 = v->nargs > 1 ? v->args[1] : -1;
    if (v->nargs == 2 && (v->op == SNN_OP_ADD || v->op == SNN_OP_MUL || v->op == SNN_OP_EQ || v->op == SNN_OP_NE) && a1 < a0) {
        int32_t t = a0; a0 = a1; a1 = t;
    }
    h = mix(h, (uint64_t)(uint32_t)a0);
    h = mix(h, (uint64_t)(uint32_t)a1);
    h = mix(h, (uint64_t)(uint32_t)(v->nargs > 2 ? v->args[2] : -1));
    h = mix(h, (uint64_t)(uint32_t)v->ival);
    uint32_t fb;
    memcpy(&fb, &v->fval, sizeof fb);
    h = mix(h, fb);
    for (int k = 0; k < v->shape.rank; k++) h = mix(h, (uint64_t)v->shape.dim[k]);
    return h;
}

bool snn_pass_cse(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    const int32_t n = f->n_values;
    bool *is_next = snn_ir_state_next_mask(f);
    size_t cap = 16;
    while (cap < 2 * (size_t)n) cap *= 2;
    int32_t *table = malloc(cap * sizeof *table);
    if (!table) abort();
    for (size_t k = 0; k < cap; k++) table[k] = -1;
    snn_ir_rw rw;
    snn_ir_rw_begin(&rw, a, d, m, f);
    for (int32_t i = 0; i < n && !rw.failed; i++) {
        const snn_ir_value *v = &f->values[i];
        if (!mergeable(v->op)) { snn_ir_rw_copy(&rw, i, v->region); continue; }
        snn_ir_value c = *v;
        for (int k = 0; k < c.nargs; k++) c.args[k] = snn_ir_rw_get(&rw, c.args[k]);
        const bool read = v->op == SNN_OP_STATE || v->op == SNN_OP_FWD;
        size_t slot = (size_t)hash_value(&c) & (cap - 1);
        int32_t found = -1;
        for (; table[slot] >= 0; slot = (slot + 1) & (cap - 1)) {
            const snn_ir_value *w = snn_ir_rw_new(&rw, table[slot]);
            bool visible = read ? w->region == c.region : (w->region == SNN_REGION_PRE || w->region == c.region);
            if (is_next[i] && w->region != SNN_REGION_STEP) visible = false;
            if (visible && snn_ir_value_same(&c, w)) { found = table[slot]; break; }
        }
        if (found >= 0) { snn_ir_rw_alias(&rw, i, found); continue; }
        int32_t id = snn_ir_rw_copy(&rw, i, v->region);
        if (id < 0) break;
        /* slot is the first empty one on this key's probe sequence */
        table[slot] = id;
    }
    bool changed = false;
    if (rw.changed || rw.failed) changed = snn_ir_rw_finish(&rw, NULL) && rw.changed;
    else snn_ir_rw_abort(&rw);
    free(table);
    free(is_next);
    return changed;
}
