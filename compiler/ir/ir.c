/* ir.c: building SNN IR modules (see ir.h): the op table, shapes, and appending values.
 * Appending is the only way values enter a function, so region order and unique names are
 * enforced in one place. */
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const snn_op_info snn_op_infos[SNN_OP_COUNT_] = {
#define IR_OP(name, mnemonic, arity, cls) [SNN_OP_##name] = {mnemonic, arity, SNN_CLASS_##cls},
#include "ir/ops.def"
#undef IR_OP
};

snn_ir_module *snn_ir_module_new(snn_arena *a, const char *name) {
    snn_ir_module *m = snn_alloc(a, sizeof *m);
    m->name = name;
    m->forward.name = "forward";
    m->forward.time_dir = 1;
    m->backward.name = "backward";
    m->backward.time_dir = -1;
    m->scores_state = -1;
    return m;
}

static void func_free(snn_ir_func *f) {
    free(f->values);
    free(f->states);
    f->values = NULL; f->states = NULL;
    f->n_values = f->cap_values = f->n_states = f->cap_states = 0;
}

void snn_ir_module_free(snn_ir_module *m) {
    if (!m) return;
    func_free(&m->forward);
    func_free(&m->backward);
    for (int i = 0; i < m->n_surrogates; i++) free(m->surrogates[i].values);
    free(m->surrogates);
    free(m->params);
    m->surrogates = NULL; m->params = NULL;
}

int32_t snn_ir_add_param(snn_ir_module *m, snn_ir_param p) {
    SNN_PUSH(m->params, m->n_params, m->cap_params, p);
    return m->n_params - 1;
}

int32_t snn_ir_add_state(snn_ir_func *f, snn_ir_state s) {
    SNN_PUSH(f->states, f->n_states, f->cap_states, s);
    return f->n_states - 1;
}

static bool name_used(const snn_ir_func *f, const char *name) {
    for (int i = 0; i < f->n_values; i++)
        if (f->values[i].name && strcmp(f->values[i].name, name) == 0) return true;
    return false;
}

int32_t snn_ir_append(snn_arena *a, snn_ir_func *f, snn_ir_value v) {
    const char *base = v.name ? v.name : snn_op_infos[v.op].mnemonic;
    const char *name = base;
    /* Quadratic in the worst case, but functions have hundreds of values, not millions. */
    for (int k = 1; name_used(f, name); k++) name = snn_sprintf(a, "%s.%d", base, k);
    v.name = snn_intern_cstr(a, name);
    SNN_PUSH(f->values, f->n_values, f->cap_values, v);
    return f->n_values - 1;
}

snn_shape snn_shape_scalar(void) { snn_shape s = {0, {0}}; return s; }
snn_shape snn_shape_1(int64_t d0) { snn_shape s = {1, {d0}}; return s; }
snn_shape snn_shape_2(int64_t d0, int64_t d1) { snn_shape s = {2, {d0, d1}}; return s; }

bool snn_shape_eq(snn_shape a, snn_shape b) {
    if (a.rank != b.rank) return false;
    for (int i = 0; i < a.rank; i++)
        if (a.dim[i] != b.dim[i]) return false;
    return true;
}

bool snn_shape_broadcast(snn_shape a, snn_shape b, snn_shape *out) {
    snn_shape r = a.rank >= b.rank ? a : b;
    const snn_shape *s = a.rank >= b.rank ? &b : &a;
    for (int i = 0; i < s->rank; i++) {   /* right-aligned */
        int64_t x = r.dim[r.rank - 1 - i], y = s->dim[s->rank - 1 - i];
        if (x != y) return false;
    }
    *out = r;
    return true;
}

int64_t snn_shape_numel(snn_shape s, int64_t batch) {
    int64_t n = 1;
    for (int i = 0; i < s.rank; i++) n *= snn_shape_dim(s, i, batch);
    return n;
}

int64_t snn_shape_dim(snn_shape s, int i, int64_t batch) {
    return s.dim[i] == SNN_DIM_B ? batch : s.dim[i];
}
