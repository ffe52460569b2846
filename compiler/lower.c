/* lower.c: AST -> SNN IR. See lower.h for what it produces.
 *
 * The shape of this file follows the program: lower_model walks the model's items, lowering
 * each layer's tensor expression (lower_tensor); a neuron call is inlined by lower_neuron,
 * which runs the step statements over an environment (struct scope) that maps the neuron's
 * parameters, states, locals and input to IR values; lower_expr turns one expression into
 * elementwise IR, folding constants as it goes so the printed IR shows 0.95, not
 * clamp(0.95, 0, 1). Surrogates are lowered through the same lower_expr into a scratch
 * function whose values then become the surrogate's straight-line program. Finally
 * lower_train turns the train block into loss sinks, the metric and the defaults.
 */
#include "lower.h"

#include "sema.h"

#include <math.h>
#include <stdlib.h>
#include <string.h>

#include "snnrt.h" /* snn_optimizer_kind */

typedef struct {
    const snn_ast *decl;        /* the LAYER node */
    const snn_ast *neuron;      /* the NEURON definition, or NULL for a plain tensor layer */
    int64_t width;
    int32_t n_outs;
    int32_t *outs;              /* value ids of the neuron's outs (or [0] = the tensor) */
    int32_t n_linear;           /* model-level linear() calls lowered so far (parameter names) */
    int32_t n_recurrent;        /* a neuron's recurrent linear() calls lowered so far */
} layer_info;

typedef struct {
    const snn_ast *def;         /* SURROGATE definition */
    double args[16];
    int32_t n_args;
    int32_t index;              /* in module->surrogates */
} surrogate_key;

typedef struct {
    snn_arena *a;
    snn_diag *d;
    const snn_program *prog;
    snn_ir_module *m;
    layer_info *layers; int32_t n_layers, cap_layers;
    surrogate_key *surr; int32_t n_surr, cap_surr;
    int32_t input_value;        /* the encoded input (-1 until first used) */
    const snn_ast *input_decl;
    const snn_ast *encoder;     /* CALL of the encoder builtin, or NULL = direct */
    bool failed;
} lower_ctx;

/* What names mean while lowering the body of a definition. */
typedef struct scope {
    lower_ctx *cx;
    snn_ir_func *f;
    snn_region region;
    const snn_ast *def;         /* NEURON, SURROGATE or FUNC */
    snn_ast *const *bound;      /* AST expression bound to each parameter (NULL for FUNC) */
    int32_t *param_val;         /* IR value per parameter, -1 = fold from bound[i] */
    int32_t *state_val;         /* current value of each state */
    struct local { const char *name; int32_t val; } *locals; int32_t n_locals, cap_locals;
    int32_t var_val;            /* the step input or the surrogate's variable */
    const char *prefix;         /* layer name, for value and parameter names */
    layer_info *layer;          /* for recurrent linear() */
    int64_t width;
} scope;

static int32_t lower_expr(scope *s, const snn_ast *e);

/* ---------------------------------------------------------------- emitting values */

static snn_ir_value *val(scope *s, int32_t id) { return &s->f->values[id]; }

static bool is_const(scope *s, int32_t id, float *out) {
    const snn_ir_value *v = val(s, id);
    if (v->op != SNN_OP_CONST) return false;
    if (out) *out = v->fval;
    return true;
}

static int32_t emit_const(scope *s, double value, snn_loc loc) {
    /* Reuse an equal constant of this region: keeps printed IR short. */
    for (int32_t i = s->f->n_values - 1; i >= 0 && s->f->values[i].region == s->region; i--)
        if (s->f->values[i].op == SNN_OP_CONST && s->f->values[i].fval == (float)value)
            return i;
    snn_ir_value v = {.op = SNN_OP_CONST, .region = s->region, .fval = (float)value,
                      .shape = snn_shape_scalar(), .loc = loc, .name = "c"};
    return snn_ir_append(s->cx->a, s->f, v);
}

static float fold(snn_op op, const float *x) {
    switch (op) {
    case SNN_OP_NEG: return -x[0];
    case SNN_OP_EXP: return expf(x[0]);
    case SNN_OP_LOG: return logf(x[0]);
    case SNN_OP_TANH: return tanhf(x[0]);
    case SNN_OP_ABS: return fabsf(x[0]);
    case SNN_OP_SQRT: return sqrtf(x[0]);
    case SNN_OP_SIGMOID: return 1.0f / (1.0f + expf(-x[0]));
    case SNN_OP_HEAVISIDE: case SNN_OP_FIRE: return x[0] > 0 ? 1.0f : 0.0f;
    case SNN_OP_DETACH: return x[0];
    case SNN_OP_ADD: return x[0] + x[1];
    case SNN_OP_SUB: return x[0] - x[1];
    case SNN_OP_MUL: return x[0] * x[1];
    case SNN_OP_DIV: return x[0] / x[1];
    case SNN_OP_POW: return powf(x[0], x[1]);
    case SNN_OP_MIN: return x[0] <= x[1] ? x[0] : x[1];
    case SNN_OP_MAX: return x[0] >= x[1] ? x[0] : x[1];
    case SNN_OP_GT: return x[0] > x[1];
    case SNN_OP_GE: return x[0] >= x[1];
    case SNN_OP_LT: return x[0] < x[1];
    case SNN_OP_LE: return x[0] <= x[1];
    case SNN_OP_EQ: return x[0] == x[1];
    case SNN_OP_NE: return x[0] != x[1];
    case SNN_OP_SELECT: return x[0] != 0 ? x[1] : x[2];
    default: return NAN;
    }
}

/* Appends an elementwise op, folding it when every operand is a constant (ops that stop
 * gradients fold too: a constant has none). */
static int32_t emit_ew(scope *s, snn_op op, int nargs, const int32_t *args, const char *name,
                       snn_loc loc, int32_t ival) {
    float c[3];
    bool all_const = op != SNN_OP_RATE;
    for (int i = 0; i < nargs; i++) all_const = all_const && is_const(s, args[i], &c[i]);
    if (all_const) return emit_const(s, fold(op, c), loc);
    snn_ir_value v = {.op = op, .region = s->region, .nargs = nargs, .loc = loc, .ival = ival};
    v.shape = val(s, args[0])->shape;
    for (int i = 0; i < nargs; i++) {
        v.args[i] = args[i];
        if (!snn_shape_broadcast(v.shape, val(s, args[i])->shape, &v.shape)) {
            snn_error(s->cx->d, loc, "operands of '%s' have incompatible shapes",
                      snn_op_infos[op].mnemonic);
            s->cx->failed = true;
        }
    }
    v.name = name ? name : (s->prefix ? snn_sprintf(s->cx->a, "%s.%s", s->prefix,
                                                    snn_op_infos[op].mnemonic)
                                      : snn_op_infos[op].mnemonic);
    return snn_ir_append(s->cx->a, s->f, v);
}

static int32_t emit1(scope *s, snn_op op, int32_t a, snn_loc loc) {
    return emit_ew(s, op, 1, &a, NULL, loc, 0);
}
static int32_t emit2(scope *s, snn_op op, int32_t a, int32_t b, snn_loc loc) {
    int32_t args[2] = {a, b};
    return emit_ew(s, op, 2, args, NULL, loc, 0);
}

/* Gives value id the name `name` if it has a generated one (so `mem = ...` prints as
 * %h.mem). Constants and values that already carry a user name keep theirs. */
static void name_value(scope *s, int32_t id, const char *name) {
    snn_ir_value *v = val(s, id);
    if (v->op == SNN_OP_CONST || v->op == SNN_OP_STATE || v->op == SNN_OP_PARAM ||
        v->op == SNN_OP_INPUT || v->op == SNN_OP_ARG)
        return;
    const char *mn = snn_op_infos[v->op].mnemonic;
    size_t pl = s->prefix ? strlen(s->prefix) + 1 : 0;
    if (strncmp(v->name + pl, mn, strlen(mn)) != 0) return;   /* already user-named */
    /* Rename: must stay unique in the function. */
    for (int32_t i = 0; i < s->f->n_values; i++)
        if (i != id && strcmp(s->f->values[i].name, name) == 0) return;
    v->name = snn_intern_cstr(s->cx->a, name);
}

static void fail(lower_ctx *cx, snn_loc loc, const char *fmt, const char *what) {
    snn_error(cx->d, loc, fmt, what);
    cx->failed = true;
}

/* ---------------------------------------------------------------- parameters */

static int32_t add_param(lower_ctx *cx, const char *name, snn_shape shape, snn_param_init init,
                         float init_value, int64_t fan_in, snn_loc loc) {
    snn_ir_param p = {.name = snn_intern_cstr(cx->a, name), .shape = shape, .init = init,
                      .init_value = init_value, .fan_in = fan_in, .loc = loc};
    return snn_ir_add_param(cx->m, p);
}

static int32_t emit_param(scope *s, int32_t index, snn_loc loc) {
    snn_ir_value v = {.op = SNN_OP_PARAM, .region = s->region, .ival = index, .loc = loc,
                      .shape = s->cx->m->params[index].shape,
                      .name = s->cx->m->params[index].name};
    return snn_ir_append(s->cx->a, s->f, v);
}

/* y = x W^T + b with fresh parameters "<base>.weight" [out, in] and "<base>.bias" [out]. */
static int32_t emit_linear(scope *s, int32_t x, int64_t out, bool bias, const char *base,
                           snn_loc loc) {
    lower_ctx *cx = s->cx;
    snn_shape xs = val(s, x)->shape;
    int64_t in = xs.rank ? xs.dim[xs.rank - 1] : 1;
    if (xs.rank != 2 || xs.dim[0] != SNN_DIM_B) {
        fail(cx, loc, "%s: linear() needs a [B, n] tensor input", base);
        return x;
    }
    int32_t w = add_param(cx, snn_sprintf(cx->a, "%s.weight", base), snn_shape_2(out, in),
                          SNN_PINIT_UNIFORM_FAN_IN, 0, in, loc);
    snn_ir_value v = {.op = SNN_OP_LINEAR, .region = s->region, .nargs = 2, .loc = loc,
                      .shape = snn_shape_2(SNN_DIM_B, out)};
    v.args[0] = x;
    v.args[1] = emit_param(s, w, loc);
    if (bias) {
        int32_t b = add_param(cx, snn_sprintf(cx->a, "%s.bias", base), snn_shape_1(out),
                              SNN_PINIT_UNIFORM_FAN_IN, 0, in, loc);
        v.args[2] = emit_param(s, b, loc);
        v.nargs = 3;
    }
    v.name = snn_sprintf(cx->a, "%s.linear", s->prefix ? s->prefix : base);
    return snn_ir_append(cx->a, s->f, v);
}

/* ---------------------------------------------------------------- surrogates */

/* Index of the surrogate instance `call` (a CALL of a SURROGATE definition whose arguments are
 * bound to constants), lowering it on first use. */
static int32_t lower_surrogate(lower_ctx *cx, const snn_ast *call) {
    const snn_ast *def = call->call.def;
    surrogate_key key = {.def = def, .n_args = def->def.params.n};
    if (key.n_args > 16) { fail(cx, call->loc, "surrogate '%s' has too many parameters", def->name); return -1; }
    for (int i = 0; i < key.n_args; i++)
        if (!snn_const_eval(call->call.bound[i], NULL, &key.args[i])) {
            fail(cx, call->call.bound[i]->loc, "surrogate parameter '%s' must be a constant",
                 def->def.params.items[i]->name);
            return -1;
        }
    for (int i = 0; i < cx->n_surr; i++)
        if (cx->surr[i].def == def && !memcmp(cx->surr[i].args, key.args, sizeof key.args))
            return cx->surr[i].index;

    snn_ir_func scratch = {.name = "surrogate"};
    int32_t *pv = snn_alloc(cx->a, sizeof(int32_t) * (size_t)(key.n_args + 1));
    scope s = {.cx = cx, .f = &scratch, .region = SNN_REGION_PRE, .def = def,
               .bound = call->call.bound, .param_val = pv};
    for (int i = 0; i < key.n_args; i++) pv[i] = -1;
    snn_ir_value arg = {.op = SNN_OP_ARG, .region = SNN_REGION_PRE, .shape = snn_shape_scalar(),
                        .name = def->def.var, .loc = def->loc};
    s.var_val = snn_ir_append(cx->a, &scratch, arg);
    int32_t ret = lower_expr(&s, def->def.body);

    /* Name it like the call: atan(alpha=2). */
    char *name = snn_sprintf(cx->a, "%s(", def->name);
    for (int i = 0; i < key.n_args; i++)
        name = snn_sprintf(cx->a, "%s%s%s=%g", name, i ? ", " : "",
                           def->def.params.items[i]->name, key.args[i]);
    snn_ir_surrogate sg = {.name = snn_intern_cstr(cx->a, snn_sprintf(cx->a, "%s)", name)),
                           .values = scratch.values, .n_values = scratch.n_values,
                           .cap_values = scratch.cap_values, .ret = ret};
    SNN_PUSH(cx->m->surrogates, cx->m->n_surrogates, cx->m->cap_surrogates, sg);
    free(scratch.states);
    key.index = cx->m->n_surrogates - 1;
    SNN_PUSH(cx->surr, cx->n_surr, cx->cap_surr, key);
    return key.index;
}

/* The surrogate `fire` uses: the named parameter, else the definition's only surrogate one. */
static int32_t fire_surrogate(scope *s, const snn_ast *call) {
    const snn_ast *def = s->def;
    int32_t pi = -1;
    if (call->call.args.n > 1) {
        const snn_ast *named = call->call.args.items[1];
        if (named->kind == SNN_AST_IDENT && named->ident.ref.kind == SNN_REF_PARAM)
            pi = named->ident.ref.index;
    } else {
        for (int i = 0; i < def->def.params.n; i++)
            if (def->def.params.items[i]->type == SNN_TY_SURROGATE) pi = i;
    }
    if (pi < 0 || !s->bound || !s->bound[pi] || s->bound[pi]->kind != SNN_AST_CALL) {
        fail(s->cx, call->loc, "%s: fire() has no surrogate to use here", def->name);
        return -1;
    }
    return lower_surrogate(s->cx, s->bound[pi]);
}

/* ---------------------------------------------------------------- expressions */

static int32_t lookup_local(scope *s, const char *name) {
    for (int32_t i = s->n_locals - 1; i >= 0; i--)
        if (s->locals[i].name == name) return s->locals[i].val;
    return -1;
}

static int32_t lower_param_ref(scope *s, int32_t index, snn_loc loc) {
    if (s->param_val[index] >= 0) return s->param_val[index];
    double c;
    if (s->bound && s->bound[index] && snn_const_eval(s->bound[index], NULL, &c))
        return emit_const(s, c, loc);
    fail(s->cx, loc, "parameter '%s' is not a number here", s->def->def.params.items[index]->name);
    return emit_const(s, 0, loc);
}

static int32_t lower_ident(scope *s, const snn_ast *e) {
    const snn_ref *r = &e->ident.ref;
    switch (r->kind) {
    case SNN_REF_PARAM: return lower_param_ref(s, r->index, e->loc);
    case SNN_REF_STATE: return s->state_val[r->index];
    case SNN_REF_LOCAL: {
        int32_t v = lookup_local(s, e->name);
        if (v >= 0) return v;
        break;
    }
    case SNN_REF_VAR: return s->var_val;
    case SNN_REF_CONST: case SNN_REF_SYMBOL: return emit_const(s, e->cval, e->loc);
    default: break;
    }
    snn_internal_error(s->cx->d, e->loc, "unresolved name '%s' in lowering", e->name);
    s->cx->failed = true;
    return emit_const(s, 0, e->loc);
}

static const snn_op binop_ops[SNN_BIN_COUNT_] = {
    [SNN_BIN_ADD] = SNN_OP_ADD, [SNN_BIN_SUB] = SNN_OP_SUB, [SNN_BIN_MUL] = SNN_OP_MUL,
    [SNN_BIN_DIV] = SNN_OP_DIV, [SNN_BIN_POW] = SNN_OP_POW, [SNN_BIN_LT] = SNN_OP_LT,
    [SNN_BIN_LE] = SNN_OP_LE, [SNN_BIN_GT] = SNN_OP_GT, [SNN_BIN_GE] = SNN_OP_GE,
    [SNN_BIN_EQ] = SNN_OP_EQ, [SNN_BIN_NE] = SNN_OP_NE,
    [SNN_BIN_AND] = SNN_OP_MUL,   /* on 0/1 truth values */
    [SNN_BIN_OR] = SNN_OP_MAX,
};

static const snn_op intrinsic_ops[SNN_INTR_COUNT_] = {
    [SNN_INTR_EXP] = SNN_OP_EXP, [SNN_INTR_LOG] = SNN_OP_LOG, [SNN_INTR_TANH] = SNN_OP_TANH,
    [SNN_INTR_ABS] = SNN_OP_ABS, [SNN_INTR_SQRT] = SNN_OP_SQRT,
    [SNN_INTR_SIGMOID] = SNN_OP_SIGMOID, [SNN_INTR_MIN] = SNN_OP_MIN,
    [SNN_INTR_MAX] = SNN_OP_MAX, [SNN_INTR_HEAVISIDE] = SNN_OP_HEAVISIDE,
    [SNN_INTR_DETACH] = SNN_OP_DETACH,
};

/* Inlines a call of a FUNC definition: its parameters bound to the lowered arguments. */
static int32_t lower_func_call(scope *s, const snn_ast *call) {
    const snn_ast *def = call->call.def;
    int32_t n = def->def.params.n;
    int32_t *pv = snn_alloc(s->cx->a, sizeof(int32_t) * (size_t)(n + 1));
    for (int i = 0; i < n; i++)
        pv[i] = call->call.bound[i] ? lower_expr(s, call->call.bound[i]) : emit_const(s, 0, call->loc);
    scope inner = *s;
    inner.def = def;
    inner.bound = NULL;
    inner.param_val = pv;
    inner.n_locals = inner.cap_locals = 0;
    inner.locals = NULL;
    return lower_expr(&inner, def->def.body);
}

static int32_t lower_call(scope *s, const snn_ast *e) {
    int32_t args[3];
    int n = e->call.args.n;
    snn_intrinsic in = e->call.intrinsic;
    if (e->call.def) {
        if (e->call.def->kind == SNN_AST_FUNC) return lower_func_call(s, e);
        fail(s->cx, e->loc, "'%s' cannot be called inside a neuron or surrogate", e->name);
        return emit_const(s, 0, e->loc);
    }
    switch (in) {
    case SNN_INTR_CLAMP: {
        for (int i = 0; i < 3; i++) args[i] = lower_expr(s, e->call.args.items[i]);
        int32_t lo = emit2(s, SNN_OP_MAX, args[0], args[1], e->loc);
        return emit2(s, SNN_OP_MIN, lo, args[2], e->loc);
    }
    case SNN_INTR_FIRE: {
        int32_t x = lower_expr(s, e->call.args.items[0]);
        int32_t k = fire_surrogate(s, e);
        if (k < 0) return x;
        return emit_ew(s, SNN_OP_FIRE, 1, &x, NULL, e->loc, k);
    }
    case SNN_INTR_LINEAR: {
        if (!s->layer) { fail(s->cx, e->loc, "%s", "linear() of a neuron's value needs a layer"); return emit_const(s, 0, e->loc); }
        int32_t x = lower_expr(s, e->call.args.items[0]);
        if (val(s, x)->shape.rank != 2) {
            fail(s->cx, e->loc, "%s", "linear() needs a per-neuron tensor (a state or a value of one)");
            return x;
        }
        const char *base = s->layer->n_recurrent++
                               ? snn_sprintf(s->cx->a, "%s.recurrent%d", s->prefix, s->layer->n_recurrent)
                               : snn_sprintf(s->cx->a, "%s.recurrent", s->prefix);
        return emit_linear(s, x, s->width, true, base, e->loc);
    }
    default:
        if (in > SNN_INTR_NONE_ && in < SNN_INTR_COUNT_ && intrinsic_ops[in]) {
            for (int i = 0; i < n && i < 3; i++) args[i] = lower_expr(s, e->call.args.items[i]);
            return emit_ew(s, intrinsic_ops[in], n, args, NULL, e->loc, 0);
        }
    }
    snn_internal_error(s->cx->d, e->loc, "call of '%s' reached lowering unresolved", e->name);
    s->cx->failed = true;
    return emit_const(s, 0, e->loc);
}

static int32_t lower_expr(scope *s, const snn_ast *e) {
    switch (e->kind) {
    case SNN_AST_NUM: return emit_const(s, e->num.value, e->loc);
    case SNN_AST_BOOL: return emit_const(s, e->cval, e->loc);
    case SNN_AST_IDENT: return lower_ident(s, e);
    case SNN_AST_UNARY: {
        int32_t x = lower_expr(s, e->un.operand);
        if (e->un.op == SNN_UN_NEG) return emit1(s, SNN_OP_NEG, x, e->loc);
        return emit2(s, SNN_OP_EQ, x, emit_const(s, 0, e->loc), e->loc);   /* !x */
    }
    case SNN_AST_BINARY: {
        int32_t l = lower_expr(s, e->bin.lhs), r = lower_expr(s, e->bin.rhs);
        return emit2(s, binop_ops[e->bin.op], l, r, e->loc);
    }
    case SNN_AST_SELECT: {
        int32_t args[3] = {lower_expr(s, e->sel.cond), lower_expr(s, e->sel.a),
                           lower_expr(s, e->sel.b)};
        return emit_ew(s, SNN_OP_SELECT, 3, args, NULL, e->loc, 0);
    }
    case SNN_AST_CALL: return lower_call(s, e);
    default: break;
    }
    fail(s->cx, e->loc, "a %s expression cannot be used here", snn_ast_kind_name(e->kind));
    return emit_const(s, 0, e->loc);
}

/* ---------------------------------------------------------------- neurons */

static void lower_stmts(scope *s, const snn_ast_list *stmts) {
    for (int i = 0; i < stmts->n; i++) {
        const snn_ast *st = stmts->items[i];
        switch (st->kind) {
        case SNN_AST_LET: {
            int32_t v = lower_expr(s, st->stmt.value);
            name_value(s, v, snn_sprintf(s->cx->a, "%s.%s", s->prefix, st->name));
            struct local l = {st->name, v};
            SNN_PUSH(s->locals, s->n_locals, s->cap_locals, l);
            break;
        }
        case SNN_AST_ASSIGN: {
            int32_t v = lower_expr(s, st->stmt.value);
            name_value(s, v, snn_sprintf(s->cx->a, "%s.%s", s->prefix, st->name));
            s->state_val[st->stmt.target->state.index] = v;
            break;
        }
        case SNN_AST_IF: {
            double c;
            if (!snn_const_eval(st->ifs.cond, (snn_ast *const *)s->bound, &c)) {
                fail(s->cx, st->ifs.cond->loc, "%s", "an 'if' condition must be a compile-time constant");
                break;
            }
            lower_stmts(s, c != 0 ? &st->ifs.then_ : &st->ifs.else_);
            break;
        }
        default:
            fail(s->cx, st->loc, "unexpected %s statement in a step", snn_ast_kind_name(st->kind));
        }
    }
}

static int32_t lower_tensor(lower_ctx *cx, scope *s, const snn_ast *e, layer_info *layer);
static double bound_num(const snn_ast *call, const char *param, double dflt);

/* Inlines one neuron call as the layer's per-step equations. */
static void lower_neuron(lower_ctx *cx, scope *ms, const snn_ast *call, layer_info *layer) {
    const snn_ast *def = call->call.def;
    int32_t input = lower_tensor(cx, ms, call->call.input, layer);
    int64_t n = layer->width;
    const char *L = layer->decl->name;
    int32_t np = def->def.params.n, ns = def->def.states.n;
    scope s = {.cx = cx, .f = &cx->m->forward, .region = SNN_REGION_STEP, .def = def,
               .bound = call->call.bound, .prefix = L, .layer = layer, .width = n,
               .var_val = input};
    s.param_val = snn_alloc(cx->a, sizeof(int32_t) * (size_t)(np + 1));
    s.state_val = snn_alloc(cx->a, sizeof(int32_t) * (size_t)(ns + 1));

    for (int i = 0; i < np; i++) {
        const snn_ast *p = def->def.params.items[i];
        s.param_val[i] = -1;
        if (p->param.learn == SNN_LEARN_NONE) continue;
        double init;
        if (!snn_const_eval(call->call.bound[i], NULL, &init)) {
            fail(cx, call->call.bound[i]->loc, "initial value of learn parameter '%s' must be a constant", p->name);
            continue;
        }
        snn_shape shape = p->param.learn == SNN_LEARN_PER_NEURON ? snn_shape_1(n) : snn_shape_scalar();
        int32_t idx = add_param(cx, snn_sprintf(cx->a, "%s.%s", L, p->name), shape, SNN_PINIT_CONST,
                                (float)init, 0, p->loc);
        s.param_val[i] = emit_param(&s, idx, p->loc);
    }
    int32_t *state_ids = snn_alloc(cx->a, sizeof(int32_t) * (size_t)(ns + 1));
    for (int i = 0; i < ns; i++) {
        const snn_ast *st = def->def.states.items[i];
        double init = 0;
        if (!snn_const_eval(st->state.init, call->call.bound, &init))
            fail(cx, st->loc, "initial value of state '%s' must be a constant", st->name);
        snn_ir_state is = {.name = snn_intern_cstr(cx->a, snn_sprintf(cx->a, "%s.%s", L, st->name)),
                           .shape = snn_shape_2(SNN_DIM_B, n), .init = (float)init,
                           .init_from = -1, .next = -1, .loc = st->loc};
        state_ids[i] = snn_ir_add_state(s.f, is);
        snn_ir_value rv = {.op = SNN_OP_STATE, .region = SNN_REGION_STEP, .ival = state_ids[i],
                           .shape = is.shape, .loc = st->loc,
                           .name = snn_sprintf(cx->a, "%s.%s.prev", L, st->name)};
        s.state_val[i] = snn_ir_append(cx->a, s.f, rv);
    }
    lower_stmts(&s, &def->def.step);
    for (int i = 0; i < ns; i++) {
        int32_t v = s.state_val[i];
        if (!snn_shape_eq(val(&s, v)->shape, s.f->states[state_ids[i]].shape)) {
            /* A state updated from a narrower value (e.g. a constant): broadcast it. */
            int32_t zero = emit_const(&s, 0, def->loc);
            int32_t tmp = emit2(&s, SNN_OP_MUL, zero, input, def->loc);
            v = emit2(&s, SNN_OP_ADD, v, tmp, def->loc);
        }
        s.f->states[state_ids[i]].next = v;
    }
    layer->n_outs = def->def.outs.n;
    layer->outs = snn_alloc(cx->a, sizeof(int32_t) * (size_t)(layer->n_outs + 1));
    for (int i = 0; i < layer->n_outs; i++) {
        const snn_ast *o = def->def.outs.items[i];
        int32_t v = lookup_local(&s, o->name);
        if (v < 0) {
            for (int k = 0; k < ns; k++)
                if (def->def.states.items[k]->name == o->name) v = s.state_val[k];
        }
        if (v < 0) { fail(cx, o->loc, "output '%s' is not a state or local", o->name); v = input; }
        layer->outs[i] = v;
    }
    free(s.locals);
}

static layer_info *find_layer(lower_ctx *cx, const snn_ast *decl) {
    for (int i = 0; i < cx->n_layers; i++)
        if (cx->layers[i].decl == decl) return &cx->layers[i];
    return NULL;
}

/* snnTorch spikegen.latency(data, num_steps = T, tau, threshold, linear, normalize, clip): one
 * spike per input at step round(min(t_s, T - 1)), none where round(t_s) > T - 1 (or, with clip,
 * where x < threshold), with the spike time
 *     log:    t_s = tau * log(d / (d - threshold)), d = max(x, threshold + 1e-7)
 *     linear: t_s = min(tau * (1 - x), tau * (1 - threshold)), tau = T - 1 if normalize.
 * The step index is a counter state (0, 1, ...); "round(a) == k" is written k - 0.5 <= a <
 * k + 0.5, which differs from torch.round (half to even) only where a is exactly k + 0.5 (for
 * pixel / 255 inputs it never is). t_s does not depend on t, so hoist computes it once per
 * batch. The log code's normalize divides by the batch's largest spike time, a reduction over
 * examples the back end does not have: it is refused. */
static int32_t latency_spikes(lower_ctx *cx, scope *outer, int32_t x, snn_loc loc) {
    const snn_ast *enc = cx->encoder;
    scope es = *outer, *s = &es;   /* values named after the input: %x.log, %x.latency */
    es.prefix = outer->f->values[x].name;
    const double tau = bound_num(enc, "tau", 1.0), thr = bound_num(enc, "threshold", 0.01);
    const bool linear = bound_num(enc, "linear", 0) != 0, normalize = bound_num(enc, "normalize", 0) != 0;
    const bool clip = bound_num(enc, "clip", 0) != 0;
    if (!(thr > 0 && thr < 1) || !(tau > 0)) {
        fail(cx, enc->loc, "%s", "latency: threshold must be in (0, 1) and tau > 0 (as snnTorch requires)");
        return x;
    }
    if (normalize && !linear) {
        fail(cx, enc->loc, "%s", "latency(normalize = true) with the log code divides by the batch's "
             "largest spike time, which the back end does not support yet (use linear = true)");
        return x;
    }
    snn_ir_func *f = s->f;
    snn_ir_value stv = {.op = SNN_OP_STEPS, .region = s->region, .shape = snn_shape_scalar(),
                        .loc = loc, .name = "T"};
    int32_t T = snn_ir_append(cx->a, f, stv);
    int32_t last = emit2(s, SNN_OP_SUB, T, emit_const(s, 1, loc), loc);       /* T - 1 */
    int32_t ts;
    if (linear) {
        int32_t tv = normalize ? last : emit_const(s, tau, loc);
        int32_t one_minus_x = emit2(s, SNN_OP_SUB, emit_const(s, 1, loc), x, loc);
        int32_t cap = emit2(s, SNN_OP_MUL, tv, emit_const(s, 1 - thr, loc), loc);
        ts = emit2(s, SNN_OP_MIN, emit2(s, SNN_OP_MUL, tv, one_minus_x, loc), cap, loc);
    } else {
        int32_t d = emit2(s, SNN_OP_MAX, x, emit_const(s, (float)thr + 1e-7f, loc), loc);
        int32_t ratio = emit2(s, SNN_OP_DIV, d, emit2(s, SNN_OP_SUB, d, emit_const(s, thr, loc), loc), loc);
        ts = emit2(s, SNN_OP_MUL, emit_const(s, tau, loc), emit1(s, SNN_OP_LOG, ratio, loc), loc);
    }
    name_value(s, ts, snn_sprintf(cx->a, "%s.spike_time", f->values[x].name));
    /* the step counter: k = t at step t */
    snn_ir_state st = {.name = snn_intern_cstr(cx->a, "latency.step"), .shape = snn_shape_scalar(),
                       .init = 0, .init_from = -1, .loc = loc};
    int32_t si = snn_ir_add_state(f, st);
    snn_ir_value kv = {.op = SNN_OP_STATE, .region = s->region, .ival = si, .shape = st.shape,
                       .loc = loc, .name = "latency.t"};
    int32_t k = snn_ir_append(cx->a, f, kv);
    f->states[si].next = emit2(s, SNN_OP_ADD, k, emit_const(s, 1, loc), loc);
    const int32_t half = emit_const(s, 0.5, loc);
    int32_t at = emit2(s, SNN_OP_MIN, ts, last, loc);                           /* clamp_max */
    int32_t lo = emit2(s, SNN_OP_GE, at, emit2(s, SNN_OP_SUB, k, half, loc), loc);
    int32_t hi = emit2(s, SNN_OP_LT, at, emit2(s, SNN_OP_ADD, k, half, loc), loc);
    int32_t in_range = emit2(s, SNN_OP_LT, ts, emit2(s, SNN_OP_ADD, last, half, loc), loc);
    int32_t spk = emit2(s, SNN_OP_MUL, emit2(s, SNN_OP_MUL, lo, hi, loc), in_range, loc);
    if (clip) spk = emit2(s, SNN_OP_MUL, spk, emit2(s, SNN_OP_GE, x, emit_const(s, thr, loc), loc), loc);
    name_value(s, spk, snn_sprintf(cx->a, "%s.latency", f->values[x].name));
    return spk;
}

/* The encoded model input, created at its first use. */
static int32_t encoded_input(lower_ctx *cx, scope *s, snn_loc loc) {
    if (cx->input_value >= 0) return cx->input_value;
    snn_ir_value v = {.op = SNN_OP_INPUT, .region = s->region, .loc = loc,
                      .shape = snn_shape_2(SNN_DIM_B, cx->m->n_inputs),
                      .name = cx->input_decl ? cx->input_decl->name : "x"};
    int32_t x = snn_ir_append(cx->a, s->f, v);
    if (cx->encoder) {
        const char *enc = cx->encoder->call.def->name;
        if (strcmp(enc, "rate") == 0) {
            double gain = bound_num(cx->encoder, "gain", 1.0);
            if (gain != 1.0) x = emit2(s, SNN_OP_MUL, x, emit_const(s, gain, cx->encoder->loc), cx->encoder->loc);
            x = emit_ew(s, SNN_OP_RATE, 1, &x, snn_sprintf(cx->a, "%s.rate", v.name), cx->encoder->loc, 0);
        } else if (strcmp(enc, "latency") == 0) {
            x = latency_spikes(cx, s, x, cx->encoder->loc);
        } else if (strcmp(enc, "direct") != 0) {
            fail(cx, cx->encoder->loc, "encoder '%s' is not supported by the back end yet (use direct, rate or latency)", enc);
        }
    }
    cx->input_value = x;
    return x;
}

/* A model-level tensor expression: inputs, layers, their members, linear(), arithmetic. */
static int32_t lower_tensor(lower_ctx *cx, scope *s, const snn_ast *e, layer_info *layer) {
    switch (e->kind) {
    case SNN_AST_IDENT:
        if (e->ident.ref.kind == SNN_REF_INPUT) return encoded_input(cx, s, e->loc);
        if (e->ident.ref.kind == SNN_REF_LAYER) {
            layer_info *li = find_layer(cx, e->ident.ref.decl);
            if (li && li != layer) return li->outs[0];
            fail(cx, e->loc, "layer '%s' is used before it is computed", e->name);
            return emit_const(s, 0, e->loc);
        }
        break;
    case SNN_AST_MEMBER: {
        layer_info *li = find_layer(cx, e->member.layer);
        if (li && li != layer && e->member.out_index < li->n_outs) return li->outs[e->member.out_index];
        fail(cx, e->loc, "'%s' is used before its layer is computed", e->name);
        return emit_const(s, 0, e->loc);
    }
    case SNN_AST_NUM: return emit_const(s, e->num.value, e->loc);
    case SNN_AST_BINARY: {
        int32_t l = lower_tensor(cx, s, e->bin.lhs, layer), r = lower_tensor(cx, s, e->bin.rhs, layer);
        return emit2(s, binop_ops[e->bin.op], l, r, e->loc);
    }
    case SNN_AST_UNARY:
        if (e->un.op == SNN_UN_NEG) return emit1(s, SNN_OP_NEG, lower_tensor(cx, s, e->un.operand, layer), e->loc);
        break;
    case SNN_AST_CALL: {
        const snn_ast *def = e->call.def;
        if (def && def->kind == SNN_AST_BUILTIN && strcmp(def->name, "linear") == 0) {
            int32_t x = lower_tensor(cx, s, e->call.bound[0], layer);
            snn_ast *b = snn_call_bound(e, "bias");
            double has_bias = 1;
            if (b) snn_const_eval(b, NULL, &has_bias);
            const char *L = layer->decl->name;
            const char *base = layer->n_linear++ ? snn_sprintf(cx->a, "%s.linear%d", L, layer->n_linear) : L;
            return emit_linear(s, x, e->width, has_bias != 0, base, e->loc);
        }
        if (def && def->kind == SNN_AST_NEURON) {
            fail(cx, e->loc, "neuron '%s' must be the whole value of a layer", def->name);
            return emit_const(s, 0, e->loc);
        }
        break;
    }
    default: break;
    }
    fail(cx, e->loc, "this %s expression is not supported in a model by the back end", snn_ast_kind_name(e->kind));
    return emit_const(s, 0, e->loc);
}

static void lower_model(lower_ctx *cx, const snn_ast *model) {
    scope s = {.cx = cx, .f = &cx->m->forward, .region = SNN_REGION_STEP};
    int n_inputs = 0;
    for (int i = 0; i < model->model.items.n; i++) {
        const snn_ast *it = model->model.items.items[i];
        switch (it->kind) {
        case SNN_AST_INPUT:
            if (n_inputs++) { fail(cx, it->loc, "model '%s': only one input is supported", model->name); break; }
            cx->input_decl = it;
            cx->m->n_inputs = it->width;
            break;
        case SNN_AST_ENCODE:
            cx->encoder = it->encode.value;
            break;
        case SNN_AST_LAYER: {
            layer_info li = {.decl = it, .width = it->width};
            SNN_PUSH(cx->layers, cx->n_layers, cx->cap_layers, li);
            layer_info *L = &cx->layers[cx->n_layers - 1];
            s.prefix = it->name;
            if (it->layer.neuron) {
                L->neuron = it->layer.neuron->call.def;
                lower_neuron(cx, &s, it->layer.neuron, L);
            } else {
                int32_t v = lower_tensor(cx, &s, it->layer.value, L);
                name_value(&s, v, it->name);
                L->n_outs = 1;
                L->outs = snn_alloc(cx->a, sizeof(int32_t));
                L->outs[0] = v;
            }
            break;
        }
        case SNN_AST_OUTPUT:
            if (it->output.names.n >= 1) {
                const snn_ast *o = it->output.names.items[0];
                if (o->ident.ref.decl) cx->m->n_classes = o->ident.ref.decl->width;
            }
            break;
        default: break;
        }
    }
    if (n_inputs == 0) fail(cx, model->loc, "model '%s' has no input", model->name);
}

/* ---------------------------------------------------------------- train block */

static double setting_num(lower_ctx *cx, const snn_ast *train, const char *key, double dflt) {
    snn_ast *st = snn_train_setting(train, key);
    double v;
    if (!st) return dflt;
    if (!snn_const_eval(st->setting.value, NULL, &v)) {
        fail(cx, st->loc, "setting '%s' must be a constant", key);
        return dflt;
    }
    return v;
}

static double bound_num(const snn_ast *call, const char *param, double dflt) {
    snn_ast *b = snn_call_bound(call, param);
    double v;
    return b && snn_const_eval(b, NULL, &v) ? v : dflt;
}

/* The layer a loss or metric argument names, and the value of out `out` ("mem") or of the
 * primary output (out == NULL). */
static int32_t layer_out(lower_ctx *cx, const snn_ast *arg, const char *out, snn_loc loc) {
    const snn_ast *decl = NULL;
    int32_t idx = 0;
    if (arg && arg->kind == SNN_AST_IDENT && arg->ident.ref.kind == SNN_REF_LAYER) decl = arg->ident.ref.decl;
    if (arg && arg->kind == SNN_AST_MEMBER) { decl = arg->member.layer; idx = arg->member.out_index; out = NULL; }
    layer_info *li = decl ? find_layer(cx, decl) : NULL;
    if (!li) { fail(cx, loc, "%s", "expected a layer of the model"); return -1; }
    if (out) {
        idx = -1;
        for (int i = 0; li->neuron && i < li->neuron->def.outs.n; i++)
            if (strcmp(li->neuron->def.outs.items[i]->name, out) == 0) idx = i;
        if (idx < 0) { fail(cx, loc, "layer has no output '%s'", out); return -1; }
    }
    return li->outs[idx];
}

/* A state that sums v over time (the spike count); reused for the same v. */
static int32_t time_sum_state(lower_ctx *cx, int32_t v, const char *name) {
    snn_ir_func *f = &cx->m->forward;
    for (int i = 0; i < f->n_states; i++) {
        int32_t nx = f->states[i].next;
        if (nx >= 0 && f->values[nx].op == SNN_OP_ADD && f->values[nx].args[1] == v &&
            f->values[f->values[nx].args[0]].op == SNN_OP_STATE)
            return i;
    }
    snn_ir_state st = {.name = snn_intern_cstr(cx->a, name), .shape = f->values[v].shape,
                       .init_from = -1, .next = -1, .loc = f->values[v].loc};
    int32_t si = snn_ir_add_state(f, st);
    snn_ir_value rv = {.op = SNN_OP_STATE, .region = SNN_REGION_STEP, .ival = si,
                       .shape = st.shape, .loc = st.loc, .name = snn_sprintf(cx->a, "%s.prev", name)};
    int32_t prev = snn_ir_append(cx->a, f, rv);
    snn_ir_value add = {.op = SNN_OP_ADD, .region = SNN_REGION_STEP, .nargs = 2, .args = {prev, v},
                        .shape = st.shape, .loc = st.loc, .name = name};
    f->states[si].next = snn_ir_append(cx->a, f, add);
    return si;
}

typedef struct { const snn_ast *call; double scale; } loss_term;

static void collect_loss_terms(lower_ctx *cx, const snn_ast *e, double scale, loss_term *terms, int *n) {
    double c;
    if (e->kind == SNN_AST_BINARY && e->bin.op == SNN_BIN_ADD) {
        collect_loss_terms(cx, e->bin.lhs, scale, terms, n);
        collect_loss_terms(cx, e->bin.rhs, scale, terms, n);
    } else if (e->kind == SNN_AST_BINARY && e->bin.op == SNN_BIN_MUL && snn_const_eval(e->bin.lhs, NULL, &c)) {
        collect_loss_terms(cx, e->bin.rhs, scale * c, terms, n);
    } else if (e->kind == SNN_AST_BINARY && e->bin.op == SNN_BIN_MUL && snn_const_eval(e->bin.rhs, NULL, &c)) {
        collect_loss_terms(cx, e->bin.lhs, scale * c, terms, n);
    } else if (e->kind == SNN_AST_CALL && *n < 16) {
        terms[(*n)++] = (loss_term){e, scale};
    } else {
        fail(cx, e->loc, "%s", "a loss must be a sum of loss calls, optionally scaled by constants");
    }
}

static void emit_loss_add(scope *s, int32_t v, double scale, snn_loc loc) {
    snn_ir_value la = {.op = SNN_OP_LOSS_ADD, .region = s->region, .nargs = 1, .args = {v},
                       .fval = (float)scale, .shape = snn_shape_scalar(), .loc = loc, .name = "loss"};
    snn_ir_append(s->cx->a, s->f, la);
}

static int32_t emit_loss_op(scope *s, snn_op op, int32_t x, const char *name, snn_loc loc) {
    snn_ir_value v = {.op = op, .region = s->region, .nargs = 1, .args = {x},
                      .shape = snn_shape_scalar(), .loc = loc, .name = name};
    return snn_ir_append(s->cx->a, s->f, v);
}

/* Per-step losses; post-region losses are collected into *post for lower_post_losses. */
static void lower_step_loss(lower_ctx *cx, const loss_term *t, loss_term *post, int *npost) {
    scope s = {.cx = cx, .f = &cx->m->forward, .region = SNN_REGION_STEP};
    const snn_ast *call = t->call;
    const char *name = call->call.def ? call->call.def->name : call->name;
    snn_ast *arg = call->call.bound && call->call.def->def.params.n ? call->call.bound[0] : NULL;
    if (!strcmp(name, "ce_membrane")) {
        int32_t mem = layer_out(cx, arg, "mem", call->loc);
        if (mem < 0) return;
        emit_loss_add(&s, emit_loss_op(&s, SNN_OP_CROSS_ENTROPY, mem, "ce", call->loc), t->scale, call->loc);
    } else if (!strcmp(name, "ce_rate")) {
        /* snnTorch ce_rate_loss: CE of the spikes at each step, summed, divided by T. */
        int32_t spk = layer_out(cx, arg, NULL, call->loc);
        if (spk < 0) return;
        int32_t ce = emit_loss_op(&s, SNN_OP_CROSS_ENTROPY, spk, "ce", call->loc);
        snn_ir_value st = {.op = SNN_OP_STEPS, .region = SNN_REGION_STEP, .shape = snn_shape_scalar(),
                           .loc = call->loc, .name = "T"};
        int32_t T = snn_ir_append(cx->a, s.f, st);
        emit_loss_add(&s, emit2(&s, SNN_OP_DIV, ce, T, call->loc), t->scale, call->loc);
    } else if (!strcmp(name, "mse_membrane")) {
        int32_t mem = layer_out(cx, arg, "mem", call->loc);
        if (mem < 0) return;
        snn_ir_value v = {.op = SNN_OP_MSE_ONEHOT, .region = SNN_REGION_STEP, .nargs = 1, .args = {mem},
                          .shape = snn_shape_scalar(), .loc = call->loc, .name = "mse",
                          .attr = {(float)bound_num(call, "on_target", 1), (float)bound_num(call, "off_target", 0)}};
        emit_loss_add(&s, snn_ir_append(cx->a, s.f, v), t->scale, call->loc);
    } else if (!strcmp(name, "l1_rate_sparsity")) {
        int32_t spk = layer_out(cx, arg, NULL, call->loc);
        if (spk < 0) return;
        snn_ir_value v = {.op = SNN_OP_SUM_TO, .region = SNN_REGION_STEP, .nargs = 1, .args = {spk},
                          .shape = snn_shape_scalar(), .loc = call->loc, .name = "spike_sum"};
        double lambda = bound_num(call, "lambda", bound_num(call, "Lambda", 1e-5));
        emit_loss_add(&s, snn_ir_append(cx->a, s.f, v), t->scale * lambda, call->loc);
    } else if (!strcmp(name, "ce_count") || !strcmp(name, "mse_count") ||
               !strcmp(name, "ce_max_membrane")) {
        post[(*npost)++] = *t;
        /* the time-reduction state must be built in the step region now */
        if (strcmp(name, "ce_max_membrane") != 0) {
            int32_t spk = layer_out(cx, arg, NULL, call->loc);
            if (spk >= 0) time_sum_state(cx, spk, snn_sprintf(cx->a, "%s.count", cx->m->forward.values[spk].name));
        } else {
            int32_t mem = layer_out(cx, arg, "mem", call->loc);
            if (mem < 0) return;
            snn_ir_func *f = &cx->m->forward;
            snn_ir_state st = {.name = snn_intern_cstr(cx->a, snn_sprintf(cx->a, "%s.max", f->values[mem].name)),
                               .shape = f->values[mem].shape, .init = -3.0e38f, .init_from = -1, .loc = call->loc};
            int32_t si = snn_ir_add_state(f, st);
            snn_ir_value rv = {.op = SNN_OP_STATE, .region = SNN_REGION_STEP, .ival = si, .shape = st.shape,
                               .loc = call->loc, .name = snn_sprintf(cx->a, "%s.prev", st.name)};
            int32_t prev = snn_ir_append(cx->a, f, rv);
            int32_t mx[2] = {prev, mem};   /* ties: the earlier step, as torch.max picks the first */
            f->states[si].next = emit_ew(&s, SNN_OP_MAX, 2, mx, st.name, call->loc, 0);
        }
    } else {
        fail(cx, call->loc, "loss '%s' is not supported by the back end yet", name);
    }
}

static void lower_post_loss(lower_ctx *cx, const loss_term *t) {
    scope s = {.cx = cx, .f = &cx->m->forward, .region = SNN_REGION_POST};
    const snn_ast *call = t->call;
    const char *name = call->call.def->name;
    snn_ir_func *f = &cx->m->forward;
    /* find the reduction state made in lower_step_loss */
    const bool counts = strcmp(name, "ce_max_membrane") != 0;
    const char *suffix = counts ? ".count" : ".max";
    int32_t si = -1;
    snn_ast *arg = call->call.bound[0];
    int32_t src = counts ? layer_out(cx, arg, NULL, call->loc) : layer_out(cx, arg, "mem", call->loc);
    if (src < 0) return;
    const char *want = snn_sprintf(cx->a, "%s%s", f->values[src].name, suffix);
    for (int i = 0; i < f->n_states; i++)
        if (!strcmp(f->states[i].name, want)) si = i;
    if (si < 0) { snn_internal_error(cx->d, call->loc, "reduction state '%s' missing", want); cx->failed = true; return; }
    snn_ir_value rv = {.op = SNN_OP_STATE, .region = SNN_REGION_POST, .ival = si, .shape = f->states[si].shape,
                       .loc = call->loc, .name = snn_sprintf(cx->a, "%s.final", want)};
    int32_t fin = snn_ir_append(cx->a, f, rv);
    if (!strcmp(name, "mse_count")) {
        /* snnTorch mse_count_loss: MSE(count, targets int(T * rate)) / T */
        snn_ir_value mv = {.op = SNN_OP_MSE_ONEHOT, .region = SNN_REGION_POST, .nargs = 1, .args = {fin},
                           .shape = snn_shape_scalar(), .loc = call->loc, .name = "mse",
                           .attr = {(float)bound_num(call, "correct_rate", 1),
                                    (float)bound_num(call, "incorrect_rate", 0), 1}};
        int32_t mse = snn_ir_append(cx->a, f, mv);
        snn_ir_value st = {.op = SNN_OP_STEPS, .region = SNN_REGION_POST, .shape = snn_shape_scalar(),
                           .loc = call->loc, .name = "T"};
        int32_t T = snn_ir_append(cx->a, f, st);
        emit_loss_add(&s, emit2(&s, SNN_OP_DIV, mse, T, call->loc), t->scale, call->loc);
        return;
    }
    emit_loss_add(&s, emit_loss_op(&s, SNN_OP_CROSS_ENTROPY, fin, "ce", call->loc), t->scale, call->loc);
}

static void lower_train(lower_ctx *cx, const snn_ast *train) {
    snn_ir_module *m = cx->m;
    m->train.steps = (int64_t)setting_num(cx, train, "steps", 25);
    m->train.batch = (int64_t)setting_num(cx, train, "batch", 128);
    m->train.epochs = (int64_t)setting_num(cx, train, "epochs", 1);
    m->train.seed = (uint64_t)setting_num(cx, train, "seed", 0);

    snn_ast *data = snn_train_setting(train, "data");
    if (data && data->setting.value->kind == SNN_AST_CALL && data->setting.value->call.bound) {
        const snn_ast *p = data->setting.value->call.bound[0];
        if (p && p->kind == SNN_AST_STR) m->train.data_dir = p->str;
    }

    snn_ast *opt = snn_train_setting(train, "optimizer");
    m->train.optimizer = SNN_OPT_ADAM;
    m->train.lr = 5e-4f; m->train.beta1 = 0.9f; m->train.beta2 = 0.999f; m->train.eps = 1e-8f;
    if (opt && opt->setting.value->kind == SNN_AST_CALL && opt->setting.value->call.def) {
        const snn_ast *c = opt->setting.value;
        const char *on = c->call.def->name;
        if (!strcmp(on, "adam")) m->train.optimizer = SNN_OPT_ADAM;
        else if (!strcmp(on, "adamw")) m->train.optimizer = SNN_OPT_ADAMW;
        else if (!strcmp(on, "sgd")) m->train.optimizer = SNN_OPT_SGD;
        else fail(cx, c->loc, "optimizer '%s' is not supported by the runtime", on);
        m->train.lr = (float)bound_num(c, "lr", m->train.optimizer == SNN_OPT_SGD ? 0.01 : 5e-4);
        snn_ast *betas = snn_call_bound(c, "betas");
        if (betas && betas->kind == SNN_AST_TUPLE && betas->tuple.elems.n == 2) {
            double b1, b2;
            if (snn_const_eval(betas->tuple.elems.items[0], NULL, &b1)) m->train.beta1 = (float)b1;
            if (snn_const_eval(betas->tuple.elems.items[1], NULL, &b2)) m->train.beta2 = (float)b2;
        }
        m->train.eps = (float)bound_num(c, "eps", 1e-8);
        m->train.weight_decay = (float)bound_num(c, "weight_decay", m->train.optimizer == SNN_OPT_ADAMW ? 0.01 : 0);
        m->train.momentum = (float)bound_num(c, "momentum", 0);
    }

    snn_ast *loss = snn_train_setting(train, "loss");
    if (loss) {
        loss_term terms[16], post[16];
        int n = 0, npost = 0;
        collect_loss_terms(cx, loss->setting.value, 1.0, terms, &n);
        if (n && terms[0].call->call.def) m->loss_name = terms[0].call->call.def->name;
        for (int i = 0; i < n; i++) lower_step_loss(cx, &terms[i], post, &npost);
        snn_ast *metric = snn_train_setting(train, "metric");
        if (metric && metric->setting.value->kind == SNN_AST_CALL && metric->setting.value->call.def) {
            const snn_ast *mc = metric->setting.value;
            m->metric_name = mc->call.def->name;
            if (!strcmp(m->metric_name, "rate_accuracy") || !strcmp(m->metric_name, "accuracy_rate")) {
                int32_t spk = layer_out(cx, mc->call.bound ? mc->call.bound[0] : NULL, NULL, mc->loc);
                if (spk >= 0)
                    m->scores_state = time_sum_state(cx, spk, snn_sprintf(cx->a, "%s.count", m->forward.values[spk].name));
            } else {
                fail(cx, mc->loc, "metric '%s' is not supported by the back end yet", m->metric_name);
            }
        }
        for (int i = 0; i < npost; i++) lower_post_loss(cx, &post[i]);
    }
}

snn_ir_module *snn_lower(snn_arena *a, snn_diag *d, const snn_program *prog) {
    if (!prog->model) {
        snn_loc at = {.file = prog->main_file, .line = 1, .col = 1};
        snn_error(d, at, "no model to compile in '%s'", prog->main_file);
        return NULL;
    }
    lower_ctx cx = {.a = a, .d = d, .prog = prog, .input_value = -1};
    cx.m = snn_ir_module_new(a, prog->model->name);
    cx.m->source_file = prog->main_file;
    cx.m->loss_name = "none";
    cx.m->metric_name = "none";
    lower_model(&cx, prog->model);
    if (prog->train && !cx.failed) lower_train(&cx, prog->train);
    free(cx.layers);
    free(cx.surr);
    if (cx.failed) {
        snn_ir_module_free(cx.m);
        return NULL;
    }
    return cx.m;
}
