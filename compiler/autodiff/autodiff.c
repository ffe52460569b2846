/* autodiff.c: reverse-mode differentiation of the forward function into the backward function
 * (snn_autodiff, see ir.h): backpropagation through time, one rule per op.
 *
 * What gets an adjoint. Only values on a path from a PARAM to a LOSS_ADD: a forward analysis
 * marks what depends on a param, a backward one what reaches a loss, both through states
 * (a state's reads depend on its next value and its init_from), and only values marked by both
 * get adjoints. So the metric's spike counter, encoders and detached resets cost nothing.
 *
 * The rules. `rule()` is one switch keyed by op, the only place that knows derivatives. A rule
 * reads forward values through FWD (at the same step; codegen tapes exactly those), or clones
 * CONST, PARAM, INPUT and STEPS leaves, and hands each operand's partial adjoint to `contribute()`,
 * which undoes broadcasting with SUM_TO. A value's adjoint is the sum of its contributions,
 * made when the reverse sweep reaches it (`finalize()`); it always has the value's shape
 * (BROADCAST where every contribution was smaller, e.g. below a SUM_TO). FIRE inlines the
 * surrogate's straight-line program with ARG := the forward operand.
 *
 * Time. The forward function runs pre, step (t = 0..T-1), post; the backward one runs the
 * mirror image:
 *   backward pre   = the forward post region in reverse. LOSS_ADDs there seed adjoints; the
 *                    adjoint of a final-state read becomes the init_from of that state's
 *                    backward state.
 *   backward step  = the forward step region in reverse, for t = T-1..0. For each forward state
 *                    s that needs a gradient, the backward state `d.s` holds the adjoint of the
 *                    read of s at step t+1, which is added to the adjoint of s's next value at
 *                    step t; the adjoint of the reads of s at step t becomes d.s's next.
 *                    Contributions to forward pre (time-invariant) values are summed over time
 *                    in accumulator states `acc.d.v`.
 *   backward post  = the forward pre region in reverse, on the time-summed adjoints: a
 *                    time-invariant linear gets one matmul of the summed gradient (the hook for
 *                    hoisting), params get GRAD_ACC, and the final value of d.s flows to the
 *                    forward state's init_from.
 * Emission order is the output's order, so no call here has two emitting calls among its
 * arguments (C leaves their order to the compiler, and gcc and clang differ).
 * Names follow the forward ones: `d.h.mem` is the adjoint of %h.mem, `grad.h.weight` the
 * accumulation into the gradient of param h.weight.
 */
#include "ir/ir.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

typedef struct { int32_t id; bool fresh; } contrib;
typedef struct { contrib *items; int32_t n, cap; } clist;
typedef struct { int32_t *items; int32_t n, cap; } ilist;

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_ir_module *m;
    const snn_ir_func *F;       /* forward (not modified) */
    snn_ir_func *G;             /* backward, being built */
    snn_region r;               /* region of G being appended to */
    bool ok;
    /* analysis, per forward value / state */
    bool *fp, *tl, *need;
    bool *fp_state, *tl_state;
    /* adjoint bookkeeping */
    clist *adj;                 /* contributions to a forward value (this phase) */
    clist *step_adj;            /* contributions to a forward pre value within one backward step */
    int32_t *memo;              /* forward id -> G id of its FWD / cloned leaf (latest) */
    int32_t *dstate;            /* forward state -> backward state d.s, or -1 */
    ilist *dnext, *dinit;       /* per forward state: adjoints of its step reads / post reads */
    int32_t *acc;               /* forward pre value -> accumulator backward state, or -1 */
    struct { float val; int32_t id; } *consts; int32_t n_consts, cap_consts;
} ad_ctx;

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) { fputs("snn_autodiff: out of memory\n", stderr); abort(); }
    return p;
}

static const snn_ir_value *FV(ad_ctx *c, int32_t fid) { return &c->F->values[fid]; }
static snn_shape GS(ad_ctx *c, int32_t gid) { return c->G->values[gid].shape; }

/* ---- differentiability, the one per-op table autodiff's analysis needs ---- */

/* Does gradient flow from op's result to operand k? */
static bool diff_arg(snn_op op, int k) {
    switch (op) {
    case SNN_OP_RATE: case SNN_OP_HEAVISIDE: case SNN_OP_DETACH:
    case SNN_OP_GT: case SNN_OP_GE: case SNN_OP_LT: case SNN_OP_LE: case SNN_OP_EQ: case SNN_OP_NE:
        return false;
    case SNN_OP_SELECT: return k >= 1;
    case SNN_OP_CE_GRAD: case SNN_OP_MSE_ONEHOT_GRAD: return true;   /* rule() reports them */
    case SNN_OP_CROSS_ENTROPY: case SNN_OP_MSE_ONEHOT: case SNN_OP_FIRE: case SNN_OP_LOSS_ADD:
        return k == 0;
    default: return snn_op_infos[op].cls != SNN_CLASS_LEAF;
    }
}

static void analyse(ad_ctx *c) {
    const snn_ir_func *F = c->F;
    for (bool changed = true; changed;) {
        changed = false;
        for (int32_t i = 0; i < F->n_values; i++) {
            const snn_ir_value *v = &F->values[i];
            bool x = v->op == SNN_OP_PARAM || (v->op == SNN_OP_STATE && c->fp_state[v->ival]);
            for (int k = 0; k < v->nargs && !x; k++) x = diff_arg(v->op, k) && c->fp[v->args[k]];
            if (x && !c->fp[i]) { c->fp[i] = true; changed = true; }
        }
        for (int s = 0; s < F->n_states; s++) {
            const snn_ir_state *st = &F->states[s];
            bool x = c->fp[st->next] || (st->init_from >= 0 && c->fp[st->init_from]);
            if (x && !c->fp_state[s]) { c->fp_state[s] = true; changed = true; }
        }
    }
    for (bool changed = true; changed;) {
        changed = false;
        for (int32_t i = F->n_values - 1; i >= 0; i--) {
            const snn_ir_value *v = &F->values[i];
            if (v->op == SNN_OP_LOSS_ADD) c->tl[i] = true;
            if (!c->tl[i]) continue;
            for (int k = 0; k < v->nargs; k++)
                if (diff_arg(v->op, k) && !c->tl[v->args[k]]) { c->tl[v->args[k]] = true; changed = true; }
            if (v->op == SNN_OP_STATE && !c->tl_state[v->ival]) { c->tl_state[v->ival] = true; changed = true; }
        }
        for (int s = 0; s < F->n_states; s++) {
            const snn_ir_state *st = &F->states[s];
            if (!c->tl_state[s]) continue;
            if (!c->tl[st->next]) { c->tl[st->next] = true; changed = true; }
            if (st->init_from >= 0 && !c->tl[st->init_from]) { c->tl[st->init_from] = true; changed = true; }
        }
    }
    for (int32_t i = 0; i < F->n_values; i++) c->need[i] = c->fp[i] && c->tl[i];
}

/* ---- building backward values ---- */

static int32_t emit(ad_ctx *c, snn_ir_value v, snn_loc loc) {
    v.region = c->r;
    v.loc = loc;
    return snn_ir_append(c->a, c->G, v);
}

static int32_t g1(ad_ctx *c, snn_op op, const char *name, int32_t x, snn_loc loc) {
    return emit(c, (snn_ir_value){.op = op, .name = name, .nargs = 1, .args = {x}, .shape = GS(c, x)}, loc);
}

static int32_t g2(ad_ctx *c, snn_op op, const char *name, int32_t x, int32_t y, snn_loc loc) {
    snn_shape s;
    if (!snn_shape_broadcast(GS(c, x), GS(c, y), &s)) {
        snn_internal_error(c->d, loc, "autodiff: operands of %s do not broadcast", snn_op_infos[op].mnemonic);
        c->ok = false;
        s = GS(c, x);
    }
    return emit(c, (snn_ir_value){.op = op, .name = name, .nargs = 2, .args = {x, y}, .shape = s}, loc);
}

static int32_t g3(ad_ctx *c, snn_op op, const char *name, int32_t x, int32_t y, int32_t z, snn_loc loc) {
    snn_shape s, t;
    if (!snn_shape_broadcast(GS(c, x), GS(c, y), &s) || !snn_shape_broadcast(s, GS(c, z), &t)) {
        snn_internal_error(c->d, loc, "autodiff: operands of %s do not broadcast", snn_op_infos[op].mnemonic);
        c->ok = false;
        t = GS(c, x);
    }
    return emit(c, (snn_ir_value){.op = op, .name = name, .nargs = 3, .args = {x, y, z}, .shape = t}, loc);
}

static int32_t gshape(ad_ctx *c, snn_op op, const char *name, int32_t x, int32_t y, snn_shape s, snn_loc loc) {
    return emit(c, (snn_ir_value){.op = op, .name = name, .nargs = y >= 0 ? 2 : 1, .args = {x, y}, .shape = s}, loc);
}

/* A constant in the current region (one per value and region), named name or after its value. */
static int32_t gconst_named(ad_ctx *c, float val, const char *name) {
    for (int32_t i = c->n_consts - 1; i >= 0; i--) {
        int32_t id = c->consts[i].id;
        if (memcmp(&c->consts[i].val, &val, sizeof val) == 0 &&
            (c->G->values[id].region == SNN_REGION_PRE || c->G->values[id].region == c->r))
            return id;
    }
    char buf[32];
    snprintf(buf, sizeof buf, "c%g", (double)val);
    for (char *q = buf; *q; q++) if (*q == '-') *q = 'm'; else if (*q == '+') *q = 'p';
    int32_t id = emit(c, (snn_ir_value){.op = SNN_OP_CONST, .name = name ? name : buf, .fval = val, .shape = snn_shape_scalar()}, (snn_loc){0});
    __typeof__(*c->consts) e = {val, id};
    SNN_PUSH(c->consts, c->n_consts, c->cap_consts, e);
    return id;
}

static int32_t gconst(ad_ctx *c, float val) { return gconst_named(c, val, NULL); }

/* The forward value fid as seen from the current backward region: a FWD (taped), or a clone of
 * a CONST, PARAM or INPUT leaf. */
static int32_t fwd(ad_ctx *c, int32_t fid) {
    const snn_ir_value *v = FV(c, fid);
    if (v->op == SNN_OP_CONST) return gconst_named(c, v->fval, v->name);
    int32_t id = c->memo[fid];
    if (id >= 0 && (c->G->values[id].region == SNN_REGION_PRE || c->G->values[id].region == c->r)) return id;
    snn_ir_value g = {.op = SNN_OP_FWD, .name = v->name, .ival = fid, .shape = v->shape};
    if (v->op == SNN_OP_PARAM || v->op == SNN_OP_INPUT || v->op == SNN_OP_STEPS || v->op == SNN_OP_STEP) {
        g.op = v->op;
        g.ival = v->ival;
    }
    id = emit(c, g, v->loc);
    c->memo[fid] = id;
    return id;
}

static bool broadcasts_to(snn_shape small, snn_shape big) {
    snn_shape r;
    return snn_shape_broadcast(small, big, &r) && snn_shape_eq(r, big);
}

/* Adds gid to the adjoint of forward value fid (if it needs one). Contributions larger than the
 * value (from broadcasting) are summed down to its shape here. fresh: gid was made for this
 * contribution alone, so finalize may rename it. */
static void contribute(ad_ctx *c, int32_t fid, int32_t gid, bool fresh) {
    if (!c->need[fid] || gid < 0) return;
    const snn_ir_value *v = FV(c, fid);
    if (!snn_shape_eq(GS(c, gid), v->shape)) {
        if (broadcasts_to(v->shape, GS(c, gid))) {
            gid = gshape(c, SNN_OP_SUM_TO, snn_sprintf(c->a, "d.%s.part", v->name), gid, -1, v->shape, v->loc);
            fresh = true;
        } else if (!broadcasts_to(GS(c, gid), v->shape)) {
            snn_internal_error(c->d, v->loc, "autodiff: adjoint of %%%s has a shape that does not broadcast to it", v->name);
            c->ok = false;
            return;
        }
    }
    clist *l = c->r == SNN_REGION_STEP && v->region == SNN_REGION_PRE ? &c->step_adj[fid] : &c->adj[fid];
    contrib e = {gid, fresh};
    SNN_PUSH(l->items, l->n, l->cap, e);
}

static bool name_taken(const snn_ir_func *f, const char *name) {
    for (int32_t i = 0; i < f->n_values; i++)
        if (strcmp(f->values[i].name, name) == 0) return true;
    return false;
}

/* Renames G value gid to name (if free). */
static void rename_to(ad_ctx *c, int32_t gid, const char *name) {
    if (!name_taken(c->G, name)) c->G->values[gid].name = snn_intern_cstr(c->a, name);
}

/* The sum of a contribution list, at the given shape (BROADCAST if all were smaller), named
 * name; -1 if the list is empty. The list is emptied. */
static int32_t sum_list(ad_ctx *c, clist *l, snn_shape shape, const char *name, snn_loc loc) {
    if (l->n == 0) return -1;
    int32_t s = l->items[0].id;
    bool fresh = l->items[0].fresh;
    for (int32_t k = 1; k < l->n; k++) {
        s = g2(c, SNN_OP_ADD, k + 1 == l->n ? name : snn_sprintf(c->a, "%s.sum", name), s, l->items[k].id, loc);
        fresh = true;
    }
    if (!snn_shape_eq(GS(c, s), shape)) {
        s = gshape(c, SNN_OP_BROADCAST, name, s, -1, shape, loc);
        fresh = true;
    }
    if (fresh && l->n == 1) rename_to(c, s, name);
    l->n = 0;
    return s;
}

static int32_t finalize(ad_ctx *c, int32_t fid) {
    const snn_ir_value *v = FV(c, fid);
    return sum_list(c, &c->adj[fid], v->shape, snn_sprintf(c->a, "d.%s", v->name), v->loc);
}

/* FIRE: the surrogate's program with ARG := x, returns the derivative's value id. */
static int32_t inline_surrogate(ad_ctx *c, const snn_ir_value *fire, int32_t x) {
    const snn_ir_surrogate *s = &c->m->surrogates[fire->ival];
    int32_t *map = xcalloc((size_t)s->n_values, sizeof *map);
    int32_t ret = -1;
    for (int32_t i = 0; i < s->n_values; i++) {
        const snn_ir_value *sv = &s->values[i];
        const char *nm = i == s->ret ? snn_sprintf(c->a, "sg.%s", fire->name)
                                     : snn_sprintf(c->a, "sg.%s.%s", fire->name, sv->name);
        if (sv->op == SNN_OP_ARG) map[i] = x;
        else if (sv->op == SNN_OP_CONST) map[i] = gconst(c, sv->fval);
        else if (sv->nargs == 1) map[i] = g1(c, sv->op, nm, map[sv->args[0]], fire->loc);
        else if (sv->nargs == 2) map[i] = g2(c, sv->op, nm, map[sv->args[0]], map[sv->args[1]], fire->loc);
        else map[i] = g3(c, sv->op, nm, map[sv->args[0]], map[sv->args[1]], map[sv->args[2]], fire->loc);
    }
    if (s->ret >= 0 && s->ret < s->n_values) ret = map[s->ret];
    free(map);
    return ret;
}

/* ---- the rules: one case per op ---- */

static void rule(ad_ctx *c, int32_t fid, int32_t g) {
    const snn_ir_value *v = FV(c, fid);
    const int32_t a0 = v->nargs > 0 ? v->args[0] : -1, a1 = v->nargs > 1 ? v->args[1] : -1;
    const int32_t a2 = v->nargs > 2 ? v->args[2] : -1;
    const bool n0 = a0 >= 0 && c->need[a0], n1 = a1 >= 0 && c->need[a1], n2 = a2 >= 0 && c->need[a2];
    const snn_loc L = v->loc;
    const char *d0 = n0 ? snn_sprintf(c->a, "d.%s.part", FV(c, a0)->name) : NULL;
    const char *d1 = n1 ? snn_sprintf(c->a, "d.%s.part", FV(c, a1)->name) : NULL;
    const char *d2 = n2 ? snn_sprintf(c->a, "d.%s.part", FV(c, a2)->name) : NULL;
    const char *t = snn_sprintf(c->a, "t.%s", v->name);   /* temporaries */
#define MUL(x, y) g2(c, SNN_OP_MUL, t, (x), (y), L)
    switch (v->op) {
    case SNN_OP_NEG: if (n0) contribute(c, a0, g1(c, SNN_OP_NEG, d0, g, L), true); break;
    case SNN_OP_EXP: if (n0) contribute(c, a0, g2(c, SNN_OP_MUL, d0, g, fwd(c, fid), L), true); break;
    case SNN_OP_LOG: if (n0) contribute(c, a0, g2(c, SNN_OP_DIV, d0, g, fwd(c, a0), L), true); break;
    case SNN_OP_TANH:
        if (n0) {
            int32_t y = fwd(c, fid), one = gconst(c, 1), y2 = MUL(y, y);
            contribute(c, a0, g2(c, SNN_OP_MUL, d0, g, g2(c, SNN_OP_SUB, t, one, y2, L), L), true);
        }
        break;
    case SNN_OP_ABS:
        if (n0) {
            int32_t x = fwd(c, a0), z = gconst(c, 0);
            int32_t pos = g2(c, SNN_OP_GT, t, x, z, L), neg = g2(c, SNN_OP_LT, t, x, z, L);
            int32_t sign = g2(c, SNN_OP_SUB, t, pos, neg, L);
            contribute(c, a0, g2(c, SNN_OP_MUL, d0, g, sign, L), true);
        }
        break;
    case SNN_OP_SQRT:
        if (n0) {
            int32_t two = gconst(c, 2), y = fwd(c, fid);
            contribute(c, a0, g2(c, SNN_OP_DIV, d0, g, MUL(two, y), L), true);
        }
        break;
    case SNN_OP_SIGMOID:
        if (n0) {
            int32_t y = fwd(c, fid);
            contribute(c, a0, g2(c, SNN_OP_MUL, d0, g, MUL(y, g2(c, SNN_OP_SUB, t, gconst(c, 1), y, L)), L), true);
        }
        break;
    case SNN_OP_FIRE:
        if (n0) {
            int32_t sg = inline_surrogate(c, v, fwd(c, a0));
            if (sg >= 0) contribute(c, a0, g2(c, SNN_OP_MUL, d0, g, sg, L), true);
        }
        break;
    case SNN_OP_DETACH: case SNN_OP_HEAVISIDE: case SNN_OP_RATE:
    case SNN_OP_GT: case SNN_OP_GE: case SNN_OP_LT: case SNN_OP_LE: case SNN_OP_EQ: case SNN_OP_NE:
        break;      /* no gradient (the analysis never marks their operands) */
    case SNN_OP_ADD:
        if (n0) contribute(c, a0, g, false);
        if (n1) contribute(c, a1, g, false);
        break;
    case SNN_OP_SUB:
        if (n0) contribute(c, a0, g, false);
        if (n1) contribute(c, a1, g1(c, SNN_OP_NEG, d1, g, L), true);
        break;
    case SNN_OP_MUL:
        if (n0) contribute(c, a0, g2(c, SNN_OP_MUL, d0, g, fwd(c, a1), L), true);
        if (n1) contribute(c, a1, g2(c, SNN_OP_MUL, d1, g, fwd(c, a0), L), true);
        break;
    case SNN_OP_DIV:   /* y = a / b: da = g / b, db = -g * y / b */
        if (n0) contribute(c, a0, g2(c, SNN_OP_DIV, d0, g, fwd(c, a1), L), true);
        if (n1) {
            int32_t y = fwd(c, fid), b = fwd(c, a1), gy = MUL(g, y);
            contribute(c, a1, g1(c, SNN_OP_NEG, d1, g2(c, SNN_OP_DIV, t, gy, b, L), L), true);
        }
        break;
    case SNN_OP_POW: { /* y = a^b: da = g * b * a^(b-1), db = g * y * log(a) */
        const snn_ir_value *e = FV(c, a1);
        if (n0) {
            int32_t da;
            if (e->op == SNN_OP_CONST) {
                float k = e->fval;
                if (k == 0) da = -1;
                else if (k == 1) da = g;
                else if (k == 2) {
                    int32_t two = gconst(c, 2), x = fwd(c, a0);
                    da = g2(c, SNN_OP_MUL, d0, g, MUL(two, x), L);
                } else {
                    int32_t kc = gconst(c, k), km1 = gconst(c, k - 1), x = fwd(c, a0);
                    int32_t pw = g2(c, SNN_OP_POW, t, x, km1, L);
                    da = g2(c, SNN_OP_MUL, d0, g, MUL(kc, pw), L);
                }
            } else {
                int32_t b = fwd(c, a1), x = fwd(c, a0), one = gconst(c, 1);
                int32_t pw = g2(c, SNN_OP_POW, t, x, g2(c, SNN_OP_SUB, t, b, one, L), L);
                da = g2(c, SNN_OP_MUL, d0, g, MUL(b, pw), L);
            }
            if (da >= 0) contribute(c, a0, da, da != g);
        }
        if (n1) {
            int32_t y = fwd(c, fid), x = fwd(c, a0), lx = g1(c, SNN_OP_LOG, t, x, L);
            contribute(c, a1, g2(c, SNN_OP_MUL, d1, g, MUL(y, lx), L), true);
        }
        break;
    }
    case SNN_OP_MIN: case SNN_OP_MAX:   /* to the selected operand; ties to a */
        if (n0 || n1) {
            int32_t x = fwd(c, a0), y = fwd(c, a1);
            int32_t m = g2(c, v->op == SNN_OP_MIN ? SNN_OP_LE : SNN_OP_GE, t, x, y, L);
            int32_t z = gconst(c, 0);
            if (n0) contribute(c, a0, g3(c, SNN_OP_SELECT, d0, m, g, z, L), true);
            if (n1) contribute(c, a1, g3(c, SNN_OP_SELECT, d1, m, z, g, L), true);
        }
        break;
    case SNN_OP_SELECT:
        if (n1 || n2) {
            int32_t cond = fwd(c, a0), z = gconst(c, 0);
            if (n1) contribute(c, a1, g3(c, SNN_OP_SELECT, d1, cond, g, z, L), true);
            if (n2) contribute(c, a2, g3(c, SNN_OP_SELECT, d2, cond, z, g, L), true);
        }
        break;
    case SNN_OP_LINEAR: {  /* y = x W^T + b: dx = g W, dW = g^T x, db = sum_to(g) */
        const snn_ir_value *x = FV(c, a0), *w = FV(c, a1);
        if (n0) contribute(c, a0, gshape(c, SNN_OP_MATMUL_NN, d0, g, fwd(c, a1), x->shape, L), true);
        if (n1) contribute(c, a1, gshape(c, SNN_OP_MATMUL_TN, snn_sprintf(c->a, "dW.%s", w->name), g, fwd(c, a0), w->shape, L), true);
        if (n2) contribute(c, a2, gshape(c, SNN_OP_SUM_TO, snn_sprintf(c->a, "db.%s", FV(c, a2)->name), g, -1, FV(c, a2)->shape, L), true);
        break;
    }
    case SNN_OP_MATMUL_NN:  /* y = a b: da = g b^T = linear(g, b), db = a^T g */
        if (n0) contribute(c, a0, gshape(c, SNN_OP_LINEAR, d0, g, fwd(c, a1), FV(c, a0)->shape, L), true);
        if (n1) contribute(c, a1, gshape(c, SNN_OP_MATMUL_TN, d1, fwd(c, a0), g, FV(c, a1)->shape, L), true);
        break;
    case SNN_OP_MATMUL_TN:  /* y = a^T b: da = b g^T = linear(b, g), db = a g */
        if (n0) contribute(c, a0, gshape(c, SNN_OP_LINEAR, d0, fwd(c, a1), g, FV(c, a0)->shape, L), true);
        if (n1) contribute(c, a1, gshape(c, SNN_OP_MATMUL_NN, d1, fwd(c, a0), g, FV(c, a1)->shape, L), true);
        break;
    case SNN_OP_SUM_TO: case SNN_OP_BROADCAST:   /* each other's adjoint: contribute() does it */
        if (n0) contribute(c, a0, g, false);
        break;
    case SNN_OP_CROSS_ENTROPY:
        if (n0) contribute(c, a0, gshape(c, SNN_OP_CE_GRAD, d0, fwd(c, a0), g, FV(c, a0)->shape, L), true);
        break;
    case SNN_OP_MSE_ONEHOT:
        if (n0) {
            int32_t id = gshape(c, SNN_OP_MSE_ONEHOT_GRAD, d0, fwd(c, a0), g, FV(c, a0)->shape, L);
            memcpy(c->G->values[id].attr, v->attr, sizeof v->attr);
            contribute(c, a0, id, true);
        }
        break;
    default:
        snn_internal_error(c->d, L, "autodiff: cannot differentiate %s (%%%s)", snn_op_infos[v->op].mnemonic, v->name);
        c->ok = false;
        break;
    }
#undef MUL
}

/* Reaches forward value fid in the reverse sweep: seeds (LOSS_ADD), sums its adjoint, routes
 * state reads, accumulates param gradients, applies the op's rule. */
static void process(ad_ctx *c, int32_t fid) {
    const snn_ir_value *v = FV(c, fid);
    if (v->op == SNN_OP_LOSS_ADD) {
        if (c->need[v->args[0]]) contribute(c, v->args[0], gconst(c, v->fval), false);
        return;
    }
    if (!c->need[fid]) return;
    int32_t g = finalize(c, fid);
    if (g < 0) return;
    switch (v->op) {
    case SNN_OP_STATE: {
        ilist *l = v->region == SNN_REGION_POST ? &c->dinit[v->ival] : &c->dnext[v->ival];
        SNN_PUSH(l->items, l->n, l->cap, g);
        break;
    }
    case SNN_OP_PARAM:
        emit(c, (snn_ir_value){.op = SNN_OP_GRAD_ACC, .name = snn_sprintf(c->a, "grad.%s", c->m->params[v->ival].name),
                               .nargs = 1, .args = {g}, .ival = v->ival}, v->loc);
        break;
    case SNN_OP_CONST: case SNN_OP_INPUT: case SNN_OP_STEPS: case SNN_OP_STEP: case SNN_OP_ARG:
    case SNN_OP_FWD: break;
    default: rule(c, fid, g); break;
    }
}

/* Sums a list of backward ids (exact shapes) into one, or -1. */
static int32_t sum_ids(ad_ctx *c, ilist *l, const char *name, snn_loc loc) {
    if (l->n == 0) return -1;
    int32_t s = l->items[0];
    for (int32_t k = 1; k < l->n; k++) s = g2(c, SNN_OP_ADD, name, s, l->items[k], loc);
    return s;
}

bool snn_autodiff(snn_arena *a, snn_diag *d, snn_ir_module *m) {
    const snn_ir_func *F = &m->forward;
    snn_ir_func *G = &m->backward;
    if (G->n_values || G->n_states) {
        snn_internal_error(d, ((snn_loc){m->source_file, 0, 0}), "autodiff: the module already has a backward function");
        return false;
    }
    /* the indices the analysis follows must be sane (the verifier checks the rest) */
    for (int32_t i = 0; i < F->n_values; i++) {
        const snn_ir_value *v = &F->values[i];
        bool bad = (int)v->op < 0 || v->op >= SNN_OP_COUNT_ || v->nargs < 0 || v->nargs > SNN_IR_MAX_ARGS ||
                   (v->op == SNN_OP_STATE && (v->ival < 0 || v->ival >= F->n_states)) ||
                   (v->op == SNN_OP_FIRE && (v->ival < 0 || v->ival >= m->n_surrogates));
        for (int k = 0; k < v->nargs && !bad; k++) bad = v->args[k] < 0 || v->args[k] >= i;
        if (bad) {
            snn_internal_error(d, v->loc, "autodiff: forward value %%%s is malformed (run snn_ir_verify)", v->name);
            return false;
        }
    }
    for (int32_t s = 0; s < F->n_states; s++)
        if (F->states[s].next < 0 || F->states[s].next >= F->n_values || F->states[s].init_from < -1 ||
            F->states[s].init_from >= F->n_values) {
            snn_internal_error(d, F->states[s].loc, "autodiff: forward state %s is malformed (run snn_ir_verify)", F->states[s].name);
            return false;
        }
    G->time_dir = -1;
    size_t nv = (size_t)F->n_values, ns = (size_t)F->n_states;
    ad_ctx c = {.a = a, .d = d, .m = m, .F = F, .G = G, .ok = true};
    c.fp = xcalloc(nv, 1); c.tl = xcalloc(nv, 1); c.need = xcalloc(nv, 1);
    c.fp_state = xcalloc(ns, 1); c.tl_state = xcalloc(ns, 1);
    c.adj = xcalloc(nv, sizeof *c.adj); c.step_adj = xcalloc(nv, sizeof *c.step_adj);
    c.memo = xcalloc(nv, sizeof *c.memo); c.acc = xcalloc(nv, sizeof *c.acc);
    c.dstate = xcalloc(ns, sizeof *c.dstate);
    c.dnext = xcalloc(ns, sizeof *c.dnext); c.dinit = xcalloc(ns, sizeof *c.dinit);
    for (size_t i = 0; i < nv; i++) c.memo[i] = c.acc[i] = -1;
    analyse(&c);

    /* backward states d.s for every forward state whose reads need an adjoint */
    for (int32_t s = 0; s < F->n_states; s++) {
        c.dstate[s] = -1;
        if (!(c.fp_state[s] && c.tl_state[s])) continue;
        const snn_ir_state *fs = &F->states[s];
        snn_ir_state ds = {.name = snn_sprintf(a, "d.%s", fs->name), .shape = fs->shape, .init = 0,
                           .init_from = -1, .next = -1, .loc = fs->loc};
        c.dstate[s] = snn_ir_add_state(G, ds);
    }
    int32_t pre_end = 0, step_end;
    while (pre_end < F->n_values && F->values[pre_end].region == SNN_REGION_PRE) pre_end++;
    step_end = pre_end;
    while (step_end < F->n_values && F->values[step_end].region == SNN_REGION_STEP) step_end++;

    /* backward pre: the forward post region in reverse */
    c.r = SNN_REGION_PRE;
    for (int32_t i = F->n_values - 1; i >= step_end; i--) process(&c, i);
    for (int32_t s = 0; s < F->n_states; s++)
        if (c.dstate[s] >= 0)
            G->states[c.dstate[s]].init_from = sum_ids(&c, &c.dinit[s], snn_sprintf(a, "d.%s.final", F->states[s].name), F->states[s].loc);

    /* backward step: the forward step region in reverse, t = T-1..0 */
    c.r = SNN_REGION_STEP;
    for (int32_t s = 0; s < F->n_states; s++) {
        if (c.dstate[s] < 0) continue;
        const snn_ir_state *fs = &F->states[s];
        int32_t later = emit(&c, (snn_ir_value){.op = SNN_OP_STATE, .name = snn_sprintf(a, "d.%s.later", fs->name),
                                                .ival = c.dstate[s], .shape = fs->shape}, fs->loc);
        contribute(&c, fs->next, later, false);
    }
    for (int32_t i = step_end - 1; i >= pre_end; i--) process(&c, i);
    for (int32_t s = 0; s < F->n_states; s++) {
        if (c.dstate[s] < 0) continue;
        const snn_ir_state *fs = &F->states[s];
        int32_t nx = sum_ids(&c, &c.dnext[s], snn_sprintf(a, "d.%s.now", fs->name), fs->loc);
        if (nx < 0)   /* no step read needs it: zero before the last step */
            nx = gshape(&c, SNN_OP_BROADCAST, snn_sprintf(a, "d.%s.zero", fs->name), gconst(&c, 0), -1, fs->shape, fs->loc);
        G->states[c.dstate[s]].next = nx;
    }
    for (int32_t i = 0; i < pre_end; i++) {   /* time-invariant values: sum over steps */
        if (c.step_adj[i].n == 0) continue;
        const snn_ir_value *v = FV(&c, i);
        snn_ir_state as = {.name = snn_sprintf(a, "acc.d.%s", v->name), .shape = v->shape, .init = 0,
                           .init_from = -1, .next = -1, .loc = v->loc};
        c.acc[i] = snn_ir_add_state(G, as);
        int32_t prev = emit(&c, (snn_ir_value){.op = SNN_OP_STATE, .name = snn_sprintf(a, "acc.d.%s.prev", v->name),
                                               .ival = c.acc[i], .shape = v->shape}, v->loc);
        clist *l = &c.step_adj[i];
        int32_t s = l->items[0].id;
        for (int32_t k = 1; k < l->n; k++) s = g2(&c, SNN_OP_ADD, snn_sprintf(a, "d.%s.now", v->name), s, l->items[k].id, v->loc);
        G->states[c.acc[i]].next = g2(&c, SNN_OP_ADD, snn_sprintf(a, "acc.d.%s", v->name), prev, s, v->loc);
        l->n = 0;
    }

    /* backward post: the forward pre region in reverse, on time-summed adjoints */
    c.r = SNN_REGION_POST;
    for (int32_t i = 0; i < pre_end; i++)
        if (c.acc[i] >= 0) {
            const snn_ir_value *v = FV(&c, i);
            int32_t tot = emit(&c, (snn_ir_value){.op = SNN_OP_STATE, .name = snn_sprintf(a, "d.%s.steps", v->name),
                                                  .ival = c.acc[i], .shape = v->shape}, v->loc);
            contribute(&c, i, tot, false);
        }
    for (int32_t s = 0; s < F->n_states; s++) {
        const snn_ir_state *fs = &F->states[s];
        if (c.dstate[s] < 0 || fs->init_from < 0 || !c.need[fs->init_from]) continue;
        int32_t first = emit(&c, (snn_ir_value){.op = SNN_OP_STATE, .name = snn_sprintf(a, "d.%s.first", fs->name),
                                                .ival = c.dstate[s], .shape = fs->shape}, fs->loc);
        contribute(&c, fs->init_from, first, false);
    }
    for (int32_t i = pre_end - 1; i >= 0; i--) process(&c, i);

    for (size_t i = 0; i < nv; i++) { free(c.adj[i].items); free(c.step_adj[i].items); }
    for (size_t s = 0; s < ns; s++) { free(c.dnext[s].items); free(c.dinit[s].items); }
    free(c.fp); free(c.tl); free(c.need); free(c.fp_state); free(c.tl_state);
    free(c.adj); free(c.step_adj); free(c.memo); free(c.acc); free(c.dstate);
    free(c.dnext); free(c.dinit); free(c.consts);
    return c.ok;
}
