/* fission.c: time-loop fission (pass "fission") and the time-loop plan it produces
 * (snn_time_plan_build, for codegen). Design and rationale: docs/passes.md, "Time batching".
 *
 * Today's IR runs the whole step region in one time loop. Most of it does not need to: only a
 * recurrence (a state's next that depends on the state's previous value) forces step-by-step
 * execution. This file splits the step region into a sequence of time loops, each run for all
 * t before the next one starts:
 *
 *   scan loops      contain recurrences (a neuron layer's states): run t = 0..T-1 (backward:
 *                   T-1..0), vectorized over batch and neurons;
 *   parallel loops  no recurrence (at most time sums, see below): every step is independent,
 *                   so the loop may run as ONE op over all T*B rows; a LINEAR there is one
 *                   (T*B) x in x out GEMM instead of T small ones, a MATMUL_TN whose result is
 *                   summed over time (dW) is one GEMM with K = T*B.
 *
 * A step value read by a later loop is stored for all T ("crosses"). For Tutorial 5 after
 * hoisting the forward function becomes [scan h] [parallel o.cur = linear(h.spk)] [scan o,
 * loss], and the backward one [scan d.o] [parallel d.h.spk = d.o.cur W, dW.o, surrogate
 * products] [scan d.h].
 *
 * The plan is a pure function of the IR (no annotation is stored, nothing to keep in sync):
 * every step value gets a level; levels increase along data edges; even levels are scans,
 * odd levels parallel loops.
 *   - recurrence groups: the values on a cycle through a state (from a read of s to s's next),
 *     states sharing values merged; every member gets the group's level, the smallest even
 *     level not below any operand's;
 *   - time sums: a state whose next is `add(read, v)` and whose read and add have no other
 *     use (autodiff's gradient accumulators, the spike counter) is a reduction, not a
 *     recurrence: it takes v's level and does not make a loop sequential;
 *   - heavy values (LINEAR, MATMUL_*) outside a group with a step operand: the smallest odd
 *     level not below any operand's, so they run batched between the scans;
 *   - other values: the largest operand level, then sunk to the smallest level of their users
 *     (so cheap elementwise work runs where it is consumed, e.g. the surrogate's derivative in
 *     the parallel loop that multiplies it into d.h.spk), except a FIRE's argument, which
 *     backward tapes anyway: it stays and crosses, one buffer for tape and crossing, while
 *     the FIRE moves; state reads outside groups are never below their state's next (a read
 *     sees the previous step's next, computed in an earlier or the same loop).
 * The pass sorts the step region by (level, id), which is a topological order, so the
 * function means exactly what it meant: executed as one fused loop (today's codegen and the
 * interpreter) it computes the same values in the same per-step order of dependencies. Once
 * sorted, loops are contiguous runs of one level (adjacent parallel runs merged).
 *
 * Requires: a verified function. Changes: the order of step values (pass "fission"); nothing
 * else. Exact. Runs at -O2 only until codegen consumes the plan (it reorders printed IR).
 */
#include "passes/passes.h"

#include "ir/rewrite.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static void *xcalloc(size_t n, size_t size) {
    void *p = calloc(n ? n : 1, size);
    if (!p) { fputs("snnc: out of memory\n", stderr); abort(); }
    return p;
}

static int32_t uf_find(int32_t *parent, int32_t x) {
    while (parent[x] != x) x = parent[x] = parent[parent[x]];
    return x;
}

static bool heavy(snn_op op) { return snn_op_infos[op].cls == SNN_CLASS_LINALG; }

/* Levels of the step values of f (-1 elsewhere), group ids, reduction states. */
typedef struct {
    int32_t *level;         /* per value */
    int32_t *group;         /* per value: recurrence group (a state index, its root), or -1 */
    bool *reduction;        /* per state */
    int32_t sb, se;         /* step region [sb, se) */
} levels_t;

static void levels_free(levels_t *l) {
    free(l->level);
    free(l->group);
    free(l->reduction);
}

static void compute_levels(const snn_ir_func *f, levels_t *out) {
    const int32_t n = f->n_values, ns = f->n_states;
    int32_t sb = 0;
    while (sb < n && f->values[sb].region == SNN_REGION_PRE) sb++;
    int32_t se = sb;
    while (se < n && f->values[se].region == SNN_REGION_STEP) se++;
    int32_t *uses = xcalloc((size_t)n, sizeof *uses);
    for (int32_t i = 0; i < n; i++)
        for (int k = 0; k < f->values[i].nargs; k++) uses[f->values[i].args[k]]++;
    bool *is_next = snn_ir_state_next_mask(f);
    int32_t *next_uses = xcalloc((size_t)n, sizeof *next_uses);
    for (int s = 0; s < ns; s++)
        if (f->states[s].next >= 0 && f->states[s].next < n) next_uses[f->states[s].next]++;

    /* time sums: next = add(read, v), read and add used only there, the only step read of s */
    bool *red = xcalloc((size_t)ns, sizeof *red);
    int32_t *step_reads = xcalloc((size_t)ns, sizeof *step_reads);
    for (int32_t i = sb; i < se; i++)
        if (f->values[i].op == SNN_OP_STATE) step_reads[f->values[i].ival]++;
    for (int s = 0; s < ns; s++) {
        int32_t nx = f->states[s].next;
        if (nx < sb || nx >= se || step_reads[s] != 1) continue;
        const snn_ir_value *v = &f->values[nx];
        if (v->op != SNN_OP_ADD || uses[nx] != 0 || next_uses[nx] != 1) continue;
        for (int k = 0; k < 2; k++) {
            const snn_ir_value *r = &f->values[v->args[k]];
            const snn_ir_value *o = &f->values[v->args[1 - k]];
            bool other_reads_s = o->op == SNN_OP_STATE && o->ival == s;
            if (r->op == SNN_OP_STATE && r->ival == s && r->region == SNN_REGION_STEP && uses[v->args[k]] == 1 &&
                !other_reads_s)
                red[s] = true;
        }
    }

    /* recurrence groups: values on a cycle read(s) -> ... -> next(s) */
    int32_t *parent = xcalloc((size_t)ns, sizeof *parent);
    for (int s = 0; s < ns; s++) parent[s] = s;
    int32_t *member_of = xcalloc((size_t)n, sizeof *member_of);   /* a state whose cycle holds it, or -1 */
    for (int32_t i = 0; i < n; i++) member_of[i] = -1;
    bool *fwdr = xcalloc((size_t)n, sizeof *fwdr), *bwdr = xcalloc((size_t)n, sizeof *bwdr);
    for (int s = 0; s < ns; s++) {
        if (red[s]) continue;
        int32_t nx = f->states[s].next;
        if (nx < sb || nx >= se) continue;
        memset(fwdr, 0, (size_t)n * sizeof *fwdr);
        memset(bwdr, 0, (size_t)n * sizeof *bwdr);
        for (int32_t i = sb; i < se; i++) {
            const snn_ir_value *v = &f->values[i];
            if (v->op == SNN_OP_STATE && v->ival == s) fwdr[i] = true;
            for (int k = 0; k < v->nargs && !fwdr[i]; k++) fwdr[i] = fwdr[v->args[k]];
        }
        bwdr[nx] = true;
        for (int32_t i = se - 1; i >= sb; i--)
            if (bwdr[i])
                for (int k = 0; k < f->values[i].nargs; k++) bwdr[f->values[i].args[k]] = true;
        for (int32_t i = sb; i < se; i++) {
            if (!(fwdr[i] && bwdr[i])) continue;
            if (member_of[i] >= 0) parent[uf_find(parent, member_of[i])] = uf_find(parent, s);
            member_of[i] = s;
        }
    }
    int32_t *group = xcalloc((size_t)n, sizeof *group);
    for (int32_t i = 0; i < n; i++) group[i] = member_of[i] >= 0 ? uf_find(parent, member_of[i]) : -1;

    /* levels: as soon as possible, to a fixed point (groups take their members' maximum) */
    int32_t *level = xcalloc((size_t)n, sizeof *level);
    int32_t *glevel = xcalloc((size_t)ns, sizeof *glevel);
    for (int32_t i = 0; i < n; i++) level[i] = i >= sb && i < se ? 0 : -1;
    for (bool more = true; more;) {
        more = false;
        for (int32_t i = sb; i < se; i++) {
            const snn_ir_value *v = &f->values[i];
            int32_t base = 0;
            bool step_operand = false;
            for (int k = 0; k < v->nargs; k++)
                if (level[v->args[k]] >= 0) { step_operand = true; if (level[v->args[k]] > base) base = level[v->args[k]]; }
            int32_t L = base;
            if (group[i] >= 0) {
                if (glevel[group[i]] < base) glevel[group[i]] = base;
                L = glevel[group[i]];
                L += L & 1;
            } else if (heavy(v->op) && step_operand) {
                L = base | 1;
            } else if (v->op == SNN_OP_STATE) {
                int32_t nx = f->states[v->ival].next;
                if (nx >= sb && nx < se && level[nx] > L) L = level[nx];
            }
            if (L > level[i]) { level[i] = L; more = true; }
        }
        for (int32_t i = sb; i < se; i++)   /* keep every member of a group on one level */
            if (group[i] >= 0 && level[i] > glevel[group[i]]) { glevel[group[i]] = level[i]; more = true; }
    }
    /* sink cheap free values to their users, except a FIRE's argument: autodiff tapes it (the
     * surrogate is evaluated at it), so keeping it in its scan makes it the value that crosses
     * to the next loop, and one [T, ...] buffer serves as both (the FIRE itself moves) */
    bool *fire_arg = xcalloc((size_t)n, sizeof *fire_arg);
    for (int32_t i = sb; i < se; i++)
        if (f->values[i].op == SNN_OP_FIRE) fire_arg[f->values[i].args[0]] = true;
    int32_t *minuse = xcalloc((size_t)n, sizeof *minuse);
    for (int32_t i = 0; i < n; i++) minuse[i] = INT32_MAX;
    for (int32_t i = se - 1; i >= sb; i--) {
        const snn_ir_value *v = &f->values[i];
        bool sinkable = group[i] < 0 && !(heavy(v->op)) && v->op != SNN_OP_STATE && !is_next[i] && !fire_arg[i] &&
                        snn_op_infos[v->op].cls != SNN_CLASS_SINK && minuse[i] != INT32_MAX && minuse[i] > level[i];
        if (sinkable) level[i] = minuse[i];
        for (int k = 0; k < v->nargs; k++)
            if (level[v->args[k]] >= 0 && level[i] < minuse[v->args[k]]) minuse[v->args[k]] = level[i];
    }
    free(minuse);
    free(fire_arg);
    free(glevel);
    free(fwdr);
    free(bwdr);
    free(member_of);
    free(parent);
    free(step_reads);
    free(next_uses);
    free(is_next);
    free(uses);
    out->level = level;
    out->group = group;
    out->reduction = red;
    out->sb = sb;
    out->se = se;
}

void snn_time_plan_free(snn_time_plan *p) {
    free(p->loops);
    free(p->level);
    free(p->crosses);
    free(p->reduction_state);
    memset(p, 0, sizeof *p);
}

void snn_time_plan_build(const snn_ir_func *f, snn_time_plan *p) {
    memset(p, 0, sizeof *p);
    levels_t l;
    compute_levels(f, &l);
    p->level = l.level;
    p->reduction_state = l.reduction;
    p->crosses = xcalloc((size_t)f->n_values, sizeof *p->crosses);
    p->sorted = true;
    for (int32_t i = l.sb + 1; i < l.se; i++)
        if (l.level[i] < l.level[i - 1]) p->sorted = false;
    int32_t cap = 0;
    if (!p->sorted) {   /* not in level order: one loop, as today */
        if (l.se > l.sb) {
            snn_time_loop one = {l.sb, l.se, SNN_LOOP_SCAN, 0};
            SNN_PUSH(p->loops, p->n_loops, cap, one);
        }
        free(l.group);
        return;
    }
    for (int32_t i = l.sb; i < l.se;) {
        int32_t j = i;
        bool scan = false;
        while (j < l.se && l.level[j] == l.level[i]) {
            const snn_ir_value *v = &f->values[j];
            if (v->op == SNN_OP_STATE && !l.reduction[v->ival]) scan = true;
            j++;
        }
        snn_time_loop lp = {i, j, scan ? SNN_LOOP_SCAN : SNN_LOOP_PARALLEL, l.level[i]};
        if (p->n_loops > 0 && !scan && p->loops[p->n_loops - 1].kind == SNN_LOOP_PARALLEL)
            p->loops[p->n_loops - 1].end = j;   /* adjacent parallel runs: one loop */
        else
            SNN_PUSH(p->loops, p->n_loops, cap, lp);
        i = j;
    }
    /* values read by a later loop (or a state's next read by a later loop) are kept for all T;
     * leaves (constants, params, the input) are read again instead */
    int32_t *loop_of = xcalloc((size_t)f->n_values, sizeof *loop_of);
    for (int32_t i = 0; i < f->n_values; i++) loop_of[i] = -1;
    for (int32_t k = 0; k < p->n_loops; k++)
        for (int32_t i = p->loops[k].begin; i < p->loops[k].end; i++) loop_of[i] = k;
    for (int32_t i = l.sb; i < l.se; i++) {
        const snn_ir_value *v = &f->values[i];
        for (int k = 0; k < v->nargs; k++)
            if (loop_of[v->args[k]] >= 0 && loop_of[v->args[k]] < loop_of[i]) p->crosses[v->args[k]] = true;
        if (v->op == SNN_OP_STATE) {
            int32_t nx = f->states[v->ival].next;
            if (loop_of[nx] >= 0 && loop_of[nx] < loop_of[i]) p->crosses[nx] = true;
        }
    }
    for (int32_t i = l.sb; i < l.se; i++)
        if (snn_op_infos[f->values[i].op].cls == SNN_CLASS_LEAF && f->values[i].op != SNN_OP_STATE) p->crosses[i] = false;
    free(loop_of);
    free(l.group);
}

void snn_time_plan_print(const snn_ir_func *f, const snn_time_plan *p, void *file) {
    FILE *out = file;
    fprintf(out, "time loops of %s%s:\n", f->name, p->sorted ? "" : " (not in level order: one loop)");
    for (int32_t k = 0; k < p->n_loops; k++) {
        const snn_time_loop *lp = &p->loops[k];
        int heavy_ops = 0;
        for (int32_t i = lp->begin; i < lp->end; i++) heavy_ops += heavy(f->values[i].op);
        fprintf(out, "  loop %d %-8s %%%s .. %%%s (%d values, %d matmuls)", (int)k,
                lp->kind == SNN_LOOP_SCAN ? "scan" : "parallel", f->values[lp->begin].name,
                f->values[lp->end - 1].name, (int)(lp->end - lp->begin), heavy_ops);
        const char *sep = "; states";
        for (int32_t i = lp->begin; i < lp->end; i++)
            if (f->values[i].op == SNN_OP_STATE) {
                fprintf(out, "%s %s%s", sep, f->states[f->values[i].ival].name,
                        p->reduction_state[f->values[i].ival] ? " (sum)" : "");
                sep = ",";
            }
        fputc('\n', out);
    }
    const char *sep = "  kept for all steps:";
    for (int32_t i = 0; i < f->n_values; i++)
        if (p->crosses[i]) { fprintf(out, "%s %%%s", sep, f->values[i].name); sep = ","; }
    if (*sep == ',') fputc('\n', out);
}

bool snn_pass_fission(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f) {
    levels_t l;
    compute_levels(f, &l);
    bool sorted = true;
    for (int32_t i = l.sb + 1; i < l.se; i++)
        if (l.level[i] < l.level[i - 1]) sorted = false;
    bool changed = false;
    if (!sorted) {
        int32_t maxl = 0;
        for (int32_t i = l.sb; i < l.se; i++) if (l.level[i] > maxl) maxl = l.level[i];
        snn_ir_rw rw;
        snn_ir_rw_begin(&rw, a, d, m, f);
        for (int32_t i = 0; i < l.sb; i++) snn_ir_rw_copy(&rw, i, SNN_REGION_PRE);
        for (int32_t L = 0; L <= maxl; L++)   /* counting sort: levels are small */
            for (int32_t i = l.sb; i < l.se; i++)
                if (l.level[i] == L) snn_ir_rw_copy(&rw, i, SNN_REGION_STEP);
        for (int32_t i = l.se; i < f->n_values; i++) snn_ir_rw_copy(&rw, i, f->values[i].region);
        changed = snn_ir_rw_finish(&rw, NULL) && rw.changed;
    }
    levels_free(&l);
    return changed;
}
