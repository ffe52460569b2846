/* plan.c: what codegen decides before it builds any LLVM: fusion groups, which values need
 * memory, the tape, and the list of buffers of the work area (see cg.h).
 *
 * Fusion. Within one region, a maximal run of elementwise values of the same result shape
 * becomes one group, emitted as one loop nest (one kernel function). Leaves (const, param,
 * input, state, fwd) do not break a run: they compute nothing where they stand. Any other op
 * (linear, reductions, losses, sinks) ends the run. Inside a group a value lives in a register;
 * it is stored only if something outside the group reads it (a later op, another region, the
 * other function through FWD), or it is a state's next value.
 *
 * Memory. Correctness first (reuse is issue 4): every stored value gets its own buffer, every
 * state one buffer, every taped value T slots. The work area is these buffers in plan order;
 * lower.c turns the list into addresses for the run-time batch size B and step count T.
 *
 * The tape. Backward reads forward values at the same step through FWD ops. A forward step
 * value so read is taped: while training, the forward pass writes it to slot t of its tape
 * instead of its buffer, so all T values survive until backward. Evaluation (`forward`) uses
 * the buffer and keeps no tape.
 */
#include "codegen/cg.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int32_t add_buf(cg_plan *p, cg_buf_kind kind, int32_t func, int32_t id, snn_shape shape,
                       const char *name) {
    cg_buf b = {kind, func, id, shape, name};
    SNN_PUSH(p->bufs, p->n_bufs, p->cap_bufs, b);
    return p->n_bufs - 1;
}

/* Forms the fusion groups of function fi. */
static void form_groups(snn_arena *a, cg_plan *p, int fi) {
    const snn_ir_func *f = p->fn[fi];
    int32_t cur = -1;
    for (int32_t i = 0; i < f->n_values; i++) {
        const snn_ir_value *v = &f->values[i];
        if (snn_op_infos[v->op].cls == SNN_CLASS_LEAF) continue;
        if (!cg_is_elem(v->op)) { cur = -1; continue; }
        cg_group *g = cur >= 0 ? &p->groups[cur] : NULL;
        if (!g || g->region != v->region || !snn_shape_eq(g->shape, v->shape)) {
            cg_group ng = {0};
            ng.func = fi;
            ng.region = v->region;
            ng.shape = v->shape;
            ng.members = snn_alloc(a, sizeof(int32_t) * (size_t)f->n_values);
            SNN_PUSH(p->groups, p->n_groups, p->cap_groups, ng);
            cur = p->n_groups - 1;
            g = &p->groups[cur];
        }
        g->members[g->n_members++] = i;
        g->name = v->name;
        if (v->op == SNN_OP_RATE) g->uses_rate = true;
        p->val[fi][i].group = cur;
    }
}

bool cg_plan_build(snn_arena *a, snn_diag *d, const snn_ir_module *m, cg_plan *p) {
    memset(p, 0, sizeof *p);
    p->m = m;
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
        }
        form_groups(a, p, fi);
    }

    /* Which values are read from outside their group ("stored"); checks of operands. */
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        cg_val *cv = p->val[fi];
        for (int32_t i = 0; i < f->n_values; i++) {
            const snn_ir_value *v = &f->values[i];
            cv[i].next_of = -1;
            cv[i].grad_of = -1;
            if (v->op == SNN_OP_ARG || (v->op == SNN_OP_FWD && fi == CG_FWD)) {
                snn_internal_error(d, v->loc, "codegen: '%s' op in function %s",
                                   snn_op_infos[v->op].mnemonic, f->name);
                return false;
            }
            for (int k = 0; k < v->nargs; k++) {
                int32_t u = v->args[k];
                if (u < 0 || u >= i) {
                    snn_internal_error(d, v->loc, "codegen: bad operand %d of %%%s", u, v->name);
                    return false;
                }
                if (cv[i].group < 0 || cv[u].group != cv[i].group) cv[u].stored = true;
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
            cv[st->next].stored = true;
            if (st->init_from >= 0) {
                if (st->init_from >= f->n_values ||
                    f->values[st->init_from].region != SNN_REGION_PRE) {
                    snn_internal_error(d, st->loc, "codegen: state %s: init_from is not a "
                                       "pre-region value", st->name);
                    return false;
                }
                cv[st->init_from].stored = true;
            }
        }
    }

    /* State modes. A state whose next is a computed step value, next of no other state, rotates:
     * its next value is written straight into the place the state is read from at the next
     * step (two buffers used in turn, or the tape), so no copy is needed. Others are copied. */
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = p->fn[fi];
        if (!f) continue;
        cg_val *cv = p->val[fi];
        p->st_rotate[fi] = snn_alloc(a, sizeof(bool) * (size_t)(f->n_states + 1));
        p->state_buf2[fi] = snn_alloc(a, sizeof(int32_t) * (size_t)(f->n_states + 1));
        for (int32_t s = 0; s < f->n_states; s++) {
            p->state_buf2[fi][s] = -1;
            int32_t nx = f->states[s].next, uses = 0;
            for (int32_t s2 = 0; s2 < f->n_states; s2++) uses += f->states[s2].next == nx;
            snn_op_class cls = snn_op_infos[f->values[nx].op].cls;
            p->st_rotate[fi][s] = cls != SNN_CLASS_LEAF && cls != SNN_CLASS_SINK && uses == 1;
            if (p->st_rotate[fi][s]) cv[nx].next_of = s;
        }
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
    if (p->fn[CG_BWD]) {
        const snn_ir_func *b = p->fn[CG_BWD];
        for (int32_t i = 0; i < b->n_values; i++) {
            const snn_ir_value *v = &b->values[i];
            if (v->op != SNN_OP_FWD) continue;
            if (v->ival < 0 || v->ival >= m->forward.n_values) {
                snn_internal_error(d, v->loc, "codegen: fwd %%%s refers to forward value %d",
                                   v->name, v->ival);
                return false;
            }
            const snn_ir_value *fv = &m->forward.values[v->ival];
            cg_val *c = &p->val[CG_FWD][v->ival];
            c->stored = true;
            if (fv->region != SNN_REGION_STEP || fv->op == SNN_OP_CONST ||
                fv->op == SNN_OP_PARAM || fv->op == SNN_OP_INPUT || fv->op == SNN_OP_STEPS)
                continue;
            if (fv->op == SNN_OP_STATE && p->st_rotate[CG_FWD][fv->ival])
                p->val[CG_FWD][m->forward.states[fv->ival].next].taped = true;
            else
                c->taped = true;
        }
    }

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
            snn_op_class cls = snn_op_infos[sv->op].cls;
            cg_val *cv = &p->val[CG_BWD][src];
            if (sv->region != SNN_REGION_STEP && cls != SNN_CLASS_LEAF && cv->grad_of < 0 &&
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
            else if (cls == SNN_CLASS_LEAF) own = false;
            else if (cv[i].next_of >= 0) own = false;     /* lives in its state's buffers */
            else if (cv[i].grad_of >= 0) own = false;     /* lives in grads[grad_of] */
            else if (cg_is_elem(v->op)) own = cv[i].stored;
            else { own = true; cv[i].stored = true; }
            if (own) cv[i].buf = add_buf(p, CG_BUF_VALUE, fi, i, v->shape, v->name);
        }
        for (int32_t s = 0; s < f->n_states; s++) {
            p->state_buf[fi][s] = add_buf(p, CG_BUF_STATE, fi, s, f->states[s].shape,
                                          f->states[s].name);
            if (p->st_rotate[fi][s])
                p->state_buf2[fi][s] = add_buf(p, CG_BUF_STATE, fi, s, f->states[s].shape,
                                               f->states[s].name);
        }
    }
    for (int32_t i = 0; i < m->forward.n_values; i++) {
        cg_val *c = &p->val[CG_FWD][i];
        if (c->taped) {
            const snn_ir_value *v = &m->forward.values[i];
            c->tape = add_buf(p, CG_BUF_TAPE, CG_FWD, i, v->shape, v->name);
        }
    }
    return true;
}

/* ---- the plan in words (--emit=loops) and its sizes (--stats) ---- */

static int64_t buf_bytes(const cg_buf *b, int64_t B, int64_t T) {
    int64_t n = (snn_shape_numel(b->shape, B) + 15) & ~(int64_t)15;   /* as lower.c's layout */
    return n * 4 * (b->kind == CG_BUF_TAPE ? T : 1);
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
    cg_plan p;
    if (!cg_plan_build(a, d, m, &p)) return false;
    memset(out, 0, sizeof *out);
    for (int32_t i = 0; i < p.n_bufs; i++) {
        int64_t n = buf_bytes(&p.bufs[i], batch, steps);
        out->work_bytes += n;
        if (p.bufs[i].kind == CG_BUF_TAPE) { out->tape_bytes += n; out->n_taped++; }
        if (p.bufs[i].kind == CG_BUF_STATE) out->state_bytes += n;
    }
    out->n_buffers = p.n_bufs;
    out->n_loops = p.n_groups;
    free(p.groups);
    free(p.bufs);
    return true;
}

static void print_region(FILE *f, const cg_plan *p, int fi, snn_region r) {
    const snn_ir_func *fn = p->fn[fi];
    const cg_val *cv = p->val[fi];
    static const char *rn[] = {"pre", "step", "post"};
    bool any = false;
    for (int32_t i = 0; i < fn->n_values; i++) {
        const snn_ir_value *v = &fn->values[i];
        if (v->region != r) continue;
        snn_op_class cls = snn_op_infos[v->op].cls;
        if (cls == SNN_CLASS_LEAF && !(v->op == SNN_OP_STATE && cv[i].state_copy) &&
            !(v->op == SNN_OP_STATE && cv[i].tape >= 0))
            continue;
        if (!any) {
            fprintf(f, "  %s%s:\n", rn[r], r != SNN_REGION_STEP ? ""
                                      : fn->time_dir > 0 ? " (t = 0 .. T-1)" : " (t = T-1 .. 0)");
            any = true;
        }
        if (v->op == SNN_OP_STATE) {
            fprintf(f, "    copy   state %s -> %%%s%s\n", fn->states[v->ival].name, v->name,
                    cv[i].tape >= 0 ? "[t] (tape)" : "");
            continue;
        }
        if (cg_is_elem(v->op)) {
            const cg_group *g = &p->groups[cv[i].group];
            if (g->members[0] != i) continue;
            fprintf(f, "    loop   ");
            print_shape(f, g->shape);
            fprintf(f, " {");
            for (int32_t k = 0; k < g->n_members; k++) {
                int32_t id = g->members[k];
                fprintf(f, " %%%s", fn->values[id].name);
                if (cv[id].tape >= 0) fputs("->tape", f);
                else if (cv[id].stored) fputs("->mem", f);
            }
            fprintf(f, " }\n");
            continue;
        }
        const char *kind = snn_op_infos[v->op].cls == SNN_CLASS_LINALG ? "sgemm " : "loop  ";
        if (cls == SNN_CLASS_SINK) fprintf(f, "    %s %s(", kind, snn_op_infos[v->op].mnemonic);
        else fprintf(f, "    %s %%%s%s = %s(", kind, v->name, cv[i].tape >= 0 ? "[t]" : "",
                     snn_op_infos[v->op].mnemonic);
        for (int k = 0; k < v->nargs; k++) fprintf(f, "%s%%%s", k ? ", " : "", fn->values[v->args[k]].name);
        fputc(')', f);
        if (v->op == SNN_OP_GRAD_ACC)
            fprintf(f, " -> grad %s%s", p->m->params[v->ival].name,
                    p->grad_mode[v->ival] == CG_GRAD_DIRECT ? " (computed in place)"
                    : p->grad_mode[v->ival] == CG_GRAD_COPY ? " (copied)" : " (added)");
        fputc('\n', f);
    }
    if (r == SNN_REGION_STEP)
        for (int32_t s = 0; s < fn->n_states; s++)
            fprintf(f, "    state  %s <- %%%s%s\n", fn->states[s].name,
                    fn->values[fn->states[s].next].name,
                    p->st_rotate[fi][s] ? " (rotates: written in place)" : " (copied)");
}

bool snn_codegen_print_loops(snn_arena *a, snn_diag *d, const snn_ir_module *m, void *file) {
    FILE *f = file;
    cg_plan p;
    if (!cg_plan_build(a, d, m, &p)) return false;
    fprintf(f, "; loops of %s: %d fused loops, %d buffers\n", m->name ? m->name : "?", p.n_groups,
            p.n_bufs);
    fprintf(f, "work area (sizes in floats, each rounded up to 16):\n");
    static const char *kn[] = {"value", "state", "tape ", "misc "};
    for (int32_t i = 0; i < p.n_bufs; i++) {
        const cg_buf *b = &p.bufs[i];
        fprintf(f, "  %s %s%-24s ", kn[b->kind], b->func == CG_BWD ? "bwd " : "", b->name);
        if (b->kind == CG_BUF_TAPE) fputs("T x ", f);
        print_shape(f, b->shape);
        fputc('\n', f);
    }
    for (int fi = 0; fi < 2; fi++) {
        if (!p.fn[fi]) continue;
        fprintf(f, "%s:\n", p.fn[fi]->name);
        for (int r = SNN_REGION_PRE; r <= SNN_REGION_POST; r++) print_region(f, &p, fi, (snn_region)r);
    }
    free(p.groups);
    free(p.bufs);
    return true;
}
