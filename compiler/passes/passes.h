/* passes.h: the IR optimization passes and the pass manager that runs them.
 *
 * Every pass has the same signature and lives in its own file, compiler/passes/<name>.c, whose
 * header says what it requires and what it changes. The table compiler/passes/passes.def is the
 * only list of passes: the enum below, the manager's order, flag parsing and --help all come
 * from it.
 *
 * The driver calls the manager twice:
 *
 *   m = snn_lower(...);
 *   snn_run_passes(a, d, m, &opt);     stage 1: SNN_PASS_FORWARD passes on the forward function
 *   snn_autodiff(a, d, m);
 *   snn_run_passes(a, d, m, &opt);     stage 2: SNN_PASS_BACKWARD passes on the backward function
 *                                      (and SNN_PASS_FORWARD_LATE ones on the forward function)
 *
 * The stage is read from the module: stage 1 while m->backward is empty, stage 2 after
 * autodiff. Every pass keeps the program's meaning (loss, gradients, scores): each value is
 * computed by the same ops from the same operands. Only the order of a gradient's float
 * additions may change (once hoisted, a linear's adjoint is summed over time before its
 * matmul, not after); tests/unit/test_passes.c checks every pass against the reference
 * interpreter to 1e-5 relative.
 *
 * Flags (snn_pass_parse_flag, for the driver):
 *   -O0 | -O1 | -O2          0: no passes; 1: the level-1 passes once per stage; 2: all passes,
 *                            the stage's passes repeated until none changes anything (at most
 *                            4 rounds)
 *   -fno-NAME / -fNAME       disable / enable pass NAME (-fNAME also runs a pass of a higher
 *                            level, e.g. -ffission at -O1)
 *   --print-after=NAME       print the function after pass NAME, only if it changed it
 *   --print-after-all        the same for every pass
 *   --verify-each            run snn_ir_verify after every pass (tests always do)
 */
#ifndef SNN_PASSES_H
#define SNN_PASSES_H

#include "ir/ir.h"

/* where a pass runs (passes.def) */
enum {
    SNN_PASS_FORWARD = 1u,       /* forward function, before autodiff */
    SNN_PASS_BACKWARD = 2u,      /* backward function, after autodiff */
    SNN_PASS_FORWARD_LATE = 4u,  /* forward function, after autodiff */
};

/* One pass: rewrites f (a function of m) in place; returns true if it changed anything.
 * Reports internal errors to d if it finds the IR inconsistent (the manager then stops). */
typedef bool (*snn_pass_fn)(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f);

#define SNN_PASS(name, function, where, level, help) \
    bool function(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f);
#include "passes/passes.def"
#undef SNN_PASS

typedef enum {
#define SNN_PASS(name, function, where, level, help) SNN_PASS_ID_##name,
#include "passes/passes.def"
#undef SNN_PASS
    SNN_PASS_COUNT_
} snn_pass_id;

typedef struct {
    const char *name;
    snn_pass_fn fn;
    unsigned where;             /* SNN_PASS_FORWARD | ... */
    int level;                  /* lowest -O level that runs it */
    const char *help;
} snn_pass_info;

/* The table, in run order, indexed by snn_pass_id. */
extern const snn_pass_info snn_pass_table[SNN_PASS_COUNT_];

typedef struct {
    int opt_level;              /* 0: run nothing */
    uint32_t disabled;          /* bit (1u << id) per disabled pass (-fno-NAME) */
    uint32_t enabled;           /* bit per pass turned on (-fNAME) even if its level is above
                                   opt_level (with opt_level >= 1) */
    uint32_t print_after;       /* bit per pass to print after (--print-after=NAME) */
    bool print_after_all;
    bool verify;                /* snn_ir_verify after every pass that changed something */
    void *print_file;           /* FILE * for --print-after output; NULL: stdout */
    uint32_t *fired;            /* if not NULL: OR-ed with the bit of every pass that changed
                                   something (for `snnc --stats`) */
} snn_pass_options;

/* -O1, nothing disabled or printed, no verification, output to stdout. */
snn_pass_options snn_pass_options_default(void);

/* Runs the passes of the module's stage (see above) as opt says. Returns false if a pass
 * reported an error or the verifier rejected its result (the error names the pass); the module
 * is then left as that pass made it. opt NULL: snn_pass_options_default(). */
bool snn_run_passes(snn_arena *a, snn_diag *d, snn_ir_module *m, const snn_pass_options *opt);

/* The pass id of a name, or -1. */
int snn_pass_lookup(const char *name);

/* Parses one command-line argument of those listed above into o. Returns 1 if it was one
 * (applied), 0 if it is not a pass flag (the driver handles it), -1 if it is a pass flag with
 * an unknown pass name or a bad -O level (o unchanged; the driver reports it). */
int snn_pass_parse_flag(snn_pass_options *o, const char *arg);

/* ---- time loops (compiler/passes/fission.c; design: docs/passes.md, "Time batching") ----
 * The step region of a function as a sequence of time loops, each run for all t before the
 * next: scans (recurrences: step by step) and parallel loops (no recurrence, at most time
 * sums: every op may run once over all T*B rows, a LINEAR as one GEMM). Computed from the IR
 * on demand; the loops are contiguous only once the fission pass has ordered the step region
 * (sorted == true); otherwise the plan is the single loop of today. Values with crosses[i]
 * are read by a later loop and must be kept for all T steps. */
typedef enum { SNN_LOOP_SCAN, SNN_LOOP_PARALLEL } snn_loop_kind;
typedef struct {
    int32_t begin, end;         /* value ids [begin, end) of the step region */
    snn_loop_kind kind;
    int32_t level;
} snn_time_loop;
typedef struct {
    snn_time_loop *loops; int32_t n_loops;
    int32_t *level;             /* per value: its level, -1 outside the step region */
    bool *crosses;              /* per value: read by a later loop (kept for all T) */
    bool *reduction_state;      /* per state: a time sum (next = add(read, v)), not a recurrence */
    bool sorted;                /* the step region is in loop order */
} snn_time_plan;

/* Builds the plan of f (a verified function); free with snn_time_plan_free. */
void snn_time_plan_build(const snn_ir_func *f, snn_time_plan *p);
void snn_time_plan_free(snn_time_plan *p);
/* Prints the plan, one line per loop (kind, first and last value, states), then the values
 * kept for all steps. */
void snn_time_plan_print(const snn_ir_func *f, const snn_time_plan *p, void *file /* FILE * */);

/* ---- spikes (compiler/passes/spikes.c) ----
 * mask[i]: value i of f (a function of m) only takes the values 0 and 1, e.g. a layer's spikes,
 * their FWD reads and recomputations in backward, a recurrent layer's spk.prev state read. A
 * LINEAR or MATMUL with a binary operand may be computed as event-driven accumulation.
 * malloc'd, f->n_values entries; the caller frees. */
bool *snn_ir_binary_values(const snn_ir_module *m, const snn_ir_func *f);

/* Writes the pass list for --help: one line per pass, "  NAME  where  help". */
void snn_pass_print_help(void *file /* FILE * */);

#endif
