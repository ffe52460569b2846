/* plan.c: what codegen decides before it builds any LLVM: fusion groups, which values need
 * memory, the tape, and the list of buffers of the work area (see cg.h).
 *
 * Fusion. Within one region, a maximal run of elementwise values of the same result shape
 * becomes one group, emitted as one loop nest (one kernel function) where its first member
 * stands. Leaves (const, param, input, state, fwd) do not break a run: they compute nothing
 * where they stand. Any other op (linear, reductions, losses, sinks) ends the run; a later
 * elementwise value may still join an earlier group of its shape when all its computed operands
 * are members or come before the group (join_group). Inside a group a value lives in a
 * register; it is stored only if something outside the group reads it (a later op, another
 * region, the other function through FWD), or it is a state's next value.
 *
 * Memory. Every stored value gets a buffer, every state one (two if it rotates, below), every
 * taped value T slots; value buffers whose live ranges do not overlap share memory (the memory
 * plan, plan_reuse). The work area is these buffers in plan order; lower.c turns the list into
 * addresses for the run-time batch size B and step count T.
 *
 * The tape. Backward reads forward values at the same step through FWD ops. A forward step
 * value so read is taped: while training, the forward pass writes it to slot t of its tape
 * instead of its buffer, so all T values survive until backward. Evaluation (`forward`) uses
 * the buffer and keeps no tape. Where it pays and is legal, backward recomputes the largest
 * taped values instead, forward in time and in row tiles (plan_recompute below).
 *
 * States. A state whose next value is computed (not a leaf) and belongs to it alone rotates:
 * the next value is written where the state is read at the following step (two buffers in
 * turn, or the T slots when the next value is taped), so no step copies a state. Others are
 * copied at the end of each step. A rotating state read only by its next value's loop is updated
 * in place in one buffer; one whose next is add(read, matmul) gets the product added by the
 * sgemm itself (beta 1).
 *
 * Gradients. A parameter with one grad_acc outside the time loop has its gradient computed
 * straight into grads[i] (or copied there) instead of zeroed and accumulated.
 *
 * Time loops (options.time_loops, off by default). After the fission pass (-O2) the step region
 * is ordered into scans and time-parallel loops (docs/passes.md); with time_loops codegen runs
 * each as its own loop over t, parallel loops batched: one op over all T*B rows (elementwise
 * over [T, B, N], LINEAR/MATMUL_NN with M = T*B, MATMUL_TN of a time sum with K = T*B), and a
 * value read by a later loop keeps all T steps. Measured on Tutorial 5 (784-1000-10, B 128,
 * T 25, one thread, best of 40): one fused loop 8-15 ms per forward+backward, time loops
 * batched 12-28 ms, unbatched 11-23 ms (a noisy shared machine, same order every run): the
 * [T, B, 1000] arrays that cross between loops leave the cache, while one loop's per-step
 * working set ([B, 1000]) stays in it, and the runtime's kernels already run the small
 * per-step products well. So one loop is the default; the time loops stay tested (they are
 * what a GPU or a wider layer would want).
 */
#include "codegen/cg.h"
#include "passes/passes.h"
#include "stats.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static bool is_leaf_op(snn_op op) { return snn_op_infos[op].cls == SNN_CLASS_LEAF; }

bool cg_rec_stored(const cg_plan *p, int32_t u) {
    if (p->rec_merge < 0) return true;
    const snn_ir_func *f = p->fn[CG_BWD];
    for (int32_t i = 0; i < f->n_values; i++)
        for (int q = 0; q < f->values[i].nargs; q++) {
            const snn_ir_value *a = &f->values[f->values[i].args[q]];
            if (a->op == SNN_OP_FWD && a->ival == u && p->val[CG_BWD][i].group != p->rec_merge)
                return true;
        }
    return false;
}

int32_t cg_mmacc_state(const cg_plan *p, int fi, int32_t id) {
    const snn_ir_func *f = p->fn[fi];
    for (int32_t s = 0; s < f->n_states; s++)
        if (p->st_mmacc[fi][s] == id) return s;
    return -1;
}

int32_t cg_lanes_state(const cg_plan *p, int32_t g) {
    const cg_group *grp = &p->groups[g];
    if (!grp->lanes || grp->rowred < 0) return -1;
    const snn_ir_func *f = p->fn[grp->func];
    for (int32_t m = 0; m < grp->n_members; m++) {
        const snn_ir_value *v = &f->values[grp->members[m]];
        for (int q = 0; q < v->nargs; q++) {
            const snn_ir_value *u = &f->values[v->args[q]];
            if (u->op == SNN_OP_STATE && u->region == SNN_REGION_STEP &&
                f->states[u->ival].init_from < 0)
                return (int32_t)u->ival;
        }
    }
    return -1;
}

static int32_t add_buf(cg_plan *p, cg_buf_kind kind, int32_t func, int32_t id, snn_shape shape,
                       const char *name) {
    cg_buf b = {kind, func, id, shape, name, -1};
    SNN_PUSH(p->bufs, p->n_bufs, p->cap_bufs, b);
    return p->n_bufs - 1;
}

/* Number of uses of value id in f (operands, state nexts, init_froms). */
static int32_t uses_of(const snn_ir_func *f, int32_t id) {
    int32_t n = 0;
    for (int32_t j = id + 1; j < f->n_values; j++)
        for (int q = 0; q < f->values[j].nargs; q++) n += f->values[j].args[q] == id;
    for (int32_t s = 0; s < f->n_states; s++)
        n += (f->states[s].next == id) + (f->states[s].init_from == id);
    return n;
}

/* Matmul accumulation. A rotating state s whose next value is add(read of s, P) with P a
 * matmul_nn/matmul_tn of the same step (unbatched) and shape, P and the read used by that add
 * alone and the read being s's only step read, is one buffer to which each step's product is
 * added by the sgemm itself (beta = 1): no product buffer, no add loop, no second buffer.
 * Forward values read by backward are left alone (they are taped). */
static void plan_mmacc(snn_arena *a, cg_plan *p, int fi, const bool *fwd_ref) {
    const snn_ir_func *f = p->fn[fi];
    const cg_val *cv = p->val[fi];
    p->st_mmacc[fi] = snn_alloc(a, sizeof(int32_t) * (size_t)(f->n_states + 1));
    for (int32_t s = 0; s < f->n_states; s++) {
        p->st_mmacc[fi][s] = -1;
        int32_t nx = f->states[s].next;
        const snn_ir_value *add = &f->values[nx];
        if (!p->st_rotate[fi][s] || p->st_sum[fi][s] || add->op != SNN_OP_ADD ||
            p->loops[fi][cv[nx].loop].batched || cv[nx].crosses)
            continue;
        int32_t r = add->args[0], m = add->args[1];
        if (f->values[m].op == SNN_OP_STATE) { r = add->args[1]; m = add->args[0]; }
        const snn_ir_value *rv = &f->values[r], *mv = &f->values[m];
        if (rv->op != SNN_OP_STATE || rv->ival != s || rv->region != SNN_REGION_STEP || r == m ||
            (mv->op != SNN_OP_MATMUL_NN && mv->op != SNN_OP_MATMUL_TN) ||
            mv->region != SNN_REGION_STEP || cv[m].loop != cv[nx].loop || cv[m].crosses ||
            !snn_shape_eq(mv->shape, add->shape) || !snn_shape_eq(f->states[s].shape, add->shape) ||
            uses_of(f, m) != 1 || uses_of(f, r) != 1)
            continue;
        if (fi == CG_FWD && (fwd_ref[r] || fwd_ref[m] || fwd_ref[nx])) continue;
        int32_t n_reads = 0;
        for (int32_t i = 0; i < f->n_values; i++)
            n_reads += f->values[i].op == SNN_OP_STATE && f->values[i].ival == s &&
                       f->values[i].region != SNN_REGION_POST;
        if (n_reads != 1) continue;
        p->st_mmacc[fi][s] = m;
    }
}

/* Whether elementwise value i of function fi may be appended to group g (emitted where its
 * first member stands): same region, time loop and shape, and every computed operand is a
 * member of g or comes before g's first member. */
static bool can_join(const cg_plan *p, int fi, int32_t g, int32_t i) {
    const snn_ir_func *f = p->fn[fi];
    const cg_val *cv = p->val[fi];
    const snn_ir_value *v = &f->values[i];
    const cg_group *G = &p->groups[g];
    int32_t first = G->members[0];
    if (G->region != v->region || !snn_shape_eq(G->shape, v->shape) ||
        cv[first].loop != cv[i].loop)
        return false;
    for (int q = 0; q < v->nargs; q++) {
        int32_t u = v->args[q];
        if (is_leaf_op(f->values[u].op)) continue;
        if (cv[u].group != g && u >= first) return false;
    }
    return true;
}

/* An earlier group of function fi that elementwise value i can join although other ops stand
 * between them: same region, (unbatched) time loop and shape, and every operand of i that is
 * computed is a member of that group or comes before its first member (where the group is
 * emitted). Value i is then computed earlier, ahead of ops that do not read it; it reads nothing
 * they write (an op writes only its own value, and those come after the group). The latest such
 * group, or -1. This fuses, for example, the surrogate and adjoint chain of a neuron's backward
 * into the loop that recomputes its spikes, across the matmuls between them. */
static int32_t join_group(const cg_plan *p, int fi, int32_t i) {
    const snn_ir_func *f = p->fn[fi];
    const cg_val *cv = p->val[fi];
    const snn_ir_value *v = &f->values[i];
    if (v->op == SNN_OP_RATE) return -1;
    if (v->region == SNN_REGION_STEP && p->loops[fi][cv[i].loop].batched) return -1;
    for (int32_t g = p->n_groups - 1; g >= 0; g--) {
        const cg_group *G = &p->groups[g];
        if (G->func != fi) break;
        if (G->region != v->region || cv[G->members[0]].loop != cv[i].loop) break;
        if (!G->batched && can_join(p, fi, g, i)) return g;
    }
    return -1;
}

/* Forms the fusion groups of function fi: runs of elementwise values of one region, one time
 * loop and one shape. Time sums of batched loops are not elementwise work there (they become
 * reductions over T) and are skipped. */
static void form_groups(snn_arena *a, cg_plan *p, int fi) {
    const snn_ir_func *f = p->fn[fi];
    cg_val *cv = p->val[fi];
    int32_t cur = -1;
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (snn_op_infos[v->op].cls == SNN_CLASS_LEAF) continue;
        if (cv[i].next_of >= 0 && p->st_sum[fi][cv[i].next_of]) continue;
        if (cv[i].next_of >= 0 && p->st_mmacc[fi][cv[i].next_of] >= 0) continue;
        if (!cg_in_loop(p, fi, i)) { cur = -1; continue; }
        if (cur >= 0 && !can_join(p, fi, cur, i)) cur = -1;
        bool joined = false;
        if (cur < 0) joined = (cur = join_group(p, fi, i)) >= 0;
        cg_group *g = cur >= 0 ? &p->groups[cur] : NULL;
        if (!g || g->region != v->region || !snn_shape_eq(g->shape, v->shape) ||
            cv[g->members[0]].loop != cv[i].loop) {
            cg_group ng = {0};
            ng.rowred = -1;
            ng.func = fi;
            ng.region = v->region;
            ng.shape = v->shape;
            ng.batched = v->region == SNN_REGION_STEP && p->loops[fi][cv[i].loop].batched;
            ng.members = snn_alloc(a, sizeof(int32_t) * (size_t)f->n_values);
            SNN_PUSH(p->groups, p->n_groups, p->cap_groups, ng);
            cur = p->n_groups - 1;
            g = &p->groups[cur];
        }
        g->members[g->n_members++] = i;
        g->joined |= joined;
        if (!g->joined) g->name = v->name;   /* named after its first run's last value */
        if (v->op == SNN_OP_RATE) g->uses_rate = true;
        cv[i].group = cur;
    }
}

static bool is_leaf(const snn_ir_value *v) { return snn_op_infos[v->op].cls == SNN_CLASS_LEAF; }

/* The step-region range [*sb, *se) of f. */
static void step_range(const snn_ir_func *f, int32_t *sb, int32_t *se) {
    int32_t b = 0;
    while (b < f->n_values && f->values[b].region == SNN_REGION_PRE) b++;
    int32_t e = b;
    while (e < f->n_values && f->values[e].region == SNN_REGION_STEP) e++;
    *sb = b;
    *se = e;
}

/* Time loops of function fi (docs/passes.md, "Time batching"): the fission pass orders the
 * step region into scans and time-parallel loops; codegen runs each loop for all t before the
 * next. A value read by a later loop crosses: it keeps all T steps (like the tape). Falls back
 * to one loop when the function is not in loop order, or when a state would be read in a loop
 * other than where its copy happens. fwd_ref[i]: forward value i is read by backward. */
static void plan_loops(snn_arena *a, cg_plan *p, int fi, bool enable, const bool *fwd_ref) {
    const snn_ir_func *f = p->fn[fi];
    cg_val *cv = p->val[fi];
    int32_t sb, se;
    step_range(f, &sb, &se);
    snn_time_plan tp = {0};
    int32_t n = 1;
    if (enable && se > sb) {
        snn_time_plan_build(f, &tp);
        if (tp.sorted && tp.n_loops > 1) n = tp.n_loops;
    }
    cg_tloop *L = snn_alloc(a, sizeof(cg_tloop) * (size_t)n);
    if (n == 1) {
        L[0] = (cg_tloop){sb, se, true, false, false, false};
    } else {
        for (int32_t k = 0; k < n; k++)
            L[k] = (cg_tloop){tp.loops[k].begin, tp.loops[k].end, tp.loops[k].kind == SNN_LOOP_SCAN,
                              false, false, false};
    }
    snn_time_plan_free(&tp);
    for (int32_t k = 0; k < n; k++)
        for (int32_t i = L[k].begin; i < L[k].end; i++) cv[i].loop = k;
    /* validity: operands never from a later loop; copied states within one loop; rotating
     * states never read before their next's loop */
    bool ok = true;
    for (int32_t i = sb; i < se && ok && n > 1; i++) {
        const snn_ir_value *v = &f->values[i];
        for (int q = 0; q < v->nargs; q++) {
            int32_t u = v->args[q];
            if (f->values[u].region == SNN_REGION_STEP && cv[u].loop > cv[i].loop) ok = false;
        }
        if (v->op == SNN_OP_STATE) {
            int32_t nx = f->states[v->ival].next;
            if (!p->st_rotate[fi][v->ival] ? cv[i].loop != cv[nx].loop : cv[i].loop < cv[nx].loop)
                ok = false;
        }
    }
    if (!ok) {
        L[0] = (cg_tloop){sb, se, true, false, false, false};
        n = 1;
        for (int32_t i = sb; i < se; i++) cv[i].loop = 0;
    }
    p->loops[fi] = L;
    p->n_loops[fi] = n;
    if (n == 1) return;

    /* crossing values */
    for (int32_t i = sb; i < se; i++) {
        const snn_ir_value *v = &f->values[i];
        for (int q = 0; q < v->nargs; q++) {
            int32_t u = v->args[q];
            if (f->values[u].region == SNN_REGION_STEP && !is_leaf(&f->values[u]) &&
                cv[u].loop < cv[i].loop)
                cv[u].crosses = true;
        }
        if (v->op == SNN_OP_STATE && p->st_rotate[fi][v->ival]) {
            int32_t nx = f->states[v->ival].next;
            if (cv[nx].loop < cv[i].loop) cv[nx].crosses = true;
        }
    }

    /* batched parallel loops: every op can run once over all T*B rows */
    for (int32_t k = 0; k < n; k++) {
        if (L[k].scan) continue;
        bool b = true;
        for (int32_t i = L[k].begin; i < L[k].end && b; i++) {
            const snn_ir_value *v = &f->values[i];
            bool step0 = v->nargs > 0 && f->values[v->args[0]].region == SNN_REGION_STEP;
            bool step1 = v->nargs > 1 && f->values[v->args[1]].region == SNN_REGION_STEP;
            bool step2 = v->nargs > 2 && f->values[v->args[2]].region == SNN_REGION_STEP;
            if (v->shape.rank >= SNN_IR_MAX_RANK) b = false;
            else if (v->op == SNN_OP_STATE) {
                /* only the read of a time sum, used by its add alone */
                int32_t s = v->ival, nx = f->states[s].next;
                const snn_ir_value *add = &f->values[nx];
                int32_t uses = 0;
                for (int32_t j = sb; j < se; j++)
                    for (int q = 0; q < f->values[j].nargs; q++) uses += f->values[j].args[q] == i;
                b = p->st_rotate[fi][s] && add->op == SNN_OP_ADD && cv[nx].loop == k && uses == 1 &&
                    (add->args[0] == i || add->args[1] == i) &&
                    snn_shape_eq(add->shape, f->values[add->args[add->args[0] == i]].shape) &&
                    !(fi == CG_FWD && (fwd_ref[i] || fwd_ref[nx]));
                for (int32_t j = 0; j < f->n_values && b; j++)
                    for (int q = 0; q < f->values[j].nargs; q++) b &= f->values[j].args[q] != nx;
                for (int32_t j = 0; j < f->n_states && b; j++) b &= j == s || f->states[j].next != nx;
                if (b) p->st_sum[fi][s] = true;
            } else if (v->op == SNN_OP_FWD) {
                const snn_ir_value *fv = &p->fn[CG_FWD]->values[v->ival];
                b = !(fv->region == SNN_REGION_STEP && fv->op == SNN_OP_STATE);
            } else if (v->op == SNN_OP_STEP) {
                b = false;   /* a different value at every step */
            } else if (is_leaf(v)) {
                /* const, param, input, steps: the same at every step */
            } else if (cg_is_elem(v->op)) {
                b = v->op != SNN_OP_RATE;
            } else if (v->op == SNN_OP_LINEAR) {
                b = step0 && !step1 && !step2;
            } else if (v->op == SNN_OP_MATMUL_NN) {
                b = step0 && !step1;
            } else if (v->op == SNN_OP_MATMUL_TN) {
                b = step0 && step1;   /* and summed over time: checked below */
            } else {
                b = false;
            }
        }
        /* a matmul_tn must feed a time sum (its T products are added, K = T*B) */
        for (int32_t i = L[k].begin; i < L[k].end && b; i++) {
            if (f->values[i].op != SNN_OP_MATMUL_TN) continue;
            bool feeds = false;
            for (int32_t s = 0; s < f->n_states; s++) {
                const snn_ir_value *add = &f->values[f->states[s].next];
                if (p->st_sum[fi][s] && cv[f->states[s].next].loop == k &&
                    (add->args[0] == i || add->args[1] == i))
                    feeds = true;
            }
            int32_t uses = 0;
            for (int32_t j = 0; j < f->n_values; j++)
                for (int q = 0; q < f->values[j].nargs; q++) uses += f->values[j].args[q] == i;
            b = feeds && uses == 1 && !(fi == CG_FWD && fwd_ref[i]);
        }
        if (!b) {   /* undo: time sums of this loop stay ordinary rotating states */
            for (int32_t s = 0; s < f->n_states; s++)
                if (cv[f->states[s].next].loop == k) p->st_sum[fi][s] = false;
            continue;
        }
        L[k].batched = true;
        for (int32_t i = L[k].begin; i < L[k].end; i++) {
            const snn_ir_value *v = &f->values[i];
            if (is_leaf(v)) continue;
            if (cv[i].next_of >= 0 && p->st_sum[fi][cv[i].next_of]) continue;
            if (v->op == SNN_OP_MATMUL_TN) continue;   /* accumulates into its time sum */
            cv[i].crosses = true;                      /* all T steps at once */
        }
    }
}

static void plan_reuse(snn_arena *a, cg_plan *p, const bool *fwd_ref);

/* Recompute instead of tape. The forward function tapes every step value backward reads: for
 * Tutorial 5 the hidden layer's membrane (h.sub.1), T x B x 1000 floats written by forward and
 * read back by backward. Once `timesum` has removed the hidden layer's adjoint recurrence, the
 * part of backward that reads that tape has no recurrence left and may run forward in time; it
 * can then recompute the membrane itself by re-running the forward loop that made it, on its own
 * copy of that loop's states, and take the batch's rows a tile at a time, so that everything a
 * step touches stays in L1/L2 (bench/RESULTS.md, "Scan tiling": 1.23 -> 0.62 ms per iteration
 * for the two loops in C). This plans that, or nothing when a condition fails:
 *   - forward and backward run as one time loop each (no time_loops);
 *   - the forward group G (a fused loop) holding the largest taped values reads only constants,
 *     pre values and its own in-place states (started at a constant), and draws no random
 *     numbers: re-running it recomputes them exactly;
 *   - backward's step values that depend on those values (S2) contain no recurrence: every
 *     state whose next is in S2 is a time sum whose read is used by that next alone, and S2 has
 *     no loss, sink or copied state; values of the rest (S1) used only by S2 move to S2;
 *   - S1's values read by S2 (they cross: kept for all T) are small next to what G recomputes.
 * Then backward runs S1 as today (reverse in time, the whole batch), then S2 in row tiles of
 * tile_rows, t = 0..T-1, with G re-run first at each step. The time sums of S2 add their terms
 * in another order (float rounding). */
/* Forward in row tiles. Every op of the forward step region works row by row (elementwise,
 * linear and matmul_nn over the rows, the losses' per-row terms, whose mean divides by the whole
 * batch's rows, lower.c), so the batch's rows may go through all T steps a tile at a time, and a
 * step's [tile, N] arrays stay in L1/L2 instead of streaming [B, N] arrays through the cache at
 * every step (bench/RESULTS.md, "Scan tiling"). Conditions: one time loop, every state rotating
 * (no end-of-step copies of whole buffers), nothing that sums or mixes rows (sum_to,
 * broadcast, matmul_tn), and rows of at least 32 elements somewhere (else a tile is too little
 * work for its calls). Applied with plan_recompute, whose backward loop is tiled the same way:
 * the forward that remains after recomputation is the one worth tiling. */
static void plan_forward_tiles(cg_plan *p) {
    const snn_ir_func *F = p->fn[CG_FWD];
    if (p->rec_group < 0 || p->n_loops[CG_FWD] != 1 || p->loops[CG_FWD][0].batched) return;
    for (int32_t s = 0; s < F->n_states; s++)
        if (!p->st_rotate[CG_FWD][s]) return;
    int32_t sb, se;
    step_range(F, &sb, &se);
    int64_t widest = 0;
    for (int32_t i = sb; i < se; i++) {
        const snn_ir_value *v = &F->values[i];
        if (v->op == SNN_OP_SUM_TO || v->op == SNN_OP_BROADCAST || v->op == SNN_OP_MATMUL_TN ||
            v->op == SNN_OP_FWD)
            return;
        if (v->shape.rank >= 1 && v->shape.dim[0] == SNN_DIM_B) {
            int64_t row = snn_shape_numel(v->shape, 1);
            if (row > widest) widest = row;
        } else if (v->shape.rank >= 1 && snn_op_infos[v->op].cls != SNN_CLASS_LEAF) {
            return;   /* a step value without rows: would be computed per tile */
        }
    }
    if (widest >= 32) p->loops[CG_FWD][0].tiled = true;
}

/* Forward state s belongs to group g alone: it rotates, its next is a member of g, it starts at
 * a constant, and its step reads are read by members of g only and not by backward. */
static bool state_of_group(const cg_plan *p, int32_t s, int32_t g, const bool *fwd_ref) {
    const snn_ir_func *F = p->fn[CG_FWD];
    const cg_val *fv = p->val[CG_FWD];
    const snn_ir_state *st = &F->states[s];
    if (!p->st_rotate[CG_FWD][s] || fv[st->next].group != g || st->init_from >= 0) return false;
    for (int32_t i = 0; i < F->n_values; i++) {
        const snn_ir_value *v = &F->values[i];
        if (v->op != SNN_OP_STATE || v->ival != s || v->region != SNN_REGION_STEP) continue;
        if (fwd_ref[i]) return false;
        for (int32_t j = i + 1; j < F->n_values; j++)
            for (int q = 0; q < F->values[j].nargs; q++)
                if (F->values[j].args[q] == i && fv[j].group != g) return false;
    }
    return true;
}

static void plan_recompute(snn_arena *a, cg_plan *p, bool *fwd_ref) {
    const snn_ir_func *F = p->fn[CG_FWD], *f = p->fn[CG_BWD];
    p->rec_group = -1;
    if (!f || p->time_loops || p->n_loops[CG_FWD] != 1 || p->n_loops[CG_BWD] != 1) return;
    const cg_val *fv = p->val[CG_FWD];
    cg_val *cv = p->val[CG_BWD];
    int32_t sb, se;
    step_range(f, &sb, &se);
    /* the candidate group: the largest one with a value backward reads at each step */
    bool *bread = snn_alloc(a, sizeof(bool) * (size_t)(F->n_values + 1));
    for (int32_t i = sb; i < se; i++)
        if (f->values[i].op == SNN_OP_FWD && F->values[f->values[i].ival].region == SNN_REGION_STEP)
            bread[f->values[i].ival] = true;
    int32_t g = -1;
    int64_t best = 0;
    for (int32_t u = 0; u < F->n_values; u++) {
        if (!bread[u] || fv[u].group < 0) continue;
        int64_t n = snn_shape_numel(F->values[u].shape, 128);
        if (n > best) { best = n; g = fv[u].group; }
    }
    if (g < 0) return;
    const cg_group *G = &p->groups[g];
    if (G->func != CG_FWD || G->region != SNN_REGION_STEP || G->batched || G->uses_rate ||
        G->shape.rank < 1 || G->shape.dim[0] != SNN_DIM_B)
        return;
    for (int32_t k = 0; k < G->n_members; k++) {
        const snn_ir_value *v = &F->values[G->members[k]];
        for (int q = 0; q < v->nargs; q++) {
            int32_t u = v->args[q];
            const snn_ir_value *uv = &F->values[u];
            if (fv[u].group == g || uv->op == SNN_OP_CONST || uv->region == SNN_REGION_PRE) continue;
            if (uv->op != SNN_OP_STATE || uv->region != SNN_REGION_STEP) return;
            if (!state_of_group(p, uv->ival, g, fwd_ref)) return;
        }
    }
    /* S2: backward step values that depend on G's taped values */
    bool *rec = snn_alloc(a, sizeof(bool) * (size_t)(F->n_values + 1));
    bool *in2 = snn_alloc(a, sizeof(bool) * (size_t)(f->n_values + 1));
    int64_t rec_elems = 0;
    for (int32_t k = 0; k < G->n_members; k++) {
        int32_t u = G->members[k];
        if (bread[u]) { rec[u] = true; rec_elems += snn_shape_numel(F->values[u].shape, 128); }
    }
    for (int32_t i = sb; i < se; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->op == SNN_OP_FWD && rec[v->ival]) in2[i] = true;
        for (int q = 0; q < v->nargs; q++) in2[i] |= in2[v->args[q]];
    }
    /* states: a next in S2 must be a time sum, whose read then runs in S2 too */
    for (int32_t s = 0; s < f->n_states; s++) {
        int32_t nx = f->states[s].next;
        if (!in2[nx]) continue;
        const snn_ir_value *add = &f->values[nx];
        if (add->op != SNN_OP_ADD) return;
        int32_t r = -1;
        for (int q = 0; q < 2; q++) {
            const snn_ir_value *u = &f->values[add->args[q]];
            if (u->op == SNN_OP_STATE && u->ival == s && u->region == SNN_REGION_STEP) r = add->args[q];
        }
        if (r < 0 || uses_of(f, r) != 1) return;
        in2[r] = true;
    }
    /* values (and leaves) of S1 used only in S2 move to S2; repeat until nothing moves */
    for (bool moved = true; moved;) {
        moved = false;
        for (int32_t i = se - 1; i >= sb; i--) {
            if (in2[i] || cv[i].next_of >= 0 || f->values[i].op == SNN_OP_STATE) continue;
            int32_t users = 0, users2 = 0;
            for (int32_t j = i + 1; j < se; j++)
                for (int q = 0; q < f->values[j].nargs; q++)
                    if (f->values[j].args[q] == i) { users++; users2 += in2[j]; }
            for (int32_t s2 = 0; s2 < f->n_states; s2++) users += f->states[s2].next == i;
            if (users > 0 && users == users2) { in2[i] = true; moved = true; }
        }
    }
    /* what S2 may not hold, what crosses from S1, and whether it pays (crossings are marked
     * in cv only once the plan is taken) */
    bool *cross = snn_alloc(a, sizeof(bool) * (size_t)(f->n_values + 1));
    int64_t cross_elems = 0;
    for (int32_t i = sb; i < se; i++) {
        const snn_ir_value *v = &f->values[i];
        snn_op_class cls = snn_op_infos[v->op].cls;
        if (in2[i]) {
            if (cls == SNN_CLASS_LOSS || cls == SNN_CLASS_SINK || v->op == SNN_OP_RATE) return;
            if (v->op == SNN_OP_STATE && !in2[f->states[v->ival].next]) return;
            for (int q = 0; q < v->nargs; q++) {
                int32_t u = v->args[q];
                if (in2[u] || f->values[u].region != SNN_REGION_STEP) continue;
                if (f->values[u].op == SNN_OP_STATE) return;   /* a recurrence's value */
                if (snn_op_infos[f->values[u].op].cls == SNN_CLASS_LEAF) continue;
                if (!cross[u]) cross_elems += snn_shape_numel(f->values[u].shape, 128);
                cross[u] = true;
            }
        } else if (v->op == SNN_OP_STATE && in2[f->states[v->ival].next]) {
            return;
        }
    }
    if (cross_elems * 4 > rec_elems) return;   /* not worth it */
    /* commit */
    cg_tloop *L = snn_alloc(a, sizeof(cg_tloop) * 2);
    L[0] = (cg_tloop){sb, se, true, false, false, false};
    L[1] = (cg_tloop){sb, se, false, false, true, true};
    p->loops[CG_BWD] = L;
    p->n_loops[CG_BWD] = 2;
    for (int32_t i = sb; i < se; i++) {
        cv[i].loop = in2[i] ? 1 : 0;
        cv[i].crosses = cross[i];
    }
    p->rec_group = g;
    p->rec_val = rec;
    p->tile_rows = 32;   /* 16, 32, 64 rows measured: 16 costs 5 % more CPU, 32 and 64 alike */
    for (int32_t k = 0; k < G->n_members; k++) {   /* G's pre operands must outlive forward */
        const snn_ir_value *v = &F->values[G->members[k]];
        for (int q = 0; q < v->nargs; q++)
            if (F->values[v->args[q]].region == SNN_REGION_PRE) fwd_ref[v->args[q]] = true;
    }
}

/* Small matmuls inside loops. A step matmul_nn [R, K] x [K, N] whose K is a constant of at
 * most CG_FUSE_K_MAX, and whose product is not added into a state by the sgemm (plan_mmacc),
 * joins the elementwise loop of its result's shape like an elementwise value: per element, K
 * multiply-adds in ascending k, the first a plain multiply, which is how the runtime's kernels
 * sum (the same bits), with the [R, K] row's values loop-invariant and the weight's rows read
 * along the loop. Its result then needs no buffer when only the loop reads it, and the call and
 * its pass over memory go. Tutorial 5: the output layer's gradient into the hidden spikes,
 * d.h.spk = d.o.mem W2 ([B, 10] x [10, 1000]), joins the surrogate loop that reads it.
 * A weight (parameter or pre value) whose rows are not a whole number of 64-byte lines is read
 * from a copy with padded rows (mm_pad, filled once per call): with rows of 1000 floats every
 * other row starts mid-line, every load of it spans two lines, and the loop ran 12 cycles per
 * 16 elements instead of 9 (bench/RESULTS.md, "Fifth session"). */
static void plan_fuse_matmul(cg_plan *p, int fi) {
    const snn_ir_func *f = p->fn[fi];
    cg_val *cv = p->val[fi];
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->op != SNN_OP_MATMUL_NN || v->region != SNN_REGION_STEP ||
            p->loops[fi][cv[i].loop].batched || cv[i].next_of >= 0 || cg_mmacc_state(p, fi, i) >= 0)
            continue;
        /* operands come from outside the loop: K != N keeps [R, K] out of a loop of [R, N]
         * (and a constant has no buffer to read rows from) */
        snn_shape sa = f->values[v->args[0]].shape, sb = f->values[v->args[1]].shape;
        if (sa.rank != 2 || sb.rank != 2 || v->shape.rank != 2 || v->args[0] == v->args[1] ||
            sa.dim[1] < 1 || sa.dim[1] > CG_FUSE_K_MAX || sb.dim[0] != sa.dim[1] ||
            sb.dim[1] < 1 || sb.dim[1] == sa.dim[1] || f->values[v->args[0]].op == SNN_OP_CONST ||
            f->values[v->args[1]].op == SNN_OP_CONST)
            continue;
        cv[i].mm_fused = true;
    }
}

/* Short weight gradients inside the loop of their operand. A step matmul_tn m = A[R, K]^T
 * S[R, N] with K a constant of at most CG_FUSE_K_MAX, added into its state at each step
 * (plan_mmacc: the sgemm with beta 1), whose S is a member of backward's merged loop (plan.
 * rec_merge, of shape [R, N]; A computed before it) becomes a member of that loop: at each
 * element (r, j), C[k, j] += A[r, k] S[r, j] for k ascending, into the state's buffer, and S
 * needs no memory unless something else reads it. Tutorial 5: dW2 += d.o.mem^T h.spk. Only
 * where the loop can then run with the steps innermost (plan_time_inner), which keeps C's
 * 16 columns in registers across rows and steps: with the steps outermost each element loads
 * and stores K values of C, and the trainer was slower than with the sgemm (one thread 5.45 ->
 * 6.26 ms/iter, bench/RESULTS.md "Sixth session"). The rows and steps are added one by one into
 * C (the sgemm summed a step's rows first), so the result differs by float rounding. */
static bool time_inner_loop_ok(const cg_plan *p, int32_t g, int32_t extra);

static void plan_fuse_wgrad(cg_plan *p) {
    const int fi = CG_BWD;
    const snn_ir_func *f = p->fn[fi];
    cg_val *cv = p->val[fi];
    if (p->rec_merge < 0) return;
    for (int32_t s = 0; s < f->n_states; s++) {
        const int32_t m = p->st_mmacc[fi][s];
        if (m < 0) continue;
        const snn_ir_value *v = &f->values[m];
        if (v->op != SNN_OP_MATMUL_TN || p->loops[fi][cv[m].loop].batched) continue;
        const int32_t ia = v->args[0], is = v->args[1];
        const snn_ir_value *av = &f->values[ia], *sv = &f->values[is];
        if (ia == is || av->shape.rank != 2 || sv->shape.rank != 2 || v->shape.rank != 2 ||
            av->shape.dim[1] < 1 || av->shape.dim[1] > CG_FUSE_K_MAX ||
            av->shape.dim[0] != sv->shape.dim[0] || av->shape.dim[1] == sv->shape.dim[1] ||
            av->op == SNN_OP_CONST || sv->op == SNN_OP_CONST || cv[is].group < 0)
            continue;
        cg_group *G = &p->groups[cv[is].group];
        if (cv[is].group != p->rec_merge || G->func != fi || G->batched || G->uses_rate ||
            !snn_shape_eq(G->shape, sv->shape) || cv[G->members[0]].loop != cv[m].loop ||
            !(is_leaf_op(av->op) || ia < G->members[0]) ||
            !time_inner_loop_ok(p, cv[is].group, m))
            continue;
        cv[m].mm_wacc = true;
        cv[m].group = cv[is].group;
        G->members[G->n_members++] = m;
    }
}

/* A short linear layer inside the loop of its input. linear(S, W, b) = S W^T + b with S [R, N] a
 * member of a fused loop, W [K, N] with K at most CG_FUSE_K_MAX and b [K] not computed in the
 * steps: the loop computes, row by row, K sums over its 16-column vectors of S times W's
 * columns (multiply-adds into K registers), adds each sum's 16 lanes in a fixed tree and then
 * b (lower.c, rowred_kernel). Tutorial 5: o.linear = linear(h.spk, W2, b2) per step and tile
 * joins the neuron loop; the [32 x 1000] spike tile is no longer stored and read back through
 * snnrt_sgemm's narrow kind, which transposed it in 16 x 16 blocks. The sums run in another
 * order than the sgemm's (by lane, then the tree), so results differ by float rounding. The
 * loop is then emitted 16 lanes wide by lower.c itself, so every member must be an op
 * cg_vec_op allows and every operand from outside a row of the loop's shape, a row of N
 * columns or a scalar. */
static void plan_fuse_linear(cg_plan *p, int fi) {
    const snn_ir_func *f = p->fn[fi];
    cg_val *cv = p->val[fi];
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->op != SNN_OP_LINEAR || v->region != SNN_REGION_STEP || v->nargs < 2 ||
            p->loops[fi][cv[i].loop].batched || cv[i].next_of >= 0)
            continue;
        const int32_t is = v->args[0], iw = v->args[1], ib = v->nargs > 2 ? v->args[2] : -1;
        const snn_ir_value *sv = &f->values[is], *wv = &f->values[iw];
        const int32_t g = cv[is].group;
        if (g < 0 || sv->shape.rank != 2 || wv->shape.rank != 2 || wv->region == SNN_REGION_STEP ||
            wv->op == SNN_OP_CONST || wv->shape.dim[0] < 1 || wv->shape.dim[0] > CG_FUSE_K_MAX ||
            wv->shape.dim[1] != sv->shape.dim[1] || sv->shape.dim[1] < 1 ||
            (ib >= 0 && (f->values[ib].region == SNN_REGION_STEP || f->values[ib].op == SNN_OP_CONST)))
            continue;
        cg_group *G = &p->groups[g];
        if (G->func != fi || G->batched || G->uses_rate || G->rowred >= 0 ||
            !snn_shape_eq(G->shape, sv->shape) || cv[G->members[0]].loop != cv[i].loop)
            continue;
        bool ok = true;
        for (int32_t m = 0; m < G->n_members && ok; m++) {
            const snn_ir_value *mv = &f->values[G->members[m]];
            if (!cg_vec_op(mv->op)) ok = false;
            for (int q = 0; q < mv->nargs && ok; q++) {
                const snn_ir_value *u = &f->values[mv->args[q]];
                if (cv[mv->args[q]].group == g || u->op == SNN_OP_CONST) continue;
                ok = snn_shape_eq(u->shape, G->shape) || u->shape.rank == 0 ||
                     (u->shape.rank == 1 && u->shape.dim[0] == G->shape.dim[1]);
            }
        }
        if (!ok) continue;
        G->rowred = i;
        cv[i].group = g;
        cv[i].mm_rowred = true;
    }
}

/* Rows in the lanes. Forward's loop with a linear layer summed in it (plan_fuse_linear) has the
 * columns in its vector lanes: per 16 columns it loads K vectors of W (one per output) and
 * ends each row with K lane sums. When every [B, N] operand of the loop is either a state the
 * loop alone reads and writes (in place, a constant initial value, nothing after the loop
 * reading it) or a value made before the time loop (the input layer's output), the kernel can
 * keep 16 rows in its lanes instead and walk the N columns one at a time: W's K values of a
 * column are broadcasts of one float each, and the K sums of a row end up in one lane, no lane
 * sums. The state is then stored [N, B] (its only reader is this kernel), and the pre value is
 * read from a copy transposed to [N, B] once per call (snnrt_transpose, lower.c). A C model of
 * Tutorial 5's loop (64 rows, T = 25, one thread): 2.73 -> 2.25 ns per 16 elements and step.
 * The sums run over the columns in order instead of by lane and tree: float rounding. */
static void plan_rows_in_lanes(cg_plan *p, const bool *fwd_ref) {
    const snn_ir_func *f = p->fn[CG_FWD];
    cg_val *cv = p->val[CG_FWD];
    for (int32_t g = 0; g < p->n_groups; g++) {
        cg_group *G = &p->groups[g];
        if (G->func != CG_FWD || G->rowred < 0 || G->batched || G->uses_rate ||
            G->region != SNN_REGION_STEP || G->shape.rank != 2 || G->shape.dim[0] != SNN_DIM_B)
            continue;
        const int64_t N = G->shape.dim[1];
        bool ok = cv[G->rowred].tape < 0 && !cv[G->rowred].taped && !cv[G->rowred].crosses;
        for (int32_t m = 0; m < G->n_members && ok; m++) {
            const int32_t id = G->members[m];
            const snn_ir_value *v = &f->values[id];
            const bool recomputed = p->rec_val && p->rec_val[id];   /* backward's own copy */
            if (cv[id].tape >= 0 || cv[id].taped || cv[id].crosses || (fwd_ref[id] && !recomputed))
                ok = false;
            /* stored: only as an in-place state's next value that nothing else reads */
            if (ok && cv[id].stored) {
                const int32_t s = cv[id].next_of;
                ok = s >= 0 && p->st_inplace[CG_FWD][s] && f->states[s].init_from < 0 &&
                     f->states[s].next == id;
                for (int32_t j = 0; j < f->n_values && ok; j++)
                    for (int q = 0; q < f->values[j].nargs; q++)
                        if (f->values[j].args[q] == id && cv[j].group != g) ok = false;
                for (int32_t j = 0; j < f->n_values && ok; j++)   /* the final value's readers */
                    if (f->values[j].op == SNN_OP_STATE && f->values[j].ival == s &&
                        (f->values[j].region != SNN_REGION_STEP || fwd_ref[j]))
                        ok = false;
            }
            for (int q = 0; q < v->nargs && ok; q++) {
                const int32_t u = v->args[q];
                const snn_ir_value *uv = &f->values[u];
                if (cv[u].group == g || uv->op == SNN_OP_CONST || uv->shape.rank == 0) continue;
                if (uv->shape.rank == 1) { ok = uv->shape.dim[0] == N; continue; }
                if (!snn_shape_eq(uv->shape, G->shape)) { ok = false; continue; }
                if (uv->op == SNN_OP_STATE) {   /* read in place (checked with its next value) */
                    const int32_t s = (int32_t)uv->ival;
                    ok = uv->region == SNN_REGION_STEP && p->st_inplace[CG_FWD][s] &&
                         cv[f->states[s].next].group == g;
                } else {
                    ok = uv->region == SNN_REGION_PRE && uv->op != SNN_OP_INPUT;
                }
            }
        }
        if (!ok) continue;
        G->lanes = true;
        for (int32_t m = 0; m < G->n_members; m++) {
            const snn_ir_value *v = &f->values[G->members[m]];
            for (int q = 0; q < v->nargs; q++) {
                const int32_t u = v->args[q];
                if (cv[u].group != g && f->values[u].op != SNN_OP_STATE &&
                    snn_shape_eq(f->values[u].shape, G->shape))
                    cv[u].tr_need = true;
            }
        }
    }
}

/* The recomputation inside the loop that reads it. With the recompute plan, backward's tiled
 * loop re-runs forward's group (rec kernel: the membrane and h.sub.1 stored per step) and then
 * its own surrogate loop reads h.sub.1 back. When the first backward value of that loop that
 * reads a recomputed value is a member of a group of the recomputed group's shape, that group's
 * kernel runs the recomputation itself, element by element before its own members, and the
 * recomputed values need memory only if something outside it reads them. A C model of the two
 * forms (bench/RESULTS.md, "Fifth session"): 0.54-0.80 -> 0.39-0.52 ms per iteration. */
static void plan_rec_merge(cg_plan *p) {
    if (p->rec_group < 0) return;
    const snn_ir_func *f = p->fn[CG_BWD];
    const cg_val *cv = p->val[CG_BWD];
    const cg_group *G = &p->groups[p->rec_group];
    /* the first reader in emission order (a group stands where its first member does) */
    int32_t first = -1, first_pos = f->n_values;
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->region != SNN_REGION_STEP || !p->loops[CG_BWD][cv[i].loop].rows_forward) continue;
        bool reads = false;
        for (int q = 0; q < v->nargs; q++) {
            const snn_ir_value *u = &f->values[v->args[q]];
            reads |= u->op == SNN_OP_FWD && p->rec_val[u->ival];
        }
        const int32_t pos = cv[i].group >= 0 ? p->groups[cv[i].group].members[0] : i;
        if (reads && pos < first_pos) first = i, first_pos = pos;
    }
    if (first < 0) return;
    const int32_t g = cv[first].group;
    bool plain = true;   /* the forward group: elementwise values only */
    for (int32_t k = 0; k < G->n_members; k++) plain &= !p->val[CG_FWD][G->members[k]].mm_fused;
    if (g >= 0 && plain && p->groups[g].func == CG_BWD && !p->groups[g].batched &&
        !p->groups[g].uses_rate && snn_shape_eq(p->groups[g].shape, G->shape))
        p->rec_merge = g;
}

cg_ti_kind_t cg_ti_kind(const cg_plan *p, int32_t g, int32_t x) {
    const cg_group *G = &p->groups[g];
    if (x < 0) {   /* a forward value the merged recomputation reads */
        const snn_ir_value *u = &p->fn[CG_FWD]->values[-x - 1];
        if (u->op == SNN_OP_STATE && u->region == SNN_REGION_STEP && p->rec_state_buf[u->ival] >= 0 &&
            snn_shape_eq(u->shape, G->shape))
            return CG_TI_STATE;
        if (u->region == SNN_REGION_PRE && snn_shape_eq(u->shape, G->shape)) return CG_TI_ROWS;
        if (u->region == SNN_REGION_PRE && u->shape.rank == 0) return CG_TI_SCALAR;
        return CG_TI_BAD;
    }
    const snn_ir_func *f = p->fn[CG_BWD];
    const cg_val *cv = p->val[CG_BWD];
    const snn_ir_value *u = &f->values[x];
    const int32_t k = cv[G->members[0]].loop;
    if (u->op == SNN_OP_STATE && u->region == SNN_REGION_STEP) {
        const int32_t s = u->ival, m = p->st_mmacc[CG_BWD][s], nx = f->states[s].next;
        if (m >= 0 && cv[m].mm_wacc && cv[m].group == g) return CG_TI_WACC;
        if (cv[nx].group == g && p->st_inplace[CG_BWD][s] && snn_shape_eq(u->shape, G->shape))
            return CG_TI_STATE;
        return CG_TI_BAD;
    }
    if (u->region == SNN_REGION_STEP && cv[x].loop == k && cv[x].group >= 0 &&
        p->groups[cv[x].group].shape.rank == 0)
        return CG_TI_STEPSCALAR;
    if (u->region == SNN_REGION_STEP && cv[x].crosses && cv[x].tape >= 0 && cv[x].loop < k &&
        u->shape.rank == 2 && u->shape.dim[0] == SNN_DIM_B && u->shape.dim[1] >= 1 &&
        u->shape.dim[1] <= CG_FUSE_K_MAX)
        return CG_TI_STEPROWS;
    if (u->region == SNN_REGION_PRE && u->shape.rank == 0) return CG_TI_SCALAR;
    if (u->region == SNN_REGION_PRE && snn_shape_eq(u->shape, G->shape)) return CG_TI_ROWS;
    if (u->region == SNN_REGION_PRE && u->shape.rank == 2 && u->shape.dim[0] >= 1 &&
        u->shape.dim[1] == G->shape.dim[1])
        return CG_TI_WEIGHT;
    return CG_TI_BAD;
}

/* Backward's tiled loop with the steps innermost. After plan_rec_merge and plan_fuse_wgrad the
 * Tutorial 5 loop is one group (the recomputed membrane, the surrogate, d.h.spk = d.o.mem W2,
 * the time sum of d.h.linear, dW2 += d.o.mem^T h.spk) and a per-step scalar (the time sum's
 * weight). Run per step, the group streams the tile's state, time sum and h.linear through L2
 * at every step and reloads W2's K values per 16 elements. With 16 columns outermost, then the
 * rows, then the steps, all of those stay in registers (lower.c, time_inner_kernel) and only
 * d.o.mem's row of the step is read: a C model (bench/backward_interchange.c) ran 1.53-1.72 ->
 * 1.14-1.17 ms per iteration on one thread. Taken when the loop holds nothing but that group
 * (ops 16 lanes wide can compute: cg_vec_op), groups of scalars (computed for all steps
 * first), and the next values of states the group updates, and when every operand the group
 * reads from outside is of a kind the kernel keeps (cg_ti_kind). */
/* Whether backward's loop of group g (plan.rec_merge) holds nothing but g (and `extra`, a
 * weight gradient about to join it, or -1): ops 16 lanes wide can compute (cg_vec_op), groups
 * of scalars of its own (computed for all steps first) and the next values of states g adds
 * into. */
static bool time_inner_loop_ok(const cg_plan *p, int32_t g, int32_t extra) {
    const snn_ir_func *f = p->fn[CG_BWD];
    const cg_val *cv = p->val[CG_BWD];
    const cg_group *G = &p->groups[g];
    const int32_t k = cv[G->members[0]].loop;
    const cg_tloop *L = &p->loops[CG_BWD][k];
    if (!L->tiled || !L->rows_forward || L->batched || G->batched || G->uses_rate ||
        G->shape.rank != 2 || G->shape.dim[0] != SNN_DIM_B || G->shape.dim[1] < 1)
        return false;
    for (int32_t i = L->begin; i < L->end; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->region != SNN_REGION_STEP || cv[i].loop != k || is_leaf_op(v->op) || i == extra)
            continue;
        if (cv[i].group == g) {
            if (!cg_vec_op(v->op) && !cv[i].mm_fused && !cv[i].mm_wacc) return false;
            continue;
        }
        if (cv[i].group >= 0 && p->groups[cv[i].group].shape.rank == 0) {
            for (int q = 0; q < v->nargs; q++) {
                const snn_ir_value *u = &f->values[v->args[q]];
                const int32_t ug = cv[v->args[q]].group;
                if (u->op != SNN_OP_CONST && u->op != SNN_OP_STEP &&
                    !(ug >= 0 && p->groups[ug].shape.rank == 0 && cv[v->args[q]].loop == k))
                    return false;
            }
            if (v->op != SNN_OP_POW && !cg_vec_op(v->op)) return false;
            continue;
        }
        const int32_t s = cv[i].next_of, mm = s >= 0 ? p->st_mmacc[CG_BWD][s] : -1;
        if (mm >= 0 && (mm == extra || cv[mm].mm_wacc)) continue;
        return false;
    }
    /* the forward group it recomputes: ops 16 lanes wide */
    for (int32_t q = 0; q < p->groups[p->rec_group].n_members; q++)
        if (!cg_vec_op(p->fn[CG_FWD]->values[p->groups[p->rec_group].members[q]].op)) return false;
    return true;
}

static void plan_time_inner(cg_plan *p) {
    p->time_inner = -1;
    const int32_t g = p->rec_merge;
    if (g < 0 || !p->fn[CG_BWD] || !time_inner_loop_ok(p, g, -1)) return;
    const snn_ir_func *f = p->fn[CG_BWD];
    const cg_val *cv = p->val[CG_BWD];
    const cg_group *G = &p->groups[g];
    for (int32_t m = 0; m < G->n_members; m++) {   /* no per-step outputs */
        const int32_t id = G->members[m];
        if (cv[id].stored && !(cv[id].next_of >= 0 && p->st_inplace[CG_BWD][cv[id].next_of]))
            return;
    }
    /* every operand from outside of a kind the kernel keeps (cg_ti_kind); a weight only as a
     * fused matmul's, a [B, K] value of an earlier loop only as a matmul's [B, K] operand */
    for (int32_t m = 0; m < G->n_members; m++) {
        const int32_t id = G->members[m];
        const snn_ir_value *v = &f->values[id];
        const bool mm = cv[id].mm_fused || cv[id].mm_wacc;
        for (int q = 0; q < v->nargs; q++) {
            const int32_t u = v->args[q];
            const snn_ir_value *uv = &f->values[u];
            if (cv[u].group == g || uv->op == SNN_OP_CONST ||
                (uv->op == SNN_OP_FWD && p->rec_val[uv->ival]))
                continue;
            const cg_ti_kind_t kd = cg_ti_kind(p, g, u);
            if (kd == CG_TI_BAD || (kd == CG_TI_WEIGHT && !(cv[id].mm_fused && q == 1)) ||
                (kd == CG_TI_STEPROWS && !(mm && q == 0)) || kd == CG_TI_WACC)
                return;
        }
    }
    /* the forward group it recomputes (its ops checked above): operands it keeps, nothing
     * stored */
    const snn_ir_func *F = p->fn[CG_FWD];
    const cg_group *R = &p->groups[p->rec_group];
    for (int32_t q = 0; q < R->n_members; q++) {
        const int32_t id = R->members[q];
        const snn_ir_value *v = &F->values[id];
        if (p->rec_val[id] && cg_rec_stored(p, id)) return;
        for (int r = 0; r < v->nargs; r++) {
            const int32_t u = v->args[r];
            if (p->val[CG_FWD][u].group == p->rec_group || F->values[u].op == SNN_OP_CONST) continue;
            const cg_ti_kind_t kd = cg_ti_kind(p, g, -(u + 1));
            if (kd != CG_TI_ROWS && kd != CG_TI_STATE && kd != CG_TI_SCALAR) return;
        }
    }
    p->time_inner = g;
}

bool cg_plan_build(snn_arena *a, snn_diag *d, const snn_ir_module *m, bool time_loops,
                   const snn_codegen_options *o, cg_plan *p) {
    const bool recompute = !(o && o->no_recompute), fuse_matmul = !(o && o->no_fuse_matmul),
               rec_merge = !(o && o->no_rec_merge), fuse_wgrad = !(o && o->no_fuse_wgrad),
               time_inner = !(o && o->no_time_inner), fuse_linear = !(o && o->no_fuse_linear),
               rows_in_lanes = !(o && o->no_rows_in_lanes);
    memset(p, 0, sizeof *p);
    p->rec_group = -1;
    p->m = m;
    p->time_loops = time_loops;
    p->fn[CG_FWD] = &m->forward;
    p->fn[CG_BWD] = m->backward.n_values > 0 ? &m->backward : NULL;

    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        p->val[fi] = snn_alloc(a, sizeof(cg_val) * (size_t)(f->n_values + 1));
        p->state_buf[fi] = snn_alloc(a, sizeof(int32_t) * (size_t)(f->n_states + 1));
        for (int32_t i = 0; i < f->n_values; i++) {
            p->val[fi][i].group = -1;
            p->val[fi][i].buf = -1;
            p->val[fi][i].tape = -1;
            p->val[fi][i].next_of = -1;
            p->val[fi][i].grad_of = -1;
        }
    }

    /* Checks of operands and states; forward values read by backward. */
    bool *fwd_ref = snn_alloc(a, sizeof(bool) * (size_t)(m->forward.n_values + 1));
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        for (int32_t i = 0; i < f->n_values; i++) {
            const snn_ir_value *v = &f->values[i];
            if (v->op == SNN_OP_ARG || (v->op == SNN_OP_FWD && fi == CG_FWD)) {
                snn_internal_error(d, v->loc, "codegen: '%s' op in function %s",
                                   snn_op_infos[v->op].mnemonic, f->name);
                return false;
            }
            if (v->op == SNN_OP_FWD) {
                if (v->ival < 0 || v->ival >= m->forward.n_values) {
                    snn_internal_error(d, v->loc, "codegen: fwd %%%s refers to forward value %d",
                                       v->name, v->ival);
                    return false;
                }
                fwd_ref[v->ival] = true;
            }
            for (int k = 0; k < v->nargs; k++) {
                int32_t u = v->args[k];
                if (u < 0 || u >= i) {
                    snn_internal_error(d, v->loc, "codegen: bad operand %d of %%%s", u, v->name);
                    return false;
                }
            }
        }
        for (int32_t s = 0; s < f->n_states; s++) {
            const snn_ir_state *st = &f->states[s];
            if (st->next < 0 || st->next >= f->n_values ||
                f->values[st->next].region != SNN_REGION_STEP) {
                snn_internal_error(d, st->loc, "codegen: state %s has no step value as next",
                                   st->name);
                return false;
            }
            if (st->init_from >= 0 && (st->init_from >= f->n_values ||
                                       f->values[st->init_from].region != SNN_REGION_PRE)) {
                snn_internal_error(d, st->loc, "codegen: state %s: init_from is not a "
                                   "pre-region value", st->name);
                return false;
            }
        }
    }

    /* State modes. A state whose next is a computed step value, next of no other state, rotates:
     * its next value is written straight into the place the state is read from at the next
     * step (two buffers used in turn, or the T slots of a taped or crossing value), so no copy
     * is needed. Others are copied at the end of each step. In a batched loop a time sum
     * (next = add(read, v)) is a sum over T into its buffer. */
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        cg_val *cv = p->val[fi];
        p->st_rotate[fi] = snn_alloc(a, sizeof(bool) * (size_t)(f->n_states + 1));
        p->st_sum[fi] = snn_alloc(a, sizeof(bool) * (size_t)(f->n_states + 1));
        p->state_buf2[fi] = snn_alloc(a, sizeof(int32_t) * (size_t)(f->n_states + 1));
        for (int32_t s = 0; s < f->n_states; s++) {
            p->state_buf2[fi][s] = -1;
            int32_t nx = f->states[s].next, uses = 0;
            for (int32_t s2 = 0; s2 < f->n_states; s2++) uses += f->states[s2].next == nx;
            snn_op_class cls = snn_op_infos[f->values[nx].op].cls;
            p->st_rotate[fi][s] = cls != SNN_CLASS_LEAF && cls != SNN_CLASS_SINK && uses == 1;
            if (p->st_rotate[fi][s]) cv[nx].next_of = s;
        }
        plan_loops(a, p, fi, p->time_loops, fwd_ref);
        if (fi == CG_BWD && recompute) {
            plan_recompute(a, p, fwd_ref);
            plan_forward_tiles(p);
        }
        plan_mmacc(a, p, fi, fwd_ref);
        if (fuse_matmul) plan_fuse_matmul(p, fi);
        form_groups(a, p, fi);
        if (fuse_linear) plan_fuse_linear(p, fi);
    }
    p->rec_merge = -1;
    if (p->fn[CG_BWD] && rec_merge) plan_rec_merge(p);
    if (p->fn[CG_BWD] && fuse_wgrad && time_inner) plan_fuse_wgrad(p);

    /* Which values are read from outside their group ("stored"). */
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        cg_val *cv = p->val[fi];
        for (int32_t i = 0; i < f->n_values; i++) {
            const snn_ir_value *v = &f->values[i];
            for (int k = 0; k < v->nargs; k++) {
                int32_t u = v->args[k];
                if (cv[i].group < 0 || cv[u].group != cv[i].group) cv[u].stored = true;
            }
        }
        for (int32_t s = 0; s < f->n_states; s++) {
            cv[f->states[s].next].stored = true;
            if (f->states[s].init_from >= 0) cv[f->states[s].init_from].stored = true;
        }
        for (int32_t i = 0; i < f->n_values; i++)
            if (cv[i].mm_wacc) cv[i].stored = false;   /* its product goes into its state */
        /* STATE step values of copied states that must survive the end-of-step copies get their
         * own copy at the start of the step: read from the post region, or the next of another
         * copied state. (A rotating state's previous value is never overwritten in its step.) */
        for (int32_t i = 0; i < f->n_values; i++) {
            const snn_ir_value *v = &f->values[i];
            for (int k = 0; k < v->nargs; k++) {
                const snn_ir_value *uv = &f->values[v->args[k]];
                if (uv->op == SNN_OP_STATE && uv->region == SNN_REGION_STEP &&
                    v->region == SNN_REGION_POST && !p->st_rotate[fi][uv->ival])
                    cv[v->args[k]].state_copy = true;
            }
        }
        for (int32_t s = 0; s < f->n_states; s++) {
            const snn_ir_value *nv = &f->values[f->states[s].next];
            if (nv->op == SNN_OP_STATE && nv->ival != s && !p->st_rotate[fi][nv->ival])
                cv[f->states[s].next].state_copy = true;
        }
    }

    /* The tape: forward values that backward reads. The previous value of a rotating state is
     * its next value one step earlier, so backward reading it tapes the next value instead. */
    for (int32_t i = 0; i < m->forward.n_values; i++) {
        if (!fwd_ref[i] || (p->rec_val && p->rec_val[i])) continue;   /* recomputed: no tape */
        const snn_ir_value *fv = &m->forward.values[i];
        cg_val *c = &p->val[CG_FWD][i];
        c->stored = true;
        if (fv->region != SNN_REGION_STEP || fv->op == SNN_OP_CONST || fv->op == SNN_OP_PARAM ||
            fv->op == SNN_OP_INPUT || fv->op == SNN_OP_STEPS || fv->op == SNN_OP_STEP)
            continue;
        if (fv->op == SNN_OP_STATE && p->st_rotate[CG_FWD][fv->ival])
            p->val[CG_FWD][m->forward.states[fv->ival].next].taped = true;
        else
            c->taped = true;
    }

    /* In-place states. A rotating state whose next value is computed in a fused loop, and whose
     * step reads are read only by that loop, element for element (the state's shape is the
     * loop's), is updated in place in one buffer: each element is read before it is written, and
     * nothing reads the old value after the loop. (Not when its next value lives in T slots.) */
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        cg_val *cv = p->val[fi];
        p->st_inplace[fi] = snn_alloc(a, sizeof(bool) * (size_t)(f->n_states + 1));
        for (int32_t s = 0; s < f->n_states; s++) {
            int32_t nx = f->states[s].next, g = cv[nx].group;
            if (!p->st_rotate[fi][s] || p->st_sum[fi][s] || g < 0 || p->groups[g].batched ||
                cv[nx].taped || cv[nx].crosses || !snn_shape_eq(f->states[s].shape, p->groups[g].shape))
                continue;
            bool ok = true;
            int32_t n_reads = 0;   /* one step read: one kernel parameter for the buffer */
            for (int32_t i = 0; i < f->n_values && ok; i++) {
                const snn_ir_value *v = &f->values[i];
                if (v->op != SNN_OP_STATE || v->ival != s) continue;
                if (v->region == SNN_REGION_POST) continue;   /* the final value: the buffer */
                if (++n_reads > 1) ok = false;
                if (v->region == SNN_REGION_PRE || cv[i].state_copy || cv[i].taped ||
                    cv[i].crosses || (fi == CG_FWD && fwd_ref[i]))
                    ok = false;
                for (int32_t j = i + 1; j < f->n_values && ok; j++)
                    for (int q = 0; q < f->values[j].nargs; q++)
                        if (f->values[j].args[q] == i && cv[j].group != g) ok = false;
                for (int32_t s2 = 0; s2 < f->n_states && ok; s2++)
                    if (f->states[s2].next == i || f->states[s2].init_from == i) ok = false;
            }
            p->st_inplace[fi][s] = ok;
        }
    }

    if (rows_in_lanes) plan_rows_in_lanes(p, fwd_ref);

    /* Gradients. A parameter with one grad_acc, outside the time loop, gets its gradient
     * assigned rather than zeroed and accumulated: computed straight into grads[i] when the
     * value is computed by backward, copied when it is a state's final value or the like. */
    p->grad_mode = snn_alloc(a, sizeof(int32_t) * (size_t)(m->n_params + 1));
    if (p->fn[CG_BWD]) {
        const snn_ir_func *b = p->fn[CG_BWD];
        int32_t *count = snn_alloc(a, sizeof(int32_t) * (size_t)(m->n_params + 1));
        int32_t *where = snn_alloc(a, sizeof(int32_t) * (size_t)(m->n_params + 1));
        for (int32_t i = 0; i < b->n_values; i++) {
            const snn_ir_value *v = &b->values[i];
            if (v->op != SNN_OP_GRAD_ACC) continue;
            if (v->ival < 0 || v->ival >= m->n_params) {
                snn_internal_error(d, v->loc, "codegen: grad_acc of parameter %d", v->ival);
                return false;
            }
            count[v->ival]++;
            where[v->ival] = i;
        }
        for (int32_t k = 0; k < m->n_params; k++) {
            p->grad_mode[k] = CG_GRAD_ADD;
            if (count[k] != 1) continue;
            const snn_ir_value *ga = &b->values[where[k]];
            if (ga->region == SNN_REGION_STEP) continue;
            int32_t src = ga->args[0];
            const snn_ir_value *sv = &b->values[src];
            cg_val *cv = &p->val[CG_BWD][src];
            if (sv->region != SNN_REGION_STEP && !is_leaf(sv) && cv->grad_of < 0 &&
                snn_shape_numel(sv->shape, 1) == snn_shape_numel(m->params[k].shape, 1)) {
                p->grad_mode[k] = CG_GRAD_DIRECT;
                cv->grad_of = k;
                cv->stored = true;
            } else {
                p->grad_mode[k] = CG_GRAD_COPY;
            }
        }
    }

    /* Buffers, in work-area order. */
    snn_shape misc = snn_shape_1(16);
    p->misc_buf = add_buf(p, CG_BUF_MISC, CG_FWD, 0, misc, "misc");
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        cg_val *cv = p->val[fi];
        for (int32_t i = 0; i < f->n_values; i++) {
            const snn_ir_value *v = &f->values[i];
            snn_op_class cls = snn_op_infos[v->op].cls;
            bool own = false;
            if (cls == SNN_CLASS_SINK) own = false;
            else if (v->op == SNN_OP_CONST) own = cv[i].stored;   /* read from memory */
            else if (v->op == SNN_OP_STATE) own = cv[i].state_copy;
            else if (v->op == SNN_OP_STEPS) own = cv[i].stored;     /* (float)T, set on entry */
            else if (v->op == SNN_OP_STEP) own = cv[i].stored;      /* (float)t, set each step */
            else if (cls == SNN_CLASS_LEAF) own = false;
            else if (cv[i].next_of >= 0) own = false;     /* lives in its state's buffers */
            else if (cv[i].grad_of >= 0) own = false;     /* lives in grads[grad_of] */
            else if (cv[i].crosses) own = false;          /* lives in its T slots */
            else if (v->op == SNN_OP_MATMUL_TN && v->region == SNN_REGION_STEP &&
                     p->loops[fi][cv[i].loop].batched)
                own = false;                              /* summed into its time sum */
            else if (cg_in_loop(p, fi, i)) own = cv[i].stored;
            else if (cg_mmacc_state(p, fi, i) >= 0) own = false;   /* added into its state */
            else { own = true; cv[i].stored = true; }
            if (own) cv[i].buf = add_buf(p, CG_BUF_VALUE, fi, i, v->shape, v->name);
            /* T slots: crossing values always, taped ones while training (then the buffer
             * above, if any, serves evaluation) */
            if (cv[i].crosses || cv[i].taped) {
                cv[i].stored = true;
                cv[i].tape = add_buf(p, CG_BUF_TAPE, fi, i, v->shape, v->name);
            }
        }
        for (int32_t s = 0; s < f->n_states; s++) {
            p->state_buf[fi][s] = add_buf(p, CG_BUF_STATE, fi, s, f->states[s].shape,
                                          f->states[s].name);
            if (p->st_rotate[fi][s] && !p->st_sum[fi][s] && !p->st_inplace[fi][s] &&
                p->st_mmacc[fi][s] < 0)
                p->state_buf2[fi][s] = add_buf(p, CG_BUF_STATE, fi, s, f->states[s].shape,
                                               f->states[s].name);
        }
    }
    /* backward's copies for recomputation (plan_recompute): G's recomputed values, G's states */
    if (p->rec_group >= 0) {
        const snn_ir_func *F = p->fn[CG_FWD];
        const cg_group *G = &p->groups[p->rec_group];
        p->rec_buf = snn_alloc(a, sizeof(int32_t) * (size_t)(F->n_values + 1));
        p->rec_state_buf = snn_alloc(a, sizeof(int32_t) * (size_t)(F->n_states + 1));
        for (int32_t u = 0; u < F->n_values; u++) p->rec_buf[u] = -1;
        for (int32_t s = 0; s < F->n_states; s++) p->rec_state_buf[s] = -1;
        for (int32_t k = 0; k < G->n_members; k++) {
            int32_t u = G->members[k];
            if (p->rec_val[u] && cg_rec_stored(p, u))
                p->rec_buf[u] = add_buf(p, CG_BUF_MISC, CG_FWD, u, F->values[u].shape,
                                        snn_sprintf(a, "rec.%s", F->values[u].name));
            int32_t s = p->val[CG_FWD][u].next_of;
            if (s >= 0 && state_of_group(p, s, p->rec_group, fwd_ref) && p->rec_state_buf[s] < 0)
                p->rec_state_buf[s] = add_buf(p, CG_BUF_MISC, CG_FWD, s, F->states[s].shape,
                                              snn_sprintf(a, "rec.%s", F->states[s].name));
        }
    }
    /* fused matmuls' and fused linear layers' weights with rows of a width not a multiple of
     * 16: a padded copy */
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        for (int32_t i = 0; f && i < f->n_values; i++) {
            cg_val *c = &p->val[fi][i];
            c->mm_pad = -1;
            c->tr_buf = -1;
            if (c->tr_need) {   /* a rows-in-lanes kernel's [N, B] copy (plan_rows_in_lanes) */
                snn_shape ts = f->values[i].shape;
                ts.dim[0] = ts.dim[1];
                ts.dim[1] = SNN_DIM_B;
                c->tr_buf = add_buf(p, CG_BUF_MISC, fi, i, ts, snn_sprintf(a, "tr.%s", f->values[i].name));
            }
            const snn_ir_value *w = c->mm_fused || c->mm_rowred ? &f->values[f->values[i].args[1]] : NULL;
            /* (rows in the lanes read W one float at a time: no copy) */
            if (!w || w->shape.dim[1] % 16 == 0 || w->region == SNN_REGION_STEP ||
                (c->mm_rowred && p->groups[c->group].lanes))
                continue;
            snn_shape ps = w->shape;
            ps.dim[1] = (ps.dim[1] + 15) & ~(int64_t)15;
            c->mm_pad = add_buf(p, CG_BUF_MISC, fi, i, ps, snn_sprintf(a, "pad.%s", w->name));
        }
    }
    /* after the buffers: it asks which forward states backward keeps a copy of */
    p->time_inner = -1;
    if (time_inner) plan_time_inner(p);
    plan_reuse(a, p, fwd_ref);
    return true;
}

/* ---- memory plan: value buffers reused across disjoint live ranges ----
 *
 * Positions: the entry point runs forward then backward, each pre, step loop(s), post, in
 * value order; a value is computed where it is emitted (a fusion group at its first member), and
 * read where its readers are emitted. The live range of a value buffer is [def, last read],
 * widened for the time loop: a pre value read in the loop lives to the loop's end, a step value
 * read after the loop lives from the loop's start (every step writes it); a copied state's next
 * is read by the copy at the end of the step, an init_from at the loop's start, a state_copy is
 * written at the loop's start. Buffers that stay for the whole call: constants and the step
 * count (written on entry), forward values backward reads, states, tapes, misc. Two ranges that
 * touch at one position (an op reading one and writing the other) overlap, so no kernel ever
 * gets one buffer as two of its noalias parameters. Greedy first fit over ranges sorted by
 * start, among buffers of the same element count (the same function of B). */

typedef struct { int64_t lo, hi; int32_t buf; int64_t n1, n2; } cg_range;

static int cmp_range(const void *a, const void *b) {
    const cg_range *x = a, *y = b;
    return x->lo < y->lo ? -1 : x->lo > y->lo ? 1 : x->buf - y->buf;
}

static int64_t emit_pos(const cg_plan *p, int fi, int32_t j) {
    int64_t off = fi == CG_FWD ? 0 : (int64_t)p->fn[CG_FWD]->n_values + 1;
    int32_t g = p->val[fi][j].group;
    return off + (g >= 0 ? p->groups[g].members[0] : j);
}

static void plan_reuse(snn_arena *a, cg_plan *p, const bool *fwd_ref) {
    cg_range *r = snn_alloc(a, sizeof(cg_range) * (size_t)(p->n_bufs + 1));
    int32_t n = 0;
    for (int32_t b = 0; b < p->n_bufs; b++) {
        const cg_buf *bf = &p->bufs[b];
        if (bf->kind != CG_BUF_VALUE) continue;
        int fi = bf->func;
        const snn_ir_func *f = p->fn[fi];
        int32_t id = bf->id;
        const snn_ir_value *v = &f->values[id];
        if (v->op == SNN_OP_CONST || v->op == SNN_OP_STEPS || v->op == SNN_OP_STEP ||
            (fi == CG_FWD && fwd_ref[id]))
            continue;
        int32_t sb, se;
        step_range(f, &sb, &se);
        int64_t off = fi == CG_FWD ? 0 : (int64_t)p->fn[CG_FWD]->n_values + 1;
        int64_t lo = emit_pos(p, fi, id), hi = lo;
        if (v->op == SNN_OP_STATE) lo = off + sb;   /* state_copy: copied at the step's start */
        for (int32_t j = id + 1; j < f->n_values; j++) {
            const snn_ir_value *u = &f->values[j];
            bool reads = false;
            for (int q = 0; q < u->nargs; q++) reads |= u->args[q] == id;
            if (!reads) continue;
            int64_t at = emit_pos(p, fi, j);
            if (v->region == SNN_REGION_PRE && u->region == SNN_REGION_STEP) at = off + se;
            if (v->region == SNN_REGION_STEP && u->region != SNN_REGION_STEP) lo = off + sb;
            if (at > hi) hi = at;
        }
        for (int32_t s = 0; s < f->n_states; s++) {
            if (f->states[s].next == id && hi < off + se) hi = off + se;
            if (f->states[s].init_from == id && hi < off + sb) hi = off + sb;
        }
        r[n++] = (cg_range){lo, hi, b, snn_shape_numel(bf->shape, 1), snn_shape_numel(bf->shape, 2)};
    }
    qsort(r, (size_t)n, sizeof *r, cmp_range);
    /* roots: buffers with memory of their own, and until when they are busy */
    int32_t *root = snn_alloc(a, sizeof(int32_t) * (size_t)(n + 1));
    int64_t *busy = snn_alloc(a, sizeof(int64_t) * (size_t)(n + 1));
    int32_t n_root = 0;
    for (int32_t k = 0; k < n; k++) {
        int32_t pick = -1;
        for (int32_t q = 0; q < n_root && pick < 0; q++) {
            const cg_range *rq = NULL;
            for (int32_t z = 0; z < n; z++)
                if (r[z].buf == root[q]) rq = &r[z];
            if (rq->n1 == r[k].n1 && rq->n2 == r[k].n2 && busy[q] < r[k].lo) pick = q;
        }
        if (pick >= 0) {
            p->bufs[r[k].buf].alias = root[pick];
            busy[pick] = r[k].hi;
        } else {
            root[n_root] = r[k].buf;
            busy[n_root++] = r[k].hi;
        }
    }
}

/* ---- the plan in words (--emit=loops) and its sizes (--stats) ---- */

static int64_t buf_bytes(const cg_buf *b, int64_t B, int64_t T) {
    /* as lower.c's layout: T slots back to back, the whole rounded up to 16 floats */
    int64_t n = snn_shape_numel(b->shape, B) * (b->kind == CG_BUF_TAPE ? T : 1);
    return ((n + 15) & ~(int64_t)15) * 4;
}

static void print_shape(FILE *f, snn_shape s) {
    fputc('[', f);
    for (int i = 0; i < s.rank; i++) {
        if (i) fputc(',', f);
        if (s.dim[i] == SNN_DIM_B) fputc('B', f);
        else fprintf(f, "%lld", (long long)s.dim[i]);
    }
    fputc(']', f);
}

bool snn_codegen_stats(snn_arena *a, snn_diag *d, const snn_ir_module *m, int64_t batch,
                       int64_t steps, snn_codegen_sizes *out) {
    return snn_codegen_stats_with(a, d, m, NULL, batch, steps, out);
}

bool snn_codegen_stats_with(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                            const snn_codegen_options *o, int64_t batch, int64_t steps,
                            snn_codegen_sizes *out) {
    cg_plan p;
    if (!cg_plan_build(a, d, m, false, o, &p)) return false;
    memset(out, 0, sizeof *out);
    for (int32_t i = 0; i < p.n_bufs; i++) {
        int64_t n = buf_bytes(&p.bufs[i], batch, steps);
        if (p.bufs[i].alias >= 0) { out->shared_bytes += n; continue; }   /* no memory of its own */
        out->work_bytes += n;
        if (p.bufs[i].kind == CG_BUF_TAPE) {
            if (out->n_taped < SNN_CODEGEN_TAPES_MAX) {
                out->tape_name[out->n_taped] = p.bufs[i].name;
                out->tape_each[out->n_taped] = n;
            }
            out->tape_bytes += n;
            out->n_taped++;
        }
        if (p.bufs[i].kind == CG_BUF_STATE) out->state_bytes += n;
    }
    if (p.rec_group >= 0) {
        const cg_group *g = &p.groups[p.rec_group];
        for (int32_t k = 0; k < g->n_members; k++)
            out->recompute_flops += snn_stats_value_flops(m, p.fn[CG_FWD], g->members[k], batch) *
                                    (double)steps;
        out->recompute_name = g->n_members ? p.fn[CG_FWD]->values[g->members[0]].name : NULL;
    }
    for (int fi = 0; fi < 2; fi++)
        for (int32_t i = 0; p.fn[fi] && i < p.fn[fi]->n_values; i++) {
            out->n_fuse_matmul += p.val[fi][i].mm_fused;
            out->n_fuse_wgrad += p.val[fi][i].mm_wacc;
            out->n_fuse_linear += p.val[fi][i].mm_rowred;
            out->n_rows_in_lanes += p.val[fi][i].mm_rowred && p.groups[p.val[fi][i].group].lanes;
        }
    out->rec_merge = p.rec_merge >= 0;
    out->time_inner = p.time_inner >= 0;
    out->n_buffers = p.n_bufs;
    out->n_loops = p.n_groups;
    free(p.groups);
    free(p.bufs);
    return true;
}

/* Prints values [begin, end) of region r of function fi. */
static void print_values(FILE *f, const cg_plan *p, int fi, snn_region r, int32_t begin,
                         int32_t end, bool batched, int32_t loop) {
    const snn_ir_func *fn = p->fn[fi];
    const cg_val *cv = p->val[fi];
    for (int32_t i = begin; i < end; i++) {
        const snn_ir_value *v = &fn->values[i];
        if (v->region != r || (loop >= 0 && cv[i].loop != loop)) continue;
        snn_op_class cls = snn_op_infos[v->op].cls;
        if (v->op == SNN_OP_STATE && r == SNN_REGION_STEP && (cv[i].state_copy || cv[i].tape >= 0)) {
            fprintf(f, "    copy   state %s -> %%%s%s\n", fn->states[v->ival].name, v->name,
                    cv[i].tape >= 0 ? "[t] (tape)" : "");
            continue;
        }
        if (cls == SNN_CLASS_LEAF) continue;
        if (batched && cv[i].next_of >= 0 && p->st_sum[fi][cv[i].next_of]) {
            fprintf(f, "    sum    state %s += %%%s over all t\n", fn->states[cv[i].next_of].name,
                    fn->values[v->args[fn->values[v->args[0]].op == SNN_OP_STATE]].name);
            continue;
        }
        if (cv[i].next_of >= 0 && p->st_mmacc[fi][cv[i].next_of] >= 0) continue;   /* its matmul */
        const char *tsuf = cv[i].tape >= 0 ? (batched ? "[all t]" : "[t]") : "";
        if (cg_in_loop(p, fi, i)) {
            const cg_group *g = &p->groups[cv[i].group];
            if (g->members[0] != i) continue;
            fprintf(f, "    loop   %s", batched ? "[T]" : "");
            print_shape(f, g->shape);
            fprintf(f, " {");
            for (int32_t k = 0; k < g->n_members; k++) {
                int32_t id = g->members[k];
                fprintf(f, " %%%s", fn->values[id].name);
                if (cv[id].mm_fused)
                    fprintf(f, "=matmul_nn(%%%s, %%%s%s)", fn->values[fn->values[id].args[0]].name,
                            fn->values[fn->values[id].args[1]].name,
                            cv[id].mm_pad >= 0 ? " padded" : "");
                if (cv[id].mm_wacc)
                    fprintf(f, "=matmul_tn(%%%s, %%%s)->state %s", fn->values[fn->values[id].args[0]].name,
                            fn->values[fn->values[id].args[1]].name,
                            fn->states[cg_mmacc_state(p, fi, id)].name);
                if (cv[id].tape >= 0) fputs(cv[id].crosses ? "->all_t" : "->tape", f);
                else if (cv[id].stored) fputs("->mem", f);
            }
            if (g->rowred >= 0) {
                const snn_ir_value *lv = &fn->values[g->rowred];
                fprintf(f, " %%%s=linear(", lv->name);
                for (int q = 0; q < lv->nargs; q++)
                    fprintf(f, "%s%%%s", q ? ", " : "", fn->values[lv->args[q]].name);
                if (g->lanes)
                    fprintf(f, ") summed by row, 16 rows in the lanes (%spre values read "
                               "transposed)%s",
                            cg_lanes_state(p, (int32_t)(g - p->groups)) >= 0
                                ? "state [N,B], not filled: step 0 from its initial value; " : "",
                            cv[g->rowred].tape >= 0 ? "->tape" : "->mem");
                else
                    fprintf(f, ")%s summed by row%s", cv[g->rowred].mm_pad >= 0 ? " padded" : "",
                            cv[g->rowred].tape >= 0 ? "->tape" : "->mem");
            }
            fprintf(f, " }\n");
            continue;
        }
        const char *kind = snn_op_infos[v->op].cls == SNN_CLASS_LINALG ? "sgemm " : "loop  ";
        if (cls == SNN_CLASS_SINK) fprintf(f, "    %s %s(", kind, snn_op_infos[v->op].mnemonic);
        else fprintf(f, "    %s %%%s%s = %s(", kind, v->name, tsuf, snn_op_infos[v->op].mnemonic);
        for (int k = 0; k < v->nargs; k++) fprintf(f, "%s%%%s", k ? ", " : "", fn->values[v->args[k]].name);
        fputc(')', f);
        if (v->op == SNN_OP_GRAD_ACC)
            fprintf(f, " -> grad %s%s", p->m->params[v->ival].name,
                    p->grad_mode[v->ival] == CG_GRAD_DIRECT ? " (computed in place)"
                    : p->grad_mode[v->ival] == CG_GRAD_COPY ? " (copied)" : " (added)");
        if (!batched && cg_mmacc_state(p, fi, i) >= 0)
            fprintf(f, " added into state %s (beta 1)", fn->states[cg_mmacc_state(p, fi, i)].name);
        if (batched && v->op == SNN_OP_MATMUL_TN) fputs(" summed over all t (K = T*rows)", f);
        else if (batched && cls == SNN_CLASS_LINALG) fputs(" over all t (M = T*rows)", f);
        fputc('\n', f);
    }
}

static void print_func(FILE *f, const cg_plan *p, int fi) {
    const snn_ir_func *fn = p->fn[fi];
    fprintf(f, "%s:\n  pre:\n", fn->name);
    print_values(f, p, fi, SNN_REGION_PRE, 0, fn->n_values, false, -1);
    for (int32_t k = 0; k < p->n_loops[fi]; k++) {
        const cg_tloop *L = &p->loops[fi][k];
        if (L->batched) {
            fprintf(f, "  step loop %d: parallel, batched (once for all t)\n", k);
        } else if (L->rows_forward) {
            const cg_group *G = &p->groups[p->rec_group];
            fprintf(f, "  step loop %d: parallel, in tiles of %d rows, t = 0 .. T-1 (forward in "
                       "time); recomputes", k, (int)p->tile_rows);
            for (int32_t m = 0; m < G->n_members; m++)
                if (p->rec_val[G->members[m]])
                    fprintf(f, " %%%s", p->fn[CG_FWD]->values[G->members[m]].name);
            if (p->rec_merge >= 0)
                fprintf(f, " (re-runs forward's loop %s on a copy of its states inside the loop of "
                        "%%%s; no tape)\n", G->name, fn->values[p->groups[p->rec_merge].members[0]].name);
            else
                fprintf(f, " (re-runs forward's loop %s on a copy of its states; no tape)\n", G->name);
            if (p->time_inner >= 0)
                fprintf(f, "    steps innermost: 16 columns, then rows, then t = 0 .. T-1 (the "
                           "loop's scalars first, for every t)\n");
        } else {
            fprintf(f, "  step loop %d: %s (t = %s)", k, L->scan ? "scan" : "parallel",
                    fn->time_dir > 0 ? "0 .. T-1" : "T-1 .. 0");
            if (L->tiled) fprintf(f, ", in tiles of %d rows", (int)p->tile_rows);
            fputc('\n', f);
        }
        print_values(f, p, fi, SNN_REGION_STEP, L->begin, L->end, L->batched, k);
        for (int32_t s = 0; s < fn->n_states; s++) {
            if (p->val[fi][fn->states[s].next].loop != k || p->st_sum[fi][s]) continue;
            fprintf(f, "    state  %s <- %%%s%s\n", fn->states[s].name,
                    fn->values[fn->states[s].next].name,
                    p->st_mmacc[fi][s] >= 0 ? " (the product added in place: one buffer)"
                    : p->st_inplace[fi][s] ? " (updated in place: one buffer)"
                    : p->st_rotate[fi][s] ? " (rotates: written in place)" : " (copied)");
        }
    }
    fprintf(f, "  post:\n");
    print_values(f, p, fi, SNN_REGION_POST, 0, fn->n_values, false, -1);
}

bool snn_codegen_print_loops(snn_arena *a, snn_diag *d, const snn_ir_module *m, void *file) {
    return snn_codegen_print_loops_with(a, d, m, NULL, file);
}

bool snn_codegen_print_loops_with(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                                  const snn_codegen_options *o, void *file) {
    FILE *f = file;
    cg_plan p;
    if (!cg_plan_build(a, d, m, o && o->time_loops, o, &p)) return false;
    fprintf(f, "; loops of %s: %d fused loops, %d buffers\n", m->name ? m->name : "?", p.n_groups,
            p.n_bufs);
    fprintf(f, "work area (sizes in floats, each rounded up to 16):\n");
    static const char *kn[] = {"value", "state", "tape ", "misc "};
    for (int32_t i = 0; i < p.n_bufs; i++) {
        const cg_buf *b = &p.bufs[i];
        fprintf(f, "  %s %s%-24s ", kn[b->kind], b->func == CG_BWD ? "bwd " : "", b->name);
        if (b->kind == CG_BUF_TAPE) fputs("T x ", f);
        print_shape(f, b->shape);
        if (b->alias >= 0)
            fprintf(f, "  (reuses %s%s)", p.bufs[b->alias].func == CG_BWD ? "bwd " : "",
                    p.bufs[b->alias].name);
        fputc('\n', f);
    }
    for (int fi = 0; fi < 2; fi++)
        if (p.fn[fi]) print_func(f, &p, fi);
    free(p.groups);
    free(p.bufs);
    return true;
}
