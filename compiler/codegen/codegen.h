/* codegen.h: SNN IR -> LLVM -> object / assembly / executable, and an in-process JIT.
 *
 * This is the public face of compiler/codegen/, the only part of snnc that includes LLVM
 * headers; nothing here mentions an LLVM type. The generated code implements the seam of
 * runtime/snnrt.h: it defines one global, `const snn_model_desc snn_model`, whose entry points
 * (work_bytes, forward_backward, forward) run the module's forward function over the time loop
 * (keeping a tape of the forward step values that backward reads) and then its backward
 * function in reverse time. How values become buffers and loops is described in lower.c.
 *
 * Typical use (the driver):
 *
 *     snn_codegen_options o;
 *     snn_codegen_options_default(&o);       // host CPU, -O3, no verifier
 *     o.cpu = cli_cpu;                        // --cpu=NAME, or NULL
 *     if (!snn_codegen(arena, diag, module, &o, SNN_EMIT_EXE, "train")) report diag
 */
#ifndef SNN_CODEGEN_H
#define SNN_CODEGEN_H

#include "ir/ir.h"

struct snn_model_desc;   /* runtime/snnrt.h */

typedef enum {
    SNN_EMIT_LLVM,       /* LLVM IR text (after optimization, if opt_level > 0) */
    SNN_EMIT_ASM,        /* target assembly */
    SNN_EMIT_OBJ,        /* relocatable object (PIC) exporting snn_model */
    SNN_EMIT_EXE         /* the object linked with libsnnrt.a into a trainer */
} snn_emit_kind;

typedef struct {
    const char *cpu;          /* target CPU; NULL: the host's (see snn_codegen_host_cpu) */
    const char *features;     /* target features ("+avx2,-avx512f"); NULL: the host's when cpu is
                                 NULL, none otherwise */
    int opt_level;            /* 0: no optimization; 1..3: LLVM's default<On> pipeline */
    bool verify;              /* run LLVMVerifyModule on the generated module (tests set it);
                                 a failure is reported as an internal error */
    const char *runtime_dir;  /* EXE: where libsnnrt.a is; NULL: $SNNC_RUNTIME_DIR, else the
                                 directory of the running executable (/proc/self/exe) */
    const char *cc;           /* EXE: the linker driver; NULL: $CC, else "cc" */
    bool time_loops;          /* follow the time loops of the fission pass (-O2): separate
                                 scans, parallel loops batched over all T steps. Off by default:
                                 measured on Tutorial 5 it is slower than one fused loop over
                                 the (reordered) step region, whose per-step working set stays
                                 in cache while time loops stream [T, B, N] arrays (see
                                 plan.c). Correct either way (tests run both). */
    bool no_recompute;        /* -fno-recompute: keep the tape and whole-batch time loops instead
                                 of recomputing in row tiles (plan.c, plan_recompute) */
    bool no_fuse_matmul;      /* -fno-fuse-matmul: every matmul through snnrt_sgemm, none with a
                                 short K inside a loop (plan.c, plan_fuse_matmul) */
    bool no_rec_merge;        /* -fno-rec-merge: backward's recomputation as its own loop at each
                                 step, not inside the loop that reads it (plan.c, plan_rec_merge) */
    bool no_fuse_wgrad;       /* -fno-fuse-wgrad: a short weight gradient added into its state by
                                 snnrt_sgemm, not inside the loop of its operand (plan.c,
                                 plan_fuse_wgrad) */
    bool no_fuse_linear;      /* -fno-fuse-linear: a linear layer of spikes with a short output
                                 through snnrt_sgemm, not inside the loop that makes the spikes
                                 (plan.c, plan_fuse_linear) */
    bool no_time_inner;       /* -fno-time-inner: backward's tiled loop with the steps outermost,
                                 not innermost (plan.c, plan_time_inner) */
    bool no_rows_in_lanes;    /* -fno-rows-in-lanes: a linear layer summed in its input's loop
                                 with the columns in the vector lanes and a lane sum per row, not
                                 16 rows in the lanes (plan.c, plan_rows_in_lanes) */
} snn_codegen_options;

/* Fills o with the defaults: host CPU and features, opt_level 3, verify off, runtime and cc
 * looked up as described above. */
void snn_codegen_options_default(snn_codegen_options *o);

/* Generates code for module m (forward, and backward if autodiff has run) and writes it as
 * `kind` to out_path ("-" = stdout, for LLVM and ASM only). For EXE it emits a temporary
 * object and runs `cc -o out_path OBJ RUNTIME_DIR/libsnnrt.a -lopenblas -lz -lm -fopenmp`.
 * Returns false with diagnostics on d (an unsupported construct, a verifier failure, a missing
 * runtime library, a failing cc, an unwritable file). Allocates temporaries in a; every LLVM
 * object it creates is disposed before it returns. */
bool snn_codegen(snn_arena *a, snn_diag *d, const snn_ir_module *m, const snn_codegen_options *o,
                 snn_emit_kind kind, const char *out_path);

/* The CPU name and feature string codegen uses for the host: LLVM's host CPU name, except
 * "znver4" when LLVM says "generic" but the host has AVX-512F. Strings live in a. */
const char *snn_codegen_host_cpu(snn_arena *a);
const char *snn_codegen_host_features(snn_arena *a);

/* ---- the loop plan, without LLVM ---- */

/* Prints what codegen will generate for m (--emit=loops): the buffers of the work area, and per
 * function and region the fused elementwise loops (which values each keeps in registers and
 * which it stores, ->mem or ->tape), the sgemm calls, reductions, losses, state copies. */
bool snn_codegen_print_loops(snn_arena *a, snn_diag *d, const snn_ir_module *m, void *file);
/* The same for the plan options o give (NULL: the defaults; time_loops shows the loops). */
bool snn_codegen_print_loops_with(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                                  const snn_codegen_options *o, void *file);

/* Sizes of the generated code's work area for a batch and step count (--stats). work_bytes is
 * exactly what the generated snn_model.work_bytes returns with the default options; tape_bytes the part that keeps
 * forward values for backward (bytes saved for backward), state_bytes the states'. */
typedef struct {
    int64_t work_bytes, tape_bytes, state_bytes;
    int32_t n_buffers, n_taped, n_loops;
    int64_t shared_bytes;   /* bytes of value buffers that reuse another's memory (their live
                               ranges do not overlap): the work area without reuse would be
                               work_bytes + shared_bytes; work_bytes is the peak */
    /* each taped forward value (name as in --emit=ir) and its bytes, for per-layer reports;
       the first SNN_CODEGEN_TAPES_MAX of them (tape_bytes counts all) */
#define SNN_CODEGEN_TAPES_MAX 64
    const char *tape_name[SNN_CODEGEN_TAPES_MAX];
    int64_t tape_each[SNN_CODEGEN_TAPES_MAX];
    /* backward's second run of a forward loop (the recompute plan, --emit=loops): its FLOPs
       per iteration (every member of the loop, T steps) and one of its values' names, for
       the layer; 0 and NULL without recomputation */
    double recompute_flops;
    const char *recompute_name;
    /* the codegen plans that fired, by the names of their -fno- flags: matmuls with a short K
       inside a loop (fuse-matmul), weight gradients inside a loop (fuse-wgrad), the
       recomputation merged into its reader (rec-merge), backward's tiled loop with the steps
       innermost (time-inner), short linear layers inside their input's loop (fuse-linear) */
    int n_fuse_matmul, n_fuse_wgrad, n_fuse_linear, n_rows_in_lanes;
    bool rec_merge, time_inner;
} snn_codegen_sizes;
bool snn_codegen_stats(snn_arena *a, snn_diag *d, const snn_ir_module *m, int64_t batch,
                       int64_t steps, snn_codegen_sizes *out);
/* The same for the plan options o give (NULL: the defaults). */
bool snn_codegen_stats_with(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                            const snn_codegen_options *o, int64_t batch, int64_t steps,
                            snn_codegen_sizes *out);

/* ---- in-process JIT (tests; a future `snnc --run`) ---- */

typedef struct snn_jit snn_jit;

/* An external symbol the generated code may call, resolved to addr instead of being looked up
 * in the process (e.g. {"snnrt_sgemm", my_sgemm}). Functions the process exports (libm, libc)
 * are found without this. */
typedef struct {
    const char *name;
    void *addr;
} snn_jit_symbol;

/* Generates and optimizes code for m as snn_codegen does, then compiles it in memory with
 * LLVM's ORC LLJIT. Returns NULL with diagnostics on d on failure. The result owns all its LLVM
 * objects; free it with snn_jit_free. */
snn_jit *snn_jit_compile(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                         const snn_codegen_options *o, const snn_jit_symbol *syms, int n_syms);
/* The generated `snn_model` descriptor, valid until snn_jit_free. */
const struct snn_model_desc *snn_jit_model(snn_jit *j);
void snn_jit_free(snn_jit *j);

#endif
