/* spikes.c: which values are spikes (take only the values 0 and 1): an analysis for sparse
 * products (issue 4: a matmul whose input is a spike tensor may be done as event-driven
 * accumulation of weight rows, in forward and in the weight gradient). Not a pass: codegen
 * asks snn_ir_binary_values when it chooses how to compute a LINEAR or MATMUL.
 *
 * A value is binary if its op can only produce 0 or 1 (FIRE, HEAVISIDE, the comparisons,
 * RATE, a constant 0 or 1), or it keeps binary operands binary (DETACH, BROADCAST, ABS, MUL,
 * MIN, MAX, SELECT of two binary values, 1 - b), or it reads a binary value (FWD of a binary
 * forward value; STATE of a state whose initial value and next are binary: h.spk.prev of a
 * recurrent layer). States are assumed binary and dropped until nothing changes (the largest
 * consistent set), so a spike carried through a state is found.
 */
#include "passes/passes.h"

#include <stdlib.h>

static bool is_const(const snn_ir_value *v, float c) { return v->op == SNN_OP_CONST && v->fval == c; }

static void compute(const snn_ir_func *f, const bool *fwd_bin, bool *bin) {
    const int32_t ns = f->n_states;
    bool *sb = calloc((size_t)(ns > 0 ? ns : 1), sizeof *sb);
    if (!sb) abort();
    for (int s = 0; s < ns; s++) sb[s] = true;
    for (bool more = true; more;) {
        for (int32_t i = 0; i < f->n_values; i++) {
            const snn_ir_value *v = &f->values[i];
            const bool a = v->nargs > 0 && bin[v->args[0]], b = v->nargs > 1 && bin[v->args[1]];
            bool r = false;
            switch (v->op) {
            case SNN_OP_FIRE: case SNN_OP_HEAVISIDE: case SNN_OP_RATE:
            case SNN_OP_GT: case SNN_OP_GE: case SNN_OP_LT: case SNN_OP_LE: case SNN_OP_EQ: case SNN_OP_NE:
                r = true; break;
            case SNN_OP_CONST: r = v->fval == 0.0f || v->fval == 1.0f; break;
            case SNN_OP_DETACH: case SNN_OP_BROADCAST: case SNN_OP_ABS: r = a; break;
            case SNN_OP_MUL: case SNN_OP_MIN: case SNN_OP_MAX: r = a && b; break;
            case SNN_OP_SELECT: r = b && bin[v->args[2]]; break;
            case SNN_OP_SUB: r = is_const(&f->values[v->args[0]], 1.0f) && b; break;
            case SNN_OP_FWD: r = fwd_bin && fwd_bin[v->ival]; break;
            case SNN_OP_STATE: r = sb[v->ival]; break;
            default: break;
            }
            bin[i] = r;
        }
        more = false;
        for (int s = 0; s < ns; s++) {
            const snn_ir_state *st = &f->states[s];
            bool ok = st->init_from >= 0 ? bin[st->init_from] : (st->init == 0.0f || st->init == 1.0f);
            ok = ok && st->next >= 0 && bin[st->next];
            if (sb[s] && !ok) { sb[s] = false; more = true; }
        }
    }
    free(sb);
}

bool *snn_ir_binary_values(const snn_ir_module *m, const snn_ir_func *f) {
    bool *bin = calloc((size_t)(f->n_values > 0 ? f->n_values : 1), sizeof *bin);
    if (!bin) abort();
    if (f == &m->backward) {
        bool *fb = snn_ir_binary_values(m, &m->forward);
        compute(f, fb, bin);
        free(fb);
    } else {
        compute(f, NULL, bin);
    }
    return bin;
}
