/* cg.h: codegen internals shared by the files of compiler/codegen/ (never included elsewhere).
 *
 * Two layers:
 *   - the plan (plan.c), plain C without LLVM: which elementwise values fuse into one loop
 *     (a "group", emitted as one kernel function), which values need a buffer, which forward
 *     step values backward reads (taped: T copies), and the list of buffers that make up the
 *     work area. Issue 4 (speed) changes mostly this layer.
 *   - the LLVM context (cg_ctx), in the style of ponyc's codegen.h: the LLVM context, module,
 *     builder and common types cached once, so emitters read as the IR they lower.
 */
#ifndef SNN_CG_H
#define SNN_CG_H

#include <llvm-c/Core.h>
#include <llvm-c/TargetMachine.h>

#include "codegen/codegen.h"

/* ---- the plan ---- */

enum { CG_FWD = 0, CG_BWD = 1 };   /* function index: module->forward, module->backward */

#define CG_DIM_T (-2)   /* the step count in a shape, for the [T, ...] view of batched loops */

typedef enum {
    CG_BUF_VALUE,   /* a value's own buffer */
    CG_BUF_STATE,   /* a state's current value */
    CG_BUF_TAPE,    /* T slots of a forward step value, slot t at t * slot stride */
    CG_BUF_MISC     /* the loss accumulator and friends (16 floats) */
} cg_buf_kind;

typedef struct {
    cg_buf_kind kind;
    int32_t func, id;      /* value or state id in module function `func` */
    snn_shape shape;       /* elements: numel(shape, B), times T for a tape */
    const char *name;      /* for LLVM value names */
    int32_t alias;         /* an earlier buffer whose memory this one reuses (their values' live
                              ranges do not overlap, plan.c "Memory plan"), or -1: its own */
} cg_buf;

/* One fused elementwise loop: values members[0..n) of one region, all of result shape `shape`,
 * in program order. A member is kept in a register inside the loop and stored only if
 * val[].stored says so. */
typedef struct {
    int32_t func;
    snn_region region;
    snn_shape shape;
    int32_t *members, n_members;
    bool uses_rate;        /* needs t and the batch seed */
    bool batched;          /* in a batched time loop: runs once over all T steps */
    bool joined;           /* values after other ops joined it (plan.c, join_group) */
    int32_t rowred;        /* a linear layer of a member computed in this loop (plan.c,
                              plan_fuse_linear): its value id, or -1 */
    bool lanes;            /* with rowred: the kernel keeps 16 rows in its lanes and walks the
                              columns (plan.c, plan_rows_in_lanes); its state is stored [N, B] */
    const char *name;
} cg_group;

/* One time loop of a function's step region: values [begin, end), run for all t before the next
 * loop. A scan runs step by step; a batched loop runs each op once over all T steps. */
typedef struct {
    int32_t begin, end;
    bool scan;
    bool batched;
    bool rows_forward;     /* backward's recompute loop (plan.c, plan_recompute): the values of
                              this loop (cv.loop) run forward in time, after the forward group
                              plan.rec_group is re-run at each step */
    bool tiled;            /* the batch's rows in tiles of plan.tile_rows, each through all T
                              steps (plan_recompute, plan_forward_tiles) */
} cg_tloop;

typedef struct {
    int32_t group;         /* elementwise: its group; -1 otherwise */
    int32_t loop;          /* step values: its time loop */
    bool crosses;          /* step value kept for all T steps (read by a later loop, or computed
                              in a batched loop): T slots in training and evaluation */
    bool stored;           /* the value needs memory (own buffer, or tape slot when taped) */
    bool taped;            /* forward step value read by backward: T slots while training */
    bool state_copy;       /* STATE step value copied to its own place at the start of a step
                              (because a state update or the post region would see the state
                              buffer overwritten) */
    int32_t next_of;       /* the rotating state whose next value this is (its place is the
                                 state's), or -1 */
    int32_t grad_of;       /* a parameter whose gradient this value is, written straight into
                              grads[grad_of] (see grad_mode), or -1 */
    int32_t buf;           /* own buffer (index into plan.bufs), -1 if none */
    int32_t tape;          /* T-slot buffer (tape or crossing), -1 if none */
    bool mm_fused;         /* a matmul_nn with a short K computed inside its result's loop
                              (plan.c, plan_fuse_matmul) instead of by snnrt_sgemm */
    bool mm_rowred;        /* a linear(S, W, b) with a short output computed in the loop of S
                              (plan.c, plan_fuse_linear); not a member of that group, which
                              names it in cg_group.rowred */
    bool mm_wacc;          /* a matmul_tn S^T-shaped weight gradient (A[R, K]^T S[R, N], K short)
                              added into its state inside the loop of S (plan.c,
                              plan_fuse_wgrad): a member of S's group with no value of its own */
    bool tr_need;          /* a [B, N] pre value a rows-in-lanes kernel reads (plan_rows_in_lanes) */
    int32_t tr_buf;        /* then its copy as [N, B] (filled after the pre region), else -1 */
    int32_t mm_pad;        /* a fused matmul whose weight rows are not a whole number of
                              64-byte lines: the buffer its loop reads a copy from, rows padded
                              to a multiple of 16 floats (filled at the function's start), or -1 */
} cg_val;

typedef struct {
    const snn_ir_module *m;
    const snn_ir_func *fn[2];        /* forward, backward (NULL if backward is empty) */
    cg_val *val[2];                  /* per value of fn[i] */
    int32_t *state_buf[2];           /* per state of fn[i]: its buffer (the initial value) */
    int32_t *state_buf2[2];          /* per rotating state: its second buffer, else -1 */
    bool *st_rotate[2];              /* per state: rotates (see plan.c) rather than copies */
    bool *st_sum[2];                 /* per state: a time sum of a batched loop */
    int32_t *st_mmacc[2];            /* per state: the matmul (value id) whose product is added
                                        into the state in place at each step (sgemm beta = 1;
                                        next = add(state read, matmul)), or -1 */
    bool *st_inplace[2];             /* per rotating state: updated in place in one buffer (its
                                        reads all in the loop of its next value, see plan.c) */
    cg_tloop *loops[2]; int32_t n_loops[2];   /* time loops of each function's step region */
    bool time_loops;                 /* input: use the fission pass's time loops if present */
    int32_t *grad_mode;              /* per parameter, how backward produces its gradient: */
#define CG_GRAD_ADD 0                /*   zeroed, then every grad_acc adds into it */
#define CG_GRAD_COPY 1               /*   its one grad_acc (pre/post) copies the value */
#define CG_GRAD_DIRECT 2             /*   its one grad_acc's value is computed in place */
    /* Recompute instead of tape (plan.c, plan_recompute): backward's last loop re-runs the
     * forward group rec_group, row tile by row tile, forward in time, on its own copy of the
     * group's in-place states; the forward values in rec_val are then not taped. */
    int32_t rec_group;               /* -1: none */
    bool *rec_val;                   /* per forward value: recomputed in backward */
    int32_t *rec_buf;                /* per forward value in rec_val: its per-step buffer in
                                        backward (else -1) */
    int32_t *rec_state_buf;          /* per forward state: backward's copy, or -1 */
    int32_t rec_merge;               /* the backward group that runs the recomputation inside
                                        its own loop (plan.c, plan_rec_merge), or -1: then
                                        backward calls the rec kernel at each step */
    int32_t tile_rows;               /* rows per tile of that loop */
    int32_t time_inner;              /* the group (plan.rec_merge) that runs backward's tiled
                                        loop with the steps innermost (plan.c, plan_time_inner),
                                        or -1: lower.c may still fall back to steps outermost */
    cg_group *groups; int32_t n_groups, cap_groups;
    cg_buf *bufs; int32_t n_bufs, cap_bufs;
    int32_t misc_buf;
} cg_plan;

/* Analyses m and fills p (arrays in arena a). Returns false with an internal error on d if m
 * has something codegen cannot lower (an unknown op in a function, a bad FWD reference).
 * time_loops: follow the time loops of the fission pass (else one loop per function).
 * o (NULL: the defaults) switches plans off: no_recompute (plan_recompute and row tiles),
 * no_fuse_matmul (plan_fuse_matmul), no_rec_merge (plan_rec_merge), no_fuse_wgrad
 * (plan_fuse_wgrad), no_time_inner (plan_time_inner), no_fuse_linear (plan_fuse_linear). */
bool cg_plan_build(snn_arena *a, snn_diag *d, const snn_ir_module *m, bool time_loops,
                   const snn_codegen_options *o, cg_plan *p);

/* Whether forward value u, recomputed in backward (plan.rec_val), needs its per-step buffer:
 * something other than the group that runs the recomputation (plan.rec_merge) reads it. */
bool cg_rec_stored(const cg_plan *p, int32_t u);

/* The longest K of a matmul_nn computed inside a loop (plan_fuse_matmul). */
#define CG_FUSE_K_MAX 16
/* Columns per chunk of a loop with a fused matmul (lower.c, group_kernel). */
#define CG_FUSE_CHUNK 256

/* How the steps-innermost kernel (plan.c, plan_time_inner; lower.c, time_inner_kernel) reads an
 * operand of its group. */
typedef enum {
    CG_TI_ROWS,       /* [B, N], the same at every step: one load per row */
    CG_TI_STATE,      /* [B, N] state the group updates in place: a register across the steps */
    CG_TI_STEPROWS,   /* [B, K] value of an earlier loop, T slots (d.o.mem): scalars per row, step */
    CG_TI_WEIGHT,     /* [K, N] weight of a fused matmul: K registers per 16 columns */
    CG_TI_WACC,       /* [K, N] state a weight gradient adds into: K registers per 16 columns */
    CG_TI_SCALAR,     /* a scalar that does not change with the step: one load */
    CG_TI_STEPSCALAR, /* a scalar of the loop's own: computed for all steps before the columns */
    CG_TI_BAD
} cg_ti_kind_t;
/* The kind of operand x of group g (plan.time_inner): a backward value, or -(id + 1) for a
 * forward value the merged recomputation reads. */
cg_ti_kind_t cg_ti_kind(const cg_plan *p, int32_t g, int32_t x);

/* The state into which matmul value id of function fi adds its product (plan.st_mmacc), or -1. */
int32_t cg_mmacc_state(const cg_plan *p, int fi, int32_t id);

/* The forward state that rows-in-lanes group g reads (its membrane), or -1: one that starts from
 * a constant and that only g reads and writes (plan_rows_in_lanes), so that the kernel's step-0
 * variant takes the constant for it and the state needs no fill. */
int32_t cg_lanes_state(const cg_plan *p, int32_t g);

/* ---- the LLVM context ---- */

/* A kernel function and its type (LLVMBuildCall2 needs both). */
typedef struct {
    LLVMValueRef fn;
    LLVMTypeRef ty;
} cg_kfn;

typedef struct cg_ctx {
    snn_arena *arena;
    snn_diag *diag;
    const snn_ir_module *m;
    cg_plan plan;

    LLVMContextRef ctx;
    bool own_ctx;
    LLVMModuleRef mod;
    LLVMBuilderRef b;
    LLVMTargetMachineRef tm;
    LLVMTargetDataRef td;

    /* common types */
    LLVMTypeRef t_void, t_i1, t_i32, t_i64, t_f32, t_ptr;
    /* runtime functions and intrinsics, declared on first use */
    LLVMTypeRef sgemm_ty, sgemm_bias_ty, uniform_ty, transpose_ty;
    LLVMValueRef sgemm_fn, sgemm_bias_fn, uniform_fn, transpose_fn;

    /* per group: its kernel function (built once, called from forward train and eval), and for
     * a rows-in-lanes group its variant for step 0 (lanes_from_init) */
    LLVMValueRef *group_fn, *group_fn_first;
    LLVMTypeRef *group_fn_ty;
    bool states_from_init;           /* vec_members: states read as their initial value */
    /* per non-elementwise value of forward/backward: its kernel, if it has one */
    cg_kfn *op_kernels[2];
    bool failed;                     /* an internal error was reported while lowering */

    /* state of the function being emitted (lower.c) */
    LLVMValueRef fn;                 /* current LLVM function */
    LLVMValueRef *buf_ptr;           /* per plan buffer: its address in the work area */
    LLVMValueRef B, T, t, iv;        /* i64: batch, steps, current step t and loop iteration iv
                                        (t = iv forward, T-1-iv backward; NULL outside loop) */
    LLVMValueRef Bfull;              /* the batch's rows (B is a tile's rows inside a row tile) */
    LLVMValueRef row_off;            /* inside a row tile: its first row (addresses of [B, ...]
                                        values are offset by it); NULL elsewhere */
    int32_t cur_loop;                /* the time loop being emitted (its values only), or -1 */
    LLVMValueRef rec_fn;             /* the recompute variant of plan.rec_group's kernel */
    LLVMTypeRef rec_fn_ty;
    LLVMValueRef x, labels, seed, row0; /* batch fields */
    LLVMValueRef params, grads;      /* ptr to arrays of pointers */
    bool taping;                     /* forward in training mode: taped values go to the tape */
    bool vec;                        /* emit_elem builds <16 x float> values (lower.c, the
                                        steps-innermost kernel), else float */
} cg_ctx;

/* target.c */
/* Creates the target machine for o (host triple, CPU and features as codegen.h describes) and
 * sets the module's triple and data layout. False with an error on d if LLVM has no target. */
bool cg_target_init(cg_ctx *c, const snn_codegen_options *o);
/* Verifies (if o->verify) and optimizes c->mod. */
bool cg_optimize(cg_ctx *c, const snn_codegen_options *o);

/* lower.c: builds the whole module (functions and the snn_model global) into c->mod. */
bool cg_lower_module(cg_ctx *c);

/* desc.c: the snn_model global pointing at the entry points. */
void cg_emit_model_desc(cg_ctx *c, LLVMValueRef work_bytes, LLVMValueRef fwd_bwd,
                        LLVMValueRef fwd);

/* codegen.c: context lifetime. cg_ctx_init creates the LLVM context (unless ctx is given: the
 * JIT passes its thread-safe context), module, builder, plan and target machine. cg_build does
 * init + lower + verify/optimize. cg_ctx_dispose releases whatever is still owned (the JIT takes
 * the module and sets c->mod to NULL); call it whatever cg_ctx_init/cg_build returned. */
bool cg_ctx_init(cg_ctx *c, snn_arena *a, snn_diag *d, const snn_ir_module *m,
                 const snn_codegen_options *o, LLVMContextRef ctx);
bool cg_build(cg_ctx *c, snn_arena *a, snn_diag *d, const snn_ir_module *m,
              const snn_codegen_options *o, LLVMContextRef ctx);
void cg_ctx_dispose(cg_ctx *c);

/* Ops lowered inside fused elementwise loops: the ELEMWISE class, plus BROADCAST (an identity
 * whose operand is broadcast right-aligned to the result shape, exactly as elementwise operands
 * are). */
static inline bool cg_is_elem(snn_op op) {
    return snn_op_infos[op].cls == SNN_CLASS_ELEMWISE || op == SNN_OP_BROADCAST;
}

/* Ops the steps-innermost kernel computes 16 lanes wide (emit_elem with c->vec). */
static inline bool cg_vec_op(snn_op op) {
    switch (op) {
    case SNN_OP_NEG: case SNN_OP_ABS: case SNN_OP_SQRT: case SNN_OP_HEAVISIDE: case SNN_OP_FIRE:
    case SNN_OP_DETACH: case SNN_OP_BROADCAST: case SNN_OP_ADD: case SNN_OP_SUB: case SNN_OP_MUL:
    case SNN_OP_DIV: case SNN_OP_MIN: case SNN_OP_MAX: case SNN_OP_GT: case SNN_OP_GE:
    case SNN_OP_LT: case SNN_OP_LE: case SNN_OP_EQ: case SNN_OP_NE: case SNN_OP_SELECT:
        return true;
    default:
        return false;
    }
}

/* Value i of function fi is computed inside a fused loop: elementwise, a fused matmul, or a
 * weight gradient accumulated there. */
static inline bool cg_in_loop(const cg_plan *p, int fi, int32_t i) {
    return cg_is_elem(p->fn[fi]->values[i].op) || p->val[fi][i].mm_fused ||
           p->val[fi][i].mm_wacc || p->val[fi][i].mm_rowred;
}

/* Reports a codegen bug (an IR construct lowering cannot handle) and marks the context failed. */
#define CG_BUG(c, loc, ...) ((c)->failed = true, snn_internal_error((c)->diag, (loc), __VA_ARGS__))

/* helpers */
static inline snn_loc cg_noloc(const cg_ctx *c) {
    snn_loc l = {c->m->source_file, 0, 0};
    return l;
}

#endif
