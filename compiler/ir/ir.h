/* ir.h: the SNN IR, the one representation between the AST and LLVM.
 *
 * A module holds the parameters, the surrogate functions and two functions, forward and
 * backward. Each function is a program over a time loop, in three regions executed in order:
 *
 *   pre    once, before the loop (time-invariant values: hoisting moves work here)
 *   step   once per time step (t = 0..T-1 for forward, T-1..0 for backward)
 *   post   once, after the loop (epilogue: losses on time-reduced values)
 *
 * Values are SSA: every op produces one value whose id is its index in func->values; operands
 * refer to earlier ids. Values are stored region by region (all pre, then step, then post).
 * Shapes are static with the batch as the symbol B (SNN_DIM_B). States carry values across
 * steps: a STATE op reads the state's value from the previous step (its init at the first),
 * and state->next names the step value that becomes the state's value for the next step.
 *
 * The backward function reads forward values at the same step through FWD ops; codegen keeps
 * a tape of exactly the forward step values that backward reads. Backward states are the
 * adjoints carried backward through time (BPTT).
 *
 * Ownership: all of a module lives in the compilation's arena, except the growable value arrays,
 * which snn_ir_module_free releases.
 */
#ifndef SNN_IR_H
#define SNN_IR_H

#include "common.h"

typedef enum {
#define IR_OP(name, mnemonic, arity, cls) SNN_OP_##name,
#include "ir/ops.def"
#undef IR_OP
    SNN_OP_COUNT_
} snn_op;

typedef enum { SNN_CLASS_LEAF, SNN_CLASS_ELEMWISE, SNN_CLASS_LINALG, SNN_CLASS_REDUCE,
               SNN_CLASS_LOSS, SNN_CLASS_SINK } snn_op_class;

typedef struct {
    const char *mnemonic;
    int32_t arity;          /* -1: variable (LINEAR: 2 or 3) */
    snn_op_class cls;
} snn_op_info;
extern const snn_op_info snn_op_infos[SNN_OP_COUNT_];

#define SNN_DIM_B (-1)      /* the batch dimension, a symbol until run time */
#define SNN_IR_MAX_RANK 3
#define SNN_IR_MAX_ARGS 3
#define SNN_IR_MAX_ATTRS 4

/* Right-aligned broadcasting as in NumPy: [] and [N] broadcast against [B,N]. */
typedef struct {
    int32_t rank;
    int64_t dim[SNN_IR_MAX_RANK];
} snn_shape;

typedef enum { SNN_REGION_PRE, SNN_REGION_STEP, SNN_REGION_POST } snn_region;

typedef struct {
    snn_op op;
    snn_region region;
    int32_t nargs;
    int32_t args[SNN_IR_MAX_ARGS];  /* value ids */
    snn_shape shape;                /* of the result; rank 0 for sinks */
    const char *name;               /* printed as %name; unique within the function */
    snn_loc loc;                    /* the source construct it came from */
    float fval;                     /* CONST value; LOSS_ADD scale */
    int32_t ival;                   /* PARAM/STATE/FWD/GRAD_ACC index; FIRE surrogate index */
    float attr[SNN_IR_MAX_ATTRS];   /* op-specific (MSE_ONEHOT targets) */
} snn_ir_value;

typedef struct {
    const char *name;
    snn_shape shape;
    float init;                     /* every element starts at this value, unless init_from >= 0 */
    int32_t init_from;              /* pre-region value id whose value is the initial value (the
                                       adjoint of a final state, in backward), or -1 */
    int32_t next;                   /* value id (step region) of the value for the next step */
    snn_loc loc;
} snn_ir_state;

typedef enum { SNN_PINIT_CONST, SNN_PINIT_UNIFORM_FAN_IN } snn_param_init;

typedef struct {
    const char *name;               /* "h.weight" */
    snn_shape shape;                /* no B */
    snn_param_init init;
    float init_value;
    int64_t fan_in;
    snn_loc loc;
} snn_ir_param;

typedef struct {
    const char *name;               /* "forward" or "backward" */
    int32_t time_dir;               /* +1 forward in time, -1 reverse */
    snn_ir_value *values; int32_t n_values, cap_values;
    snn_ir_state *states; int32_t n_states, cap_states;
} snn_ir_func;

/* A surrogate derivative dS/dx as a straight-line program over ARG (x), all constants folded
 * in; values[ret] is the result. Autodiff inlines it at each FIRE. */
typedef struct {
    const char *name;               /* "atan(alpha=2)" */
    snn_ir_value *values; int32_t n_values, cap_values;
    int32_t ret;
} snn_ir_surrogate;

typedef struct {
    const char *name;               /* model name */
    const char *source_file;
    int64_t n_inputs, n_classes;
    snn_ir_param *params; int32_t n_params, cap_params;
    snn_ir_surrogate *surrogates; int32_t n_surrogates, cap_surrogates;
    snn_ir_func forward;
    snn_ir_func backward;           /* empty (n_values == 0) until autodiff runs */
    int32_t scores_state;           /* forward state whose final value is the metric's scores
                                       [B, n_classes] (-1 if none) */
    const char *loss_name, *metric_name;
    /* the train block's settings, passed through to the runtime descriptor */
    struct {
        const char *data_dir;
        int64_t steps, batch, epochs;
        uint64_t seed;
        int32_t optimizer;          /* snn_optimizer_kind of runtime/snnrt.h */
        float lr, beta1, beta2, eps, weight_decay, momentum;
    } train;
} snn_ir_module;

/* ---- construction (compiler/ir/ir.c) ---- */
snn_ir_module *snn_ir_module_new(snn_arena *a, const char *name);
void snn_ir_module_free(snn_ir_module *m);   /* the value arrays; the rest is in the arena */
int32_t snn_ir_add_param(snn_ir_module *m, snn_ir_param p);
int32_t snn_ir_add_state(snn_ir_func *f, snn_ir_state s);
/* Appends v (which must belong to a region not before the last value's) and returns its id.
 * If v.name is NULL or already used in f, a unique name is made from it (arena a). */
int32_t snn_ir_append(snn_arena *a, snn_ir_func *f, snn_ir_value v);
/* Shape helpers */
snn_shape snn_shape_scalar(void);
snn_shape snn_shape_1(int64_t d0);
snn_shape snn_shape_2(int64_t d0, int64_t d1);
bool snn_shape_eq(snn_shape a, snn_shape b);
/* Broadcast of a and b; false if they do not broadcast. */
bool snn_shape_broadcast(snn_shape a, snn_shape b, snn_shape *out);
/* Elements for a given batch size. */
int64_t snn_shape_numel(snn_shape s, int64_t batch);
/* Size of dimension i for a given batch size (SNN_DIM_B -> batch). */
int64_t snn_shape_dim(snn_shape s, int i, int64_t batch);

/* ---- text form (compiler/ir/print.c, compiler/ir/parse_ir.c) ----
 * The printed form parses back to an equal module (snn_ir_parse(snn_ir_print(m)) == m). */
void snn_ir_print(const snn_ir_module *m, void *file /* FILE* */, bool with_backward);
void snn_ir_print_func(const snn_ir_module *m, const snn_ir_func *f, void *file);
snn_ir_module *snn_ir_parse(snn_arena *a, snn_diag *d, const char *file, const char *text);

/* ---- verifier (compiler/ir/verify.c) ----
 * Checks operand ids precede their users and respect regions, arities, shapes and
 * broadcasting, state next ids, indices. Reports violations as internal errors on d;
 * returns true if the module is well formed. */
bool snn_ir_verify(const snn_ir_module *m, snn_diag *d);

/* ---- autodiff (compiler/autodiff/autodiff.c) ----
 * Builds m->backward from m->forward: reverse mode, one rule per op, surrogates inlined at
 * FIRE, DETACH and comparisons cut the gradient, states carry adjoints backward in time.
 * Returns false (with diagnostics) on an op it cannot differentiate. */
bool snn_autodiff(snn_arena *a, snn_diag *d, snn_ir_module *m);

#endif
