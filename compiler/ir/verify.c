/* verify.c: the IR verifier (snn_ir_verify, see ir.h).
 *
 * Runs after lowering, after autodiff and after every pass in tests, so it checks everything a
 * later stage relies on and reports each violation as an internal error (a compiler bug, not a
 * user's) at the value's source location, naming the function and the value. It does not stop
 * at the first problem, but checks on a value stop once one of its operands is bad, so a broken
 * id does not cascade into shape noise.
 *
 * Rules (see ir.h and ops.def for the semantics they protect):
 *   - every value: a known op, the op's arity (LINEAR 2 or 3), operands before their user,
 *     regions in order (pre, step, post), a unique non-empty name;
 *   - regions: pre uses only pre; step uses pre and step; post uses pre and post;
 *   - shapes: ELEMWISE = broadcast of its operands (right-aligned, no size-1 stretching);
 *     LINEAR x[M,in] W[out,in] b[out] -> [M,out]; MATMUL_NN a[M,K] b[K,N] -> [M,N];
 *     MATMUL_TN a[K,M] b[K,N] -> [M,N]; SUM_TO: its shape broadcasts to the operand's;
 *     BROADCAST: the operand's shape broadcasts to its shape; losses [B,C] -> []; the loss
 *     gradients take ([B,C], []) and give [B,C]; sinks have rank 0, LOSS_ADD takes [],
 *     GRAD_ACC takes its param's shape; CONST and STEPS are []; PARAM, STATE, INPUT have their
 *     declared shapes;
 *   - leaves: PARAM/STATE/GRAD_ACC/FIRE indices in range; STATE not in pre; ARG only in
 *     surrogates; FWD only in backward, pointing at an existing, non-sink forward value whose
 *     region the reading region may see (backward step: forward pre or step; backward pre and
 *     post: forward pre or post), with the same shape; LOSS_ADD only in forward, GRAD_ACC only
 *     in backward;
 *   - states: unique names, next a step-region value of the state's shape, init_from -1 or a
 *     pre-region value of the state's shape;
 *   - surrogates: only ARG, CONST and elementwise math of shape [], ret in range;
 *   - scores_state -1 or a forward state of shape [B, n_classes].
 */
#include "ir/ir.h"

#include <stdio.h>
#include <string.h>

typedef struct {
    const snn_ir_module *m;
    snn_diag *d;
    int errors;
} vctx;

#define VERR(c, loc, ...) do { snn_internal_error((c)->d, (loc), __VA_ARGS__); (c)->errors++; } while (0)

static char *shape_str(char *buf, size_t cap, snn_shape s) {
    size_t n = 0;
    n += (size_t)snprintf(buf + n, cap - n, "[");
    for (int i = 0; i < s.rank && i < SNN_IR_MAX_RANK && n < cap; i++) {
        if (s.dim[i] == SNN_DIM_B) n += (size_t)snprintf(buf + n, cap - n, "%sB", i ? "," : "");
        else n += (size_t)snprintf(buf + n, cap - n, "%s%lld", i ? "," : "", (long long)s.dim[i]);
    }
    if (n < cap) snprintf(buf + n, cap - n, "]");
    return buf;
}

static bool shape_ok(snn_shape s) {
    if (s.rank < 0 || s.rank > SNN_IR_MAX_RANK) return false;
    for (int i = 0; i < s.rank; i++)
        if (s.dim[i] <= 0 && s.dim[i] != SNN_DIM_B) return false;
    return true;
}

/* true if `small` broadcasts to exactly `big` */
static bool broadcasts_to(snn_shape small, snn_shape big) {
    snn_shape r;
    return snn_shape_broadcast(small, big, &r) && snn_shape_eq(r, big);
}

static const char *region_name(snn_region r) {
    return r == SNN_REGION_PRE ? "pre" : r == SNN_REGION_STEP ? "step" : r == SNN_REGION_POST ? "post" : "?";
}

/* May a value in region `user` read a value of region `def` of the same function? */
static bool region_visible(snn_region user, snn_region def) {
    if (def == SNN_REGION_PRE) return true;
    return def == user;
}

typedef enum { FN_FORWARD, FN_BACKWARD, FN_SURROGATE } fn_kind;

static void check_values(vctx *c, const char *fname, const snn_ir_value *vals, int32_t n,
                         const snn_ir_func *f, fn_kind kind) {
    const snn_ir_module *m = c->m;
    char b1[64], b2[64], b3[64];
    snn_region last = SNN_REGION_PRE;
    for (int32_t id = 0; id < n; id++) {
        const snn_ir_value *v = &vals[id];
        const char *vn = v->name ? v->name : "?";
#define E(...) VERR(c, v->loc, __VA_ARGS__)
        if ((int)v->op < 0 || v->op >= SNN_OP_COUNT_) { E("%s: value %d (%%%s): unknown op %d", fname, id, vn, (int)v->op); continue; }
        const snn_op_info *oi = &snn_op_infos[v->op];
        const char *mn = oi->mnemonic;
        if (!v->name || !*v->name) E("%s: value %d (%s) has no name", fname, id, mn);
        else
            for (int32_t j = 0; j < id; j++)
                if (vals[j].name && strcmp(vals[j].name, v->name) == 0) {
                    E("%s: name %%%s used by values %d and %d", fname, v->name, j, id);
                    break;
                }
        if ((int)v->region < SNN_REGION_PRE || v->region > SNN_REGION_POST) { E("%s: %%%s: bad region %d", fname, vn, (int)v->region); continue; }
        if (kind == FN_SURROGATE && v->region != SNN_REGION_PRE) E("%s: %%%s: surrogate values are in the pre region", fname, vn);
        if (v->region < last) E("%s: %%%s: %s value after a %s value (regions must be in order)", fname, vn, region_name(v->region), region_name(last));
        last = v->region;
        bool arity_ok = oi->arity >= 0 ? v->nargs == oi->arity : (v->nargs == 2 || v->nargs == 3);
        if (!arity_ok || v->nargs < 0 || v->nargs > SNN_IR_MAX_ARGS) {
            E("%s: %%%s = %s: %d operands, expected %s", fname, vn, mn, (int)v->nargs,
              oi->arity >= 0 ? (oi->arity == 0 ? "0" : oi->arity == 1 ? "1" : oi->arity == 2 ? "2" : "3") : "2 or 3");
            continue;
        }
        bool args_ok = true;
        for (int k = 0; k < v->nargs; k++) {
            int32_t a = v->args[k];
            if (a < 0 || a >= id) { E("%s: %%%s = %s: operand %d is value %d, which does not precede it", fname, vn, mn, k, (int)a); args_ok = false; continue; }
            if (vals[a].op >= 0 && vals[a].op < SNN_OP_COUNT_ && snn_op_infos[vals[a].op].cls == SNN_CLASS_SINK) {
                E("%s: %%%s = %s: operand %%%s is a sink and has no value", fname, vn, mn, vals[a].name); args_ok = false; continue;
            }
            if (!region_visible(v->region, vals[a].region)) {
                E("%s: %%%s (%s region) uses %%%s of the %s region", fname, vn, region_name(v->region), vals[a].name, region_name(vals[a].region));
                args_ok = false;
            }
        }
        if (!shape_ok(v->shape)) { E("%s: %%%s: malformed shape", fname, vn); continue; }
        if (!args_ok) continue;
        snn_shape s = v->shape;
        snn_shape a0 = v->nargs > 0 ? vals[v->args[0]].shape : snn_shape_scalar();
        snn_shape a1 = v->nargs > 1 ? vals[v->args[1]].shape : snn_shape_scalar();
        snn_shape a2 = v->nargs > 2 ? vals[v->args[2]].shape : snn_shape_scalar();
        if (kind == FN_SURROGATE) {
            if (!(v->op == SNN_OP_ARG || v->op == SNN_OP_CONST ||
                  (oi->cls == SNN_CLASS_ELEMWISE && v->op != SNN_OP_RATE && v->op != SNN_OP_FIRE)))
                E("%s: %%%s: %s is not allowed in a surrogate", fname, vn, mn);
            if (s.rank != 0) E("%s: %%%s: surrogate values have shape [], not %s", fname, vn, shape_str(b1, sizeof b1, s));
        }
        switch (v->op) {
        case SNN_OP_CONST: case SNN_OP_STEPS:
            if (s.rank != 0) E("%s: %%%s: a %s has shape [], not %s", fname, vn, mn, shape_str(b1, sizeof b1, s));
            break;
        case SNN_OP_STEP:
            if (s.rank != 0) E("%s: %%%s: a %s has shape [], not %s", fname, vn, mn, shape_str(b1, sizeof b1, s));
            if (v->region != SNN_REGION_STEP) E("%s: %%%s: a step index outside the step region", fname, vn);
            break;
        case SNN_OP_PARAM:
            if (v->ival < 0 || v->ival >= m->n_params) E("%s: %%%s: param index %d out of range", fname, vn, (int)v->ival);
            else if (!snn_shape_eq(s, m->params[v->ival].shape))
                E("%s: %%%s: shape %s, but param %s is %s", fname, vn, shape_str(b1, sizeof b1, s), m->params[v->ival].name, shape_str(b2, sizeof b2, m->params[v->ival].shape));
            break;
        case SNN_OP_INPUT:
            if (!snn_shape_eq(s, snn_shape_2(SNN_DIM_B, m->n_inputs)))
                E("%s: %%%s: input has shape %s, expected [B,%lld]", fname, vn, shape_str(b1, sizeof b1, s), (long long)m->n_inputs);
            break;
        case SNN_OP_STATE:
            if (!f) { E("%s: %%%s: state outside a function", fname, vn); break; }
            if (v->ival < 0 || v->ival >= f->n_states) { E("%s: %%%s: state index %d out of range", fname, vn, (int)v->ival); break; }
            if (v->region == SNN_REGION_PRE) E("%s: %%%s: state read in the pre region", fname, vn);
            if (!snn_shape_eq(s, f->states[v->ival].shape))
                E("%s: %%%s: shape %s, but state %s is %s", fname, vn, shape_str(b1, sizeof b1, s), f->states[v->ival].name, shape_str(b2, sizeof b2, f->states[v->ival].shape));
            break;
        case SNN_OP_ARG:
            if (kind != FN_SURROGATE) E("%s: %%%s: arg outside a surrogate", fname, vn);
            break;
        case SNN_OP_FWD: {
            if (kind != FN_BACKWARD) { E("%s: %%%s: fwd outside the backward function", fname, vn); break; }
            const snn_ir_func *fw = &m->forward;
            if (v->ival < 0 || v->ival >= fw->n_values) { E("%s: %%%s: fwd of forward value %d, which does not exist", fname, vn, (int)v->ival); break; }
            const snn_ir_value *t = &fw->values[v->ival];
            if ((int)t->op >= 0 && t->op < SNN_OP_COUNT_ && snn_op_infos[t->op].cls == SNN_CLASS_SINK) E("%s: %%%s: fwd of the sink %%%s", fname, vn, t->name);
            bool vis = t->region == SNN_REGION_PRE ||
                       (v->region == SNN_REGION_STEP ? t->region == SNN_REGION_STEP : t->region == SNN_REGION_POST);
            if (!vis) E("%s: %%%s (%s region) reads forward %%%s of the %s region", fname, vn, region_name(v->region), t->name, region_name(t->region));
            if (!snn_shape_eq(s, t->shape)) E("%s: %%%s: shape %s, but forward %%%s is %s", fname, vn, shape_str(b1, sizeof b1, s), t->name, shape_str(b2, sizeof b2, t->shape));
            break;
        }
        case SNN_OP_LINEAR:
            if (a0.rank != 2 || a1.rank != 2 || a0.dim[1] != a1.dim[1] || (v->nargs == 3 && !snn_shape_eq(a2, snn_shape_1(a1.dim[0]))) ||
                !snn_shape_eq(s, snn_shape_2(a0.dim[0], a1.dim[0])))
                E("%s: %%%s = linear: shapes x%s W%s%s%s -> %s do not match x[M,in] W[out,in] b[out] -> [M,out]", fname, vn,
                  shape_str(b1, sizeof b1, a0), shape_str(b2, sizeof b2, a1), v->nargs == 3 ? " b" : "", v->nargs == 3 ? shape_str(b3, sizeof b3, a2) : "",
                  shape_str(b3, sizeof b3, s));
            break;
        case SNN_OP_MATMUL_NN:
            if (a0.rank != 2 || a1.rank != 2 || a0.dim[1] != a1.dim[0] || !snn_shape_eq(s, snn_shape_2(a0.dim[0], a1.dim[1])))
                E("%s: %%%s = matmul_nn: a%s b%s -> %s do not match a[M,K] b[K,N] -> [M,N]", fname, vn, shape_str(b1, sizeof b1, a0), shape_str(b2, sizeof b2, a1), shape_str(b3, sizeof b3, s));
            break;
        case SNN_OP_MATMUL_TN:
            if (a0.rank != 2 || a1.rank != 2 || a0.dim[0] != a1.dim[0] || !snn_shape_eq(s, snn_shape_2(a0.dim[1], a1.dim[1])))
                E("%s: %%%s = matmul_tn: a%s b%s -> %s do not match a[K,M] b[K,N] -> [M,N]", fname, vn, shape_str(b1, sizeof b1, a0), shape_str(b2, sizeof b2, a1), shape_str(b3, sizeof b3, s));
            break;
        case SNN_OP_SUM_TO:
            if (!broadcasts_to(s, a0)) E("%s: %%%s = sum_to: %s does not broadcast to the operand's %s", fname, vn, shape_str(b1, sizeof b1, s), shape_str(b2, sizeof b2, a0));
            break;
        case SNN_OP_BROADCAST:
            if (!broadcasts_to(a0, s)) E("%s: %%%s = broadcast: the operand's %s does not broadcast to %s", fname, vn, shape_str(b1, sizeof b1, a0), shape_str(b2, sizeof b2, s));
            break;
        case SNN_OP_CROSS_ENTROPY: case SNN_OP_MSE_ONEHOT:
            if (a0.rank != 2 || a0.dim[0] != SNN_DIM_B || (m->n_classes > 0 && a0.dim[1] != m->n_classes))
                E("%s: %%%s = %s: operand %s, expected [B,%lld]", fname, vn, mn, shape_str(b1, sizeof b1, a0), (long long)m->n_classes);
            if (s.rank != 0) E("%s: %%%s = %s: a loss has shape []", fname, vn, mn);
            break;
        case SNN_OP_CE_GRAD: case SNN_OP_MSE_ONEHOT_GRAD:
            if (a0.rank != 2 || a0.dim[0] != SNN_DIM_B || (m->n_classes > 0 && a0.dim[1] != m->n_classes))
                E("%s: %%%s = %s: operand %s, expected [B,%lld]", fname, vn, mn, shape_str(b1, sizeof b1, a0), (long long)m->n_classes);
            if (a1.rank != 0) E("%s: %%%s = %s: the upstream gradient has shape [], not %s", fname, vn, mn, shape_str(b1, sizeof b1, a1));
            if (!snn_shape_eq(s, a0)) E("%s: %%%s = %s: shape %s, expected the operand's %s", fname, vn, mn, shape_str(b1, sizeof b1, s), shape_str(b2, sizeof b2, a0));
            break;
        case SNN_OP_LOSS_ADD:
            if (kind != FN_FORWARD) E("%s: %%%s: loss_add outside the forward function", fname, vn);
            if (a0.rank != 0) E("%s: %%%s = loss_add: operand has shape %s, expected []", fname, vn, shape_str(b1, sizeof b1, a0));
            if (s.rank != 0) E("%s: %%%s: a sink has no shape", fname, vn);
            break;
        case SNN_OP_GRAD_ACC:
            if (kind != FN_BACKWARD) E("%s: %%%s: grad_acc outside the backward function", fname, vn);
            if (v->ival < 0 || v->ival >= m->n_params) E("%s: %%%s: param index %d out of range", fname, vn, (int)v->ival);
            else if (!snn_shape_eq(a0, m->params[v->ival].shape))
                E("%s: %%%s = grad_acc: operand %s, but param %s is %s", fname, vn, shape_str(b1, sizeof b1, a0), m->params[v->ival].name, shape_str(b2, sizeof b2, m->params[v->ival].shape));
            if (s.rank != 0) E("%s: %%%s: a sink has no shape", fname, vn);
            break;
        default:
            if (oi->cls == SNN_CLASS_ELEMWISE) {
                snn_shape r = a0, t;
                bool ok = true;
                if (v->nargs > 1) { ok = snn_shape_broadcast(r, a1, &t); r = t; }
                if (ok && v->nargs > 2) { ok = snn_shape_broadcast(r, a2, &t); r = t; }
                if (!ok) E("%s: %%%s = %s: operand shapes %s %s%s do not broadcast", fname, vn, mn, shape_str(b1, sizeof b1, a0), shape_str(b2, sizeof b2, a1), v->nargs > 2 ? shape_str(b3, sizeof b3, a2) : "");
                else if (!snn_shape_eq(r, s)) E("%s: %%%s = %s: shape %s, but its operands broadcast to %s", fname, vn, mn, shape_str(b1, sizeof b1, s), shape_str(b2, sizeof b2, r));
                if (v->op == SNN_OP_FIRE && (v->ival < 0 || v->ival >= m->n_surrogates)) E("%s: %%%s = fire: surrogate index %d out of range", fname, vn, (int)v->ival);
                if (v->op == SNN_OP_RATE && kind != FN_FORWARD) E("%s: %%%s: rate outside the forward function", fname, vn);
            }
            break;
        }
#undef E
    }
}

static void check_states(vctx *c, const snn_ir_func *f) {
    char b1[64], b2[64];
    for (int i = 0; i < f->n_states; i++) {
        const snn_ir_state *s = &f->states[i];
        const char *sn = s->name ? s->name : "?";
        if (!s->name || !*s->name) VERR(c, s->loc, "%s: state %d has no name", f->name, i);
        for (int j = 0; j < i; j++)
            if (s->name && f->states[j].name && strcmp(s->name, f->states[j].name) == 0)
                VERR(c, s->loc, "%s: state name %s used twice", f->name, s->name);
        if (!shape_ok(s->shape)) { VERR(c, s->loc, "%s: state %s: malformed shape", f->name, sn); continue; }
        if (s->next < 0 || s->next >= f->n_values) {
            VERR(c, s->loc, "%s: state %s: next is value %d, which does not exist", f->name, sn, (int)s->next);
        } else {
            const snn_ir_value *nv = &f->values[s->next];
            if (nv->region != SNN_REGION_STEP) VERR(c, s->loc, "%s: state %s: next %%%s is not a step value", f->name, sn, nv->name);
            else if (nv->op >= 0 && nv->op < SNN_OP_COUNT_ && snn_op_infos[nv->op].cls == SNN_CLASS_SINK) VERR(c, s->loc, "%s: state %s: next %%%s is a sink", f->name, sn, nv->name);
            else if (!snn_shape_eq(nv->shape, s->shape))
                VERR(c, s->loc, "%s: state %s is %s, but its next %%%s is %s", f->name, sn, shape_str(b1, sizeof b1, s->shape), nv->name, shape_str(b2, sizeof b2, nv->shape));
        }
        if (s->init_from != -1) {
            if (s->init_from < 0 || s->init_from >= f->n_values) {
                VERR(c, s->loc, "%s: state %s: init_from is value %d, which does not exist", f->name, sn, (int)s->init_from);
            } else {
                const snn_ir_value *iv = &f->values[s->init_from];
                if (iv->region != SNN_REGION_PRE) VERR(c, s->loc, "%s: state %s: init_from %%%s is not a pre value", f->name, sn, iv->name);
                else if (iv->op >= 0 && iv->op < SNN_OP_COUNT_ && snn_op_infos[iv->op].cls == SNN_CLASS_SINK) VERR(c, s->loc, "%s: state %s: init_from %%%s is a sink", f->name, sn, iv->name);
                else if (!snn_shape_eq(iv->shape, s->shape))
                    VERR(c, s->loc, "%s: state %s is %s, but its init_from %%%s is %s", f->name, sn, shape_str(b1, sizeof b1, s->shape), iv->name, shape_str(b2, sizeof b2, iv->shape));
            }
        }
    }
}

bool snn_ir_verify(const snn_ir_module *m, snn_diag *d) {
    vctx c = {m, d, 0};
    snn_loc none = {m->source_file, 0, 0};
    for (int i = 0; i < m->n_params; i++) {
        const snn_ir_param *p = &m->params[i];
        if (!p->name || !*p->name) VERR(&c, p->loc, "param %d has no name", i);
        for (int j = 0; j < i; j++)
            if (p->name && m->params[j].name && strcmp(p->name, m->params[j].name) == 0) VERR(&c, p->loc, "param name %s used twice", p->name);
        if (!shape_ok(p->shape)) VERR(&c, p->loc, "param %s: malformed shape", p->name ? p->name : "?");
        for (int k = 0; k < p->shape.rank && k < SNN_IR_MAX_RANK; k++)
            if (p->shape.dim[k] == SNN_DIM_B) VERR(&c, p->loc, "param %s: a param's shape has no batch dimension", p->name ? p->name : "?");
    }
    for (int i = 0; i < m->n_surrogates; i++) {
        const snn_ir_surrogate *s = &m->surrogates[i];
        const char *nm = s->name ? s->name : "surrogate";
        check_values(&c, nm, s->values, s->n_values, NULL, FN_SURROGATE);
        if (s->ret < 0 || s->ret >= s->n_values) VERR(&c, none, "%s: return value %d out of range", nm, (int)s->ret);
    }
    check_values(&c, "forward", m->forward.values, m->forward.n_values, &m->forward, FN_FORWARD);
    check_states(&c, &m->forward);
    if (m->forward.time_dir != 1) VERR(&c, none, "forward: time direction %d, expected +1", (int)m->forward.time_dir);
    if (m->backward.n_values > 0 || m->backward.n_states > 0) {
        check_values(&c, "backward", m->backward.values, m->backward.n_values, &m->backward, FN_BACKWARD);
        check_states(&c, &m->backward);
        if (m->backward.time_dir != -1) VERR(&c, none, "backward: time direction %d, expected -1", (int)m->backward.time_dir);
    }
    if (m->scores_state != -1) {
        if (m->scores_state < 0 || m->scores_state >= m->forward.n_states)
            VERR(&c, none, "scores state %d out of range", (int)m->scores_state);
        else if (!snn_shape_eq(m->forward.states[m->scores_state].shape, snn_shape_2(SNN_DIM_B, m->n_classes)))
            VERR(&c, m->forward.states[m->scores_state].loc, "scores state %s is not [B,%lld]", m->forward.states[m->scores_state].name, (long long)m->n_classes);
    }
    return c.errors == 0;
}
