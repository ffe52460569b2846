/* rewrite.c: rebuilding a function (see rewrite.h).
 *
 * The rewriter never edits the old array: it fills a new one and keeps a map old id -> new id.
 * All references that live outside the values (state next/init_from, STATE indices, the module's
 * scores state, the backward function's FWD ops) are checked first and only then rewritten, so
 * a failed finish leaves the module exactly as it was and the verifier's error, not a crash,
 * tells the story.
 */
#include "ir/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) { fputs("snnc: out of memory\n", stderr); abort(); }
    return p;
}

static snn_loc func_loc(const snn_ir_rw *rw) { return (snn_loc){rw->m->source_file, 0, 0}; }

void snn_ir_rw_begin(snn_ir_rw *rw, snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    memset(rw, 0, sizeof *rw);
    rw->a = a; rw->d = d; rw->m = m; rw->f = f;
    rw->old = f->values;
    rw->n_old = f->n_values;
    rw->map = xcalloc((size_t)f->n_values, sizeof *rw->map);
    for (int32_t i = 0; i < f->n_values; i++) rw->map[i] = -1;
}

static bool push(snn_ir_rw *rw, const snn_ir_value *v) {
    if (rw->n > 0 && v->region < rw->vals[rw->n - 1].region) {
        snn_internal_error(rw->d, v->loc, "%s: rewrite emits %%%s in region %d after region %d",
                           rw->f->name, v->name, (int)v->region, (int)rw->vals[rw->n - 1].region);
        rw->failed = true;
        return false;
    }
    SNN_PUSH(rw->vals, rw->n, rw->cap, *v);
    return true;
}

int32_t snn_ir_rw_copy(snn_ir_rw *rw, int32_t old_id, snn_region r) {
    if (old_id < 0 || old_id >= rw->n_old) {
        snn_internal_error(rw->d, func_loc(rw), "%s: rewrite copies value %d, which does not exist", rw->f->name, (int)old_id);
        rw->failed = true;
        return -1;
    }
    snn_ir_value v = rw->old[old_id];
    for (int k = 0; k < v.nargs; k++) {
        int32_t na = snn_ir_rw_get(rw, v.args[k]);
        if (na < 0) {
            snn_internal_error(rw->d, v.loc, "%s: rewrite copies %%%s before its operand %d", rw->f->name, v.name, (int)v.args[k]);
            rw->failed = true;
            return -1;
        }
        v.args[k] = na;
    }
    if (v.region != r) rw->changed = true;
    v.region = r;
    if (!push(rw, &v)) return -1;
    rw->map[old_id] = rw->n - 1;
    if (rw->n - 1 != old_id) rw->changed = true;
    return rw->n - 1;
}

static bool name_taken(const snn_ir_rw *rw, const char *name) {
    for (int32_t i = 0; i < rw->n_old; i++)
        if (rw->old[i].name && strcmp(rw->old[i].name, name) == 0) return true;
    for (int32_t i = 0; i < rw->n; i++)
        if (rw->vals[i].name && strcmp(rw->vals[i].name, name) == 0) return true;
    return false;
}

int32_t snn_ir_rw_emit(snn_ir_rw *rw, snn_ir_value v) {
    for (int k = 0; k < v.nargs; k++)
        if (v.args[k] < 0 || v.args[k] >= rw->n) {
            snn_internal_error(rw->d, v.loc, "%s: rewrite emits a value with operand %d, not yet emitted", rw->f->name, (int)v.args[k]);
            rw->failed = true;
            return -1;
        }
    const char *base = v.name ? v.name : snn_op_infos[v.op].mnemonic;
    const char *name = base;
    for (int k = 1; name_taken(rw, name); k++) name = snn_sprintf(rw->a, "%s.%d", base, k);
    v.name = snn_intern_cstr(rw->a, name);
    if (!push(rw, &v)) return -1;
    rw->changed = true;
    return rw->n - 1;
}

int32_t snn_ir_rw_replace(snn_ir_rw *rw, int32_t old_id, snn_ir_value v) {
    if (old_id < 0 || old_id >= rw->n_old || rw->map[old_id] >= 0) {
        snn_internal_error(rw->d, v.loc, "%s: rewrite replaces value %d twice or out of range", rw->f->name, (int)old_id);
        rw->failed = true;
        return -1;
    }
    for (int k = 0; k < v.nargs; k++)
        if (v.args[k] < 0 || v.args[k] >= rw->n) {
            snn_internal_error(rw->d, v.loc, "%s: rewrite emits a value with operand %d, not yet emitted", rw->f->name, (int)v.args[k]);
            rw->failed = true;
            return -1;
        }
    const snn_ir_value *o = &rw->old[old_id];
    v.name = o->name;   /* unique among the old values, and emit never takes an old name */
    if (!v.loc.file && !v.loc.line && !v.loc.col) v.loc = o->loc;
    if (!push(rw, &v)) return -1;
    rw->map[old_id] = rw->n - 1;
    rw->changed = true;
    return rw->n - 1;
}

void snn_ir_rw_alias(snn_ir_rw *rw, int32_t old_id, int32_t new_id) {
    if (old_id < 0 || old_id >= rw->n_old || new_id < 0 || new_id >= rw->n) {
        snn_internal_error(rw->d, func_loc(rw), "%s: rewrite aliases value %d to %d, out of range", rw->f->name, (int)old_id, (int)new_id);
        rw->failed = true;
        return;
    }
    if (!snn_shape_eq(rw->old[old_id].shape, rw->vals[new_id].shape)) {
        snn_internal_error(rw->d, rw->old[old_id].loc, "%s: rewrite replaces %%%s by %%%s of another shape", rw->f->name,
                           rw->old[old_id].name, rw->vals[new_id].name);
        rw->failed = true;
        return;
    }
    rw->map[old_id] = new_id;
    rw->changed = true;
}

static void rw_free(snn_ir_rw *rw) {
    free(rw->map);
    rw->map = NULL;
}

void snn_ir_rw_abort(snn_ir_rw *rw) {
    free(rw->vals);
    rw->vals = NULL;
    rw->n = rw->cap = 0;
    rw_free(rw);
}

bool snn_ir_rw_finish(snn_ir_rw *rw, const bool *keep_states) {
    snn_ir_module *m = rw->m;
    snn_ir_func *f = rw->f;
    const bool is_fwd = f == &m->forward;
    bool ok = !rw->failed;
    /* new state numbering */
    int32_t *snew = xcalloc((size_t)f->n_states, sizeof *snew);
    int32_t ns = 0;
    for (int s = 0; s < f->n_states; s++) snew[s] = !keep_states || keep_states[s] ? ns++ : -1;
    /* check everything first */
    for (int s = 0; ok && s < f->n_states; s++) {
        if (snew[s] < 0) continue;
        const snn_ir_state *st = &f->states[s];
        if (snn_ir_rw_get(rw, st->next) < 0) {
            snn_internal_error(rw->d, st->loc, "%s: rewrite dropped %%%s, the next value of state %s", f->name,
                               st->next >= 0 && st->next < rw->n_old ? rw->old[st->next].name : "?", st->name);
            ok = false;
        }
        if (st->init_from >= 0 && snn_ir_rw_get(rw, st->init_from) < 0) {
            snn_internal_error(rw->d, st->loc, "%s: rewrite dropped the initial value of state %s", f->name, st->name);
            ok = false;
        }
    }
    for (int32_t i = 0; ok && i < rw->n; i++) {
        const snn_ir_value *v = &rw->vals[i];
        if (v->op == SNN_OP_STATE && (v->ival < 0 || v->ival >= f->n_states || snew[v->ival] < 0)) {
            snn_internal_error(rw->d, v->loc, "%s: rewrite dropped the state %%%s reads", f->name, v->name);
            ok = false;
        }
    }
    if (ok && is_fwd && m->scores_state >= 0 && m->scores_state < f->n_states && snew[m->scores_state] < 0) {
        snn_internal_error(rw->d, func_loc(rw), "forward: rewrite dropped the scores state");
        ok = false;
    }
    if (ok && is_fwd)
        for (int32_t i = 0; i < m->backward.n_values; i++) {
            const snn_ir_value *v = &m->backward.values[i];
            if (v->op == SNN_OP_FWD && snn_ir_rw_get(rw, v->ival) < 0) {
                snn_internal_error(rw->d, v->loc, "backward: %%%s reads forward value %d, which the rewrite dropped", v->name, (int)v->ival);
                ok = false;
            }
        }
    if (!ok) {
        free(snew);
        snn_ir_rw_abort(rw);
        return false;
    }
    /* then rewrite */
    if (rw->n != rw->n_old || ns != f->n_states) rw->changed = true;
    for (int32_t i = 0; i < rw->n; i++)
        if (rw->vals[i].op == SNN_OP_STATE) rw->vals[i].ival = snew[rw->vals[i].ival];
    const int32_t n_states_old = f->n_states;
    int32_t k = 0;
    for (int s = 0; s < n_states_old; s++) {
        if (snew[s] < 0) continue;
        snn_ir_state st = f->states[s];
        st.next = rw->map[st.next];
        if (st.init_from >= 0) st.init_from = rw->map[st.init_from];
        f->states[k++] = st;
    }
    f->n_states = k;
    if (is_fwd) {
        if (m->scores_state >= 0 && m->scores_state < n_states_old) m->scores_state = snew[m->scores_state];
        for (int32_t i = 0; i < m->backward.n_values; i++)
            if (m->backward.values[i].op == SNN_OP_FWD) m->backward.values[i].ival = rw->map[m->backward.values[i].ival];
    }
    free(snew);
    free(f->values);
    f->values = rw->vals;
    f->n_values = rw->n;
    f->cap_values = rw->cap;
    rw->vals = NULL;
    rw->n = rw->cap = 0;
    rw_free(rw);
    return true;
}

bool *snn_ir_state_next_mask(const snn_ir_func *f) {
    bool *mask = xcalloc((size_t)f->n_values, sizeof *mask);
    for (int s = 0; s < f->n_states; s++)
        if (f->states[s].next >= 0 && f->states[s].next < f->n_values) mask[f->states[s].next] = true;
    return mask;
}

bool *snn_ir_fwd_read_mask(const snn_ir_module *m) {
    bool *mask = xcalloc((size_t)m->forward.n_values, sizeof *mask);
    for (int32_t i = 0; i < m->backward.n_values; i++) {
        const snn_ir_value *v = &m->backward.values[i];
        if (v->op == SNN_OP_FWD && v->ival >= 0 && v->ival < m->forward.n_values) mask[v->ival] = true;
    }
    return mask;
}

bool snn_ir_op_is_pure(snn_op op) {
    switch (op) {
    case SNN_OP_STATE: case SNN_OP_STEP: case SNN_OP_FWD: case SNN_OP_ARG: case SNN_OP_RATE: return false;
    default: return snn_op_infos[op].cls != SNN_CLASS_SINK;
    }
}

static bool commutative(snn_op op) {
    return op == SNN_OP_ADD || op == SNN_OP_MUL || op == SNN_OP_EQ || op == SNN_OP_NE;
}

bool snn_ir_value_same(const snn_ir_value *x, const snn_ir_value *y) {
    if (x->op != y->op || x->nargs != y->nargs || x->ival != y->ival || !snn_shape_eq(x->shape, y->shape)) return false;
    if (memcmp(&x->fval, &y->fval, sizeof x->fval) != 0 || memcmp(x->attr, y->attr, sizeof x->attr) != 0) return false;
    bool same = true;
    for (int k = 0; k < x->nargs; k++) same = same && x->args[k] == y->args[k];
    if (!same && x->nargs == 2 && commutative(x->op)) same = x->args[0] == y->args[1] && x->args[1] == y->args[0];
    return same;
}
