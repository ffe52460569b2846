/* stats.c: FLOP accounting for `snnc --stats`.
 *
 * The counts come from the IR, after the passes, so they show what the generated code really
 * does: once `hoist` has moved linear(x) out of the step loop its FLOPs count once per batch,
 * not T times. Layers are the model's layer names, recovered from value names ("h.mem" belongs
 * to layer h; backward values are named "d.h.mem", "dW.h.weight"...), which lowering and
 * autodiff keep stable for exactly this kind of report.
 */
#include "stats.h"

#include <stdio.h>
#include <string.h>

double snn_stats_value_flops(const snn_ir_module *m, const snn_ir_func *f, int32_t id,
                             int64_t batch) {
    const snn_ir_value *v = &f->values[id];
    const snn_op_info *info = &snn_op_infos[v->op];
    double n = (double)snn_shape_numel(v->shape, batch);
    switch (v->op) {
    case SNN_OP_LINEAR: {
        snn_shape xs = f->values[v->args[0]].shape;
        double in = (double)snn_shape_dim(xs, xs.rank - 1, batch);
        return 2.0 * n * in + (v->nargs > 2 ? n : 0);
    }
    case SNN_OP_MATMUL_NN: {                 /* a[M,K] b[K,N] */
        snn_shape as = f->values[v->args[0]].shape;
        return 2.0 * n * (double)snn_shape_dim(as, as.rank - 1, batch);
    }
    case SNN_OP_MATMUL_TN: {                 /* a[K,M]^T b[K,N] */
        snn_shape as = f->values[v->args[0]].shape;
        return 2.0 * n * (double)snn_shape_dim(as, 0, batch);
    }
    case SNN_OP_SUM_TO:
        return (double)snn_shape_numel(f->values[v->args[0]].shape, batch);
    case SNN_OP_CROSS_ENTROPY: case SNN_OP_MSE_ONEHOT:
        return 4.0 * (double)snn_shape_numel(f->values[v->args[0]].shape, batch);
    case SNN_OP_CE_GRAD: case SNN_OP_MSE_ONEHOT_GRAD:
        return 4.0 * n;
    case SNN_OP_GRAD_ACC:
        return (double)snn_shape_numel(m->params[v->ival].shape, batch);
    default:
        break;
    }
    if (info->cls == SNN_CLASS_ELEMWISE) return n;
    return 0;
}

/* "h" from "h.mem", "d.h.mem", "dW.h.weight"; NULL for values of no layer. */
static const char *layer_of(const char *name, char *buf, size_t cap) {
    const char *s = name;
    if (!strncmp(s, "d.", 2)) s += 2;
    else if (!strncmp(s, "dW.", 3) || !strncmp(s, "db.", 3) || !strncmp(s, "dx.", 3)) s += 3;
    const char *dot = strchr(s, '.');
    if (!dot || (size_t)(dot - s) >= cap) return NULL;
    memcpy(buf, s, (size_t)(dot - s));
    buf[dot - s] = 0;
    return buf;
}

/* True if some parameter or forward state belongs to layer L ("L.something"). */
static bool is_layer(const snn_ir_module *m, const char *L) {
    size_t k = strlen(L);
    for (int32_t p = 0; p < m->n_params; p++)
        if (!strncmp(m->params[p].name, L, k) && m->params[p].name[k] == '.') return true;
    for (int32_t s = 0; s < m->forward.n_states; s++)
        if (!strncmp(m->forward.states[s].name, L, k) && m->forward.states[s].name[k] == '.') return true;
    return false;
}

static int entry(snn_layer_stats *out, int *n, int cap, const char *layer) {
    for (int i = 0; i < *n; i++)
        if (!strcmp(out[i].layer, layer)) return i;
    if (*n >= cap) return -1;
    memset(&out[*n], 0, sizeof out[*n]);
    snprintf(out[*n].layer, sizeof out[*n].layer, "%s", layer);
    return (*n)++;
}

int snn_stats_flops(const snn_ir_module *m, int64_t batch, int64_t steps, snn_layer_stats *out,
                    int cap) {
    int n = 0;
    const snn_ir_func *fs[2] = {&m->forward, &m->backward};
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = fs[fi];
        for (int32_t id = 0; id < f->n_values; id++) {
            double fl = snn_stats_value_flops(m, f, id, batch);
            if (fl == 0) continue;
            if (f->values[id].region == SNN_REGION_STEP) fl *= (double)steps;
            char buf[32];
            const char *L = layer_of(f->values[id].name, buf, sizeof buf);
            int e = entry(out, &n, cap, L && is_layer(m, L) ? L : "(other)");
            if (e < 0) continue;
            if (fi == 0) out[e].fwd_flops += fl; else out[e].bwd_flops += fl;
        }
    }
    return n;
}

/* The entry of value `name`'s layer ("(other)" if none), added if new; -1 if out is full. */
static int entry_of(const snn_ir_module *m, const char *name, snn_layer_stats *out, int *n,
                    int cap) {
    char buf[32];
    const char *L = name ? layer_of(name, buf, sizeof buf) : NULL;
    return entry(out, n, cap, L && is_layer(m, L) ? L : "(other)");
}

int snn_stats_add_tape(const snn_ir_module *m, const char *name, double bytes,
                       snn_layer_stats *out, int n, int cap) {
    int e = entry_of(m, name, out, &n, cap);
    if (e >= 0) out[e].tape_bytes += bytes;
    return n;
}

int snn_stats_add_bwd_flops(const snn_ir_module *m, const char *name, double flops,
                            snn_layer_stats *out, int n, int cap) {
    int e = entry_of(m, name, out, &n, cap);
    if (e >= 0) out[e].bwd_flops += flops;
    return n;
}
