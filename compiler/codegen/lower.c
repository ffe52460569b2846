/* lower.c: SNN IR -> LLVM IR, following the plan (plan.c).
 *
 * The generated module has three internal entry points and one exported global:
 *
 *   i64 @snn_work_bytes(i64 B, i64 T)                    size of the work area
 *   i32 @snn_forward_backward(params, grads, batch, work, res)
 *   i32 @snn_forward(params, batch, work, res)           evaluation: no tape, no backward
 *   @snn_model                                           the descriptor of runtime/snnrt.h
 *
 * An entry point first refuses an empty batch (B or T < 1), computes the address of every
 * plan buffer in the work area (the same chain of sizes as @snn_work_bytes, so they agree by
 * construction), loads the batch fields, writes the constants that live in memory, and zeroes
 * the loss. forward_backward zeroes the gradients that are accumulated. Then, per function
 * (forward, then backward):
 *
 *   pre region; states initialised (their constant, or a copy of init_from);
 *   per time loop of the plan (one, unless options.time_loops), for t in 0..T-1 (backward:
 *   T-1..0), or once for all t if batched:
 *       copy copied states into their per-step places where the plan asked (state_copy, tape);
 *       the loop's values;
 *       copy each copied state's next value into its buffer (rotating states need no copy:
 *       their next value is written where the next step reads the state, see "where states
 *       live" below);
 *   post region.
 * Then the loss and the final scores go to `res`; the return value is 1 if the loss is not
 * finite.
 *
 * Each op becomes a call to a small internal "kernel" function whose pointer parameters are
 * `noalias` (this holds: the plan shares a buffer only between values whose live ranges do not
 * overlap, so no call gets it twice, and a state updated in place is loaded and stored through
 * one parameter; a matmul added into its state is an sgemm with beta 1): a fusion group of
 * elementwise ops is one kernel with one loop nest (rows x last dimension, operands broadcast
 * right-aligned as in NumPy), so O3 inlines it and vectorizes the inner loop; linear and
 * matmuls call snnrt_sgemm; sum_to, the losses and grad_acc are plain loops. Values, blocks and
 * kernels carry the IR names, so --emit=llvm reads like the model.
 */
#include "codegen/cg.h"

#include <llvm-c/DebugInfo.h>
#include <math.h>
#include <stdio.h>
#include <string.h>

/* ---- small builders ---- */

static LLVMValueRef i64c(cg_ctx *c, int64_t v) { return LLVMConstInt(c->t_i64, (unsigned long long)v, 1); }
static LLVMValueRef i32c(cg_ctx *c, int32_t v) { return LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)v, 1); }
static LLVMValueRef f32c(cg_ctx *c, double v) { return LLVMConstReal(c->t_f32, v); }

static LLVMValueRef gep_f32(cg_ctx *c, LLVMValueRef base, LLVMValueRef idx, const char *name) {
    return LLVMBuildGEP2(c->b, c->t_f32, base, &idx, 1, name);
}

static LLVMValueRef load_f32(cg_ctx *c, LLVMValueRef ptr, const char *name) {
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_f32, ptr, name);
    LLVMSetAlignment(v, 4);
    return v;
}

static void store_f32(cg_ctx *c, LLVMValueRef v, LLVMValueRef ptr) {
    LLVMValueRef s = LLVMBuildStore(c->b, v, ptr);
    LLVMSetAlignment(s, 4);
}

static LLVMValueRef mul64(cg_ctx *c, LLVMValueRef a, LLVMValueRef b, const char *name) {
    return LLVMBuildNUWMul(c->b, a, b, name);
}

/* One extent of a shape: the batch symbol, the step count (batched loops), or a constant. */
static LLVMValueRef dim(cg_ctx *c, snn_shape s, int i) {
    return s.dim[i] == SNN_DIM_B ? c->B : s.dim[i] == CG_DIM_T ? c->T : i64c(c, s.dim[i]);
}

/* Elements of s for the current batch size. */
static LLVMValueRef numel(cg_ctx *c, snn_shape s) {
    LLVMValueRef n = NULL;   /* the product of the B extents, if any */
    int64_t k = 1;
    for (int i = 0; i < s.rank; i++) {
        if (s.dim[i] == SNN_DIM_B || s.dim[i] == CG_DIM_T) {
            LLVMValueRef d = s.dim[i] == SNN_DIM_B ? c->B : c->T;
            n = n ? mul64(c, n, d, "") : d;
        } else {
            k *= s.dim[i];
        }
    }
    if (!n) return i64c(c, k);
    return k == 1 ? n : mul64(c, n, i64c(c, k), "");
}

static LLVMValueRef bytes_of(cg_ctx *c, snn_shape s) {
    return mul64(c, numel(c, s), i64c(c, 4), "bytes");
}

/* Product of all extents but the last (rows of a [rows, last] view); 1 for rank <= 1. */
static LLVMValueRef rows_of(cg_ctx *c, snn_shape s) {
    snn_shape p = s;
    p.rank = s.rank > 0 ? s.rank - 1 : 0;
    return numel(c, p);
}
static LLVMValueRef last_of(cg_ctx *c, snn_shape s) {
    return s.rank > 0 ? dim(c, s, s.rank - 1) : i64c(c, 1);
}

static LLVMBasicBlockRef new_block(cg_ctx *c, const char *name) {
    LLVMValueRef fn = LLVMGetBasicBlockParent(LLVMGetInsertBlock(c->b));
    return LLVMAppendBasicBlockInContext(c->ctx, fn, name);
}

/* for (iv = 0; iv < n; iv++): loop_begin leaves the builder in the body; loop_end closes it. */
typedef struct {
    LLVMBasicBlockRef header, exit;
    LLVMValueRef iv;
} cg_loop;

static LLVMValueRef loop_begin(cg_ctx *c, cg_loop *L, LLVMValueRef n, const char *name) {
    LLVMBasicBlockRef pre = LLVMGetInsertBlock(c->b);
    L->header = new_block(c, snn_sprintf(c->arena, "%s.loop", name));
    LLVMBasicBlockRef body = new_block(c, snn_sprintf(c->arena, "%s.body", name));
    L->exit = new_block(c, snn_sprintf(c->arena, "%s.done", name));
    LLVMBuildBr(c->b, L->header);
    LLVMPositionBuilderAtEnd(c->b, L->header);
    L->iv = LLVMBuildPhi(c->b, c->t_i64, name);
    LLVMValueRef zero = i64c(c, 0);
    LLVMAddIncoming(L->iv, &zero, &pre, 1);
    LLVMValueRef more = LLVMBuildICmp(c->b, LLVMIntULT, L->iv, n, "");
    LLVMBuildCondBr(c->b, more, body, L->exit);
    LLVMPositionBuilderAtEnd(c->b, body);
    return L->iv;
}

static void loop_end(cg_ctx *c, cg_loop *L) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
    LLVMValueRef next = LLVMBuildNUWAdd(c->b, L->iv, i64c(c, 1), "");
    LLVMBuildBr(c->b, L->header);
    LLVMAddIncoming(L->iv, &next, &cur, 1);
    LLVMPositionBuilderAtEnd(c->b, L->exit);
}

/* loop_end for an outer loop (rows, time) that LLVM must not unroll: with constant extents
 * ([10, 1000] weight-shaped values) full unrolling of the outer loop around an already
 * vectorized inner loop made basic blocks of thousands of instructions, and the machine
 * scheduler, quadratic in them, took most of a second of compile time. */
static void loop_end_no_unroll(cg_ctx *c, cg_loop *L) {
    LLVMBasicBlockRef cur = LLVMGetInsertBlock(c->b);
    LLVMValueRef next = LLVMBuildNUWAdd(c->b, L->iv, i64c(c, 1), "");
    LLVMValueRef br = LLVMBuildBr(c->b, L->header);
    LLVMAddIncoming(L->iv, &next, &cur, 1);
    /* !llvm.loop !0, !0 = !{!0, !{!"llvm.loop.unroll.disable"}} */
    LLVMMetadataRef tmp = LLVMTemporaryMDNode(c->ctx, NULL, 0);
    LLVMMetadataRef str = LLVMMDStringInContext2(c->ctx, "llvm.loop.unroll.disable", 24);
    LLVMMetadataRef dis = LLVMMDNodeInContext2(c->ctx, &str, 1);
    LLVMMetadataRef ops[2] = {tmp, dis};
    LLVMMetadataRef id = LLVMMDNodeInContext2(c->ctx, ops, 2);
    LLVMMetadataReplaceAllUsesWith(tmp, id);
    LLVMSetMetadata(br, LLVMGetMDKindIDInContext(c->ctx, "llvm.loop", 9),
                    LLVMMetadataAsValue(c->ctx, id));
    LLVMPositionBuilderAtEnd(c->b, L->exit);
}

/* The element type emit_elem works in: float, or <16 x float> in the steps-innermost kernel. */
static LLVMTypeRef el_ty(cg_ctx *c) { return c->vec ? LLVMVectorType(c->t_f32, 16) : c->t_f32; }

/* The constant v as an element: a float, or 16 of them. */
static LLVMValueRef elc(cg_ctx *c, double v) {
    LLVMValueRef x = f32c(c, v);
    if (!c->vec) return x;
    LLVMValueRef lanes[16];
    for (int i = 0; i < 16; i++) lanes[i] = x;
    return LLVMConstVector(lanes, 16);
}

/* The integer element type and an integer constant, likewise (emit_exp's exponent bits). */
static LLVMTypeRef el_ity(cg_ctx *c) { return c->vec ? LLVMVectorType(c->t_i32, 16) : c->t_i32; }

static LLVMValueRef elic(cg_ctx *c, int32_t v) {
    LLVMValueRef x = LLVMConstInt(c->t_i32, (unsigned long long)(int64_t)v, 1);
    if (!c->vec) return x;
    LLVMValueRef lanes[16];
    for (int i = 0; i < 16; i++) lanes[i] = x;
    return LLVMConstVector(lanes, 16);
}

static LLVMValueRef intrinsic(cg_ctx *c, const char *name, LLVMValueRef *args, unsigned n) {
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef ty = el_ty(c);
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, &ty, 1);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, &ty, 1);
    return LLVMBuildCall2(c->b, fty, fn, args, n, "");
}

static LLVMValueRef fsel(cg_ctx *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b,
                         LLVMValueRef t, LLVMValueRef f);

/* 16 lanes of the scalar x, whatever its type. */
static LLVMValueRef splat16(cg_ctx *c, LLVMValueRef x) {
    LLVMTypeRef V = LLVMVectorType(LLVMTypeOf(x), 16);
    LLVMValueRef v = LLVMBuildInsertElement(c->b, LLVMGetPoison(V), x, i32c(c, 0), "");
    return LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(V), LLVMConstNull(LLVMVectorType(c->t_i32, 16)), "");
}

/* The lanes below count (an i64): a <16 x i1> mask named name. */
static LLVMValueRef lanes_below(cg_ctx *c, LLVMValueRef count, const char *name) {
    LLVMValueRef lanes[16];
    for (int i = 0; i < 16; i++) lanes[i] = i64c(c, i);
    return LLVMBuildICmp(c->b, LLVMIntULT, LLVMConstVector(lanes, 16), splat16(c, count), name);
}

/* The lanes of the 16 columns from col0 that are < n. */
static LLVMValueRef col_mask(cg_ctx *c, LLVMValueRef col0, int64_t n) {
    return lanes_below(c, LLVMBuildSub(c->b, i64c(c, n), col0, ""), "cols");
}

/* A masked load (val NULL; the other lanes 0) or store of a vector of type V at p. */
static LLVMValueRef vec_masked_ty(cg_ctx *c, LLVMTypeRef V, bool store, LLVMValueRef p,
                                  LLVMValueRef mask, LLVMValueRef val) {
    const char *name = store ? "llvm.masked.store" : "llvm.masked.load";
    unsigned id = LLVMLookupIntrinsicID(name, strlen(name));
    LLVMTypeRef tys[2] = {V, c->t_ptr};
    LLVMValueRef fn = LLVMGetIntrinsicDeclaration(c->mod, id, tys, 2);
    LLVMTypeRef fty = LLVMIntrinsicGetType(c->ctx, id, tys, 2);
    if (store) {
        LLVMValueRef a[4] = {val, p, i32c(c, 4), mask};
        return LLVMBuildCall2(c->b, fty, fn, a, 4, "");
    }
    LLVMValueRef a[4] = {p, i32c(c, 4), mask, LLVMConstNull(V)};
    return LLVMBuildCall2(c->b, fty, fn, a, 4, "");
}

/* vec_masked_ty for <16 x float>. */
static LLVMValueRef vec_masked(cg_ctx *c, bool store, LLVMValueRef p, LLVMValueRef mask,
                              LLVMValueRef val) {
    return vec_masked_ty(c, LLVMVectorType(c->t_f32, 16), store, p, mask, val);
}

/* exp(x) inline, so loops that use it vectorize (a call to expf does not, without a vector
 * math library): Cephes' expf, range reduction x = n ln2 + r with ln2 split in two, a degree-6
 * polynomial for e^r on [-ln2/2, ln2/2], and 2^n applied as two power-of-two factors so that
 * results down to the denormals are right. Within 2 ulp of libm's expf over the float range
 * (tests/unit/test_codegen.c); exp(x) = 0 below -103.3, +inf above 88.72, NaN stays NaN. */
static LLVMValueRef emit_exp(cg_ctx *c, LLVMValueRef x) {
    LLVMValueRef lo = elc(c, -103.278929903431851), hi = elc(c, 88.7228391116729996);
    LLVMValueRef xc = fsel(c, LLVMRealOLT, x, lo, lo, x);
    xc = fsel(c, LLVMRealOGT, xc, hi, hi, xc);
    LLVMValueRef t = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, xc, elc(c, 1.44269504088896341), ""),
                                   elc(c, 0.5), "");
    LLVMValueRef fx = intrinsic(c, "llvm.floor", &t, 1);
    LLVMValueRef r = LLVMBuildFSub(c->b, xc, LLVMBuildFMul(c->b, fx, elc(c, 0.693359375), ""), "");
    r = LLVMBuildFSub(c->b, r, LLVMBuildFMul(c->b, fx, elc(c, -2.12194440e-4), ""), "");
    static const double poly[6] = {1.9875691500E-4, 1.3981999507E-3, 8.3334519073E-3,
                                   4.1665795894E-2, 1.6666665459E-1, 5.0000001201E-1};
    LLVMValueRef y = elc(c, poly[0]);
    for (int i = 1; i < 6; i++)
        y = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, y, r, ""), elc(c, poly[i]), "");
    LLVMValueRef z = LLVMBuildFMul(c->b, r, r, "");
    y = LLVMBuildFAdd(c->b, LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, y, z, ""), r, ""), elc(c, 1.0), "");
    LLVMValueRef n = LLVMBuildFPToSI(c->b, fx, el_ity(c), "");
    LLVMValueRef h = LLVMBuildAShr(c->b, n, elic(c, 1), "");
    LLVMValueRef n2 = LLVMBuildSub(c->b, n, h, "");
    LLVMValueRef s1 = LLVMBuildBitCast(c->b, LLVMBuildShl(c->b, LLVMBuildAdd(c->b, h, elic(c, 127), ""),
                                                          elic(c, 23), ""), el_ty(c), "");
    LLVMValueRef s2 = LLVMBuildBitCast(c->b, LLVMBuildShl(c->b, LLVMBuildAdd(c->b, n2, elic(c, 127), ""),
                                                          elic(c, 23), ""), el_ty(c), "");
    LLVMValueRef e = LLVMBuildFMul(c->b, LLVMBuildFMul(c->b, y, s1, ""), s2, "");
    e = fsel(c, LLVMRealOLT, x, lo, elc(c, 0.0), e);
    e = fsel(c, LLVMRealOGT, x, hi, elc(c, INFINITY), e);
    return fsel(c, LLVMRealUNO, x, x, x, e);   /* NaN in, NaN out */
}

static LLVMValueRef libm1(cg_ctx *c, const char *name, LLVMValueRef x) {
    LLVMTypeRef fty = LLVMFunctionType(c->t_f32, &c->t_f32, 1, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, name);
    if (!fn) fn = LLVMAddFunction(c->mod, name, fty);
    return LLVMBuildCall2(c->b, fty, fn, &x, 1, "");
}

static LLVMValueRef fsel(cg_ctx *c, LLVMRealPredicate p, LLVMValueRef a, LLVMValueRef b,
                         LLVMValueRef t, LLVMValueRef f) {
    return LLVMBuildSelect(c->b, LLVMBuildFCmp(c->b, p, a, b, ""), t, f, "");
}

static LLVMValueRef flt_max(cg_ctx *c, LLVMValueRef a, LLVMValueRef b) {
    return fsel(c, LLVMRealOGE, a, b, a, b);
}

static LLVMValueRef uniform_call(cg_ctx *c, LLVMValueRef key, LLVMValueRef a, LLVMValueRef b,
                                 LLVMValueRef i) {
    if (!c->uniform_fn) {
        LLVMTypeRef ps[4] = {c->t_i64, c->t_i64, c->t_i64, c->t_i64};
        c->uniform_ty = LLVMFunctionType(c->t_f32, ps, 4, 0);
        c->uniform_fn = LLVMAddFunction(c->mod, "snnrt_uniform", c->uniform_ty);
    }
    LLVMValueRef args[4] = {key, a, b, i};
    return LLVMBuildCall2(c->b, c->uniform_ty, c->uniform_fn, args, 4, "u");
}

/* ---- elementwise ops: one element, operands already in registers ---- */

/* For RATE: the draw of element (row, col) at step t is snnrt_uniform(seed, t, row, col); where
 * buf is set, the kernel filled buf[0..last) with the row's draws (snnrt_uniform_fill, the same
 * numbers bit for bit) at the start of the row, and the element loads buf[col]. */
typedef struct { LLVMValueRef t, seed, row, col, buf; } cg_elem_pos;

/* Rows of RATE draws up to this many floats go through a stack buffer and one
 * snnrt_uniform_fill per row (16 KiB of stack); wider or symbolic rows draw per element. */
#define CG_RATE_FILL_MAX 4096

/* buf[i] = snnrt_uniform(key, a, b, i) for 0 <= i < n, one runtime call. */
static void uniform_fill_call(cg_ctx *c, LLVMValueRef key, LLVMValueRef a, LLVMValueRef b,
                              LLVMValueRef n, LLVMValueRef buf) {
    LLVMTypeRef ps[6] = {c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_i64, c->t_ptr};
    LLVMTypeRef fty = LLVMFunctionType(c->t_void, ps, 6, 0);
    LLVMValueRef fn = LLVMGetNamedFunction(c->mod, "snnrt_uniform_fill");
    if (!fn) fn = LLVMAddFunction(c->mod, "snnrt_uniform_fill", fty);
    LLVMValueRef args[6] = {key, a, b, i64c(c, 0), n, buf};
    LLVMBuildCall2(c->b, fty, fn, args, 6, "");
}

static LLVMValueRef emit_elem(cg_ctx *c, const snn_ir_value *v, LLVMValueRef *a,
                              const cg_elem_pos *pos) {
    LLVMValueRef one = elc(c, 1.0), zero = elc(c, 0.0), r = NULL;
    switch (v->op) {
    case SNN_OP_NEG: r = LLVMBuildFNeg(c->b, a[0], ""); break;
    case SNN_OP_EXP: r = emit_exp(c, a[0]); break;
    case SNN_OP_LOG: r = intrinsic(c, "llvm.log", a, 1); break;
    case SNN_OP_SQRT: r = intrinsic(c, "llvm.sqrt", a, 1); break;
    case SNN_OP_ABS: r = intrinsic(c, "llvm.fabs", a, 1); break;
    case SNN_OP_TANH: r = libm1(c, "tanhf", a[0]); break;
    case SNN_OP_SIGMOID: {
        LLVMValueRef n = LLVMBuildFNeg(c->b, a[0], "");
        LLVMValueRef e = emit_exp(c, n);
        r = LLVMBuildFDiv(c->b, one, LLVMBuildFAdd(c->b, one, e, ""), "");
        break;
    }
    case SNN_OP_HEAVISIDE:
    case SNN_OP_FIRE: r = fsel(c, LLVMRealOGT, a[0], zero, one, zero); break;
    case SNN_OP_DETACH:
    case SNN_OP_BROADCAST: r = a[0]; break;
    case SNN_OP_ADD: r = LLVMBuildFAdd(c->b, a[0], a[1], ""); break;
    case SNN_OP_SUB: r = LLVMBuildFSub(c->b, a[0], a[1], ""); break;
    case SNN_OP_MUL: r = LLVMBuildFMul(c->b, a[0], a[1], ""); break;
    case SNN_OP_DIV: r = LLVMBuildFDiv(c->b, a[0], a[1], ""); break;
    case SNN_OP_POW: r = intrinsic(c, "llvm.pow", a, 2); break;
    case SNN_OP_MIN: r = fsel(c, LLVMRealOLE, a[0], a[1], a[0], a[1]); break;
    case SNN_OP_MAX: r = fsel(c, LLVMRealOGE, a[0], a[1], a[0], a[1]); break;
    case SNN_OP_GT: r = fsel(c, LLVMRealOGT, a[0], a[1], one, zero); break;
    case SNN_OP_GE: r = fsel(c, LLVMRealOGE, a[0], a[1], one, zero); break;
    case SNN_OP_LT: r = fsel(c, LLVMRealOLT, a[0], a[1], one, zero); break;
    case SNN_OP_LE: r = fsel(c, LLVMRealOLE, a[0], a[1], one, zero); break;
    case SNN_OP_EQ: r = fsel(c, LLVMRealOEQ, a[0], a[1], one, zero); break;
    case SNN_OP_NE: r = fsel(c, LLVMRealUNE, a[0], a[1], one, zero); break;
    case SNN_OP_SELECT: r = fsel(c, LLVMRealUNE, a[0], zero, a[1], a[2]); break;
    case SNN_OP_RATE: {
        LLVMValueRef p = fsel(c, LLVMRealOLT, a[0], zero, zero, a[0]);   /* clamp(x, 0, 1) */
        p = fsel(c, LLVMRealOGT, p, one, one, p);
        LLVMValueRef u = pos->buf ? load_f32(c, gep_f32(c, pos->buf, pos->col, ""), "u")
                                  : uniform_call(c, pos->seed, pos->t, pos->row, pos->col);
        r = fsel(c, LLVMRealOLT, u, p, one, zero);
        break;
    }
    default: return NULL;
    }
    if (r && !LLVMIsConstant(r) && v->op != SNN_OP_DETACH && v->op != SNN_OP_BROADCAST) LLVMSetValueName2(r, v->name, strlen(v->name));
    return r;
}

/* ---- kernels: internal functions with noalias pointer parameters ---- */

typedef struct {
    LLVMBasicBlockRef saved_block;
    LLVMValueRef saved_fn, saved_B, saved_T;
} cg_kernel_save;

/* Creates `void name(ptr noalias p0.., i64 B, i64 T, i64 x0..)`, positions the builder in its
 * entry block and makes c->B and c->T its B and T parameters. */
static LLVMValueRef kernel_begin(cg_ctx *c, const char *name, int n_ptr, const char **pnames,
                                 int n_extra, const char **xnames, LLVMTypeRef *fty_out,
                                 cg_kernel_save *save) {
    LLVMTypeRef *ps = snn_alloc(c->arena, sizeof(LLVMTypeRef) * (size_t)(n_ptr + n_extra + 3));
    int n = 0;
    for (int i = 0; i < n_ptr; i++) ps[n++] = c->t_ptr;
    for (int i = 0; i < n_extra + 2; i++) ps[n++] = c->t_i64;
    LLVMTypeRef fty = LLVMFunctionType(c->t_void, ps, (unsigned)n, 0);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    unsigned nounwind = LLVMGetEnumAttributeKindForName("nounwind", 8);
    LLVMAddAttributeAtIndex(fn, LLVMAttributeFunctionIndex,
                            LLVMCreateEnumAttribute(c->ctx, nounwind, 0));
    for (int i = 0; i < n_ptr; i++) {
        LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
        LLVMSetValueName2(LLVMGetParam(fn, (unsigned)i), pnames[i], strlen(pnames[i]));
    }
    LLVMSetValueName2(LLVMGetParam(fn, (unsigned)n_ptr), "B", 1);
    LLVMSetValueName2(LLVMGetParam(fn, (unsigned)n_ptr + 1), "T", 1);
    for (int i = 0; i < n_extra; i++)
        LLVMSetValueName2(LLVMGetParam(fn, (unsigned)(n_ptr + 2 + i)), xnames[i], strlen(xnames[i]));
    save->saved_block = LLVMGetInsertBlock(c->b);
    save->saved_fn = c->fn;
    save->saved_B = c->B;
    save->saved_T = c->T;
    c->fn = fn;
    c->B = LLVMGetParam(fn, (unsigned)n_ptr);
    c->T = LLVMGetParam(fn, (unsigned)n_ptr + 1);
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    *fty_out = fty;
    return fn;
}

static void kernel_end(cg_ctx *c, cg_kernel_save *save) {
    LLVMBuildRetVoid(c->b);
    c->fn = save->saved_fn;
    c->B = save->saved_B;
    c->T = save->saved_T;
    LLVMPositionBuilderAtEnd(c->b, save->saved_block);
}

/* ---- addresses of values in the entry point being emitted ---- */

/* of(c, s) (numel, rows_of) for the whole batch, also inside a row tile, where c->B is the
 * tile's rows. */
static LLVMValueRef full_batch(cg_ctx *c, LLVMValueRef (*of)(cg_ctx *, snn_shape), snn_shape s) {
    LLVMValueRef B = c->B;
    c->B = c->Bfull ? c->Bfull : c->B;
    LLVMValueRef n = of(c, s);
    c->B = B;
    return n;
}

/* Slot t of a T-slot buffer: the slots are back to back, so all T of them form one
 * [T*rows, ...] array (batched loops use it as such). */
static LLVMValueRef tape_slot(cg_ctx *c, int32_t tape, LLVMValueRef t) {
    const cg_buf *b = &c->plan.bufs[tape];
    if (LLVMIsConstant(t) && LLVMConstIntGetZExtValue(t) == 0) return c->buf_ptr[tape];
    LLVMValueRef n = full_batch(c, numel, b->shape);   /* a slot holds the whole batch */
    return gep_f32(c, c->buf_ptr[tape], mul64(c, t, n, ""), snn_sprintf(c->arena, "%s.t", b->name));
}

/* Inside a row tile (c->row_off set), the address of a [B, ...] array's first row of the tile. */
static LLVMValueRef tile_ptr(cg_ctx *c, LLVMValueRef p, snn_shape s) {
    if (!c->row_off || !p || s.rank < 1 || s.dim[0] != SNN_DIM_B) return p;
    snn_shape row = s;
    row.dim[0] = 1;
    return gep_f32(c, p, mul64(c, c->row_off, numel(c, row), ""), "tile");
}

static LLVMValueRef last_t(cg_ctx *c) { return LLVMBuildSub(c->b, c->T, i64c(c, 1), "T.last"); }

/* The step computed last by function fi's loops, and the one it starts with. */
static LLVMValueRef final_t(cg_ctx *c, int fi) { return fi == CG_FWD ? last_t(c) : i64c(c, 0); }
static LLVMValueRef first_t(cg_ctx *c, int fi) { return fi == CG_FWD ? i64c(c, 0) : last_t(c); }

/* Whether a value lives in its T slots in the code being emitted: crossing values always,
 * taped forward values while training. */
static bool slotted(cg_ctx *c, int fi, const cg_val *cv) {
    return cv->tape >= 0 && (cv->crosses || (fi == CG_FWD && c->taping && cv->taped));
}

static LLVMValueRef param_ptr(cg_ctx *c, LLVMValueRef arr, int32_t i, const char *name) {
    LLVMValueRef idx = i64c(c, i);
    LLVMValueRef p = LLVMBuildGEP2(c->b, c->t_ptr, arr, &idx, 1, "");
    LLVMValueRef v = LLVMBuildLoad2(c->b, c->t_ptr, p, name);
    LLVMSetAlignment(v, 8);
    return v;
}

/* The address where value id of function fi lives, as seen by a reader in region `reader`
 * (the producer itself passes its own region). NULL for CONSTs without memory. */
static LLVMValueRef addr_of(cg_ctx *c, int fi, int32_t id, snn_region reader);
static LLVMValueRef addr_base(cg_ctx *c, int fi, int32_t id, snn_region reader);

/* ---- where states live ----
 * A copied state (plan.c) has one buffer, P0. A rotating state s with next value v keeps no copy:
 *   when v lives in T slots (taped while training, or crossing to a later time loop), v at
 *     step t is slot t, so the state read at step t is P0 (the initial value) at the first
 *     step and the slot of the step before otherwise (t-1 forward, t+1 backward); final: the
 *     slot of the last step computed;
 *   otherwise in turn in two buffers: at loop iteration k (k = t forward, T-1-t backward) the
 *     state is read from P[k & 1] and v written to P[(k+1) & 1]; final: P[T & 1].
 * A time sum of a batched loop (st_sum) is P0 throughout: its T terms are added into it. */

static int32_t next_tape(cg_ctx *c, int fi, int32_t s) {
    const cg_val *nv = &c->plan.val[fi][c->plan.fn[fi]->states[s].next];
    return slotted(c, fi, nv) ? nv->tape : -1;
}

static LLVMValueRef state_p(cg_ctx *c, int fi, int32_t s, int which) {
    return c->buf_ptr[which ? c->plan.state_buf2[fi][s] : c->plan.state_buf[fi][s]];
}

static LLVMValueRef pick(cg_ctx *c, LLVMValueRef k, LLVMValueRef p0, LLVMValueRef p1) {
    LLVMValueRef odd = LLVMBuildTrunc(c->b, k, c->t_i1, "");
    return LLVMBuildSelect(c->b, odd, p1, p0, "");
}

/* The state read at step t when its next value lives in T slots (t may be a run-time value). */
static LLVMValueRef slot_state_at(cg_ctx *c, int fi, int32_t s, LLVMValueRef t) {
    int32_t tape = next_tape(c, fi, s);
    LLVMValueRef first = LLVMBuildICmp(c->b, LLVMIntEQ, t, first_t(c, fi), "");
    LLVMValueRef before = fi == CG_FWD ? LLVMBuildSub(c->b, t, i64c(c, 1), "")
                                       : LLVMBuildAdd(c->b, t, i64c(c, 1), "");
    LLVMValueRef prev = tape_slot(c, tape, before);
    return LLVMBuildSelect(c->b, first, state_p(c, fi, s, 0), prev,
                           snn_sprintf(c->arena, "%s.prev", c->plan.fn[fi]->states[s].name));
}

static bool rotating(cg_ctx *c, int fi, int32_t s) {
    return c->plan.st_rotate[fi][s] && !c->plan.st_sum[fi][s] && !c->plan.st_inplace[fi][s] &&
           c->plan.st_mmacc[fi][s] < 0;
}

/* The value of state s as read in region `reader` (step: the previous value; post: final). */
static LLVMValueRef state_read(cg_ctx *c, int fi, int32_t s, snn_region reader) {
    if (!rotating(c, fi, s) || reader == SNN_REGION_PRE) return state_p(c, fi, s, 0);
    if (next_tape(c, fi, s) >= 0)
        return slot_state_at(c, fi, s, reader == SNN_REGION_STEP ? c->t : final_t(c, fi));
    LLVMValueRef k = reader == SNN_REGION_STEP ? c->iv : last_t(c);
    return pick(c, k, state_p(c, fi, s, 0), state_p(c, fi, s, 1));
}

/* Where the next value of rotating state s goes in this step. */
static LLVMValueRef state_next(cg_ctx *c, int fi, int32_t s) {
    if (!rotating(c, fi, s)) return state_p(c, fi, s, 0);
    int32_t tape = next_tape(c, fi, s);
    if (tape >= 0) return tape_slot(c, tape, c->t);
    LLVMValueRef k1 = LLVMBuildAdd(c->b, c->iv, i64c(c, 1), "");
    return pick(c, k1, state_p(c, fi, s, 0), state_p(c, fi, s, 1));
}

/* The final value of state s (after the loop). */
static LLVMValueRef state_final(cg_ctx *c, int fi, int32_t s) {
    if (!rotating(c, fi, s)) return state_p(c, fi, s, 0);
    int32_t tape = next_tape(c, fi, s);
    if (tape >= 0) return tape_slot(c, tape, final_t(c, fi));
    return pick(c, c->T, state_p(c, fi, s, 0), state_p(c, fi, s, 1));
}

static LLVMValueRef fwd_addr(cg_ctx *c, int32_t fid, snn_region reader) {
    const snn_ir_value *fv = &c->m->forward.values[fid];
    const cg_val *cv = &c->plan.val[CG_FWD][fid];
    if (fv->region != SNN_REGION_STEP) return addr_base(c, CG_FWD, fid, SNN_REGION_POST);
    if (c->plan.rec_val && c->plan.rec_val[fid])   /* recomputed this step (plan_recompute) */
        return c->buf_ptr[c->plan.rec_buf[fid]];
    LLVMValueRef t = reader == SNN_REGION_STEP ? c->t
                   : reader == SNN_REGION_PRE ? last_t(c) : i64c(c, 0);
    if (cv->tape >= 0) return tape_slot(c, cv->tape, t);
    if (fv->op == SNN_OP_STATE && rotating(c, CG_FWD, fv->ival) && next_tape(c, CG_FWD, fv->ival) >= 0)
        return slot_state_at(c, CG_FWD, fv->ival, t);
    return addr_base(c, CG_FWD, fid, SNN_REGION_POST);
}

/* addr_base, at the current row tile's first row for [B, ...] values. */
static LLVMValueRef addr_of(cg_ctx *c, int fi, int32_t id, snn_region reader) {
    return tile_ptr(c, addr_base(c, fi, id, reader), c->plan.fn[fi]->values[id].shape);
}

static LLVMValueRef addr_base(cg_ctx *c, int fi, int32_t id, snn_region reader) {
    const snn_ir_value *v = &c->plan.fn[fi]->values[id];
    const cg_val *cv = &c->plan.val[fi][id];
    switch (v->op) {
    case SNN_OP_CONST:
    case SNN_OP_STEPS: case SNN_OP_STEP: return cv->buf >= 0 ? c->buf_ptr[cv->buf] : NULL;
    case SNN_OP_PARAM: return param_ptr(c, c->params, v->ival, v->name);
    case SNN_OP_INPUT: return c->x;
    case SNN_OP_FWD: return fwd_addr(c, v->ival, reader);
    case SNN_OP_STATE: {
        if (v->region != SNN_REGION_STEP) return state_final(c, fi, v->ival);
        if (c->plan.st_rotate[fi][v->ival]) return state_read(c, fi, v->ival, reader);
        if (slotted(c, fi, cv))
            return tape_slot(c, cv->tape, reader == SNN_REGION_STEP ? c->t : final_t(c, fi));
        if (cv->state_copy) return c->buf_ptr[cv->buf];
        return state_p(c, fi, v->ival, 0);
    }
    default:
        if (cv->grad_of >= 0) return param_ptr(c, c->grads, cv->grad_of, "grad");
        if (cv->next_of >= 0)
            return reader == v->region ? state_next(c, fi, cv->next_of)
                                       : state_final(c, fi, cv->next_of);
        if (slotted(c, fi, cv))
            return tape_slot(c, cv->tape, reader == v->region ? c->t : final_t(c, fi));
        return cv->buf >= 0 ? c->buf_ptr[cv->buf] : NULL;
    }
}

/* In a batched loop, whether value id (an operand) has all T steps, laid out [T, shape...]. */
static bool has_t(cg_ctx *c, int fi, int32_t id) {
    const snn_ir_value *v = &c->plan.fn[fi]->values[id];
    if (v->region != SNN_REGION_STEP) return false;
    if (v->op == SNN_OP_FWD) {
        const snn_ir_value *fv = &c->m->forward.values[v->ival];
        return fv->region == SNN_REGION_STEP && c->plan.val[CG_FWD][v->ival].tape >= 0;
    }
    return snn_op_infos[v->op].cls != SNN_CLASS_LEAF;
}

/* The shape of value id as a batched loop sees it: [T] + shape for values with all steps. */
static snn_shape bshape(cg_ctx *c, int fi, int32_t id, bool batched) {
    snn_shape s = c->plan.fn[fi]->values[id].shape;
    if (!batched || !has_t(c, fi, id)) return s;
    for (int i = s.rank; i > 0; i--) s.dim[i] = s.dim[i - 1];
    s.dim[0] = CG_DIM_T;
    s.rank++;
    return s;
}

/* ---- the fusion group kernel ---- */

/* If member id of group grp is the next value of an in-place state (plan.c) whose step read is
 * operand ext[e] of the group's kernel: e (the value is stored through that same parameter, so
 * no two noalias parameters point at one buffer); else -1. */
static int32_t inplace_ext(cg_ctx *c, const cg_group *grp, const int32_t *ext, int32_t n_ext,
                           int32_t id) {
    const cg_val *cv = c->plan.val[grp->func];
    const snn_ir_func *f = c->plan.fn[grp->func];
    int32_t s = cv[id].next_of;
    if (s < 0 || !c->plan.st_inplace[grp->func][s] || !cv[id].stored) return -1;
    for (int32_t e = 0; e < n_ext; e++)
        if (ext[e] >= 0 && f->values[ext[e]].op == SNN_OP_STATE && f->values[ext[e]].ival == s &&
            f->values[ext[e]].region == SNN_REGION_STEP)
            return e;
    return -1;
}

/* The kernel of group g: its operands from outside (ext) and the members it stores (out)
 * are its pointer parameters. rec: the recompute variant of plan.rec_group (plan.c,
 * plan_recompute), which stores only the recomputed values and the next values of the states
 * it keeps (through the state's parameter, in place). */
/* In the recompute variant: the parameter through which member id, the next value of a state
 * backward keeps a copy of, is stored (the state's read), or -1. */
static int32_t rec_state_ext(cg_ctx *c, const cg_group *grp, const int32_t *ext, int32_t n_ext,
                             int32_t id) {
    const snn_ir_func *f = c->plan.fn[grp->func];
    int32_t s = c->plan.val[grp->func][id].next_of;
    if (s < 0 || c->plan.rec_state_buf[s] < 0) return -1;
    for (int32_t e = 0; e < n_ext; e++)
        if (f->values[ext[e]].op == SNN_OP_STATE && f->values[ext[e]].ival == s &&
            f->values[ext[e]].region == SNN_REGION_STEP)
            return e;
    return -1;
}

/* The index of x in a kernel's operand list ext[0..n), or n if it is not there. */
static int32_t ext_index(const int32_t *ext, int32_t n, int32_t x) {
    int32_t e = 0;
    while (e < n && ext[e] != x) e++;
    return e;
}

/* Element (row, j) of a fused matmul_nn v = A[R, K] x W[K, N] (plan.c, plan_fuse_matmul) in
 * kernel fn, whose operands ext holds, W's rows n floats apart (N, or the padded copy's width,
 * plan.c mm_pad): the sum over k ascending of A[row, k] W[k, j], the first
 * term a multiply and the others fused multiply-adds, as the runtime's kernels sum. A's loads do
 * not depend on j, so LLVM hoists them out of the vectorized loop over the row. */
static LLVMValueRef fused_matmul(cg_ctx *c, LLVMValueRef fn, const snn_ir_func *f,
                                 const int32_t *ext, int32_t n_ext, const snn_ir_value *v,
                                 LLVMValueRef row, LLVMValueRef j, LLVMValueRef n) {
    LLVMValueRef pa = LLVMGetParam(fn, (unsigned)ext_index(ext, n_ext, v->args[0]));
    LLVMValueRef pw = LLVMGetParam(fn, (unsigned)ext_index(ext, n_ext, v->args[1]));
    const int64_t K = f->values[v->args[0]].shape.dim[1];
    LLVMValueRef arow = mul64(c, row, i64c(c, K), "mm.row"), acc = NULL;
    for (int64_t k = 0; k < K; k++) {
        LLVMValueRef x = load_f32(c, gep_f32(c, pa, LLVMBuildNUWAdd(c->b, arow, i64c(c, k), ""), ""),
                                  "mm.a");
        LLVMValueRef wi = LLVMBuildNUWAdd(c->b, mul64(c, i64c(c, k), n, ""), j, "");
        LLVMValueRef w = load_f32(c, gep_f32(c, pw, wi, ""), "mm.w");
        if (!acc) {
            acc = LLVMBuildFMul(c->b, x, w, "mm");
        } else {
            LLVMValueRef fa[3] = {x, w, acc};
            acc = intrinsic(c, "llvm.fma", fa, 3);
        }
    }
    LLVMSetValueName2(acc, v->name, strlen(v->name));
    return acc;
}

/* The step read of the state into which weight gradient m (plan.c, plan_fuse_wgrad) adds its
 * product: the group kernel gets the state's buffer as that value's operand. */
static int32_t wacc_state_read(cg_ctx *c, int fi, int32_t m) {
    const snn_ir_func *f = c->plan.fn[fi];
    const int32_t s = cg_mmacc_state(&c->plan, fi, m);
    for (int32_t i = 0; i < f->n_values; i++)
        if (f->values[i].op == SNN_OP_STATE && f->values[i].ival == s &&
            f->values[i].region == SNN_REGION_STEP)
            return i;
    return -1;
}

/* Element (row, j) of weight gradient v = A[R, K]^T S[R, N] added into its state C [K, N]
 * inside S's loop (plan.c, plan_fuse_wgrad): C[k, j] = fma(A[row, k], S, C[k, j]) for k
 * ascending. A's loads do not depend on j (hoisted out of the vectorized loop); C's K rows
 * are read and written along it. */
static void fused_wgrad(cg_ctx *c, LLVMValueRef fn, int fi, const int32_t *ext, int32_t n_ext,
                        const snn_ir_value *v, int32_t id, LLVMValueRef sval, LLVMValueRef row,
                        LLVMValueRef j) {
    const snn_ir_func *f = c->plan.fn[fi];
    const int32_t r = wacc_state_read(c, fi, id);
    LLVMValueRef pa = LLVMGetParam(fn, (unsigned)ext_index(ext, n_ext, v->args[0]));
    LLVMValueRef pc = LLVMGetParam(fn, (unsigned)ext_index(ext, n_ext, r));
    const int64_t K = f->values[v->args[0]].shape.dim[1], N = v->shape.dim[1];
    LLVMValueRef arow = mul64(c, row, i64c(c, K), "wg.row");
    for (int64_t k = 0; k < K; k++) {
        LLVMValueRef x = load_f32(c, gep_f32(c, pa, LLVMBuildNUWAdd(c->b, arow, i64c(c, k), ""), ""),
                                  "wg.a");
        LLVMValueRef cp = gep_f32(c, pc, LLVMBuildNUWAdd(c->b, i64c(c, k * N), j, ""), "");
        LLVMValueRef fa[3] = {x, sval, load_f32(c, cp, "wg.c")};
        store_f32(c, intrinsic(c, "llvm.fma", fa, 3), cp);
    }
}

/* Appends x to list[0..*n) unless it is there. */
static void push_unique(int32_t *list, int32_t *n, int32_t x) {
    for (int32_t e = 0; e < *n; e++)
        if (list[e] == x) return;
    list[(*n)++] = x;
}

/* The forward group that group g's kernel also runs, as its recomputation, when g is the
 * group it was merged into (plan.c, plan_rec_merge; rec: the recomputation's own kernel), or
 * NULL. */
static const cg_group *merged_rec_group(const cg_ctx *c, int32_t g, bool rec) {
    return !rec && g == c->plan.rec_merge ? &c->plan.groups[c->plan.rec_group] : NULL;
}

/* The operands group g's kernel reads from outside (ext: values of the group's function, or
 * -(id + 1) for forward values a merged recomputation reads) and the members it stores (out). */
static void group_operands(cg_ctx *c, int32_t g, bool rec, int32_t **ext_out, int32_t *n_ext_out,
                           int32_t **out_out, int32_t *n_out_out) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const cg_val *cv = c->plan.val[grp->func];
    /* merged: the forward group's operands and stored values join ext and out as -(id + 1) */
    const cg_group *G = merged_rec_group(c, g, rec);
    const bool merged = G != NULL;
    const snn_ir_func *F = c->plan.fn[CG_FWD];
    const cg_val *Fcv = c->plan.val[CG_FWD];
    const int32_t nG = G ? G->n_members : 0;
    int32_t *ext = snn_alloc(c->arena, sizeof(int32_t) * (size_t)(3 * (grp->n_members + nG) + 1));
    int32_t *out = snn_alloc(c->arena, sizeof(int32_t) * (size_t)(grp->n_members + nG + 1));
    int32_t n_ext = 0, n_out = 0;
    for (int32_t k = 0; k < grp->n_members; k++) {
        const snn_ir_value *v = &f->values[grp->members[k]];
        for (int a = 0; a < v->nargs; a++) {
            int32_t u = v->args[a];
            if (cv[u].group == g || f->values[u].op == SNN_OP_CONST) continue;
            if (merged && f->values[u].op == SNN_OP_FWD && c->plan.rec_val[f->values[u].ival])
                continue;   /* computed here */
            push_unique(ext, &n_ext, u);
        }
        if (cv[grp->members[k]].mm_wacc)   /* its state's buffer, through the state's read */
            push_unique(ext, &n_ext, wacc_state_read(c, grp->func, grp->members[k]));
        if (rec ? c->plan.rec_val[grp->members[k]]
                : cv[grp->members[k]].stored && inplace_ext(c, grp, ext, n_ext, grp->members[k]) < 0)
            out[n_out++] = grp->members[k];
    }
    if (!rec && grp->rowred >= 0) {   /* a linear layer summed in the loop: W, b; its rows */
        const snn_ir_value *L = &f->values[grp->rowred];
        for (int a = 1; a < L->nargs; a++) push_unique(ext, &n_ext, L->args[a]);
        out[n_out++] = grp->rowred;
    }
    for (int32_t k = 0; k < nG; k++) {
        const snn_ir_value *v = &F->values[G->members[k]];
        for (int a = 0; a < v->nargs; a++) {
            int32_t u = v->args[a];
            if (Fcv[u].group == c->plan.rec_group || F->values[u].op == SNN_OP_CONST) continue;
            push_unique(ext, &n_ext, -(u + 1));
        }
        if (c->plan.rec_val[G->members[k]] && c->plan.rec_buf[G->members[k]] >= 0)
            out[n_out++] = -(G->members[k] + 1);
    }
    *ext_out = ext; *n_ext_out = n_ext; *out_out = out; *n_out_out = n_out;
}

static LLVMValueRef rowred_kernel(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                                  const int32_t *out, int32_t n_out, LLVMTypeRef *fty);
static LLVMValueRef rowred_lanes_kernel(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                                        const int32_t *out, int32_t n_out, LLVMTypeRef *fty);

static LLVMValueRef group_kernel(cg_ctx *c, int32_t g, bool rec, LLVMTypeRef *fty,
                                 int32_t **ext_out, int32_t *n_ext_out,
                                 int32_t **out_out, int32_t *n_out_out) {
    group_operands(c, g, rec, ext_out, n_ext_out, out_out, n_out_out);
    const int32_t *ext = *ext_out, *out = *out_out, n_ext = *n_ext_out, n_out = *n_out_out;
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const cg_val *cv = c->plan.val[grp->func];
    const cg_group *G = merged_rec_group(c, g, rec);
    const bool merged = G != NULL;
    const snn_ir_func *F = c->plan.fn[CG_FWD];
    const cg_val *Fcv = c->plan.val[CG_FWD];
    const int32_t nG = G ? G->n_members : 0;
    if (!rec && c->group_fn[g]) { *fty = c->group_fn_ty[g]; return c->group_fn[g]; }
    if (rec && c->rec_fn) { *fty = c->rec_fn_ty; return c->rec_fn; }
    if (!rec && grp->rowred >= 0 && grp->lanes)
        return rowred_lanes_kernel(c, g, ext, n_ext, out, n_out, fty);
    if (!rec && grp->rowred >= 0) return rowred_kernel(c, g, ext, n_ext, out, n_out, fty);

    int n_ptr = n_ext + n_out;
    const char **pnames = snn_alloc(c->arena, sizeof(char *) * (size_t)(n_ptr + 1));
    const char *xnames[3] = {"t", "seed", "row0"};
    for (int32_t e = 0; e < n_ext; e++)
        pnames[e] = ext[e] >= 0 ? f->values[ext[e]].name : F->values[-ext[e] - 1].name;
    for (int32_t o = 0; o < n_out; o++)
        pnames[n_ext + o] = out[o] >= 0 ? snn_sprintf(c->arena, "%s.out", f->values[out[o]].name)
                                        : snn_sprintf(c->arena, "rec.%s.out", F->values[-out[o] - 1].name);
    cg_kernel_save save;
    const char *kname = snn_sprintf(c->arena, "%s.%s",
                                    rec ? "rec" : grp->func == CG_FWD ? "fwd" : "bwd", grp->name);
    LLVMValueRef fn = kernel_begin(c, kname, n_ptr, pnames, grp->uses_rate ? 3 : 0, xnames, fty,
                                   &save);
    if (rec) {
        c->rec_fn = fn;
        c->rec_fn_ty = *fty;
    } else {
        c->group_fn[g] = fn;
        c->group_fn_ty[g] = *fty;
    }

    LLVMValueRef *reg = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)f->n_values);
    LLVMValueRef *regF = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(F->n_values + 1));
    LLVMValueRef *base = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    snn_shape s = grp->shape;
    if (grp->batched) {   /* all T steps at once: [T] + shape */
        for (int i = s.rank; i > 0; i--) s.dim[i] = s.dim[i - 1];
        s.dim[0] = CG_DIM_T;
        s.rank++;
    }
    /* scalar operands: one load before the loops */
    for (int32_t e = 0; e < n_ext; e++) {
        const snn_ir_value *xv = ext[e] >= 0 ? &f->values[ext[e]] : &F->values[-ext[e] - 1];
        if (xv->shape.rank != 0) continue;
        LLVMValueRef x = load_f32(c, LLVMGetParam(fn, (unsigned)e), xv->name);
        if (ext[e] >= 0) reg[ext[e]] = x;
        else regF[-ext[e] - 1] = x;
    }
    LLVMValueRef rows = rows_of(c, s), last = last_of(c, s);
    cg_loop Lr, Lj, Lc;
    /* A fused matmul reads K rows of its weight along the loop (K x 4 KB at 1000 columns).
     * Such a loop runs over column chunks of CG_FUSE_CHUNK, the rows inside, so the weight's
     * chunk stays in L1 for all rows (no RATE draws there: those are per whole row). Measured
     * before the weight's rows were padded (plan.c, mm_pad), whole rows made the loop slower
     * than the sgemm it replaced; with padded rows a C model of the loop showed no difference
     * (docs/codegen.md), and the chunks are kept for wider K. */
    bool chunked = false;
    for (int32_t k = 0; k < grp->n_members && !grp->uses_rate; k++)
        chunked |= cv[grp->members[k]].mm_fused || cv[grp->members[k]].mm_wacc;
    LLVMValueRef j0 = NULL, width = last;
    if (chunked) {
        LLVMValueRef nch = LLVMBuildUDiv(c->b, LLVMBuildNUWAdd(c->b, last, i64c(c, CG_FUSE_CHUNK - 1), ""),
                                         i64c(c, CG_FUSE_CHUNK), "chunks");
        LLVMValueRef ch = loop_begin(c, &Lc, nch, "chunk");
        j0 = mul64(c, ch, i64c(c, CG_FUSE_CHUNK), "chunk.j0");
        LLVMValueRef left = LLVMBuildSub(c->b, last, j0, "");
        width = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntULT, left, i64c(c, CG_FUSE_CHUNK), ""),
                                left, i64c(c, CG_FUSE_CHUNK), "chunk.width");
    }
    /* RATE draws of a constant-width row: a stack buffer, filled once per row */
    int64_t lastc = s.rank > 0 ? s.dim[s.rank - 1] : 1;
    LLVMValueRef rate_buf = NULL;
    if (grp->uses_rate && lastc > 0 && lastc <= CG_RATE_FILL_MAX)
        rate_buf = LLVMBuildArrayAlloca(c->b, c->t_f32, i64c(c, lastc), "rate.u");
    LLVMValueRef row = loop_begin(c, &Lr, rows, "row");
    LLVMValueRef rowbase = mul64(c, row, last, "row.base");
    /* draws are keyed by the row's index in the whole batch (snn_batch.row0) */
    LLVMValueRef draw_row = grp->uses_rate
        ? LLVMBuildNUWAdd(c->b, row, LLVMGetParam(fn, (unsigned)n_ptr + 4), "draw.row") : row;
    if (rate_buf)
        uniform_fill_call(c, LLVMGetParam(fn, (unsigned)n_ptr + 3),
                          LLVMGetParam(fn, (unsigned)n_ptr + 2), draw_row, last, rate_buf);
    for (int32_t e = 0; e < n_ext; e++) {
        snn_shape os = ext[e] >= 0 ? bshape(c, grp->func, ext[e], grp->batched)
                                   : bshape(c, CG_FWD, -ext[e] - 1, false);
        if (os.rank == 0) continue;
        if (os.rank == s.rank) base[e] = rowbase;
        else if (os.rank == 1) base[e] = i64c(c, 0);
        else {   /* a middle-rank operand of a rank-3 result: row modulo its rows */
            LLVMValueRef orows = rows_of(c, os);
            base[e] = mul64(c, LLVMBuildURem(c->b, row, orows, ""), last, "");
        }
    }
    LLVMValueRef j = loop_begin(c, &Lj, width, "i");
    if (chunked) j = LLVMBuildNUWAdd(c->b, j0, j, "col");
    LLVMValueRef idx = LLVMBuildNUWAdd(c->b, rowbase, j, "idx");
    /* element loads of the non-scalar operands, lazily on first use */
    LLVMValueRef *loaded = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)f->n_values);
    cg_elem_pos pos = {0};
    if (grp->uses_rate) {
        pos.t = LLVMGetParam(fn, (unsigned)n_ptr + 2);
        pos.seed = LLVMGetParam(fn, (unsigned)n_ptr + 3);
        pos.row = draw_row;
        pos.col = j;
        pos.buf = rate_buf;
    }
    if (merged) {   /* the recomputation, element by element, before the group's own values */
        LLVMValueRef *loadedF = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(F->n_values + 1));
        for (int32_t k = 0; k < nG; k++) {
            const int32_t id = G->members[k];
            const snn_ir_value *v = &F->values[id];
            LLVMValueRef a[SNN_IR_MAX_ARGS];
            for (int q = 0; q < v->nargs; q++) {
                const int32_t u = v->args[q];
                const snn_ir_value *uv = &F->values[u];
                if (uv->op == SNN_OP_CONST) a[q] = f32c(c, uv->fval);
                else if (Fcv[u].group == c->plan.rec_group || uv->shape.rank == 0) a[q] = regF[u];
                else {
                    if (!loadedF[u]) {
                        const int32_t e = ext_index(ext, n_ext, -(u + 1));
                        LLVMValueRef at = base[e] == rowbase ? idx : LLVMBuildNUWAdd(c->b, base[e], j, "");
                        loadedF[u] = load_f32(c, gep_f32(c, LLVMGetParam(fn, (unsigned)e), at, ""), uv->name);
                    }
                    a[q] = loadedF[u];
                }
            }
            regF[id] = emit_elem(c, v, a, &pos);
            if (!regF[id]) {
                CG_BUG(c, v->loc, "codegen: no elementwise lowering for '%s'", snn_op_infos[v->op].mnemonic);
                regF[id] = f32c(c, 0.0);
            }
        }
        for (int32_t k = 0; k < nG; k++) {   /* backward's copies of the states, in place */
            const int32_t s = Fcv[G->members[k]].next_of;
            if (s < 0 || c->plan.rec_state_buf[s] < 0) continue;
            for (int32_t e = 0; e < n_ext; e++) {
                if (ext[e] >= 0) continue;
                const snn_ir_value *xv = &F->values[-ext[e] - 1];
                if (xv->op == SNN_OP_STATE && xv->ival == s && xv->region == SNN_REGION_STEP)
                    store_f32(c, regF[G->members[k]], gep_f32(c, LLVMGetParam(fn, (unsigned)e), idx, ""));
            }
        }
    }
    for (int32_t k = 0; k < grp->n_members; k++) {
        int32_t id = grp->members[k];
        const snn_ir_value *v = &f->values[id];
        if (cv[id].mm_wacc) {
            fused_wgrad(c, fn, grp->func, ext, n_ext, v, id, reg[v->args[1]], row, j);
            reg[id] = NULL;
            continue;
        }
        if (cv[id].mm_fused) {
            const int32_t pad = cv[id].mm_pad;
            reg[id] = fused_matmul(c, fn, f, ext, n_ext, v, row, j,
                                   pad >= 0 ? i64c(c, c->plan.bufs[pad].shape.dim[1]) : last);
            continue;
        }
        LLVMValueRef a[SNN_IR_MAX_ARGS];
        for (int q = 0; q < v->nargs; q++) {
            int32_t u = v->args[q];
            const snn_ir_value *uv = &f->values[u];
            if (uv->op == SNN_OP_CONST) a[q] = f32c(c, uv->fval);
            else if (merged && uv->op == SNN_OP_FWD && c->plan.rec_val[uv->ival]) a[q] = regF[uv->ival];
            else if (cv[u].group == g || uv->shape.rank == 0) a[q] = reg[u];
            else {
                if (!loaded[u]) {
                    const int32_t e = ext_index(ext, n_ext, u);
                    LLVMValueRef at = base[e] == rowbase ? idx
                                                         : LLVMBuildNUWAdd(c->b, base[e], j, "");
                    LLVMValueRef p = gep_f32(c, LLVMGetParam(fn, (unsigned)e), at, "");
                    loaded[u] = load_f32(c, p, uv->name);
                }
                a[q] = loaded[u];
            }
        }
        reg[id] = emit_elem(c, v, a, &pos);
        if (!reg[id]) {
            CG_BUG(c, v->loc, "codegen: no elementwise lowering for '%s'",
                               snn_op_infos[v->op].mnemonic);
            reg[id] = f32c(c, 0.0);
        }
    }
    for (int32_t o = 0; o < n_out; o++)
        store_f32(c, out[o] >= 0 ? reg[out[o]] : regF[-out[o] - 1],
                  gep_f32(c, LLVMGetParam(fn, (unsigned)(n_ext + o)), idx, ""));
    for (int32_t k = 0; k < grp->n_members; k++) {   /* in-place states: where they were read */
        int32_t e = rec ? rec_state_ext(c, grp, ext, n_ext, grp->members[k])
                        : inplace_ext(c, grp, ext, n_ext, grp->members[k]);
        if (e >= 0) store_f32(c, reg[grp->members[k]], gep_f32(c, LLVMGetParam(fn, (unsigned)e), idx, ""));
    }
    loop_end(c, &Lj);
    loop_end_no_unroll(c, &Lr);
    if (chunked) loop_end_no_unroll(c, &Lc);
    kernel_end(c, &save);
    return fn;
}

/* Where backward's recomputation reads forward value w: its own copy of a state (at the row
 * tile), else as forward has it (pre values). */
static LLVMValueRef rec_operand(cg_ctx *c, int32_t w) {
    const snn_ir_value *u = &c->plan.fn[CG_FWD]->values[w];
    if (u->op == SNN_OP_STATE && u->region == SNN_REGION_STEP && c->plan.rec_state_buf[u->ival] >= 0)
        return tile_ptr(c, c->buf_ptr[c->plan.rec_state_buf[u->ival]], u->shape);
    return addr_of(c, CG_FWD, w, SNN_REGION_STEP);
}

/* The addresses of group g's operands ext and stored members out at the current step and row
 * tile, into args; returns how many. */
static int group_args(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext, const int32_t *out,
                      int32_t n_out, LLVMValueRef *args) {
    const cg_group *grp = &c->plan.groups[g];
    int n = 0;
    for (int32_t e = 0; e < n_ext; e++) {
        LLVMValueRef p = NULL;   /* a fused matmul's weight read from its padded copy */
        for (int32_t k = 0; k <= grp->n_members && !p; k++) {   /* members, then the rowred */
            const int32_t id = k < grp->n_members ? grp->members[k] : grp->rowred;
            if (id < 0) break;
            const cg_val *mv = &c->plan.val[grp->func][id];
            if (mv->mm_pad >= 0 && c->plan.fn[grp->func]->values[id].args[1] == ext[e])
                p = c->buf_ptr[mv->mm_pad];
        }
        for (int32_t k = 0; k < grp->n_members && !p; k++) {
            const int32_t id = grp->members[k];
            if (c->plan.val[grp->func][id].mm_wacc && wacc_state_read(c, grp->func, id) == ext[e]) {
                const int32_t s = cg_mmacc_state(&c->plan, grp->func, id);
                p = tile_ptr(c, state_p(c, grp->func, s, 0), c->plan.fn[grp->func]->states[s].shape);
            }
        }
        args[n++] = p ? p : ext[e] >= 0 ? addr_of(c, grp->func, ext[e], grp->region)
                                        : rec_operand(c, -ext[e] - 1);
    }
    for (int32_t o = 0; o < n_out; o++)
        args[n++] = out[o] >= 0 ? addr_of(c, grp->func, out[o], grp->region)
                                : tile_ptr(c, c->buf_ptr[c->plan.rec_buf[-out[o] - 1]],
                                           c->plan.fn[CG_FWD]->values[-out[o] - 1].shape);
    return n;
}

static void emit_group_call(cg_ctx *c, int32_t g) {
    const cg_group *grp = &c->plan.groups[g];
    LLVMTypeRef fty;
    int32_t *ext, n_ext, *out, n_out;
    LLVMValueRef fn = group_kernel(c, g, false, &fty, &ext, &n_ext, &out, &n_out);
    LLVMValueRef *args = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + n_out + 6));
    int n = group_args(c, g, ext, n_ext, out, n_out, args);
    if (grp->lanes) {   /* [N, B] operands at the tile's first row (column): plan_rows_in_lanes */
        const snn_ir_func *f = c->plan.fn[grp->func];
        const cg_val *cv = c->plan.val[grp->func];
        for (int32_t e = 0; e < n_ext; e++) {
            const snn_ir_value *u = &f->values[ext[e]];
            if (!snn_shape_eq(u->shape, grp->shape)) continue;
            LLVMValueRef base = u->op == SNN_OP_STATE ? addr_base(c, grp->func, ext[e], grp->region)
                                                      : c->buf_ptr[cv[ext[e]].tr_buf];
            args[e] = c->row_off ? gep_f32(c, base, c->row_off, "lanes.tile") : base;
        }
    }
    args[n++] = c->B;
    args[n++] = c->T;
    if (grp->lanes) args[n++] = c->Bfull;
    if (grp->uses_rate) {
        args[n++] = c->t ? c->t : i64c(c, 0);
        args[n++] = c->seed;
        args[n++] = c->row_off ? LLVMBuildAdd(c->b, c->row0, c->row_off, "row0.tile") : c->row0;
    }
    if (c->group_fn_first[g] && c->t) {   /* step 0 from the state's initial value */
        LLVMBasicBlockRef b0 = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "lanes.step0"),
                          b1 = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "lanes.step"),
                          bj = LLVMAppendBasicBlockInContext(c->ctx, c->fn, "lanes.done");
        LLVMBuildCondBr(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, c->t, i64c(c, 0), "is.step0"), b0, b1);
        LLVMPositionBuilderAtEnd(c->b, b0);
        LLVMBuildCall2(c->b, fty, c->group_fn_first[g], args, (unsigned)n, "");
        LLVMBuildBr(c->b, bj);
        LLVMPositionBuilderAtEnd(c->b, b1);
        LLVMBuildCall2(c->b, fty, fn, args, (unsigned)n, "");
        LLVMBuildBr(c->b, bj);
        LLVMPositionBuilderAtEnd(c->b, bj);
        return;
    }
    LLVMBuildCall2(c->b, fty, fn, args, (unsigned)n, "");
}

/* Backward's call of the recompute variant of plan.rec_group: the states' copies and the
 * recomputed values' buffers in backward, at the current row tile; the rest as forward has them
 * (pre values, constants). */
static void emit_rec_call(cg_ctx *c) {
    const cg_plan *p = &c->plan;
    const snn_ir_func *F = p->fn[CG_FWD];
    LLVMTypeRef fty;
    int32_t *ext, n_ext, *out, n_out;
    LLVMValueRef fn = group_kernel(c, p->rec_group, true, &fty, &ext, &n_ext, &out, &n_out);
    LLVMValueRef *args = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + n_out + 2));
    int n = 0;
    for (int32_t e = 0; e < n_ext; e++) args[n++] = rec_operand(c, ext[e]);
    for (int32_t o = 0; o < n_out; o++)
        args[n++] = tile_ptr(c, c->buf_ptr[p->rec_buf[out[o]]], F->values[out[o]].shape);
    args[n++] = c->B;
    args[n++] = c->T;
    LLVMBuildCall2(c->b, fty, fn, args, (unsigned)n, "");
}

/* ---- linear algebra through snnrt_sgemm ---- */

/* A call of snnrt_sgemm (bias NULL: C = op(A) op(B) + beta C) or of snnrt_sgemm_bias (C = A B^T
 * + bias on every row, C not read first); the two take the same arguments but the 11th, beta
 * or the bias. */
static void sgemm(cg_ctx *c, int ta, int tb, LLVMValueRef m, LLVMValueRef n, LLVMValueRef k,
                  LLVMValueRef a, LLVMValueRef lda, LLVMValueRef bm, LLVMValueRef ldb,
                  double beta, LLVMValueRef bias, LLVMValueRef cm, LLVMValueRef ldc) {
    LLVMValueRef *fn = bias ? &c->sgemm_bias_fn : &c->sgemm_fn;
    LLVMTypeRef *ty = bias ? &c->sgemm_bias_ty : &c->sgemm_ty;
    if (!*fn) {
        LLVMTypeRef ps[13] = {c->t_i32, c->t_i32, c->t_i64, c->t_i64, c->t_i64, c->t_f32,
                              c->t_ptr, c->t_i64, c->t_ptr, c->t_i64,
                              bias ? c->t_ptr : c->t_f32, c->t_ptr, c->t_i64};
        *ty = LLVMFunctionType(c->t_void, ps, 13, 0);
        *fn = LLVMAddFunction(c->mod, bias ? "snnrt_sgemm_bias" : "snnrt_sgemm", *ty);
    }
    LLVMValueRef args[13] = {i32c(c, ta), i32c(c, tb), m, n, k, f32c(c, 1.0), a, lda, bm, ldb,
                             bias ? bias : f32c(c, beta), cm, ldc};
    LLVMBuildCall2(c->b, *ty, *fn, args, 13, "");
}

/* A kernel for one non-elementwise value, cached per (function, value): forward is emitted
 * twice (training and evaluation) and calls the same kernels. */

static bool suffix_of(snn_shape small, snn_shape big) {
    if (small.rank > big.rank) return false;
    for (int i = 0; i < small.rank; i++)
        if (small.dim[small.rank - 1 - i] != big.dim[big.rank - 1 - i]) return false;
    return true;
}

/* out[j] = sum_p in[p * n_out + j]  (accumulate: out[j] += ..., for time sums) */
static void build_sum_to(cg_ctx *c, const snn_ir_value *v, snn_shape out_shape, snn_shape in_shape,
                         bool accumulate, cg_kfn *k) {
    const char *pn[2] = {snn_sprintf(c->arena, "%s.out", v->name), "in"};
    cg_kernel_save save;
    k->fn = kernel_begin(c, snn_sprintf(c->arena, "%s.%s", accumulate ? "time_sum" : "sum_to",
                                        v->name),
                         2, pn, 0, NULL, &k->ty, &save);
    LLVMValueRef out = LLVMGetParam(k->fn, 0), src = LLVMGetParam(k->fn, 1);
    LLVMValueRef n_out = numel(c, out_shape);
    LLVMValueRef n_in = numel(c, in_shape);
    LLVMValueRef P = LLVMBuildUDiv(c->b, n_in, n_out, "P");
    cg_loop L0, Lp, Lj;
    if (!accumulate) {
        LLVMValueRef j0 = loop_begin(c, &L0, n_out, "z");
        store_f32(c, f32c(c, 0.0), gep_f32(c, out, j0, ""));
        loop_end(c, &L0);
    }
    LLVMValueRef p = loop_begin(c, &Lp, P, "p");
    LLVMValueRef pb = mul64(c, p, n_out, "");
    LLVMValueRef j = loop_begin(c, &Lj, n_out, "i");
    LLVMValueRef op = gep_f32(c, out, j, "");
    LLVMValueRef s = LLVMBuildFAdd(c->b, load_f32(c, op, ""),
                                   load_f32(c, gep_f32(c, src, LLVMBuildNUWAdd(c->b, pb, j, ""), ""), ""),
                                   v->name);
    store_f32(c, s, op);
    loop_end(c, &Lj);
    loop_end_no_unroll(c, &Lp);
    kernel_end(c, &save);
}

/* grad[i] += v[i] */
static void build_grad_acc(cg_ctx *c, const snn_ir_value *v, cg_kfn *k) {
    const char *pn[2] = {"grad", v->name};
    cg_kernel_save save;
    const snn_ir_param *prm = &c->m->params[v->ival];
    k->fn = kernel_begin(c, snn_sprintf(c->arena, "grad_acc.%s", prm->name), 2, pn, 0, NULL,
                         &k->ty, &save);
    LLVMValueRef g = LLVMGetParam(k->fn, 0), src = LLVMGetParam(k->fn, 1);
    cg_loop L;
    LLVMValueRef i = loop_begin(c, &L, numel(c, prm->shape), "i");
    LLVMValueRef gp = gep_f32(c, g, i, "");
    store_f32(c, LLVMBuildFAdd(c->b, load_f32(c, gp, ""), load_f32(c, gep_f32(c, src, i, ""), ""),
                               ""), gp);
    loop_end(c, &L);
    kernel_end(c, &save);
}

/* The target of a one-hot loss for class j of a row whose label is lab. */
/* attr[2] != 0: spike-count targets floor(T * rate + 1e-3) for T steps (ops.def). */
static LLVMValueRef onehot_target(cg_ctx *c, const snn_ir_value *v, LLVMValueRef j,
                                  LLVMValueRef lab, LLVMValueRef T) {
    LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, j, lab, "");
    LLVMValueRef on = f32c(c, v->attr[0]), off = f32c(c, v->attr[1]);
    if (v->attr[2] != 0) {
        LLVMValueRef Tf = LLVMBuildSIToFP(c->b, T, c->t_f32, "Tf");
        LLVMValueRef a = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, Tf, on, ""), f32c(c, 1e-3), "");
        LLVMValueRef b = LLVMBuildFAdd(c->b, LLVMBuildFMul(c->b, Tf, off, ""), f32c(c, 1e-3), "");
        on = intrinsic(c, "llvm.floor", &a, 1);
        off = intrinsic(c, "llvm.floor", &b, 1);
    }
    return LLVMBuildSelect(c->b, hit, on, off, "target");
}

/* Losses over logits x[rows, C] with the batch's labels:
 *   cross_entropy  out[0] = mean_r (logsumexp(x[r]) - x[r, label])
 *   ce_grad        out[r, j] = dl * (softmax(x[r])_j - [j == label]) / rows
 *   mse_onehot     out[0] = mean_rj (x - target)^2
 *   mse_onehot_grad out[r, j] = dl * 2 (x - target) / (rows C) */
/* Cross-entropy and its gradient, vectorized across rows: the rows go in blocks of CE_ROWS,
 * and for each class j one loop over the block's rows (LLVM vectorizes it, rows in the lanes)
 * updates per-row running values (max, sum of exp) kept in small stack arrays. A class loop
 * inside a row loop, the obvious order, leaves LLVM nothing to vectorize but a 10-wide row
 * (Tutorial 5's cross_entropy ran scalar, 3 % of an iteration). Per row, every value is computed
 * by the same operations in the same order as a row at a time: the max and the sum of exps
 * over j ascending, then lse = max + log(sum), the loss summed over rows in row order (log is
 * libm's logf, one call per row, outside the vectorized loops). */
enum { CE_ROWS = 64 };

/* The kernel of loss value v: parameters (out, x, labels[, dl]), then B and T, then the rows the
 * mean is over (the whole batch's, also when the kernel sees one row tile: lower.c's tiles).
 * Returns that last parameter as a float. */
static LLVMValueRef loss_kernel_begin(cg_ctx *c, const snn_ir_value *v, bool has_dl, cg_kfn *k,
                                      cg_kernel_save *save) {
    const char *pn[4] = {snn_sprintf(c->arena, "%s.out", v->name), "x", "labels", "dl"};
    const char *xn[1] = {"rows.mean"};
    k->fn = kernel_begin(c, snn_sprintf(c->arena, "%s.%s", snn_op_infos[v->op].mnemonic, v->name),
                         has_dl ? 4 : 3, pn, 1, xn, &k->ty, save);
    return LLVMBuildUIToFP(c->b, LLVMGetParam(k->fn, (unsigned)(has_dl ? 4 : 3) + 2), c->t_f32,
                           "rows");
}

static void build_ce_blocked(cg_ctx *c, const snn_ir_value *v, snn_shape xs, cg_kfn *k) {
    const bool grad = v->op == SNN_OP_CE_GRAD;
    cg_kernel_save save;
    LLVMValueRef rowsf = loss_kernel_begin(c, v, grad, k, &save);
    LLVMValueRef out = LLVMGetParam(k->fn, 0), x = LLVMGetParam(k->fn, 1);
    LLVMValueRef labels = LLVMGetParam(k->fn, 2);
    LLVMTypeRef blk = LLVMArrayType(c->t_f32, CE_ROWS);
    LLVMValueRef mx = LLVMBuildAlloca(c->b, blk, "max"), sum = LLVMBuildAlloca(c->b, blk, "sum");
    LLVMValueRef acc = LLVMBuildAlloca(c->b, c->t_f32, "acc");
    store_f32(c, f32c(c, 0.0), acc);
    LLVMValueRef dl = grad ? load_f32(c, LLVMGetParam(k->fn, 3), "dl") : NULL;
    LLVMValueRef rows = rows_of(c, xs), C = last_of(c, xs);
    LLVMValueRef dlr = grad ? LLVMBuildFDiv(c->b, dl, rowsf, "dl.rows") : NULL;
    LLVMValueRef nblk = LLVMBuildUDiv(c->b, LLVMBuildNUWAdd(c->b, rows, i64c(c, CE_ROWS - 1), ""),
                                      i64c(c, CE_ROWS), "blocks");
    cg_loop Lb, Lj, Lr;
    LLVMValueRef bi = loop_begin(c, &Lb, nblk, "blk");
    LLVMValueRef r0 = mul64(c, bi, i64c(c, CE_ROWS), "r0");
    LLVMValueRef left = LLVMBuildSub(c->b, rows, r0, "");
    LLVMValueRef nb = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntULT, left, i64c(c, CE_ROWS), ""),
                                      left, i64c(c, CE_ROWS), "nb");
#define AT(arr, r) gep_f32(c, (arr), (r), "")
#define XAT(r, j) gep_f32(c, x, LLVMBuildNUWAdd(c->b, mul64(c, LLVMBuildNUWAdd(c->b, r0, (r), ""), C, ""), (j), ""), "")
#define LABEL(r) LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->t_i32, LLVMBuildGEP2(c->b, c->t_i32, labels, \
                     (LLVMValueRef[]){LLVMBuildNUWAdd(c->b, r0, (r), "")}, 1, ""), "label"), c->t_i64, "")
    LLVMValueRef r = loop_begin(c, &Lr, nb, "r");
    store_f32(c, f32c(c, -INFINITY), AT(mx, r));
    store_f32(c, f32c(c, 0.0), AT(sum, r));
    loop_end(c, &Lr);
    LLVMValueRef j = loop_begin(c, &Lj, C, "j");   /* the max of each row */
    r = loop_begin(c, &Lr, nb, "r");
    store_f32(c, flt_max(c, load_f32(c, AT(mx, r), ""), load_f32(c, XAT(r, j), "x")), AT(mx, r));
    loop_end(c, &Lr);
    loop_end_no_unroll(c, &Lj);
    j = loop_begin(c, &Lj, C, "j");                  /* the sum of exp(x - max) of each row */
    r = loop_begin(c, &Lr, nb, "r");
    LLVMValueRef e = emit_exp(c, LLVMBuildFSub(c->b, load_f32(c, XAT(r, j), "x"),
                                               load_f32(c, AT(mx, r), "m"), ""));
    store_f32(c, LLVMBuildFAdd(c->b, load_f32(c, AT(sum, r), ""), e, ""), AT(sum, r));
    loop_end(c, &Lr);
    loop_end_no_unroll(c, &Lj);
    if (!grad) {   /* loss: the rows in order */
        r = loop_begin(c, &Lr, nb, "r");
        LLVMValueRef s = load_f32(c, AT(sum, r), "s");
        LLVMValueRef lse = LLVMBuildFAdd(c->b, load_f32(c, AT(mx, r), ""),
                                         intrinsic(c, "llvm.log", &s, 1), "lse");
        LLVMValueRef xl = load_f32(c, XAT(r, LABEL(r)), "x.label");
        store_f32(c, LLVMBuildFAdd(c->b, load_f32(c, acc, ""), LLVMBuildFSub(c->b, lse, xl, ""), ""),
                  acc);
        loop_end_no_unroll(c, &Lr);
    } else {       /* softmax - onehot, scaled; sum[] becomes each row's scale */
        r = loop_begin(c, &Lr, nb, "r");
        store_f32(c, LLVMBuildFDiv(c->b, dl, LLVMBuildFMul(c->b, load_f32(c, AT(sum, r), "s"), rowsf, ""),
                                   "scale"), AT(sum, r));
        loop_end(c, &Lr);
        j = loop_begin(c, &Lj, C, "j");
        r = loop_begin(c, &Lr, nb, "r");
        LLVMValueRef xp = XAT(r, j);
        LLVMValueRef d = LLVMBuildFSub(c->b, load_f32(c, xp, "x"), load_f32(c, AT(mx, r), "m"), "");
        LLVMValueRef p = LLVMBuildFMul(c->b, emit_exp(c, d), load_f32(c, AT(sum, r), "scale"), "");
        LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, j, LABEL(r), "");
        LLVMValueRef g = LLVMBuildSelect(c->b, hit, LLVMBuildFSub(c->b, p, dlr, ""), p, v->name);
        store_f32(c, g, gep_f32(c, out, LLVMBuildNUWAdd(c->b, mul64(c, LLVMBuildNUWAdd(c->b, r0, r, ""), C, ""), j, ""), ""));
        loop_end(c, &Lr);
        loop_end_no_unroll(c, &Lj);
    }
#undef AT
#undef XAT
#undef LABEL
    loop_end_no_unroll(c, &Lb);
    if (!grad) store_f32(c, LLVMBuildFDiv(c->b, load_f32(c, acc, ""), rowsf, v->name), out);
    kernel_end(c, &save);
}

/* r[0..16) := its transpose (r[i] lane l = old r[l] lane i): for each bit of the lane index, the
 * vector pairs whose numbers differ in that bit swap the half-blocks of lanes that differ in
 * it; each new vector is one two-input shuffle with a constant mask. */
static void transpose16_vecs(cg_ctx *c, LLVMValueRef *r) {
    for (int bit = 1; bit < 16; bit <<= 1)
        for (int i = 0; i < 16; i++) {
            if (i & bit) continue;
            const int q = i | bit;
            LLVMValueRef mi[16], mq[16];
            for (int l = 0; l < 16; l++) {
                mi[l] = i32c(c, (l & bit) ? 16 + (l ^ bit) : l);
                mq[l] = i32c(c, (l & bit) ? 16 + l : (l ^ bit));
            }
            LLVMValueRef ni = LLVMBuildShuffleVector(c->b, r[i], r[q], LLVMConstVector(mi, 16), "");
            LLVMValueRef nq = LLVMBuildShuffleVector(c->b, r[i], r[q], LLVMConstVector(mq, 16), "");
            r[i] = ni;
            r[q] = nq;
        }
}

/* Cross-entropy and its gradient for up to 16 classes, 16 rows at a time: the rows' logits are
 * loaded as 16 row vectors (contiguous, the last lanes masked) and transposed in registers, so
 * that each class is a vector with the rows in its lanes, and the gradient goes back the same
 * way. The blocked form above reads a class of its rows with strided loads (gathers on x86)
 * and writes it with strided stores, in a dozen short loops per call; Tutorial 5 calls these
 * kernels 75 times per row block and iteration (per tile and step in forward, per step in
 * backward). perf, 400 iterations at 2 threads: the two kernels went from about 0.21 to 0.08 ms
 * of thread time per iteration (the entry point's samples, 1850 -> 1591-1596; with the kernels
 * emptied out, 1424). A row at a time with the classes in the lanes (an ordered lane sum,
 * logf per row) was slower than the blocked form. Every value is computed by the blocked
 * form's operations in its order (the max and the sum of exps over the classes ascending,
 * lse = max + log(sum) and the loss summed over the rows in order), so the bits are the same;
 * the gradient reuses the exps of the sum, the very values the blocked form computes again. */
static void build_ce_t16(cg_ctx *c, const snn_ir_value *v, snn_shape xs, int64_t C, cg_kfn *k) {
    const bool grad = v->op == SNN_OP_CE_GRAD;
    cg_kernel_save save;
    LLVMValueRef rowsf = loss_kernel_begin(c, v, grad, k, &save);
    LLVMValueRef out = LLVMGetParam(k->fn, 0), x = LLVMGetParam(k->fn, 1);
    LLVMValueRef labels = LLVMGetParam(k->fn, 2);
    LLVMValueRef dl = grad ? load_f32(c, LLVMGetParam(k->fn, 3), "dl") : NULL;
    LLVMValueRef dlr = grad ? LLVMBuildFDiv(c->b, dl, rowsf, "dl.rows") : NULL;
    LLVMValueRef rows = rows_of(c, xs);
    LLVMValueRef acc = LLVMBuildAlloca(c->b, c->t_f32, "acc");
    LLVMValueRef lse_a = grad ? NULL : LLVMBuildAlloca(c->b, LLVMArrayType(c->t_f32, 16), "lse");
    store_f32(c, f32c(c, 0.0), acc);
    LLVMValueRef cmask = col_mask(c, i64c(c, 0), C);
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    LLVMValueRef nblk = LLVMBuildUDiv(c->b, LLVMBuildNUWAdd(c->b, rows, i64c(c, 15), ""), i64c(c, 16),
                                      "blocks");
    cg_loop Lb;
    LLVMValueRef bi = loop_begin(c, &Lb, nblk, "blk16");
    LLVMValueRef r0 = mul64(c, bi, i64c(c, 16), "r0");
    LLVMValueRef left = LLVMBuildSub(c->b, rows, r0, "left");
    LLVMValueRef rmask = lanes_below(c, left, "rows.in");   /* lane i: row r0 + i < rows */
    /* row i's lanes: the C classes if the row exists */
    LLVMValueRef rowm[16];
    for (int i = 0; i < 16; i++)
        rowm[i] = LLVMBuildAnd(c->b, cmask,
                               splat16(c, LLVMBuildICmp(c->b, LLVMIntULT, i64c(c, i), left, "")), "");
    LLVMValueRef xb = gep_f32(c, x, mul64(c, r0, i64c(c, C), ""), "x.blk");
    LLVMValueRef R[16];
    for (int i = 0; i < 16; i++)
        R[i] = vec_masked(c, false, gep_f32(c, xb, i64c(c, i * C), ""), rowm[i], NULL);
    transpose16_vecs(c, R);   /* R[j]: class j of the 16 rows */
    LLVMValueRef labv = vec_masked_ty(c, LLVMVectorType(c->t_i32, 16), false,
                                      LLVMBuildGEP2(c->b, c->t_i32, labels, &r0, 1, ""), rmask, NULL);
    c->vec = true;
    LLVMValueRef mx = elc(c, -INFINITY);
    for (int64_t j = 0; j < C; j++) mx = flt_max(c, mx, R[j]);
    LLVMValueRef sum = elc(c, 0.0), E[16];
    for (int64_t j = 0; j < C; j++) {
        E[j] = emit_exp(c, LLVMBuildFSub(c->b, R[j], mx, ""));
        sum = LLVMBuildFAdd(c->b, sum, E[j], "");
    }
    if (!grad) {
        /* each row's loss term, then the terms in row order (the blocked form's order) */
        c->vec = false;
        for (int i = 0; i < 16; i++) {
            LLVMValueRef s = LLVMBuildExtractElement(c->b, sum, i32c(c, i), "s");
            LLVMValueRef lse = LLVMBuildFAdd(c->b, LLVMBuildExtractElement(c->b, mx, i32c(c, i), ""),
                                             intrinsic(c, "llvm.log", &s, 1), "lse");
            LLVMValueRef lab = LLVMBuildSExt(c->b, LLVMBuildExtractElement(c->b, labv, i32c(c, i), ""),
                                             c->t_i64, "label");
            LLVMValueRef xl = LLVMBuildExtractElement(c->b, R[0], i32c(c, i), "");
            /* x[row, label]: the label's class vector, lane i */
            for (int64_t j = 1; j < C; j++)
                xl = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntEQ, lab, i64c(c, j), ""),
                                     LLVMBuildExtractElement(c->b, R[j], i32c(c, i), ""), xl, "");
            store_f32(c, LLVMBuildFSub(c->b, lse, xl, ""), gep_f32(c, lse_a, i64c(c, i), ""));
        }
        LLVMValueRef n = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntULT, left, i64c(c, 16), ""),
                                         left, i64c(c, 16), "n");
        cg_loop Lr;
        LLVMValueRef r = loop_begin(c, &Lr, n, "r");
        LLVMValueRef term = load_f32(c, gep_f32(c, lse_a, r, ""), "term");
        store_f32(c, LLVMBuildFAdd(c->b, load_f32(c, acc, ""), term, ""), acc);
        loop_end(c, &Lr);
    } else {   /* softmax - onehot, scaled, transposed back to rows */
        LLVMValueRef scale = LLVMBuildFDiv(c->b, splat16(c, dl), LLVMBuildFMul(c->b, sum, splat16(c, rowsf), ""),
                                           "scale");
        LLVMValueRef G[16];
        for (int64_t j = 0; j < 16; j++) {
            if (j >= C) { G[j] = LLVMConstNull(V); continue; }
            LLVMValueRef p = LLVMBuildFMul(c->b, E[j], scale, "");
            LLVMValueRef hit = LLVMBuildICmp(c->b, LLVMIntEQ, labv, splat16(c, i32c(c, (int32_t)j)), "hit");
            G[j] = LLVMBuildSelect(c->b, hit, LLVMBuildFSub(c->b, p, splat16(c, dlr), ""), p, v->name);
        }
        transpose16_vecs(c, G);   /* G[i]: row i's classes */
        LLVMValueRef ob = gep_f32(c, out, mul64(c, r0, i64c(c, C), ""), "out.blk");
        for (int i = 0; i < 16; i++) vec_masked(c, true, gep_f32(c, ob, i64c(c, i * C), ""), rowm[i], G[i]);
    }
    c->vec = false;
    loop_end_no_unroll(c, &Lb);
    if (!grad) store_f32(c, LLVMBuildFDiv(c->b, load_f32(c, acc, ""), rowsf, v->name), out);
    kernel_end(c, &save);
}

static void build_loss(cg_ctx *c, const snn_ir_value *v, snn_shape xs, cg_kfn *k) {
    if (v->op == SNN_OP_CROSS_ENTROPY || v->op == SNN_OP_CE_GRAD) {
        const int64_t C = xs.rank > 0 ? xs.dim[xs.rank - 1] : 0;
        if (C >= 1 && C <= 16) build_ce_t16(c, v, xs, C, k);
        else build_ce_blocked(c, v, xs, k);
        return;
    }
    /* MSE one-hot and its gradient: a row at a time */
    bool has_dl = v->op == SNN_OP_MSE_ONEHOT_GRAD;
    cg_kernel_save save;
    LLVMValueRef rowsf = loss_kernel_begin(c, v, has_dl, k, &save);
    LLVMValueRef out = LLVMGetParam(k->fn, 0), x = LLVMGetParam(k->fn, 1);
    LLVMValueRef labels = LLVMGetParam(k->fn, 2);
    LLVMValueRef dl = has_dl ? load_f32(c, LLVMGetParam(k->fn, 3), "dl") : NULL;
    LLVMValueRef rows = rows_of(c, xs), C = last_of(c, xs);
    LLVMValueRef Cf = LLVMBuildUIToFP(c->b, C, c->t_f32, "C");
    LLVMValueRef acc = LLVMBuildAlloca(c->b, c->t_f32, "acc");
    store_f32(c, f32c(c, 0.0), acc);
    cg_loop Lr, Lj;
    LLVMValueRef r = loop_begin(c, &Lr, rows, "row");
    LLVMValueRef rb = mul64(c, r, C, "");
    LLVMValueRef lp = LLVMBuildGEP2(c->b, c->t_i32, labels, &r, 1, "");
    LLVMValueRef lab = LLVMBuildSExt(c->b, LLVMBuildLoad2(c->b, c->t_i32, lp, "label"), c->t_i64, "");
    LLVMValueRef j = loop_begin(c, &Lj, C, "i");
    LLVMValueRef ix = LLVMBuildNUWAdd(c->b, rb, j, "");
    LLVMValueRef xv = load_f32(c, gep_f32(c, x, ix, ""), "x");
    LLVMValueRef T = LLVMGetParam(k->fn, (unsigned)(has_dl ? 4 : 3) + 1);
    LLVMValueRef d = LLVMBuildFSub(c->b, xv, onehot_target(c, v, j, lab, T), "diff");
    if (v->op == SNN_OP_MSE_ONEHOT) {
        store_f32(c, LLVMBuildFAdd(c->b, load_f32(c, acc, ""), LLVMBuildFMul(c->b, d, d, ""), ""),
                  acc);
    } else {
        LLVMValueRef sc = LLVMBuildFDiv(c->b, LLVMBuildFMul(c->b, dl, f32c(c, 2.0), ""),
                                        LLVMBuildFMul(c->b, rowsf, Cf, ""), "");
        store_f32(c, LLVMBuildFMul(c->b, d, sc, v->name), gep_f32(c, out, ix, ""));
    }
    loop_end(c, &Lj);
    loop_end_no_unroll(c, &Lr);
    if (v->op == SNN_OP_MSE_ONEHOT)
        store_f32(c, LLVMBuildFDiv(c->b, load_f32(c, acc, ""), LLVMBuildFMul(c->b, rowsf, Cf, ""),
                                   v->name), out);
    kernel_end(c, &save);
}

/* Calls kernel k with pointer arguments ptrs[0..n) (B and T are appended). */
static void call_kernel(cg_ctx *c, cg_kfn *k, LLVMValueRef *ptrs, int n) {
    LLVMValueRef args[8];
    for (int i = 0; i < n; i++) args[i] = ptrs[i];
    args[n] = c->B;
    args[n + 1] = c->T;
    LLVMBuildCall2(c->b, k->ty, k->fn, args, (unsigned)n + 2, "");
}

/* The time sum (batched loop) that value id of function fi is the T-step term of, or -1. */
static int32_t sum_state_of_term(cg_ctx *c, int fi, int32_t id) {
    const snn_ir_func *f = c->plan.fn[fi];
    for (int32_t s = 0; s < f->n_states; s++) {
        if (!c->plan.st_sum[fi][s]) continue;
        const snn_ir_value *add = &f->values[f->states[s].next];
        if (add->args[0] == id || add->args[1] == id) return s;
    }
    return -1;
}

/* Emits one non-elementwise, non-leaf value of function fi (batched: once for all T steps, in
 * a batched time loop; its step operands then have all T steps, [T, shape]). */
static void emit_op(cg_ctx *c, int fi, int32_t id, bool batched) {
    const snn_ir_func *f = c->plan.fn[fi];
    const snn_ir_value *v = &f->values[id];
    cg_kfn *k = &c->op_kernels[fi][id];
    LLVMValueRef A[3] = {NULL, NULL, NULL};
    for (int q = 0; q < v->nargs; q++) {
        A[q] = addr_of(c, fi, v->args[q], v->region);
        if (!A[q]) {
            CG_BUG(c, v->loc, "codegen: operand %d of %%%s has no memory", q,
                               v->name);
            return;
        }
    }
    int32_t sum_s = batched && v->op == SNN_OP_MATMUL_TN ? sum_state_of_term(c, fi, id) : -1;
    int32_t acc_s = batched ? -1 : cg_mmacc_state(&c->plan, fi, id);   /* state += product */
    if (acc_s >= 0) sum_s = acc_s;
    LLVMValueRef out = snn_op_infos[v->op].cls == SNN_CLASS_SINK ? NULL
                     : sum_s >= 0 ? tile_ptr(c, state_p(c, fi, sum_s, 0), f->states[sum_s].shape)
                                  : addr_of(c, fi, id, v->region);
    snn_shape S0 = v->nargs > 0 ? bshape(c, fi, v->args[0], batched) : snn_shape_scalar();
    snn_shape S1 = v->nargs > 1 ? bshape(c, fi, v->args[1], batched) : snn_shape_scalar();
    snn_shape SV = bshape(c, fi, id, batched && sum_s < 0);
    switch (v->op) {
    case SNN_OP_LINEAR: {   /* y[M,out] = x[M,in] W[out,in]^T (+ b); batched: M = T*rows */
        LLVMValueRef N = dim(c, S1, 0), K = dim(c, S1, 1);
        LLVMValueRef M = rows_of(c, SV);
        sgemm(c, 0, 1, M, N, K, A[0], K, A[1], K, 0.0, v->nargs == 3 ? A[2] : NULL, out, N);
        break;
    }
    case SNN_OP_MATMUL_NN: {   /* [M,K] [K,N]; batched: M = T*rows */
        LLVMValueRef M = rows_of(c, S0), K = last_of(c, S0), N = dim(c, S1, 1);
        sgemm(c, 0, 0, M, N, K, A[0], K, A[1], N, acc_s >= 0 ? 1.0 : 0.0, NULL, out, N);
        break;
    }
    case SNN_OP_MATMUL_TN: {   /* [K,M]^T [K,N]; batched into a time sum: K = T*rows, += */
        LLVMValueRef K = rows_of(c, S0), M = last_of(c, S0), N = last_of(c, S1);
        sgemm(c, 1, 0, M, N, K, A[0], M, A[1], N, sum_s >= 0 ? 1.0 : 0.0, NULL, out, N);
        break;
    }
    case SNN_OP_SUM_TO: {
        if (!suffix_of(v->shape, S0)) {
            CG_BUG(c, v->loc, "codegen: sum_to %%%s: result is not a suffix "
                               "of the operand's shape", v->name);
            return;
        }
        if (!k->fn) build_sum_to(c, v, v->shape, S0, false, k);
        LLVMValueRef args[2] = {out, A[0]};
        call_kernel(c, k, args, 2);
        break;
    }
    case SNN_OP_CROSS_ENTROPY: case SNN_OP_CE_GRAD:
    case SNN_OP_MSE_ONEHOT: case SNN_OP_MSE_ONEHOT_GRAD: {
        if (!k->fn) build_loss(c, v, S0, k);
        LLVMValueRef labels = c->labels;
        if (c->row_off) labels = LLVMBuildGEP2(c->b, c->t_i32, labels, &c->row_off, 1, "labels.tile");
        LLVMValueRef mean_rows = full_batch(c, rows_of, S0);   /* the mean: the whole batch */
        LLVMValueRef args[7] = {out, A[0], labels, A[1], NULL, NULL, NULL};
        int n = v->nargs == 1 ? 3 : 4;
        args[n] = c->B;
        args[n + 1] = c->T;
        args[n + 2] = mean_rows;
        LLVMBuildCall2(c->b, k->ty, k->fn, args, (unsigned)n + 3, "");
        break;
    }
    case SNN_OP_LOSS_ADD: {   /* loss += fval * v */
        LLVMValueRef lp = c->buf_ptr[c->plan.misc_buf];
        LLVMValueRef x = LLVMBuildFMul(c->b, load_f32(c, A[0], ""), f32c(c, v->fval), "");
        store_f32(c, LLVMBuildFAdd(c->b, load_f32(c, lp, "loss"), x, "loss"), lp);
        break;
    }
    case SNN_OP_GRAD_ACC: {
        int mode = c->plan.grad_mode[v->ival];
        if (mode == CG_GRAD_DIRECT) break;   /* the value was computed in grads[ival] */
        if (mode == CG_GRAD_COPY) {
            LLVMBuildMemCpy(c->b, param_ptr(c, c->grads, v->ival, "grad"), 4, A[0], 4,
                            bytes_of(c, c->m->params[v->ival].shape));
            break;
        }
        if (!k->fn) build_grad_acc(c, v, k);
        LLVMValueRef args[2] = {param_ptr(c, c->grads, v->ival, "grad"), A[0]};
        call_kernel(c, k, args, 2);
        break;
    }
    default:
        CG_BUG(c, v->loc, "codegen: no lowering for '%s'",
                           snn_op_infos[v->op].mnemonic);
    }
}

/* Emits values [begin, end) of function fi that belong to region r (batched: once for all T
 * steps, see plan.c). */
static void emit_range(cg_ctx *c, int fi, snn_region r, int32_t begin, int32_t end, bool batched) {
    const snn_ir_func *f = c->plan.fn[fi];
    const cg_val *cv = c->plan.val[fi];
    for (int32_t i = begin; i < end; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->region != r) continue;
        if (snn_op_infos[v->op].cls == SNN_CLASS_LEAF) continue;
        if (r == SNN_REGION_STEP && c->cur_loop >= 0 && cv[i].loop != c->cur_loop) continue;
        if (batched && cv[i].next_of >= 0 && c->plan.st_sum[fi][cv[i].next_of]) {
            /* a time sum: state += sum over t of its term (a matmul_tn term already added
             * itself, with K = T*rows) */
            int32_t s = cv[i].next_of;
            int32_t term = v->args[f->values[v->args[0]].op == SNN_OP_STATE &&
                                   f->values[v->args[0]].ival == s];
            if (f->values[term].op == SNN_OP_MATMUL_TN) continue;
            cg_kfn *k = &c->op_kernels[fi][i];
            if (!k->fn) build_sum_to(c, v, v->shape, bshape(c, fi, term, true), true, k);
            LLVMValueRef args[2] = {state_p(c, fi, s, 0), addr_of(c, fi, term, r)};
            call_kernel(c, k, args, 2);
            continue;
        }
        if (cv[i].next_of >= 0 && c->plan.st_mmacc[fi][cv[i].next_of] >= 0)
            continue;   /* its matmul added the product into the state */
        if (cg_in_loop(&c->plan, fi, i)) {
            int32_t g = cv[i].group;
            if (c->plan.groups[g].members[0] == i) emit_group_call(c, g);
            continue;
        }
        emit_op(c, fi, i, batched);
    }
}

static void emit_region(cg_ctx *c, int fi, snn_region r) {
    emit_range(c, fi, r, 0, c->plan.fn[fi]->n_values, false);
}

static void fill(cg_ctx *c, LLVMValueRef p, snn_shape s, float value, const char *name) {
    if (value == 0.0f && !signbit(value)) {
        LLVMBuildMemSet(c->b, p, LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0), bytes_of(c, s), 4);
        return;
    }
    cg_loop L;
    LLVMValueRef i = loop_begin(c, &L, numel(c, s), name);
    store_f32(c, f32c(c, value), gep_f32(c, p, i, ""));
    loop_end(c, &L);
}

/* One time loop of function fi: values [tl->begin, tl->end) for every step, or once for all
 * steps when batched. Copied states are copied in the loop that holds their reads and next. */
static void emit_tiled_loop(cg_ctx *c, int fi, const cg_tloop *tl, int k);

/* Step indices of loop k's values: (float)t in their memory. */
static void store_step_indices(cg_ctx *c, int fi, const cg_tloop *tl, int k) {
    const snn_ir_func *f = c->plan.fn[fi];
    const cg_val *cv = c->plan.val[fi];
    for (int32_t i = tl->begin; i < tl->end; i++)
        if (f->values[i].op == SNN_OP_STEP && cv[i].buf >= 0 && cv[i].loop == k)
            store_f32(c, LLVMBuildUIToFP(c->b, c->t, c->t_f32, "t.f"), c->buf_ptr[cv[i].buf]);
}

static void emit_time_loop(cg_ctx *c, int fi, const cg_tloop *tl, int k) {
    const snn_ir_func *f = c->plan.fn[fi];
    const cg_val *cv = c->plan.val[fi];
    if (tl->tiled) {
        emit_tiled_loop(c, fi, tl, k);
        return;
    }
    c->cur_loop = k;
    if (tl->batched) {
        c->t = c->iv = i64c(c, 0);   /* slot 0: the start of each [T, ...] array */
        emit_range(c, fi, SNN_REGION_STEP, tl->begin, tl->end, true);
        c->t = c->iv = NULL;
        c->cur_loop = -1;
        return;
    }
    cg_loop L;
    const char *name = c->plan.n_loops[fi] > 1 ? snn_sprintf(c->arena, "%s.loop%d.t",
                                                             fi == CG_FWD ? "fwd" : "bwd", k)
                                               : fi == CG_FWD ? "fwd.t" : "bwd.t";
    c->iv = loop_begin(c, &L, c->T, name);
    c->t = fi == CG_FWD ? c->iv : LLVMBuildSub(c->b, last_t(c), c->iv, "t");
    for (int32_t i = tl->begin; i < tl->end; i++) {   /* per-step copies of copied states */
        const snn_ir_value *v = &f->values[i];
        if (v->op != SNN_OP_STATE || c->plan.st_rotate[fi][v->ival] || cv[i].loop != k) continue;
        LLVMValueRef sb = state_p(c, fi, v->ival, 0);
        LLVMValueRef dst = addr_of(c, fi, i, SNN_REGION_STEP);
        if (dst != sb) LLVMBuildMemCpy(c->b, dst, 4, sb, 4, bytes_of(c, v->shape));
    }
    store_step_indices(c, fi, tl, k);
    emit_range(c, fi, SNN_REGION_STEP, tl->begin, tl->end, false);
    for (int32_t s = 0; s < f->n_states; s++) {   /* copied states <- next */
        const snn_ir_state *st = &f->states[s];
        if (c->plan.st_rotate[fi][s] || cv[st->next].loop != k) continue;
        LLVMValueRef sb = state_p(c, fi, s, 0);
        LLVMValueRef src = addr_of(c, fi, st->next, SNN_REGION_STEP);
        if (src != sb) LLVMBuildMemCpy(c->b, sb, 4, src, 4, bytes_of(c, st->shape));
    }
    loop_end_no_unroll(c, &L);
    c->t = c->iv = NULL;
    c->cur_loop = -1;
}

/* ---- backward's tiled loop with the steps innermost (plan.c, plan_time_inner) ---- */

/* The 16 lanes of v added in a fixed tree (8 + 8, 4 + 4, 2 + 2, 1 + 1): one float. */
static LLVMValueRef lane_sum(cg_ctx *c, LLVMValueRef v) {
    for (int w = 8; w >= 1; w /= 2) {
        LLVMValueRef idx[16];
        for (int i = 0; i < 16; i++) idx[i] = i32c(c, i < w ? i + w : i);
        LLVMValueRef hi = LLVMBuildShuffleVector(c->b, v, LLVMGetPoison(LLVMTypeOf(v)),
                                                 LLVMConstVector(idx, 16), "");
        v = LLVMBuildFAdd(c->b, v, hi, "");
    }
    return LLVMBuildExtractElement(c->b, v, i32c(c, 0), "");
}

/* A 16-lane load (val NULL) or store at p: masked by mask, or a whole vector if mask is NULL
 * (which, unlike a masked load, an FMA can take as its operand). */
static LLVMValueRef vec_io(cg_ctx *c, LLVMValueRef p, LLVMValueRef mask, LLVMValueRef val) {
    if (mask) return vec_masked(c, val != NULL, p, mask, val);
    LLVMValueRef r = val ? LLVMBuildStore(c->b, val, p)
                         : LLVMBuildLoad2(c->b, LLVMVectorType(c->t_f32, 16), p, "v");
    LLVMSetAlignment(r, 4);
    return r;
}

/* The members of group g, 16 lanes wide (c->vec), for the two kernels of a linear layer summed
 * in its loop: constants, the group's own values, and from outside (ext) scalars (scal[e]),
 * rows of N (columns in the lanes: the 16 from col; rows in the lanes: the one at col, for all
 * lanes) and operands of the loop's shape at `at`, through vec_io (mask); an in-place state's
 * next value is stored at `at` the same way. Returns the registers, by value id. */
static LLVMValueRef *vec_members(cg_ctx *c, int32_t g, LLVMValueRef fn, const int32_t *ext,
                                 int32_t n_ext, LLVMValueRef *scal, LLVMValueRef at,
                                 LLVMValueRef col, bool rows_in_lanes, LLVMValueRef mask) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const cg_val *cv = c->plan.val[grp->func];
    LLVMValueRef *reg = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(f->n_values + 1));
    LLVMValueRef *loaded = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(f->n_values + 1));
    for (int32_t m = 0; m < grp->n_members; m++) {
        const int32_t id = grp->members[m];
        const snn_ir_value *v = &f->values[id];
        LLVMValueRef a[SNN_IR_MAX_ARGS];
        for (int q = 0; q < v->nargs; q++) {
            const int32_t u = v->args[q];
            const snn_ir_value *uv = &f->values[u];
            if (uv->op == SNN_OP_CONST) { a[q] = elc(c, uv->fval); continue; }
            if (cv[u].group == g) { a[q] = reg[u]; continue; }
            if (!loaded[u]) {
                const int32_t e = ext_index(ext, n_ext, u);
                if (e == n_ext) { CG_BUG(c, v->loc, "codegen: operand of %%%s", v->name); a[q] = elc(c, 0.0); continue; }
                LLVMValueRef pe = LLVMGetParam(fn, (unsigned)e);
                if (uv->op == SNN_OP_STATE && c->states_from_init)
                    loaded[u] = elc(c, f->states[uv->ival].init);
                else if (uv->shape.rank == 0) loaded[u] = splat16(c, scal[e]);
                else if (uv->shape.rank == 1 && rows_in_lanes)
                    loaded[u] = splat16(c, load_f32(c, gep_f32(c, pe, col, ""), "col.v"));
                else loaded[u] = vec_io(c, gep_f32(c, pe, uv->shape.rank == 1 ? col : at, ""), mask, NULL);
            }
            a[q] = loaded[u];
        }
        reg[id] = emit_elem(c, v, a, NULL);
        if (!reg[id]) { CG_BUG(c, v->loc, "codegen: no 16-lane lowering for '%s'", snn_op_infos[v->op].mnemonic); reg[id] = elc(c, 0.0); }
        const int32_t e = inplace_ext(c, grp, ext, n_ext, id);   /* an in-place state */
        if (e >= 0) vec_io(c, gep_f32(c, LLVMGetParam(fn, (unsigned)e), at, ""), mask, reg[id]);
    }
    return reg;
}

/* rowred_kernel's work for the 16 columns from col0 of one row (lanes in mask): the members,
 * their stores, and the layer's K multiply-adds into sum[]. */
static void rowred_cols(cg_ctx *c, int32_t g, LLVMValueRef fn, const int32_t *ext, int32_t n_ext,
                        const int32_t *out, int32_t n_out, LLVMValueRef *scal, LLVMValueRef pw,
                        LLVMValueRef *sum, LLVMValueRef row, LLVMValueRef col0, LLVMValueRef mask) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const cg_val *cv = c->plan.val[grp->func];
    const snn_ir_value *L = &f->values[grp->rowred];
    const int64_t N = grp->shape.dim[1], K = f->values[L->args[1]].shape.dim[0];
    const int32_t pad = cv[grp->rowred].mm_pad;   /* W's rows padded to whole lines */
    const int64_t NW = pad >= 0 ? c->plan.bufs[pad].shape.dim[1] : N;
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    LLVMValueRef at = LLVMBuildNUWAdd(c->b, mul64(c, row, i64c(c, N), ""), col0, "at");
    c->vec = true;
    LLVMValueRef *reg = vec_members(c, g, fn, ext, n_ext, scal, at, col0, false, mask);
    for (int32_t o = 0; o < n_out; o++)
        if (out[o] != grp->rowred)
            vec_masked(c, true, gep_f32(c, LLVMGetParam(fn, (unsigned)(n_ext + o)), at, ""), mask, reg[out[o]]);
    LLVMValueRef S = reg[L->args[0]];
    for (int64_t k = 0; k < K; k++) {
        /* a padded row's tail is zeros: a plain load, which the FMA can take as its operand
         * (a masked load cannot be folded: twice the instructions in this loop) */
        LLVMValueRef wp = gep_f32(c, pw, LLVMBuildNUWAdd(c->b, i64c(c, k * NW), col0, ""), "");
        LLVMValueRef w = pad >= 0 ? LLVMBuildLoad2(c->b, V, wp, "w") : vec_masked(c, false, wp, mask, NULL);
        if (pad >= 0) LLVMSetAlignment(w, 4);
        LLVMValueRef fa[3] = {S, w, LLVMBuildLoad2(c->b, V, sum[k], "")};
        LLVMBuildStore(c->b, intrinsic(c, "llvm.fma", fa, 3), sum[k]);
    }
    c->vec = false;
}

/* The start of either kernel of a linear layer summed in its loop (rowred_kernel,
 * rowred_lanes_kernel): the function `name` (with n_extra more i64 parameters), the scalars
 * loaded, the parameters of W, b and the layer's rows, and K zero-initialisable accumulators. */
typedef struct {
    LLVMValueRef fn, pw, pb, pl, *scal, *sum;
    cg_kernel_save save;
} rowred_start;

static void rowred_begin(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                         const int32_t *out, int32_t n_out, const char *name, int n_extra,
                         const char **xnames, LLVMTypeRef *fty, rowred_start *r) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const snn_ir_value *L = &f->values[grp->rowred];
    const int64_t K = f->values[L->args[1]].shape.dim[0];
    const char **pn = snn_alloc(c->arena, sizeof(char *) * (size_t)(n_ext + n_out + 1));
    for (int32_t e = 0; e < n_ext; e++) pn[e] = f->values[ext[e]].name;
    for (int32_t o = 0; o < n_out; o++) pn[n_ext + o] = snn_sprintf(c->arena, "%s.out", f->values[out[o]].name);
    r->fn = kernel_begin(c, name, n_ext + n_out, pn, n_extra, xnames, fty, &r->save);
    c->group_fn[g] = r->fn;
    c->group_fn_ty[g] = *fty;
    r->scal = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    r->pw = r->pb = r->pl = NULL;
    for (int32_t e = 0; e < n_ext; e++) {
        if (ext[e] == L->args[1]) r->pw = LLVMGetParam(r->fn, (unsigned)e);
        if (L->nargs > 2 && ext[e] == L->args[2]) r->pb = LLVMGetParam(r->fn, (unsigned)e);
        if (f->values[ext[e]].shape.rank == 0) r->scal[e] = load_f32(c, LLVMGetParam(r->fn, (unsigned)e), "scalar");
    }
    for (int32_t o = 0; o < n_out; o++)
        if (out[o] == grp->rowred) r->pl = LLVMGetParam(r->fn, (unsigned)(n_ext + o));
    r->sum = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)K);
    for (int64_t k = 0; k < K; k++) r->sum[k] = LLVMBuildAlloca(c->b, LLVMVectorType(c->t_f32, 16), "rowsum");
}

/* The kernel of group g with a linear layer of a member inside (plan.c, plan_fuse_linear),
 * 16 lanes wide: per row, the members over 16-column vectors (the last masked), the layer's K
 * sums as multiply-adds of the member and W's columns into K registers, then each sum's lanes
 * added in a fixed tree, plus b, stored into the layer's row. Operands from outside are rows
 * of the loop's shape, rows of N columns, or scalars (plan_fuse_linear checked).
 * The whole vectors run in a loop with every lane on and the partial last one after it, with
 * its mask a constant: a mask computed from the column in the loop (compares of 64-bit lanes,
 * a mask unpack) made a C model of Tutorial 5's loop 33 % slower (0.276 -> 0.366 ms per 64
 * rows, one thread). */
static LLVMValueRef rowred_kernel(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                                  const int32_t *out, int32_t n_out, LLVMTypeRef *fty) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const snn_ir_value *L = &f->values[grp->rowred];
    const int64_t N = grp->shape.dim[1], NF = N / 16, K = f->values[L->args[1]].shape.dim[0];
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    rowred_start rs;
    rowred_begin(c, g, ext, n_ext, out, n_out,
                 snn_sprintf(c->arena, "%s.%s.rowsum", grp->func == CG_FWD ? "fwd" : "bwd", grp->name),
                 0, NULL, fty, &rs);
    LLVMValueRef fn = rs.fn, pw = rs.pw, pb = rs.pb, pl = rs.pl, *scal = rs.scal, *sum = rs.sum;
    LLVMValueRef all[16];
    for (int i = 0; i < 16; i++) all[i] = LLVMConstInt(c->t_i1, 1, 0);
    LLVMValueRef on = LLVMConstVector(all, 16);
    cg_loop Lr, Lv;
    LLVMValueRef row = loop_begin(c, &Lr, c->B, "row");
    for (int64_t k = 0; k < K; k++) LLVMBuildStore(c->b, LLVMConstNull(V), sum[k]);
    if (NF > 0) {
        LLVMValueRef vi = loop_begin(c, &Lv, i64c(c, NF), "cols");
        rowred_cols(c, g, fn, ext, n_ext, out, n_out, scal, pw, sum, row,
                    mul64(c, vi, i64c(c, 16), "col0"), on);
        loop_end_no_unroll(c, &Lv);
    }
    if (N % 16)
        rowred_cols(c, g, fn, ext, n_ext, out, n_out, scal, pw, sum, row, i64c(c, 16 * NF),
                    col_mask(c, i64c(c, 16 * NF), N));
    for (int64_t k = 0; k < K; k++) {
        LLVMValueRef s = lane_sum(c, LLVMBuildLoad2(c->b, V, sum[k], ""));
        if (pb) s = LLVMBuildFAdd(c->b, s, load_f32(c, gep_f32(c, pb, i64c(c, k), ""), "b"), "");
        store_f32(c, s, gep_f32(c, pl, LLVMBuildNUWAdd(c->b, mul64(c, row, i64c(c, K), ""), i64c(c, k), ""), ""));
    }
    loop_end_no_unroll(c, &Lr);
    kernel_end(c, &rs.save);
    return fn;
}

/* rowred_lanes_kernel's walk over the N columns for ng groups of 16 rows, from r0[i] (mask: the
 * rows that exist, NULL when all 16 do: plain loads and stores, as a masked one cannot be an
 * operand), the K sums into sum[i][]. Two groups in one walk share W's broadcasts. */
static void lanes_cols(cg_ctx *c, int32_t g, LLVMValueRef fn, const int32_t *ext, int32_t n_ext,
                       LLVMValueRef *scal, LLVMValueRef pw, LLVMValueRef *const *sum,
                       LLVMValueRef ld, const LLVMValueRef *r0, int ng, LLVMValueRef mask) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const cg_val *cv = c->plan.val[grp->func];
    const snn_ir_value *L = &f->values[grp->rowred];
    const int64_t N = grp->shape.dim[1], K = f->values[L->args[1]].shape.dim[0];
    const int32_t pad = cv[grp->rowred].mm_pad;
    const int64_t NW = pad >= 0 ? c->plan.bufs[pad].shape.dim[1] : N;
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    cg_loop Lh;
    LLVMValueRef h = loop_begin(c, &Lh, i64c(c, N), "col");
    LLVMValueRef hl = mul64(c, h, ld, "");
    c->vec = true;
    LLVMValueRef S[2];
    for (int i = 0; i < ng; i++)
        S[i] = vec_members(c, g, fn, ext, n_ext, scal, LLVMBuildNUWAdd(c->b, hl, r0[i], "at"), h,
                           true, mask)[L->args[0]];
    for (int64_t k = 0; k < K; k++) {
        LLVMValueRef w = splat16(c, load_f32(c, gep_f32(c, pw, LLVMBuildNUWAdd(c->b, i64c(c, k * NW), h, ""), ""), "w"));
        for (int i = 0; i < ng; i++) {
            LLVMValueRef fa[3] = {S[i], w, LLVMBuildLoad2(c->b, V, sum[i][k], "")};
            LLVMBuildStore(c->b, intrinsic(c, "llvm.fma", fa, 3), sum[i][k]);
        }
    }
    c->vec = false;
    loop_end_no_unroll(c, &Lh);
}

/* Rows r0 .. r0 + nrows of the layer's output: lane l of sum[k] plus b[k] into row r0 + l,
 * column k (through a 64-byte-aligned stack buffer of 16 K floats, lanes). */
static void lanes_store(cg_ctx *c, LLVMValueRef *sum, int64_t K, LLVMValueRef pb, LLVMValueRef pl,
                        LLVMValueRef lanes, LLVMValueRef r0, LLVMValueRef nrows) {
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    for (int64_t k = 0; k < K; k++) {
        LLVMValueRef v = LLVMBuildLoad2(c->b, V, sum[k], "");
        if (pb) v = LLVMBuildFAdd(c->b, v, splat16(c, load_f32(c, gep_f32(c, pb, i64c(c, k), ""), "b")), "");
        LLVMBuildStore(c->b, v, gep_f32(c, lanes, i64c(c, 16 * k), ""));
    }
    cg_loop Ll;
    LLVMValueRef l = loop_begin(c, &Ll, nrows, "lane");
    LLVMValueRef orow = mul64(c, LLVMBuildNUWAdd(c->b, r0, l, ""), i64c(c, K), "");
    for (int64_t k = 0; k < K; k++)
        store_f32(c, load_f32(c, gep_f32(c, lanes, LLVMBuildNUWAdd(c->b, i64c(c, 16 * k), l, ""), ""), "s"),
                  gep_f32(c, pl, LLVMBuildNUWAdd(c->b, orow, i64c(c, k), ""), ""));
    loop_end_no_unroll(c, &Ll);
}

/* Group g's kernel in the rows-in-lanes form (plan.c, plan_rows_in_lanes): 16 rows of the tile
 * in the lanes, the N columns one after another (lanes_cols). Its [B, N] operands arrive as
 * [N, B] arrays at the tile's first row (the state itself, stored so; the pre values'
 * transposed copies), `ld` (the whole batch's B) apart from one column to the next; rows of N
 * are read one float per column, as are W's K values of the column (broadcast); the K sums of
 * a row build up in its lane, plus b, stored into the layer's row. Whole groups of 16 rows go
 * in pairs, one walk for 32 rows sharing W's broadcasts; rows past the tile's end are masked
 * lanes of a walk of their own, so that whole groups go unmasked. */
static LLVMValueRef lanes_kernel(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                                 const int32_t *out, int32_t n_out, LLVMTypeRef *fty,
                                 const char *name) {
    const cg_group *grp = &c->plan.groups[g];
    const snn_ir_func *f = c->plan.fn[grp->func];
    const snn_ir_value *L = &f->values[grp->rowred];
    const int64_t K = f->values[L->args[1]].shape.dim[0];
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    const char *xn[1] = {"ld"};
    rowred_start rs;
    rowred_begin(c, g, ext, n_ext, out, n_out, name, 1, xn, fty, &rs);
    LLVMValueRef fn = rs.fn, pw = rs.pw, pb = rs.pb, pl = rs.pl, *scal = rs.scal, *sum = rs.sum;
    LLVMValueRef ld = LLVMGetParam(fn, (unsigned)(n_ext + n_out + 2));
    LLVMValueRef lanes = LLVMBuildAlloca(c->b, LLVMArrayType(c->t_f32, (unsigned)(16 * K)), "lanes");
    LLVMSetAlignment(lanes, 64);   /* whole vectors are stored into it */
    LLVMValueRef *sum2 = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)K);
    for (int64_t k = 0; k < K; k++) sum2[k] = LLVMBuildAlloca(c->b, V, "rowsum2");
    LLVMValueRef *const sums[2] = {sum, sum2};
    /* pairs of whole groups of 16 rows, one walk each */
    cg_loop Lp, Lq;
    LLVMValueRef npairs = LLVMBuildUDiv(c->b, c->B, i64c(c, 32), "pairs");
    LLVMValueRef p = loop_begin(c, &Lp, npairs, "rows32");
    LLVMValueRef pr[2] = {mul64(c, p, i64c(c, 32), "row0")};
    pr[1] = LLVMBuildNUWAdd(c->b, pr[0], i64c(c, 16), "row16");
    for (int i = 0; i < 2; i++)
        for (int64_t k = 0; k < K; k++) LLVMBuildStore(c->b, LLVMConstNull(V), sums[i][k]);
    lanes_cols(c, g, fn, ext, n_ext, scal, pw, sums, ld, pr, 2, NULL);
    for (int i = 0; i < 2; i++) lanes_store(c, sums[i], K, pb, pl, lanes, pr[i], i64c(c, 16));
    loop_end_no_unroll(c, &Lp);
    /* the rest: up to two groups, the last one perhaps partial (masked) */
    LLVMValueRef base = mul64(c, npairs, i64c(c, 32), "rest0");
    LLVMValueRef nq = LLVMBuildUDiv(c->b, LLVMBuildAdd(c->b, LLVMBuildSub(c->b, c->B, base, ""), i64c(c, 15), ""),
                                    i64c(c, 16), "");
    LLVMValueRef q = loop_begin(c, &Lq, nq, "rows16");
    LLVMValueRef r0 = LLVMBuildNUWAdd(c->b, base, mul64(c, q, i64c(c, 16), ""), "row0");
    LLVMValueRef left = LLVMBuildSub(c->b, c->B, r0, "");
    LLVMValueRef whole = LLVMBuildICmp(c->b, LLVMIntUGE, left, i64c(c, 16), "whole");
    LLVMValueRef nrows = LLVMBuildSelect(c->b, whole, i64c(c, 16), left, "rows");
    for (int64_t k = 0; k < K; k++) LLVMBuildStore(c->b, LLVMConstNull(V), sum[k]);
    LLVMBasicBlockRef bw = LLVMAppendBasicBlockInContext(c->ctx, fn, "rows.whole"),
                      bp = LLVMAppendBasicBlockInContext(c->ctx, fn, "rows.part"),
                      bj = LLVMAppendBasicBlockInContext(c->ctx, fn, "rows.sums");
    LLVMBuildCondBr(c->b, whole, bw, bp);
    LLVMPositionBuilderAtEnd(c->b, bw);
    lanes_cols(c, g, fn, ext, n_ext, scal, pw, sums, ld, &r0, 1, NULL);
    LLVMBuildBr(c->b, bj);
    LLVMPositionBuilderAtEnd(c->b, bp);
    lanes_cols(c, g, fn, ext, n_ext, scal, pw, sums, ld, &r0, 1, lanes_below(c, nrows, "rows"));
    LLVMBuildBr(c->b, bj);
    LLVMPositionBuilderAtEnd(c->b, bj);
    lanes_store(c, sum, K, pb, pl, lanes, r0, nrows);
    loop_end_no_unroll(c, &Lq);
    kernel_end(c, &rs.save);
    return fn;
}

/* Whether forward state s is one that a rows-in-lanes kernel starts from its constant. */
static bool state_starts_in_lanes(const cg_ctx *c, int32_t s) {
    for (int32_t g = 0; g < c->plan.n_groups; g++)
        if (c->plan.groups[g].func == CG_FWD && cg_lanes_state(&c->plan, g) == s) return true;
    return false;
}

/* Group g's rows-in-lanes kernel, and where it reads a state, its variant for step 0
 * (c->group_fn_first[g]) that takes the state's initial value instead of loading it. */
static LLVMValueRef rowred_lanes_kernel(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                                        const int32_t *out, int32_t n_out, LLVMTypeRef *fty) {
    const char *name = snn_sprintf(c->arena, "fwd.%s.lanes", c->plan.groups[g].name);
    if (cg_lanes_state(&c->plan, g) >= 0) {   /* first: rowred_begin records the last one built */
        c->states_from_init = true;
        c->group_fn_first[g] = lanes_kernel(c, g, ext, n_ext, out, n_out, fty,
                                            snn_sprintf(c->arena, "%s.step0", name));
        c->states_from_init = false;
    }
    return lanes_kernel(c, g, ext, n_ext, out, n_out, fty, name);
}

/* The kernel that runs group g (plan.time_inner) for one row tile and all T steps: 16 columns
 * outermost, then the tile's rows, then the steps (each operand read as cg_ti_kind says).
 * Parameters: ext's addresses at step 0 of the tile (group_args), B (the tile's rows), T, and
 * the batch's rows (a T-slot value's slot stride). */
static LLVMValueRef time_inner_kernel(cg_ctx *c, int32_t g, const int32_t *ext, int32_t n_ext,
                                      LLVMTypeRef *fty) {
    const cg_plan *p = &c->plan;
    const cg_group *grp = &p->groups[g];
    const snn_ir_func *f = p->fn[CG_BWD], *F = p->fn[CG_FWD];
    const cg_val *cv = p->val[CG_BWD], *Fcv = p->val[CG_FWD];
    const cg_group *RG = &p->groups[p->rec_group];
    const int32_t loop = cv[grp->members[0]].loop;
    cg_ti_kind_t *kind = snn_alloc(c->arena, sizeof(cg_ti_kind_t) * (size_t)(n_ext + 1));
    for (int32_t e = 0; e < n_ext; e++)
        if ((kind[e] = cg_ti_kind(p, g, ext[e])) == CG_TI_BAD) {   /* plan_time_inner checked */
            CG_BUG(c, grp->members ? f->values[grp->members[0]].loc : cg_noloc(c),
                   "codegen: steps-innermost operand %d of %s", ext[e], grp->name);
            return NULL;
        }
    const int64_t N = grp->shape.dim[1], NV = (N + 15) / 16;
    LLVMTypeRef V = LLVMVectorType(c->t_f32, 16);
    const char **pn = snn_alloc(c->arena, sizeof(char *) * (size_t)(n_ext + 1));
    for (int32_t e = 0; e < n_ext; e++)
        pn[e] = ext[e] >= 0 ? f->values[ext[e]].name : F->values[-ext[e] - 1].name;
    const char *xn[1] = {"Bfull"};
    cg_kernel_save save;
    LLVMValueRef fn = kernel_begin(c, snn_sprintf(c->arena, "bwd.%s.steps_inner", grp->name),
                                   n_ext, pn, 1, xn, fty, &save);
    LLVMValueRef Bfull = LLVMGetParam(fn, (unsigned)n_ext + 2);
    LLVMValueRef *P = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    for (int32_t e = 0; e < n_ext; e++) P[e] = LLVMGetParam(fn, (unsigned)e);

    /* registers carried across loops: one alloca each (promoted by mem2reg) */
    LLVMValueRef *carry = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    LLVMValueRef **wacc = snn_alloc(c->arena, sizeof(LLVMValueRef *) * (size_t)(n_ext + 1));
    LLVMValueRef *steps = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    LLVMValueRef *scal = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    int64_t *wk = snn_alloc(c->arena, sizeof(int64_t) * (size_t)(n_ext + 1));
    for (int32_t e = 0; e < n_ext; e++) {
        if (kind[e] == CG_TI_STATE) carry[e] = LLVMBuildAlloca(c->b, V, "carry");
        if (kind[e] == CG_TI_WACC) {
            wk[e] = f->states[f->values[ext[e]].ival].shape.dim[0];
            wacc[e] = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)wk[e]);
            for (int64_t k = 0; k < wk[e]; k++) wacc[e][k] = LLVMBuildAlloca(c->b, V, "dw");
        }
        if (kind[e] == CG_TI_STEPSCALAR) steps[e] = LLVMBuildArrayAlloca(c->b, c->t_f32, c->T, "per.t");
        if (kind[e] == CG_TI_SCALAR) scal[e] = load_f32(c, P[e], "scalar");
    }

    /* the loop's scalars for every step, in value order (their groups: rank 0, this loop) */
    LLVMValueRef *sreg = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(f->n_values + 1));
    cg_loop Ls;
    LLVMValueRef ts = loop_begin(c, &Ls, c->T, "ti.scalars.t");
    const cg_tloop *TL = &p->loops[CG_BWD][loop];
    for (int32_t i = TL->begin; i < TL->end; i++) {
        const snn_ir_value *v = &f->values[i];
        if (v->region != SNN_REGION_STEP || cv[i].loop != loop || cv[i].group < 0 ||
            p->groups[cv[i].group].shape.rank != 0)
            continue;
        LLVMValueRef a[SNN_IR_MAX_ARGS];
        for (int q = 0; q < v->nargs; q++) {
            const snn_ir_value *u = &f->values[v->args[q]];
            a[q] = u->op == SNN_OP_CONST ? f32c(c, u->fval)
                 : u->op == SNN_OP_STEP ? LLVMBuildUIToFP(c->b, ts, c->t_f32, "t.f")
                                        : sreg[v->args[q]];
        }
        sreg[i] = emit_elem(c, v, a, NULL);
        if (!sreg[i]) {   /* pow and the like: the plan allows what emit_elem has */
            CG_BUG(c, v->loc, "codegen: no scalar lowering for '%s'", snn_op_infos[v->op].mnemonic);
            sreg[i] = f32c(c, 0.0);
        }
    }
    for (int32_t e = 0; e < n_ext; e++)
        if (kind[e] == CG_TI_STEPSCALAR) store_f32(c, sreg[ext[e]], gep_f32(c, steps[e], ts, ""));
    loop_end_no_unroll(c, &Ls);

    /* 16 columns at a time */
    cg_loop Lv, Lr, Lt;
    LLVMValueRef vi = loop_begin(c, &Lv, i64c(c, NV), "ti.cols");
    LLVMValueRef col0 = mul64(c, vi, i64c(c, 16), "col0");
    LLVMValueRef mask = col_mask(c, col0, N);
    /* the fused matmuls' weights: K rows of 16 columns each */
    LLVMValueRef **W = snn_alloc(c->arena, sizeof(LLVMValueRef *) * (size_t)(grp->n_members + 1));
    for (int32_t m = 0; m < grp->n_members; m++) {
        const int32_t id = grp->members[m];
        if (!cv[id].mm_fused) continue;
        const snn_ir_value *v = &f->values[id];
        const int64_t K = f->values[v->args[0]].shape.dim[1];
        const int64_t stride = cv[id].mm_pad >= 0 ? p->bufs[cv[id].mm_pad].shape.dim[1] : N;
        LLVMValueRef pw = P[ext_index(ext, n_ext, v->args[1])];
        W[m] = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)K);
        for (int64_t k = 0; k < K; k++)
            W[m][k] = vec_masked(c, false, gep_f32(c, pw, LLVMBuildNUWAdd(c->b, i64c(c, k * stride), col0, ""), ""),
                                mask, NULL);
    }
    for (int32_t e = 0; e < n_ext; e++)
        if (kind[e] == CG_TI_WACC)
            for (int64_t k = 0; k < wk[e]; k++)
                LLVMBuildStore(c->b, vec_masked(c, false, gep_f32(c, P[e], LLVMBuildNUWAdd(c->b, i64c(c, k * N), col0, ""), ""),
                                               mask, NULL), wacc[e][k]);
    LLVMValueRef row = loop_begin(c, &Lr, c->B, "ti.row");
    LLVMValueRef at = LLVMBuildNUWAdd(c->b, mul64(c, row, i64c(c, N), ""), col0, "at");
    LLVMValueRef *rowv = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(n_ext + 1));
    for (int32_t e = 0; e < n_ext; e++) {
        if (kind[e] == CG_TI_STATE) {   /* a constant start needs no fill of the buffer first */
            const snn_ir_state *st = ext[e] >= 0 ? &f->states[f->values[ext[e]].ival]
                                                 : &F->states[F->values[-ext[e] - 1].ival];
            LLVMBuildStore(c->b, st->init_from < 0 ? splat16(c, f32c(c, st->init))
                                                   : vec_masked(c, false, gep_f32(c, P[e], at, ""), mask, NULL),
                           carry[e]);
        }
        if (kind[e] == CG_TI_ROWS) rowv[e] = vec_masked(c, false, gep_f32(c, P[e], at, ""), mask, NULL);
    }
    LLVMValueRef t = loop_begin(c, &Lt, c->T, "ti.t");
    c->vec = true;
    /* the recomputation: the forward group's members, then its states' copies */
    LLVMValueRef *regF = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(F->n_values + 1));
    for (int32_t q = 0; q < RG->n_members; q++) {
        const int32_t id = RG->members[q];
        const snn_ir_value *v = &F->values[id];
        LLVMValueRef a[SNN_IR_MAX_ARGS];
        for (int r = 0; r < v->nargs; r++) {
            const int32_t u = v->args[r];
            if (F->values[u].op == SNN_OP_CONST) { a[r] = elc(c, F->values[u].fval); continue; }
            if (Fcv[u].group == p->rec_group) { a[r] = regF[u]; continue; }
            const int32_t e = ext_index(ext, n_ext, -(u + 1));
            a[r] = e == n_ext ? NULL : kind[e] == CG_TI_STATE ? LLVMBuildLoad2(c->b, V, carry[e], "")
                 : kind[e] == CG_TI_ROWS ? rowv[e] : kind[e] == CG_TI_SCALAR ? splat16(c, scal[e]) : NULL;
            if (!a[r]) { CG_BUG(c, v->loc, "codegen: steps-innermost operand of %%%s", v->name); a[r] = elc(c, 0.0); }
        }
        regF[id] = emit_elem(c, v, a, NULL);
    }
    for (int32_t q = 0; q < RG->n_members; q++) {
        const int32_t s = Fcv[RG->members[q]].next_of;
        if (s < 0 || p->rec_state_buf[s] < 0) continue;
        for (int32_t e = 0; e < n_ext; e++)
            if (ext[e] < 0 && F->values[-ext[e] - 1].op == SNN_OP_STATE &&
                F->values[-ext[e] - 1].ival == s && F->values[-ext[e] - 1].region == SNN_REGION_STEP)
                LLVMBuildStore(c->b, regF[RG->members[q]], carry[e]);
    }
    /* the group's members */
    LLVMValueRef *reg = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(f->n_values + 1));
    for (int32_t m = 0; m < grp->n_members; m++) {
        const int32_t id = grp->members[m];
        const snn_ir_value *v = &f->values[id];
        if (cv[id].mm_fused || cv[id].mm_wacc) {
            const int32_t e = ext_index(ext, n_ext, v->args[0]);
            const int32_t ec = cv[id].mm_wacc ? ext_index(ext, n_ext, wacc_state_read(c, CG_BWD, id)) : -1;
            const int64_t K = f->values[v->args[0]].shape.dim[1];
            LLVMValueRef slot = mul64(c, t, mul64(c, Bfull, i64c(c, K), ""), "");
            LLVMValueRef arow = LLVMBuildNUWAdd(c->b, slot, mul64(c, row, i64c(c, K), ""), "d.row");
            LLVMValueRef acc = NULL;
            for (int64_t k = 0; k < K; k++) {
                LLVMValueRef d = splat16(c, load_f32(c, gep_f32(c, P[e], LLVMBuildNUWAdd(c->b, arow, i64c(c, k), ""), ""), "d"));
                if (cv[id].mm_wacc) {
                    /* fma(d, S, C) even for a spike S: as a masked add (S ? C + d : C) the
                     * loop ran 3 % slower (register pressure: spills) */
                    LLVMValueRef fa[3] = {d, reg[v->args[1]], LLVMBuildLoad2(c->b, V, wacc[ec][k], "")};
                    LLVMBuildStore(c->b, intrinsic(c, "llvm.fma", fa, 3), wacc[ec][k]);
                } else if (!acc) {
                    acc = LLVMBuildFMul(c->b, d, W[m][0], "mm");
                } else {
                    LLVMValueRef fa[3] = {d, W[m][k], acc};
                    acc = intrinsic(c, "llvm.fma", fa, 3);
                }
            }
            reg[id] = acc;
            continue;
        }
        LLVMValueRef a[SNN_IR_MAX_ARGS];
        for (int r = 0; r < v->nargs; r++) {
            const int32_t u = v->args[r];
            const snn_ir_value *uv = &f->values[u];
            if (uv->op == SNN_OP_CONST) { a[r] = elc(c, uv->fval); continue; }
            if (uv->op == SNN_OP_FWD && p->rec_val[uv->ival]) { a[r] = regF[uv->ival]; continue; }
            if (cv[u].group == g) { a[r] = reg[u]; continue; }
            const int32_t e = ext_index(ext, n_ext, u);
            a[r] = e == n_ext ? NULL : kind[e] == CG_TI_STATE ? LLVMBuildLoad2(c->b, V, carry[e], "")
                 : kind[e] == CG_TI_ROWS ? rowv[e] : kind[e] == CG_TI_SCALAR ? splat16(c, scal[e])
                 : kind[e] == CG_TI_STEPSCALAR ? splat16(c, load_f32(c, gep_f32(c, steps[e], t, ""), "")) : NULL;
            if (!a[r]) { CG_BUG(c, v->loc, "codegen: steps-innermost operand of %%%s", v->name); a[r] = elc(c, 0.0); }
        }
        reg[id] = emit_elem(c, v, a, NULL);
        const int32_t s = cv[id].next_of;   /* an in-place state: its register */
        if (s >= 0 && p->st_inplace[CG_BWD][s])
            for (int32_t e = 0; e < n_ext; e++)
                if (kind[e] == CG_TI_STATE && ext[e] >= 0 && f->values[ext[e]].ival == s)
                    LLVMBuildStore(c->b, reg[id], carry[e]);
    }
    c->vec = false;
    loop_end_no_unroll(c, &Lt);
    for (int32_t e = 0; e < n_ext; e++)
        if (kind[e] == CG_TI_STATE)
            vec_masked(c, true, gep_f32(c, P[e], at, ""), mask, LLVMBuildLoad2(c->b, V, carry[e], ""));
    loop_end_no_unroll(c, &Lr);
    for (int32_t e = 0; e < n_ext; e++)
        if (kind[e] == CG_TI_WACC)
            for (int64_t k = 0; k < wk[e]; k++)
                vec_masked(c, true, gep_f32(c, P[e], LLVMBuildNUWAdd(c->b, i64c(c, k * N), col0, ""), ""),
                          mask, LLVMBuildLoad2(c->b, V, wacc[e][k], ""));
    loop_end_no_unroll(c, &Lv);
    kernel_end(c, &save);
    return fn;
}

/* Whether state s of function fi starts, in the steps-innermost kernel (time_inner_kernel), from
 * its constant initial value in registers, so that its buffer needs no fill before the kernel
 * writes every element of it: backward's in-place states of that kernel's group (their final
 * values, read after the loop, are what it stores), and the forward states whose copies the
 * recomputation merged into it runs on (nothing reads a copy after). About 0.5 MB of stores per
 * block and iteration for Tutorial 5 (the time sum of d.h.linear; the membrane's copies). */
static bool ti_starts_from_init(cg_ctx *c, int fi, int32_t s) {
    const cg_plan *p = &c->plan;
    if (p->time_inner < 0 || !p->fn[CG_BWD]) return false;
    const snn_ir_state *st = &p->fn[fi]->states[s];
    if (st->init_from >= 0) return false;
    if (fi == CG_BWD)
        return p->st_inplace[CG_BWD][s] && p->val[CG_BWD][st->next].group == p->time_inner &&
               snn_shape_eq(st->shape, p->groups[p->time_inner].shape);
    return p->rec_state_buf && p->rec_state_buf[s] >= 0 && p->rec_merge == p->time_inner &&
           snn_shape_eq(st->shape, p->groups[p->time_inner].shape);
}

/* A time loop in row tiles (plan.c: plan_forward_tiles, plan_recompute): tile by tile, the
 * loop's values for t = 0..T-1 (forward in time, also in backward's recompute loop, which first
 * re-runs the forward group rec_group on backward's copy of its states at each step). Inside a
 * tile c->B is the tile's rows and c->row_off its first row. */
static void emit_tiled_loop(cg_ctx *c, int fi, const cg_tloop *tl, int k) {
    const cg_plan *p = &c->plan;
    const snn_ir_func *F = p->fn[CG_FWD];
    /* the steps innermost, where the plan chose it */
    LLVMValueRef ti_fn = NULL;
    LLVMTypeRef ti_ty = NULL;
    int32_t *ti_ext = NULL, ti_n = 0;
    if (fi == CG_BWD && tl->rows_forward && p->time_inner >= 0 &&
        p->val[CG_BWD][p->groups[p->time_inner].members[0]].loop == k) {
        int32_t *out, n_out;
        group_operands(c, p->time_inner, false, &ti_ext, &ti_n, &out, &n_out);
        if (n_out == 0) ti_fn = time_inner_kernel(c, p->time_inner, ti_ext, ti_n, &ti_ty);
        else CG_BUG(c, cg_noloc(c), "codegen: steps-innermost group %s stores per-step values",
                    p->groups[p->time_inner].name);
    }
    LLVMValueRef R = i64c(c, p->tile_rows);
    LLVMValueRef ntiles = LLVMBuildUDiv(c->b, LLVMBuildAdd(c->b, c->Bfull, i64c(c, p->tile_rows - 1), ""),
                                        R, "tiles");
    cg_loop Lt, L;
    LLVMValueRef ti = loop_begin(c, &Lt, ntiles, "tile");
    LLVMValueRef r0 = mul64(c, ti, R, "tile.row0");
    LLVMValueRef left = LLVMBuildSub(c->b, c->Bfull, r0, "");
    c->B = LLVMBuildSelect(c->b, LLVMBuildICmp(c->b, LLVMIntULT, left, R, ""), left, R, "tile.rows");
    c->row_off = r0;
    for (int32_t s = 0; tl->rows_forward && s < F->n_states; s++)   /* the states' copies */
        if (p->rec_state_buf[s] >= 0 && !(ti_fn && ti_starts_from_init(c, CG_FWD, s)))
            fill(c, tile_ptr(c, c->buf_ptr[p->rec_state_buf[s]], F->states[s].shape),
                 F->states[s].shape, F->states[s].init,
                 snn_sprintf(c->arena, "init.rec.%s", F->states[s].name));
    c->cur_loop = k;
    if (ti_fn) {   /* the steps innermost: one call per tile, addresses at step 0 */
        c->t = c->iv = i64c(c, 0);
        LLVMValueRef *args = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(ti_n + 4));
        int n = group_args(c, p->time_inner, ti_ext, ti_n, NULL, 0, args);
        args[n++] = c->B;
        args[n++] = c->T;
        args[n++] = c->Bfull;
        LLVMBuildCall2(c->b, ti_ty, ti_fn, args, (unsigned)n, "");
    } else {
        c->iv = loop_begin(c, &L, c->T, fi == CG_FWD ? "fwd.rows.t" : "bwd.rows.t");
        c->t = c->iv;
        store_step_indices(c, fi, tl, k);
        if (tl->rows_forward && c->plan.rec_merge < 0) emit_rec_call(c);
        emit_range(c, fi, SNN_REGION_STEP, tl->begin, tl->end, false);
        loop_end_no_unroll(c, &L);
    }
    loop_end_no_unroll(c, &Lt);
    c->t = c->iv = NULL;
    c->cur_loop = -1;
    c->B = c->Bfull;
    c->row_off = NULL;
}

/* The padded copies of fused matmuls' weights (plan.c, mm_pad), row by row. */
static void fill_padded_weights(cg_ctx *c, int fi) {
    const snn_ir_func *f = c->plan.fn[fi];
    for (int32_t i = 0; i < f->n_values; i++) {
        const int32_t pad = c->plan.val[fi][i].mm_pad;
        if (pad < 0) continue;
        const snn_ir_value *w = &f->values[f->values[i].args[1]];
        LLVMValueRef src = addr_of(c, fi, f->values[i].args[1], SNN_REGION_PRE);
        const int64_t K = w->shape.dim[0], N = w->shape.dim[1], NP = c->plan.bufs[pad].shape.dim[1];
        for (int64_t k = 0; k < K; k++) {
            LLVMBuildMemCpy(c->b, gep_f32(c, c->buf_ptr[pad], i64c(c, k * NP), ""), 4,
                            gep_f32(c, src, i64c(c, k * N), ""), 4, i64c(c, N * 4));
            if (NP > N)   /* zeros: the kernels read whole vectors of a padded row, unmasked */
                LLVMBuildMemSet(c->b, gep_f32(c, c->buf_ptr[pad], i64c(c, k * NP + N), ""),
                                LLVMConstInt(LLVMInt8TypeInContext(c->ctx), 0, 0),
                                i64c(c, (NP - N) * 4), 4);
        }
    }
}

/* The [N, B] copies of pre values that rows-in-lanes kernels read (plan.c, plan_rows_in_lanes):
 * one snnrt_transpose of the whole batch's [B, N] each. */
static void fill_transposed(cg_ctx *c, int fi) {
    const snn_ir_func *f = c->plan.fn[fi];
    for (int32_t i = 0; i < f->n_values; i++) {
        const int32_t tr = c->plan.val[fi][i].tr_buf;
        if (tr < 0) continue;
        if (!c->transpose_fn) {
            LLVMTypeRef ps[6] = {c->t_ptr, c->t_i64, c->t_i64, c->t_i64, c->t_ptr, c->t_i64};
            c->transpose_ty = LLVMFunctionType(c->t_void, ps, 6, 0);
            c->transpose_fn = LLVMAddFunction(c->mod, "snnrt_transpose", c->transpose_ty);
        }
        const int64_t N = f->values[i].shape.dim[1];
        LLVMValueRef a[6] = {addr_base(c, fi, i, SNN_REGION_PRE), c->B, i64c(c, N), i64c(c, N),
                             c->buf_ptr[tr], c->B};
        LLVMBuildCall2(c->b, c->transpose_ty, c->transpose_fn, a, 6, "");
    }
}

/* One function of the module: pre, state inits, its time loops, post (see the essay). */
static void emit_func(cg_ctx *c, int fi) {
    const snn_ir_func *f = c->plan.fn[fi];
    c->t = NULL;
    emit_region(c, fi, SNN_REGION_PRE);
    fill_padded_weights(c, fi);
    fill_transposed(c, fi);
    for (int32_t s = 0; s < f->n_states; s++) {
        const snn_ir_state *st = &f->states[s];
        LLVMValueRef sb = state_p(c, fi, s, 0);
        if (st->init_from >= 0)
            LLVMBuildMemCpy(c->b, sb, 4, addr_of(c, fi, st->init_from, SNN_REGION_PRE), 4,
                            bytes_of(c, st->shape));
        else if (!(fi == CG_BWD && ti_starts_from_init(c, fi, s)) &&
                 !(fi == CG_FWD && state_starts_in_lanes(c, s)))
            fill(c, sb, st->shape, st->init, snn_sprintf(c->arena, "init.%s", st->name));
    }
    for (int32_t k = 0; k < c->plan.n_loops[fi]; k++)
        emit_time_loop(c, fi, &c->plan.loops[fi][k], k);
    emit_region(c, fi, SNN_REGION_POST);
}

/* ---- entry points ---- */

/* Addresses of every plan buffer in `work` (or, with work == NULL, just the total size). */
static LLVMValueRef layout(cg_ctx *c, LLVMValueRef work) {
    LLVMValueRef off = i64c(c, 0);
    for (int32_t i = 0; i < c->plan.n_bufs; i++) {
        const cg_buf *b = &c->plan.bufs[i];
        if (b->alias >= 0) {   /* reuses an earlier buffer's memory (plan.c, memory plan) */
            if (work) c->buf_ptr[i] = c->buf_ptr[b->alias];
            continue;
        }
        if (work) {
            const char *nm = b->kind == CG_BUF_STATE ? snn_sprintf(c->arena, "state.%s", b->name)
                           : b->kind == CG_BUF_TAPE ? snn_sprintf(c->arena, "tape.%s", b->name)
                           : b->name;
            c->buf_ptr[i] = LLVMBuildGEP2(c->b, LLVMInt8TypeInContext(c->ctx), work, &off, 1, nm);
        }
        LLVMValueRef n = numel(c, b->shape);   /* T slots back to back, rounded to 16 floats */
        if (b->kind == CG_BUF_TAPE) n = mul64(c, n, c->T, "");
        LLVMValueRef n16 = LLVMBuildAnd(c->b, LLVMBuildAdd(c->b, n, i64c(c, 15), ""),
                                        i64c(c, ~(int64_t)15), "");
        LLVMValueRef bytes = mul64(c, n16, i64c(c, 4), "");
        off = LLVMBuildAdd(c->b, off, bytes, "off");
    }
    return off;
}

static LLVMValueRef set_name(LLVMValueRef v, const char *n) {
    LLVMSetValueName2(v, n, strlen(n));
    return v;
}

/* The prologue shared by both entry points: batch fields, buffer addresses, constants, loss. */
static void prologue(cg_ctx *c, LLVMValueRef batch, LLVMValueRef work, LLVMValueRef res) {
    /* snn_batch (snnrt.h): batch, steps, x, labels, seed, row0 */
    LLVMTypeRef bt_fields[6] = {c->t_i64, c->t_i64, c->t_ptr, c->t_ptr, c->t_i64, c->t_i64};
    LLVMTypeRef bt = LLVMStructTypeInContext(c->ctx, bt_fields, 6, 0);
    LLVMValueRef *dst[6] = {&c->B, &c->T, &c->x, &c->labels, &c->seed, &c->row0};
    const char *names[6] = {"B", "T", "x", "labels", "seed", "row0"};
    for (unsigned i = 0; i < 6; i++)
        *dst[i] = LLVMBuildLoad2(c->b, bt_fields[i], LLVMBuildStructGEP2(c->b, bt, batch, i, ""),
                                 names[i]);
    c->Bfull = c->B;
    c->row_off = NULL;
    c->cur_loop = -1;
    /* no rows or no steps: nothing to compute (and no last step to read); loss NaN, return 1 */
    LLVMBasicBlockRef bad = new_block(c, "empty.batch"), ok = new_block(c, "start");
    LLVMValueRef empty = LLVMBuildOr(c->b, LLVMBuildICmp(c->b, LLVMIntSLT, c->B, i64c(c, 1), ""),
                                     LLVMBuildICmp(c->b, LLVMIntSLT, c->T, i64c(c, 1), ""), "");
    LLVMBuildCondBr(c->b, empty, bad, ok);
    LLVMPositionBuilderAtEnd(c->b, bad);
    store_f32(c, f32c(c, NAN), res);   /* snn_result.loss is its first field */
    LLVMBuildRet(c->b, i32c(c, 1));
    LLVMPositionBuilderAtEnd(c->b, ok);
    layout(c, work);
    for (int fi = 0; fi < 2; fi++) {
        const snn_ir_func *f = c->plan.fn[fi];
        if (!f) continue;
        for (int32_t i = 0; i < f->n_values; i++)
            if (c->plan.val[fi][i].buf < 0) continue;
            else if (f->values[i].op == SNN_OP_CONST)
                store_f32(c, f32c(c, f->values[i].fval), c->buf_ptr[c->plan.val[fi][i].buf]);
            else if (f->values[i].op == SNN_OP_STEPS)
                store_f32(c, LLVMBuildSIToFP(c->b, c->T, c->t_f32, "steps"),
                          c->buf_ptr[c->plan.val[fi][i].buf]);
    }
    store_f32(c, f32c(c, 0.0), c->buf_ptr[c->plan.misc_buf]);
}

/* res->loss = loss; res->scores = final scores state (if asked); returns !isfinite(loss). */
static void epilogue(cg_ctx *c, LLVMValueRef res) {
    LLVMTypeRef rt_fields[2] = {c->t_f32, c->t_ptr};
    LLVMTypeRef rt = LLVMStructTypeInContext(c->ctx, rt_fields, 2, 0);
    LLVMValueRef loss = load_f32(c, c->buf_ptr[c->plan.misc_buf], "loss");
    store_f32(c, loss, LLVMBuildStructGEP2(c->b, rt, res, 0, ""));
    if (c->m->scores_state >= 0 && c->m->scores_state < c->m->forward.n_states) {
        LLVMValueRef sp = LLVMBuildLoad2(c->b, c->t_ptr, LLVMBuildStructGEP2(c->b, rt, res, 1, ""),
                                         "scores");
        LLVMBasicBlockRef copy = new_block(c, "scores.copy"), done = new_block(c, "scores.done");
        LLVMBuildCondBr(c->b, LLVMBuildIsNotNull(c->b, sp, ""), copy, done);
        LLVMPositionBuilderAtEnd(c->b, copy);
        const snn_ir_state *st = &c->m->forward.states[c->m->scores_state];
        LLVMBuildMemCpy(c->b, sp, 4, state_final(c, CG_FWD, c->m->scores_state), 4,
                        bytes_of(c, st->shape));
        LLVMBuildBr(c->b, done);
        LLVMPositionBuilderAtEnd(c->b, done);
    }
    LLVMValueRef fin = LLVMBuildFCmp(c->b, LLVMRealOLT, intrinsic(c, "llvm.fabs", &loss, 1),
                                     f32c(c, INFINITY), "finite");
    LLVMBuildRet(c->b, LLVMBuildSelect(c->b, fin, i32c(c, 0), i32c(c, 1), ""));
}

static LLVMValueRef begin_entry(cg_ctx *c, const char *name, LLVMTypeRef ret, int n, const char **pn) {
    LLVMTypeRef ps[5] = {c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr, c->t_ptr};
    LLVMTypeRef fty = LLVMFunctionType(ret, ps, (unsigned)n, 0);
    LLVMValueRef fn = LLVMAddFunction(c->mod, name, fty);
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    unsigned noalias = LLVMGetEnumAttributeKindForName("noalias", 7);
    for (int i = 0; i < n; i++) {
        set_name(LLVMGetParam(fn, (unsigned)i), pn[i]);
        if (strcmp(pn[i], "work") == 0)
            LLVMAddAttributeAtIndex(fn, (unsigned)i + 1, LLVMCreateEnumAttribute(c->ctx, noalias, 0));
    }
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    return fn;
}

static LLVMValueRef emit_work_bytes(cg_ctx *c) {
    LLVMTypeRef ps[2] = {c->t_i64, c->t_i64};
    LLVMValueRef fn = LLVMAddFunction(c->mod, "snn_work_bytes", LLVMFunctionType(c->t_i64, ps, 2, 0));
    LLVMSetLinkage(fn, LLVMInternalLinkage);
    c->fn = fn;
    LLVMPositionBuilderAtEnd(c->b, LLVMAppendBasicBlockInContext(c->ctx, fn, "entry"));
    c->B = c->Bfull = set_name(LLVMGetParam(fn, 0), "B");
    c->T = set_name(LLVMGetParam(fn, 1), "T");
    LLVMBuildRet(c->b, layout(c, NULL));
    return fn;
}

bool cg_lower_module(cg_ctx *c) {
    const cg_plan *p = &c->plan;
    c->group_fn = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(p->n_groups + 1));
    c->group_fn_first = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(p->n_groups + 1));
    c->group_fn_ty = snn_alloc(c->arena, sizeof(LLVMTypeRef) * (size_t)(p->n_groups + 1));
    c->buf_ptr = snn_alloc(c->arena, sizeof(LLVMValueRef) * (size_t)(p->n_bufs + 1));
    for (int fi = 0; fi < 2; fi++)
        c->op_kernels[fi] = p->fn[fi] ? snn_alloc(c->arena, sizeof(cg_kfn) *
                                                  (size_t)(p->fn[fi]->n_values + 1))
                                      : NULL;

    LLVMValueRef wb = emit_work_bytes(c);

    const char *fb_names[5] = {"params", "grads", "batch", "work", "res"};
    LLVMValueRef fb = begin_entry(c, "snn_forward_backward", c->t_i32, 5, fb_names);
    c->params = LLVMGetParam(fb, 0);
    c->grads = LLVMGetParam(fb, 1);
    c->taping = true;
    prologue(c, LLVMGetParam(fb, 2), LLVMGetParam(fb, 3), LLVMGetParam(fb, 4));
    emit_func(c, CG_FWD);
    for (int32_t i = 0; i < c->m->n_params; i++)   /* gradients that are accumulated */
        if (c->plan.grad_mode[i] == CG_GRAD_ADD)
            fill(c, param_ptr(c, c->grads, i, "grad"), c->m->params[i].shape, 0.0f, "zero");
    if (p->fn[CG_BWD]) emit_func(c, CG_BWD);
    epilogue(c, LLVMGetParam(fb, 4));

    const char *f_names[4] = {"params", "batch", "work", "res"};
    LLVMValueRef fw = begin_entry(c, "snn_forward", c->t_i32, 4, f_names);
    c->params = LLVMGetParam(fw, 0);
    c->grads = NULL;
    c->taping = false;
    prologue(c, LLVMGetParam(fw, 1), LLVMGetParam(fw, 2), LLVMGetParam(fw, 3));
    emit_func(c, CG_FWD);
    epilogue(c, LLVMGetParam(fw, 3));

    cg_emit_model_desc(c, wb, fb, fw);
    return !c->failed;
}
