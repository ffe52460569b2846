/* sema.c: semantic analysis: names, arguments, types, widths, train settings (see sema.h).
 *
 * The checker runs in four sweeps over the program:
 *   1. collect   every definition into the symbol table (user scope, stdlib scope), reporting
 *                duplicates; at most one train block;
 *   2. signatures  each definition's parameters: names, `learn`, types, constant defaults;
 *   3. bodies    surrogate grads, def bodies, neuron states/steps/outs, models, the train block,
 *                resolving names innermost-first and typing every expression;
 *   4. cycles    the call graph recorded in 3 must have no cycle (recursion), and no
 *                definition may grow beyond a million calls once inlined.
 * Errors are reported and checking goes on; an expression that failed gets SNN_TY_UNKNOWN,
 * which silences the follow-on errors it would cause.
 *
 * Expression checking is one recursive function, expr(), whose behaviour depends on the
 * context (a parameter default, a state initializer, a neuron step, a surrogate or def body,
 * a model, a train block). Recursion depth is bounded (MAX_DEPTH) so hostile input cannot
 * exhaust the stack here or in the later recursive stages.
 */
#include "sema.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define MAX_DEPTH 400

typedef struct { const char *name; snn_ast *def; } sym;

struct snn_symtab {
    sym *user; int n_user, cap_user;
    sym *std; int n_std, cap_std;
};

typedef enum {
    CTX_DEFAULT,    /* a parameter's default: constants and surrogate calls */
    CTX_STATE_INIT, /* a state's initializer: constants and non-learn params */
    CTX_STEP,       /* a neuron's step */
    CTX_BODY,       /* a surrogate's grad or a def's body */
    CTX_MODEL,      /* a model's items */
    CTX_TRAIN,      /* a train block's settings */
} context;

typedef struct { snn_ast *from, *to; snn_loc loc; } edge;

typedef struct {
    snn_arena *a;
    snn_diag *d;
    snn_program *prog;
    struct snn_symtab *st;
    context ctx;
    snn_ast *def;                 /* the definition being checked */
    snn_ast *model;               /* the model in CTX_MODEL / CTX_TRAIN */
    snn_ast **locals; int n_locals, cap_locals;      /* visible LETs, innermost last */
    snn_ast **seen; int n_seen, cap_seen;            /* model: INPUTs and LAYERs defined so far */
    snn_ast *current_layer;       /* the LAYER being defined */
    const char *what;             /* what needs a constant here, for messages */
    snn_builtin_kind want;        /* the kind of builtin expected here (a train setting, an
                                     encoder), for "unknown optimizer 'x'" messages */
    edge *edges; int n_edges, cap_edges;
    int depth;
    bool too_deep;
} sema;

/* ---- small helpers ---- */


static const char *def_kind_word(const snn_ast *def) {
    switch (def->kind) {
    case SNN_AST_SURROGATE: return "surrogate";
    case SNN_AST_NEURON: return "neuron";
    case SNN_AST_FUNC: return "def";
    case SNN_AST_MODEL: return "model";
    case SNN_AST_BUILTIN:
        return def->def.builtin ? snn_builtin_kind_name(def->def.builtin) : "builtin";
    default: return snn_ast_kind_name(def->kind);
    }
}

static const char *a_or_an(const char *word) {
    return strchr("aeiou", word[0]) ? "an" : "a";
}

/* Edit distance between a and b, capped: the "did you mean" suggestions only need small ones. */
static int edit_distance(const char *a, const char *b) {
    size_t la = strlen(a), lb = strlen(b);
    if (la > 63 || lb > 63) return 99;
    int prev[64], cur[64];
    for (size_t j = 0; j <= lb; j++) prev[j] = (int)j;
    for (size_t i = 1; i <= la; i++) {
        cur[0] = (int)i;
        for (size_t j = 1; j <= lb; j++) {
            int sub = prev[j - 1] + (a[i - 1] != b[j - 1]);
            int del = prev[j] + 1, ins = cur[j - 1] + 1;
            cur[j] = sub < del ? (sub < ins ? sub : ins) : (del < ins ? del : ins);
        }
        memcpy(prev, cur, sizeof cur);
    }
    return prev[lb];
}

/* Keeps the closest candidate to name (within a third of its length, at least 1) in *best. */
static void consider(const char *name, const char *cand, const char **best, int *best_d) {
    if (!cand || cand == name) return;
    int d = edit_distance(name, cand);
    int limit = (int)strlen(name) / 3;
    if (limit < 1) limit = 1;
    if (d <= limit && d < *best_d) { *best = cand; *best_d = d; }
}

/* "; did you mean 'x'?" for messages, or "". */
static const char *did_you_mean(snn_arena *a, const char *best) {
    return best ? snn_sprintf(a, "; did you mean '%s'?", best) : "";
}

/* How a non-finite constant is named in messages (printf's spelling of NaN varies). */
static const char *nonfinite_word(double v) {
    return isnan(v) ? "NaN" : v > 0 ? "+infinity" : "-infinity";
}

/* A type in words, with its article, for messages ("a reset mode (subtract, zero, none)"). */
static const char *type_phrase(snn_type t) {
    switch (t) {
    case SNN_TY_NUM: return "a number";
    case SNN_TY_INT: return "an integer";
    case SNN_TY_BOOL: return "a condition (true, false or a comparison)";
    case SNN_TY_STR: return "a string";
    case SNN_TY_RESET: return "a reset mode (subtract, zero, none)";
    case SNN_TY_PAIR: return "a pair such as (0.9, 0.999)";
    case SNN_TY_TENSOR: return "a layer";
    case SNN_TY_SURROGATE: return "a surrogate such as atan()";
    case SNN_TY_SPIKES: return "a layer's spikes";
    case SNN_TY_MEMBRANE: return "a layer's membrane";
    case SNN_TY_ENCODER: return "an encoder";
    case SNN_TY_LOSS: return "a loss";
    case SNN_TY_OPTIMIZER: return "an optimizer";
    case SNN_TY_METRIC: return "a metric";
    case SNN_TY_DATA: return "a data source";
    default: return "a value of unknown type";
    }
}

static snn_ast_list *params_of(snn_ast *def) {
    return def->kind == SNN_AST_MODEL ? NULL : &def->def.params;
}

static void push_local(sema *s, snn_ast *let) { SNN_PUSH(s->locals, s->n_locals, s->cap_locals, let); }

static void add_edge(sema *s, snn_ast *to, snn_loc loc) {
    if (!s->def || !to || s->def->kind == SNN_AST_MODEL || s->def->kind == SNN_AST_TRAIN) return;
    edge e = {s->def, to, loc};
    SNN_PUSH(s->edges, s->n_edges, s->cap_edges, e);
}

/* ---- the symbol table ---- */

static sym *find_sym(sym *t, int n, const char *name) {
    for (int i = 0; i < n; i++)
        if (t[i].name == name) return &t[i];
    return NULL;
}

snn_ast *snn_program_lookup(const snn_program *prog, const char *name) {
    const struct snn_symtab *st = prog->symtab;
    if (!st || !name) return NULL;
    sym *e = find_sym(st->user, st->n_user, name);
    if (!e) e = find_sym(st->std, st->n_std, name);
    return e ? e->def : NULL;
}

static snn_ast *lookup_def(sema *s, const char *name) { return snn_program_lookup(s->prog, name); }

static snn_intrinsic find_intrinsic(const char *name) {
    static const char *names[] = {
        "",
#define X(n, sp, a) sp,
        SNN_INTRINSICS(X)
#undef X
    };
    for (int i = 1; i < SNN_INTR_COUNT_; i++)
        if (strcmp(names[i], name) == 0) return (snn_intrinsic)i;
    return SNN_INTR_NONE_;
}

static int intrinsic_arity(snn_intrinsic i) {
    static const int arity[] = {
        0,
#define X(n, sp, a) a,
        SNN_INTRINSICS(X)
#undef X
    };
    return arity[i];
}

static snn_symbol find_symbol(const char *name) {
    static const char *names[] = {
        "",
#define X(n, sp, t) sp,
        SNN_SYMBOLS(X)
#undef X
    };
    for (int i = 1; i < SNN_SYM_COUNT_; i++)
        if (strcmp(names[i], name) == 0) return (snn_symbol)i;
    return SNN_SYM_NONE_;
}

static snn_type symbol_type(snn_symbol sy) {
    static const snn_type types[] = {
        SNN_TY_UNKNOWN,
#define X(n, sp, t) SNN_TY_##t,
        SNN_SYMBOLS(X)
#undef X
    };
    return types[sy];
}

static snn_type type_from_name(const char *name) {
    static const char *names[] = {
#define X(n, sp) sp,
        SNN_TYPES(X)
#undef X
    };
    for (int i = 1; i < SNN_TY_COUNT_; i++)
        if (strcmp(names[i], name) == 0) return (snn_type)i;
    return SNN_TY_UNKNOWN;
}

static snn_builtin_kind builtin_from_word(const char *w) {
    for (int i = 1; i < SNN_BUILTIN_COUNT_; i++)
        if (strcmp(snn_builtin_kind_name((snn_builtin_kind)i), w) == 0) return (snn_builtin_kind)i;
    return SNN_BUILTIN_NONE_;
}

static bool is_definition(const snn_ast *n) {
    return n->kind == SNN_AST_SURROGATE || n->kind == SNN_AST_NEURON || n->kind == SNN_AST_FUNC ||
           n->kind == SNN_AST_BUILTIN || n->kind == SNN_AST_MODEL;
}

static void collect(sema *s) {
    struct snn_symtab *st = s->st;
    snn_ast *first_train = NULL;
    for (int u = 0; u < s->prog->n_units; u++) {
        snn_ast *unit = s->prog->units[u];
        bool std = unit->unit.is_stdlib;
        for (int i = 0; i < unit->unit.items.n; i++) {
            snn_ast *n = unit->unit.items.items[i];
            if (n->kind == SNN_AST_TRAIN) {
                if (std) continue;
                if (first_train) {
                    snn_error(s->d, n->loc, "a program has one train block; this is a second one");
                    snn_note(s->d, first_train->loc, "the first train block is here");
                } else {
                    first_train = n;
                }
                continue;
            }
            if (!is_definition(n)) continue;
            n->def.unit = n->kind == SNN_AST_MODEL ? NULL : unit;
            if (n->kind == SNN_AST_BUILTIN && !std) {
                snn_error(s->d, n->loc, "'builtin' declarations are only allowed in the standard library");
                continue;
            }
            if (!std && (find_symbol(n->name) || strcmp(n->name, "pi") == 0)) {
                snn_error(s->d, n->loc, "'%s' is a built-in constant and cannot be redefined", n->name);
                continue;
            }
            sym *prev = std ? find_sym(st->std, st->n_std, n->name) : find_sym(st->user, st->n_user, n->name);
            if (prev) {
                snn_error(s->d, n->loc, "redefinition of '%s'", n->name);
                snn_note(s->d, prev->def->loc, "previous definition of '%s' is here", n->name);
                continue;
            }
            sym e = {n->name, n};
            if (std) SNN_PUSH(st->std, st->n_std, st->cap_std, e);
            else SNN_PUSH(st->user, st->n_user, st->cap_user, e);
        }
    }
    s->prog->train = first_train;
}

/* ---- constants ---- */

static bool eval_intrinsic(snn_intrinsic in, const double *v, int n, double *out) {
    switch (in) {
    case SNN_INTR_EXP: *out = exp(v[0]); return true;
    case SNN_INTR_LOG: *out = log(v[0]); return true;
    case SNN_INTR_TANH: *out = tanh(v[0]); return true;
    case SNN_INTR_ABS: *out = fabs(v[0]); return true;
    case SNN_INTR_SQRT: *out = sqrt(v[0]); return true;
    case SNN_INTR_SIGMOID: *out = 1 / (1 + exp(-v[0])); return true;
    case SNN_INTR_MIN: *out = v[0] < v[1] ? v[0] : v[1]; return true;
    case SNN_INTR_MAX: *out = v[0] > v[1] ? v[0] : v[1]; return true;
    case SNN_INTR_CLAMP: *out = v[0] < v[1] ? v[1] : v[0] > v[2] ? v[2] : v[0]; return true;
    case SNN_INTR_HEAVISIDE: *out = v[0] > 0 ? 1 : 0; return true;
    case SNN_INTR_DETACH: *out = v[0]; return true;
    default: (void)n; return false;
    }
}

static bool const_eval_depth(const snn_ast *e, snn_ast *const *env, double *out, int depth) {
    if (!e || depth > MAX_DEPTH) return false;
    if (e->is_const) { *out = e->cval; return true; }
    double x, y;
    switch (e->kind) {
    case SNN_AST_NUM: *out = e->num.value; return true;
    case SNN_AST_BOOL: *out = e->cval; return true;
    case SNN_AST_IDENT:
        switch (e->ident.ref.kind) {
        case SNN_REF_CONST: case SNN_REF_SYMBOL: *out = e->cval; return true;
        case SNN_REF_PARAM:
            if (!env) return false;
            return const_eval_depth(env[e->ident.ref.index], NULL, out, depth + 1);
        default: return false;
        }
    case SNN_AST_UNARY:
        if (!const_eval_depth(e->un.operand, env, &x, depth + 1)) return false;
        *out = e->un.op == SNN_UN_NEG ? -x : (x == 0);
        return true;
    case SNN_AST_BINARY:
        if (!const_eval_depth(e->bin.lhs, env, &x, depth + 1) || !const_eval_depth(e->bin.rhs, env, &y, depth + 1))
            return false;
        switch (e->bin.op) {
        case SNN_BIN_ADD: *out = x + y; break;
        case SNN_BIN_SUB: *out = x - y; break;
        case SNN_BIN_MUL: *out = x * y; break;
        case SNN_BIN_DIV: *out = x / y; break;
        case SNN_BIN_POW: *out = pow(x, y); break;
        case SNN_BIN_LT: *out = x < y; break;
        case SNN_BIN_LE: *out = x <= y; break;
        case SNN_BIN_GT: *out = x > y; break;
        case SNN_BIN_GE: *out = x >= y; break;
        case SNN_BIN_EQ: *out = x == y; break;
        case SNN_BIN_NE: *out = x != y; break;
        case SNN_BIN_AND: *out = x != 0 && y != 0; break;
        case SNN_BIN_OR: *out = x != 0 || y != 0; break;
        default: return false;
        }
        return true;
    case SNN_AST_SELECT:
        if (!const_eval_depth(e->sel.cond, env, &x, depth + 1)) return false;
        return const_eval_depth(x != 0 ? e->sel.a : e->sel.b, env, out, depth + 1);
    case SNN_AST_CALL: {
        if (e->call.def || !e->call.intrinsic || e->call.args.n > 3) return false;
        double v[3];
        for (int i = 0; i < e->call.args.n; i++)
            if (!const_eval_depth(e->call.args.items[i], env, &v[i], depth + 1)) return false;
        if (intrinsic_arity(e->call.intrinsic) != e->call.args.n) return false;
        return eval_intrinsic(e->call.intrinsic, v, e->call.args.n, out);
    }
    default: return false;
    }
}

bool snn_const_eval(const snn_ast *e, snn_ast *const *env, double *out) {
    return const_eval_depth(e, env, out, 0);
}

/* ---- expressions ---- */

static snn_type expr(sema *s, snn_ast *e);

static bool numeric(snn_type t) { return t == SNN_TY_NUM || t == SNN_TY_INT; }

/* Marks e constant if it folds without parameters. */
static void fold(snn_ast *e) {
    double v;
    if (!e->is_const && const_eval_depth(e, NULL, &v, 0)) { e->is_const = true; e->cval = v; }
}

/* Looks up a name among locals, states, the variable and the parameters of the current
 * definition; sets the reference. Returns false if not found there. */
static bool resolve_local(sema *s, snn_ast *id) {
    for (int i = s->n_locals - 1; i >= 0; i--)
        if (s->locals[i]->name == id->name) {
            id->ident.ref = (snn_ref){SNN_REF_LOCAL, s->locals[i], 0};
            id->type = s->locals[i]->type;
            return true;
        }
    snn_ast *def = s->def;
    if (!def || def->kind == SNN_AST_MODEL || def->kind == SNN_AST_TRAIN) return false;
    if (def->kind == SNN_AST_NEURON && s->ctx != CTX_DEFAULT) {
        for (int i = 0; i < def->def.states.n; i++) {
            snn_ast *st = def->def.states.items[i];
            if (st->name != id->name) continue;
            if (s->ctx == CTX_STATE_INIT) {
                snn_error(s->d, id->loc, "a state initializer cannot read state '%s'", id->name);
                id->type = SNN_TY_UNKNOWN;
                id->ident.ref = (snn_ref){SNN_REF_STATE, st, st->state.index};
                return true;
            }
            id->ident.ref = (snn_ref){SNN_REF_STATE, st, st->state.index};
            id->type = SNN_TY_NUM;
            return true;
        }
    }
    if (s->ctx == CTX_STATE_INIT && def->def.var && def->def.var == id->name) {
        snn_error(s->d, id->loc, "a state initializer cannot read the step's input '%s'", id->name);
        id->ident.ref = (snn_ref){SNN_REF_VAR, NULL, 0};
        id->type = SNN_TY_UNKNOWN;
        return true;
    }
    if ((s->ctx == CTX_STEP || s->ctx == CTX_BODY) && def->def.var && def->def.var == id->name) {
        id->ident.ref = (snn_ref){SNN_REF_VAR, NULL, 0};
        id->type = SNN_TY_NUM;
        return true;
    }
    if (s->ctx != CTX_DEFAULT) {
        for (int i = 0; i < def->def.params.n; i++) {
            snn_ast *p = def->def.params.items[i];
            if (p->name != id->name) continue;
            id->ident.ref = (snn_ref){SNN_REF_PARAM, p, p->param.index};
            id->type = p->type;
            if (s->ctx == CTX_STATE_INIT && p->param.learn != SNN_LEARN_NONE) {
                snn_error(s->d, id->loc, "'%s' is a learnable parameter; %s needs a constant", id->name,
                          s->what ? s->what : "this");
                id->type = SNN_TY_UNKNOWN;
            }
            return true;
        }
    }
    return false;
}

/* Rewrites an IDENT naming a definition into a CALL with no arguments. */
static void ident_to_call(snn_ast *id) {
    id->kind = SNN_AST_CALL;
    memset(&id->call, 0, sizeof id->call);
}

static snn_type check_call(sema *s, snn_ast *e);

static bool wanted(snn_builtin_kind want, const snn_ast *def) {
    if (def->kind != SNN_AST_BUILTIN || !def->def.builtin) return false;
    return def->def.builtin == want || (want == SNN_BUILTIN_LOSS && def->def.builtin == SNN_BUILTIN_REGULARIZER);
}

/* Reports an unknown name or function e->name (what: "name" or "function"). Where a builtin of
 * a known kind is expected (s->want: a train setting, an encoder) the message names that kind
 * and lists the known ones ("unknown optimizer 'adamm' (optimizers: adam, adamw, sgd)");
 * a close spelling among the visible names is suggested ("did you mean 'beta'?"). */
static void report_unknown(sema *s, snn_ast *e, const char *what) {
    const struct snn_symtab *st = s->st;
    const char *best = NULL;
    int best_d = 99;
    if (s->want) {
        char list[400] = "";
        size_t len = 0;
        for (int pass = 0; pass < 2; pass++) {
            const sym *t = pass ? st->std : st->user;
            int n = pass ? st->n_std : st->n_user;
            for (int i = 0; i < n; i++) {
                if (!wanted(s->want, t[i].def)) continue;
                consider(e->name, t[i].name, &best, &best_d);
                if (len < sizeof list - 64)
                    len += (size_t)snprintf(list + len, sizeof list - len, "%s%s", len ? ", " : "", t[i].name);
            }
        }
        const char *kind = snn_builtin_kind_name(s->want);
        const char *plural = s->want == SNN_BUILTIN_LOSS ? "losses"
                           : s->want == SNN_BUILTIN_DATA ? "data sources"
                           : snn_sprintf(s->a, "%ss", kind);
        snn_error(s->d, e->loc, "unknown %s '%s' (%s: %s)%s", kind, e->name, plural, list, did_you_mean(s->a, best));
        return;
    }
    for (int i = 0; i < s->n_locals; i++) consider(e->name, s->locals[i]->name, &best, &best_d);
    snn_ast *def = s->def;
    if (def && def->kind != SNN_AST_MODEL && def->kind != SNN_AST_TRAIN) {
        for (int i = 0; i < def->def.params.n; i++) consider(e->name, def->def.params.items[i]->name, &best, &best_d);
        if (def->kind == SNN_AST_NEURON)
            for (int i = 0; i < def->def.states.n; i++)
                consider(e->name, def->def.states.items[i]->name, &best, &best_d);
        if (def->def.var) consider(e->name, def->def.var, &best, &best_d);
    }
    for (int i = 0; i < s->n_seen && (s->ctx == CTX_MODEL || s->ctx == CTX_TRAIN); i++)
        consider(e->name, s->seen[i]->name, &best, &best_d);
    for (int i = 1; i < SNN_INTR_COUNT_; i++) consider(e->name, snn_intrinsic_name((snn_intrinsic)i), &best, &best_d);
    for (int i = 1; i < SNN_SYM_COUNT_; i++) consider(e->name, snn_symbol_name((snn_symbol)i), &best, &best_d);
    for (int i = 0; i < st->n_user; i++) consider(e->name, st->user[i].name, &best, &best_d);
    for (int i = 0; i < st->n_std; i++)
        if (st->std[i].def->def.builtin != SNN_BUILTIN_LAYER || s->ctx == CTX_MODEL)
            consider(e->name, st->std[i].name, &best, &best_d);
    snn_error(s->d, e->loc, "unknown %s '%s'%s", what, e->name, did_you_mean(s->a, best));
}

static snn_type check_ident(sema *s, snn_ast *e) {
    if (resolve_local(s, e)) return e->type;
    if (s->ctx == CTX_MODEL || s->ctx == CTX_TRAIN) {
        for (int i = s->n_seen - 1; i >= 0; i--) {
            snn_ast *n = s->seen[i];
            if (n->name != e->name) continue;
            if (n->kind == SNN_AST_INPUT) {
                e->ident.ref = (snn_ref){SNN_REF_INPUT, n, 0};
                e->width = n->width;
            } else {
                e->ident.ref = (snn_ref){SNN_REF_LAYER, n, 0};
                e->width = n->width;
            }
            return e->type = SNN_TY_TENSOR;   /* width 0 if its definition failed */
        }
        if (s->current_layer && s->current_layer->name == e->name) {
            snn_error(s->d, e->loc, "layer '%s' reads itself; a layer that reads its own previous spikes "
                                    "is written with a recurrent neuron such as rleaky", e->name);
            return SNN_TY_UNKNOWN;
        }
        if (s->model && s->ctx == CTX_MODEL) {
            for (int i = 0; i < s->model->model.items.n; i++) {
                snn_ast *n = s->model->model.items.items[i];
                if ((n->kind == SNN_AST_LAYER || n->kind == SNN_AST_INPUT) && n->name == e->name) {
                    snn_error(s->d, e->loc, "'%s' is used before it is defined", e->name);
                    snn_note(s->d, n->loc, "'%s' is defined here", e->name);
                    return SNN_TY_UNKNOWN;
                }
            }
        }
    }
    if (strcmp(e->name, "pi") == 0) {
        e->ident.ref = (snn_ref){SNN_REF_CONST, NULL, 0};
        e->is_const = true;
        e->cval = 3.14159265358979323846;
        return e->type = SNN_TY_NUM;
    }
    snn_symbol sy = find_symbol(e->name);
    if (sy) {
        e->ident.ref = (snn_ref){SNN_REF_SYMBOL, NULL, (int32_t)sy};
        e->is_const = true;
        e->cval = sy;
        return e->type = symbol_type(sy);
    }
    snn_ast *def = lookup_def(s, e->name);
    if (def && (def->kind == SNN_AST_SURROGATE || def->kind == SNN_AST_BUILTIN)) {
        ident_to_call(e);
        return check_call(s, e);
    }
    if (def) {
        snn_error(s->d, e->loc, "%s '%s' cannot be used as a value here", def_kind_word(def), e->name);
        return SNN_TY_UNKNOWN;
    }
    if (s->ctx == CTX_STEP) {
        /* a local defined later in the step, or in a block that has ended */
        for (int i = 0; i < s->def->def.step.n; i++) {
            snn_ast *st = s->def->def.step.items[i];
            if (st->kind == SNN_AST_LET && st->name == e->name) {
                snn_error(s->d, e->loc, "'%s' is used before it is defined", e->name);
                snn_note(s->d, st->loc, "'%s' is defined here", e->name);
                return SNN_TY_UNKNOWN;
            }
        }
    }
    if (s->ctx == CTX_DEFAULT && s->def && s->def->kind != SNN_AST_MODEL) {
        for (int i = 0; i < s->def->def.params.n; i++)
            if (s->def->def.params.items[i]->name == e->name) {
                snn_error(s->d, e->loc, "a parameter's default cannot read parameter '%s'", e->name);
                return SNN_TY_UNKNOWN;
            }
    }
    report_unknown(s, e, "name");
    return SNN_TY_UNKNOWN;
}

static const char *context_name(context c) {
    switch (c) {
    case CTX_DEFAULT: return "a parameter default";
    case CTX_STATE_INIT: return "a state initializer";
    case CTX_STEP: return "a neuron step";
    case CTX_BODY: return "a surrogate or def body";
    case CTX_MODEL: return "a model";
    case CTX_TRAIN: return "a train block";
    }
    return "here";
}

/* Is e fixed for a given layer (constants and non-learnable, non-surrogate parameters)? */
static bool layer_constant(const snn_ast *e, const snn_ast **bad) {
    if (!e) return true;
    switch (e->kind) {
    case SNN_AST_NUM: case SNN_AST_BOOL: case SNN_AST_STR: return true;
    case SNN_AST_IDENT:
        switch (e->ident.ref.kind) {
        case SNN_REF_CONST: case SNN_REF_SYMBOL: return true;
        case SNN_REF_PARAM:
            if (e->ident.ref.decl->param.learn == SNN_LEARN_NONE) return true;
            *bad = e;
            return false;
        default: *bad = e; return false;
        }
    case SNN_AST_UNARY: return layer_constant(e->un.operand, bad);
    case SNN_AST_BINARY: return layer_constant(e->bin.lhs, bad) && layer_constant(e->bin.rhs, bad);
    case SNN_AST_SELECT:
        return layer_constant(e->sel.cond, bad) && layer_constant(e->sel.a, bad) && layer_constant(e->sel.b, bad);
    case SNN_AST_CALL:
        if (e->call.intrinsic == SNN_INTR_FIRE || e->call.intrinsic == SNN_INTR_LINEAR) { *bad = e; return false; }
        for (int i = 0; i < e->call.args.n; i++) {
            const snn_ast *a = e->call.args.items[i];
            if (!layer_constant(a->kind == SNN_AST_ARG ? a->arg.value : a, bad)) return false;
        }
        return true;
    default: *bad = e; return false;
    }
}

static void require_layer_constant(sema *s, const snn_ast *e, const char *what) {
    const snn_ast *bad = NULL;
    if (layer_constant(e, &bad) || !bad) return;
    if (bad->kind == SNN_AST_IDENT && bad->ident.ref.kind == SNN_REF_PARAM)
        snn_error(s->d, bad->loc, "'%s' is a learnable parameter; %s needs a constant", bad->name, what);
    else if (bad->kind == SNN_AST_IDENT && bad->ident.ref.kind == SNN_REF_STATE)
        snn_error(s->d, bad->loc, "%s needs a constant, but state '%s' changes at every step", what, bad->name);
    else if (bad->kind == SNN_AST_IDENT)
        snn_error(s->d, bad->loc, "%s needs a constant, but '%s' is not one", what, bad->name);
    else
        snn_error(s->d, bad->loc, "%s needs a constant expression", what);
}

static snn_type check_binary(sema *s, snn_ast *e) {
    snn_type l = expr(s, e->bin.lhs), r = expr(s, e->bin.rhs);
    if (l == SNN_TY_UNKNOWN || r == SNN_TY_UNKNOWN) return SNN_TY_UNKNOWN;
    const char *op = snn_binop_spelling(e->bin.op);
    switch (e->bin.op) {
    case SNN_BIN_AND: case SNN_BIN_OR:
        if (l != SNN_TY_BOOL || r != SNN_TY_BOOL) {
            snn_error(s->d, e->loc, "'%s' needs two conditions, got %s and %s", op, type_phrase(l), type_phrase(r));
            return SNN_TY_UNKNOWN;
        }
        fold(e);
        return SNN_TY_BOOL;
    case SNN_BIN_EQ: case SNN_BIN_NE:
        if (l == SNN_TY_RESET && r == SNN_TY_RESET) { fold(e); return SNN_TY_BOOL; }
        /* fall through */
    case SNN_BIN_LT: case SNN_BIN_LE: case SNN_BIN_GT: case SNN_BIN_GE:
        if (s->ctx == CTX_MODEL && (l == SNN_TY_TENSOR || r == SNN_TY_TENSOR)) {
            snn_error(s->d, e->loc, "'%s' is not a layer operation; a model combines layers with +, - and * "
                                    "(comparisons belong in a neuron's step)", op);
            return SNN_TY_UNKNOWN;
        }
        if (!numeric(l) || !numeric(r)) {
            snn_error(s->d, e->loc, "cannot compare %s with %s", type_phrase(l), type_phrase(r));
            return SNN_TY_UNKNOWN;
        }
        if (s->ctx == CTX_MODEL) {
            snn_error(s->d, e->loc, "comparisons are not allowed in a model");
            return SNN_TY_UNKNOWN;
        }
        fold(e);
        return SNN_TY_BOOL;
    default:
        break;
    }
    /* arithmetic */
    if (l == SNN_TY_TENSOR || r == SNN_TY_TENSOR) {
        if (e->bin.op == SNN_BIN_POW) {
            snn_error(s->d, e->loc, "'^' is not defined on layers");
            return SNN_TY_UNKNOWN;
        }
        if ((l != SNN_TY_TENSOR && !numeric(l)) || (r != SNN_TY_TENSOR && !numeric(r))) {
            snn_error(s->d, e->loc, "cannot apply '%s' to %s and %s", op, type_phrase(l), type_phrase(r));
            return SNN_TY_UNKNOWN;
        }
        if (l == SNN_TY_TENSOR && r == SNN_TY_TENSOR && (!e->bin.lhs->width || !e->bin.rhs->width))
            return SNN_TY_UNKNOWN;   /* a layer whose definition failed (reported): no follow-on error */
        if (l == SNN_TY_TENSOR && r == SNN_TY_TENSOR && e->bin.lhs->width != e->bin.rhs->width) {
            snn_error(s->d, e->loc, "width mismatch in '%s': the left side is %lld wide, the right side %lld", op,
                      (long long)e->bin.lhs->width, (long long)e->bin.rhs->width);
            return SNN_TY_UNKNOWN;
        }
        e->width = l == SNN_TY_TENSOR ? e->bin.lhs->width : e->bin.rhs->width;
        return SNN_TY_TENSOR;
    }
    if (!numeric(l) || !numeric(r)) {
        snn_error(s->d, e->loc, "cannot apply '%s' to %s and %s", op, type_phrase(l), type_phrase(r));
        return SNN_TY_UNKNOWN;
    }
    fold(e);
    if (l == SNN_TY_INT && r == SNN_TY_INT && e->bin.op != SNN_BIN_DIV && e->bin.op != SNN_BIN_POW)
        return SNN_TY_INT;
    return SNN_TY_NUM;
}

static snn_type expr_depth(sema *s, snn_ast *e) {
    switch (e->kind) {
    case SNN_AST_NUM:
        e->is_const = true;
        e->cval = e->num.value;
        return e->num.is_int ? SNN_TY_INT : SNN_TY_NUM;
    case SNN_AST_BOOL: e->is_const = true; return SNN_TY_BOOL;
    case SNN_AST_STR: return SNN_TY_STR;
    case SNN_AST_IDENT: return check_ident(s, e);
    case SNN_AST_UNARY: {
        snn_type t = expr(s, e->un.operand);
        if (t == SNN_TY_UNKNOWN) return t;
        if (e->un.op == SNN_UN_NOT) {
            if (t != SNN_TY_BOOL) {
                snn_error(s->d, e->loc, "'!' needs a condition, got %s", type_phrase(t));
                return SNN_TY_UNKNOWN;
            }
            fold(e);
            return t;
        }
        if (t == SNN_TY_TENSOR) { e->width = e->un.operand->width; return t; }
        if (!numeric(t)) {
            snn_error(s->d, e->loc, "cannot negate %s", type_phrase(t));
            return SNN_TY_UNKNOWN;
        }
        fold(e);
        return t;
    }
    case SNN_AST_BINARY: return check_binary(s, e);
    case SNN_AST_SELECT: {
        snn_type c = expr(s, e->sel.cond), a = expr(s, e->sel.a), b = expr(s, e->sel.b);
        if (c == SNN_TY_UNKNOWN || a == SNN_TY_UNKNOWN || b == SNN_TY_UNKNOWN) return SNN_TY_UNKNOWN;
        if (c != SNN_TY_BOOL) {
            snn_error(s->d, e->sel.cond->loc, "the condition of '?' must be a comparison, got %s", type_phrase(c));
            return SNN_TY_UNKNOWN;
        }
        if (!numeric(a) || !numeric(b)) {
            snn_error(s->d, e->loc, "both branches of '?' must be numbers, got %s and %s", type_phrase(a),
                      type_phrase(b));
            return SNN_TY_UNKNOWN;
        }
        fold(e);
        return a == SNN_TY_INT && b == SNN_TY_INT ? SNN_TY_INT : SNN_TY_NUM;
    }
    case SNN_AST_CALL: return check_call(s, e);
    case SNN_AST_ARG:
        snn_error(s->d, e->loc, "named argument outside a call");
        return SNN_TY_UNKNOWN;
    case SNN_AST_MEMBER: {
        snn_ast *obj = e->member.object;
        if (s->ctx != CTX_MODEL && s->ctx != CTX_TRAIN) {
            snn_error(s->d, e->loc, "'.%s': outputs of layers can only be selected in a model", e->name);
            return SNN_TY_UNKNOWN;
        }
        if (obj->kind != SNN_AST_IDENT) {
            snn_error(s->d, e->loc, "'.%s' must follow a layer name", e->name);
            return SNN_TY_UNKNOWN;
        }
        if (expr(s, obj) == SNN_TY_UNKNOWN) return SNN_TY_UNKNOWN;
        if (obj->ident.ref.kind == SNN_REF_LAYER && obj->ident.ref.decl->type != SNN_TY_TENSOR)
            return SNN_TY_UNKNOWN;   /* the layer's definition failed (reported) */
        if (obj->ident.ref.kind != SNN_REF_LAYER || !obj->ident.ref.decl->layer.neuron) {
            snn_error(s->d, e->loc, "'%s' is not a layer of neurons; it has no output '%s'", obj->name, e->name);
            return SNN_TY_UNKNOWN;
        }
        snn_ast *layer = obj->ident.ref.decl;
        snn_ast *neuron = layer->layer.neuron->call.def;
        for (int i = 0; i < neuron->def.outs.n; i++)
            if (neuron->def.outs.items[i]->name == e->name) {
                e->member.layer = layer;
                e->member.out_index = i;
                e->width = layer->width;
                return SNN_TY_TENSOR;
            }
        snn_error(s->d, e->loc, "layer '%s' (neuron '%s') has no output '%s'", obj->name, neuron->name, e->name);
        snn_note(s->d, neuron->def.outs.n ? neuron->def.outs.items[0]->loc : neuron->loc,
                 "the outputs of '%s' are declared here", neuron->name);
        return SNN_TY_UNKNOWN;
    }
    case SNN_AST_TUPLE: {
        bool ok = true;
        for (int i = 0; i < e->tuple.elems.n; i++) {
            snn_type t = expr(s, e->tuple.elems.items[i]);
            if (t == SNN_TY_UNKNOWN) ok = false;
            else if (!numeric(t)) {
                snn_error(s->d, e->tuple.elems.items[i]->loc, "tuple elements must be numbers, got %s", type_phrase(t));
                ok = false;
            }
        }
        if (!ok) return SNN_TY_UNKNOWN;
        if (e->tuple.elems.n != 2) {
            snn_error(s->d, e->loc, "only pairs are supported, this tuple has %d elements", (int)e->tuple.elems.n);
            return SNN_TY_UNKNOWN;
        }
        return SNN_TY_PAIR;
    }
    default:
        snn_internal_error(s->d, e->loc, "unexpected %s node in an expression", snn_ast_kind_name(e->kind));
        return SNN_TY_UNKNOWN;
    }
}

static snn_type expr(sema *s, snn_ast *e) {
    if (s->too_deep) return SNN_TY_UNKNOWN;
    if (++s->depth > MAX_DEPTH) {
        snn_error(s->d, e->loc, "expression is nested too deeply");
        s->too_deep = true;
        s->depth--;
        return e->type = SNN_TY_UNKNOWN;
    }
    snn_type t = expr_depth(s, e);
    s->depth--;
    return e->type = t;
}

/* ---- calls ---- */

/* Is actual acceptable where a parameter of type want is expected? */
static bool type_fits(snn_type want, snn_type actual) {
    if (want == actual) return true;
    if (want == SNN_TY_NUM && actual == SNN_TY_INT) return true;
    if ((want == SNN_TY_SPIKES || want == SNN_TY_MEMBRANE) && actual == SNN_TY_TENSOR) return true;
    return false;
}

/* Binds call's arguments (from index first) to def's parameters into call->call.bound. */
static bool bind_args(sema *s, snn_ast *call, snn_ast *def, int first) {
    snn_ast_list *ps = params_of(def);
    int np = ps ? ps->n : 0;
    snn_ast **bound = snn_alloc(s->a, (size_t)(np ? np : 1) * sizeof *bound);
    snn_ast **given = snn_alloc(s->a, (size_t)(np ? np : 1) * sizeof *given);
    bool ok = true, named_seen = false;
    int pos = 0;
    for (int i = first; i < call->call.args.n; i++) {
        snn_ast *a = call->call.args.items[i];
        if (a->kind == SNN_AST_ARG) {
            named_seen = true;
            int idx = snn_def_param_index(def, a->name);
            if (idx < 0) {
                const char *best = NULL;
                int best_d = 99;
                for (int j = 0; j < np; j++) consider(a->name, ps->items[j]->name, &best, &best_d);
                snn_error(s->d, a->loc, "%s '%s' has no parameter '%s'%s", def_kind_word(def), def->name, a->name,
                          did_you_mean(s->a, best));
                snn_note(s->d, def->loc, "'%s' is defined here", def->name);
                ok = false;
                continue;
            }
            if (given[idx]) {
                snn_error(s->d, a->loc, "parameter '%s' is given twice", a->name);
                snn_note(s->d, given[idx]->loc, "first given here");
                ok = false;
                continue;
            }
            given[idx] = a;
            bound[idx] = a->arg.value;
        } else {
            if (named_seen) {
                snn_error(s->d, a->loc, "positional argument after a named one");
                ok = false;
                continue;
            }
            if (pos >= np) {
                if (first)
                    snn_error(s->d, a->loc, "too many arguments to %s '%s': it takes an input and %d parameter%s, "
                              "got %d arguments", def_kind_word(def), def->name, np, np == 1 ? "" : "s",
                              call->call.args.n);
                else
                    snn_error(s->d, a->loc, "too many arguments to %s '%s': it takes %d, got %d", def_kind_word(def),
                              def->name, np, call->call.args.n);
                snn_note(s->d, def->loc, "'%s' is defined here", def->name);
                return false;
            }
            given[pos] = a;
            bound[pos] = a;
            pos++;
        }
    }
    for (int i = 0; i < np; i++) {
        if (bound[i]) continue;
        snn_ast *p = ps->items[i];
        if (p->param.def_value) { bound[i] = p->param.def_value; continue; }
        snn_error(s->d, call->loc, "missing argument '%s' of %s '%s'", p->name, def_kind_word(def), def->name);
        snn_note(s->d, p->loc, "parameter '%s' is declared here without a default", p->name);
        ok = false;
    }
    call->call.bound = bound;
    /* check the arguments given at this call */
    for (int i = 0; i < np; i++) {
        if (!given[i]) continue;
        snn_ast *p = ps->items[i];
        snn_ast *v = bound[i];
        snn_type t = expr(s, v);
        if (t == SNN_TY_UNKNOWN || p->type == SNN_TY_UNKNOWN) { ok = false; continue; }
        if (!type_fits(p->type, t)) {
            snn_error(s->d, v->loc, "argument '%s' of %s '%s' must be %s, got %s", p->name, def_kind_word(def),
                      def->name, type_phrase(p->type), type_phrase(t));
            ok = false;
            continue;
        }
        if (p->type == SNN_TY_INT && !(v->is_const && v->cval == floor(v->cval))) {
            snn_error(s->d, v->loc, "argument '%s' of %s '%s' must be an integer constant", p->name,
                      def_kind_word(def), def->name);
            ok = false;
            continue;
        }
        bool needs_const = p->type == SNN_TY_NUM || p->type == SNN_TY_INT || p->type == SNN_TY_BOOL ||
                           p->type == SNN_TY_RESET;
        if (needs_const && (s->ctx == CTX_MODEL || s->ctx == CTX_TRAIN || s->ctx == CTX_DEFAULT) && !v->is_const) {
            snn_error(s->d, v->loc, "argument '%s' of %s '%s' must be a constant", p->name, def_kind_word(def), def->name);
            ok = false;
        } else if (needs_const && v->is_const && !isfinite(v->cval)) {   /* 1 / 0, log(-1) */
            snn_error(s->d, v->loc, "argument '%s' of %s '%s' is not a finite number (it evaluates to %s)", p->name,
                      def_kind_word(def), def->name, nonfinite_word(v->cval));
            ok = false;
        }
    }
    return ok;
}

/* A named value inside the model being trained, for loss/metric arguments. */
static bool check_output_arg(sema *s, snn_ast *call, snn_ast *def) {
    bool ok = true;
    for (int i = 0; i < def->def.params.n; i++) {
        snn_ast *p = def->def.params.items[i];
        if (p->type != SNN_TY_SPIKES && p->type != SNN_TY_MEMBRANE) continue;
        snn_ast *v = call->call.bound[i];
        if (!v || v->type == SNN_TY_UNKNOWN) continue;
        if (v->kind != SNN_AST_IDENT || v->ident.ref.kind != SNN_REF_LAYER) {
            snn_error(s->d, v->loc, "argument '%s' of %s '%s' must name a layer of the model", p->name,
                      def_kind_word(def), def->name);
            ok = false;
            continue;
        }
        snn_ast *layer = v->ident.ref.decl;
        if (def->def.builtin == SNN_BUILTIN_LOSS || def->def.builtin == SNN_BUILTIN_METRIC) {
            bool is_output = false;
            snn_ast *out_item = NULL;
            for (int j = 0; s->model && j < s->model->model.items.n; j++) {
                snn_ast *it = s->model->model.items.items[j];
                if (it->kind != SNN_AST_OUTPUT) continue;
                out_item = it;
                for (int k = 0; k < it->output.names.n; k++)
                    if (it->output.names.items[k]->name == layer->name) is_output = true;
            }
            if (!is_output) {
                snn_error(s->d, v->loc, "%s '%s' needs an output of model '%s', and '%s' is not one",
                          def_kind_word(def), def->name, s->model ? s->model->name : "?", layer->name);
                if (out_item) snn_note(s->d, out_item->loc, "the outputs are declared here");
                ok = false;
                continue;
            }
        }
        if (p->type == SNN_TY_MEMBRANE) {
            snn_ast *neuron = layer->layer.neuron ? layer->layer.neuron->call.def : NULL;
            bool has_mem = false;
            for (int k = 0; neuron && k < neuron->def.outs.n; k++)
                if (strcmp(neuron->def.outs.items[k]->name, "mem") == 0) has_mem = true;
            if (!has_mem) {
                if (neuron)
                    snn_error(s->d, v->loc, "%s '%s' needs a membrane potential, but layer '%s' (neuron '%s') "
                              "has no output named 'mem'", def_kind_word(def), def->name, layer->name, neuron->name);
                else
                    snn_error(s->d, v->loc, "%s '%s' needs a membrane potential, but layer '%s' is not a layer "
                              "of neurons", def_kind_word(def), def->name, layer->name);
                ok = false;
            }
        }
    }
    return ok;
}

static snn_type builtin_type(snn_builtin_kind k) {
    switch (k) {
    case SNN_BUILTIN_ENCODER: return SNN_TY_ENCODER;
    case SNN_BUILTIN_LOSS: case SNN_BUILTIN_REGULARIZER: return SNN_TY_LOSS;
    case SNN_BUILTIN_OPTIMIZER: return SNN_TY_OPTIMIZER;
    case SNN_BUILTIN_METRIC: return SNN_TY_METRIC;
    case SNN_BUILTIN_DATA: return SNN_TY_DATA;
    case SNN_BUILTIN_LAYER: return SNN_TY_TENSOR;
    default: return SNN_TY_UNKNOWN;
    }
}

static snn_type check_intrinsic(sema *s, snn_ast *e, snn_intrinsic in) {
    e->call.intrinsic = in;
    const char *name = snn_intrinsic_name(in);
    for (int i = 0; i < e->call.args.n; i++)
        if (e->call.args.items[i]->kind == SNN_AST_ARG) {
            snn_error(s->d, e->call.args.items[i]->loc, "'%s' takes no named arguments", name);
            return SNN_TY_UNKNOWN;
        }
    int want = intrinsic_arity(in), n = e->call.args.n;
    if (in == SNN_INTR_FIRE) {
        if (s->ctx != CTX_STEP) {
            snn_error(s->d, e->loc, "fire() can only be used in a neuron's step");
            return SNN_TY_UNKNOWN;
        }
        if (n != 1 && n != 2) {
            snn_error(s->d, e->loc, "'fire' takes 1 or 2 arguments (x, surrogate), got %d", n);
            return SNN_TY_UNKNOWN;
        }
    } else if (n != want) {
        snn_error(s->d, e->loc, "'%s' takes %d argument%s, got %d", name, want, want == 1 ? "" : "s", n);
        return SNN_TY_UNKNOWN;
    }
    if (in == SNN_INTR_LINEAR && s->ctx != CTX_STEP) {
        snn_error(s->d, e->loc, "linear(v) with one argument is a neuron's recurrent weight and can only "
                                "be used in a step");
        return SNN_TY_UNKNOWN;
    }
    bool ok = true;
    int nvals = in == SNN_INTR_FIRE ? 1 : n;
    for (int i = 0; i < nvals; i++) {
        snn_type t = expr(s, e->call.args.items[i]);
        if (t == SNN_TY_UNKNOWN) ok = false;
        else if (!numeric(t)) {
            snn_error(s->d, e->call.args.items[i]->loc, "argument %d of '%s' must be a number, got %s", i + 1, name,
                      type_phrase(t));
            ok = false;
        }
    }
    if (!ok) return SNN_TY_UNKNOWN;
    if (in == SNN_INTR_FIRE) {
        snn_ast *neuron = s->def;
        if (n == 2) {
            snn_ast *sarg = e->call.args.items[1];
            if (sarg->kind != SNN_AST_IDENT || expr(s, sarg) != SNN_TY_SURROGATE ||
                sarg->ident.ref.kind != SNN_REF_PARAM) {
                snn_error(s->d, sarg->loc, "the second argument of 'fire' must name a surrogate parameter");
                return SNN_TY_UNKNOWN;
            }
        } else {
            snn_ast *found = NULL;
            int count = 0;
            for (int i = 0; i < neuron->def.params.n; i++)
                if (neuron->def.params.items[i]->type == SNN_TY_SURROGATE) {
                    found = neuron->def.params.items[i];
                    count++;
                }
            if (count != 1) {
                if (count == 0)
                    snn_error(s->d, e->loc, "fire() needs a surrogate: neuron '%s' has no surrogate parameter "
                                            "(add e.g. 'surrogate = atan()')", neuron->name);
                else
                    snn_error(s->d, e->loc, "neuron '%s' has %d surrogate parameters; say which with fire(x, name)",
                              neuron->name, count);
                return SNN_TY_UNKNOWN;
            }
            snn_ast *id = snn_ast_new(s->a, SNN_AST_IDENT, e->loc);
            id->name = found->name;
            id->ident.ref = (snn_ref){SNN_REF_PARAM, found, found->param.index};
            id->type = SNN_TY_SURROGATE;
            snn_ast_list_push(s->a, &e->call.args, id);
        }
    }
    if (in != SNN_INTR_FIRE && in != SNN_INTR_LINEAR) fold(e);
    return SNN_TY_NUM;
}

static snn_type check_call_inner(sema *s, snn_ast *e) {
    snn_ast *def = lookup_def(s, e->name);
    snn_intrinsic in = find_intrinsic(e->name);
    bool body = s->ctx == CTX_STEP || s->ctx == CTX_BODY || s->ctx == CTX_STATE_INIT;
    /* In bodies intrinsics shadow definitions (the math sigmoid, not the surrogate); elsewhere
     * definitions come first (the model-level linear layer, the sigmoid surrogate). */
    if (in && (body || !def)) {
        if (in == SNN_INTR_LINEAR && s->ctx == CTX_MODEL && def) goto definition;
        return check_intrinsic(s, e, in);
    }
definition:
    if (!def) {
        report_unknown(s, e, "function");
        return SNN_TY_UNKNOWN;
    }
    e->call.def = def;
    add_edge(s, def, e->loc);
    switch (def->kind) {
    case SNN_AST_FUNC:
        if (!body) {
            snn_error(s->d, e->loc, "def '%s' can only be called in a neuron step, a surrogate or a def", def->name);
            return SNN_TY_UNKNOWN;
        }
        if (!bind_args(s, e, def, 0)) return SNN_TY_UNKNOWN;
        return SNN_TY_NUM;
    case SNN_AST_SURROGATE:
        if (s->ctx != CTX_DEFAULT && s->ctx != CTX_MODEL) {
            snn_error(s->d, e->loc, "surrogate '%s' can only be given as a neuron's argument", def->name);
            return SNN_TY_UNKNOWN;
        }
        if (!bind_args(s, e, def, 0)) return SNN_TY_UNKNOWN;
        return SNN_TY_SURROGATE;
    case SNN_AST_NEURON: {
        if (s->ctx != CTX_MODEL) {
            snn_error(s->d, e->loc, "neuron '%s' can only be used in a model", def->name);
            return SNN_TY_UNKNOWN;
        }
        if (e->call.args.n == 0 || e->call.args.items[0]->kind == SNN_AST_ARG) {
            snn_error(s->d, e->loc, "neuron '%s' needs an input as its first argument, e.g. %s(linear(x, 10))",
                      def->name, def->name);
            return SNN_TY_UNKNOWN;
        }
        snn_ast *in_e = e->call.args.items[0];
        e->call.input = in_e;
        snn_type it = expr(s, in_e);
        bool ok = bind_args(s, e, def, 1);
        if (it == SNN_TY_UNKNOWN || !ok) return SNN_TY_UNKNOWN;
        if (it != SNN_TY_TENSOR) {
            snn_error(s->d, in_e->loc, "the input of neuron '%s' must be a layer or input, got %s", def->name,
                      type_phrase(it));
            return SNN_TY_UNKNOWN;
        }
        e->width = in_e->width;
        return SNN_TY_TENSOR;
    }
    case SNN_AST_BUILTIN: {
        snn_builtin_kind k = def->def.builtin;
        bool allowed = (k == SNN_BUILTIN_LAYER && s->ctx == CTX_MODEL) ||
                       (k == SNN_BUILTIN_ENCODER && s->ctx == CTX_MODEL) ||
                       (k != SNN_BUILTIN_LAYER && k != SNN_BUILTIN_ENCODER && s->ctx == CTX_TRAIN);
        if (!allowed) {
            snn_error(s->d, e->loc, "%s '%s' cannot be used in %s", def_kind_word(def), def->name, context_name(s->ctx));
            return SNN_TY_UNKNOWN;
        }
        if (!bind_args(s, e, def, 0)) return SNN_TY_UNKNOWN;
        if (k == SNN_BUILTIN_LAYER) {
            int si = snn_def_param_index(def, "size");
            int ii = snn_def_param_index(def, "input");
            snn_ast *size = si >= 0 ? e->call.bound[si] : NULL;
            if (ii < 0 || !size || !size->is_const) {
                snn_internal_error(s->d, e->loc, "layer builtin '%s' needs 'input' and a constant 'size'", def->name);
                return SNN_TY_UNKNOWN;
            }
            if (size->cval < 1 || size->cval > 1e9) {
                snn_error(s->d, size->loc, "the size of '%s' must be a positive integer, got %g", def->name, size->cval);
                return SNN_TY_UNKNOWN;
            }
            e->width = (int64_t)size->cval;
            return SNN_TY_TENSOR;
        }
        if (k == SNN_BUILTIN_LOSS || k == SNN_BUILTIN_METRIC || k == SNN_BUILTIN_REGULARIZER)
            if (!check_output_arg(s, e, def)) return SNN_TY_UNKNOWN;
        return builtin_type(k);
    }
    case SNN_AST_MODEL:
        snn_error(s->d, e->loc, "model '%s' cannot be called", def->name);
        return SNN_TY_UNKNOWN;
    default:
        snn_internal_error(s->d, e->loc, "unexpected definition kind");
        return SNN_TY_UNKNOWN;
    }
}

/* A call; inside its arguments no particular builtin kind is expected any more. */
static snn_type check_call(sema *s, snn_ast *e) {
    snn_builtin_kind saved = s->want;
    if (lookup_def(s, e->name) || find_intrinsic(e->name)) s->want = SNN_BUILTIN_NONE_;
    snn_type t = check_call_inner(s, e);
    s->want = saved;
    return t;
}

/* ---- definitions ---- */

static void check_params(sema *s, snn_ast *def) {
    snn_ast_list *ps = &def->def.params;
    s->def = def;
    s->ctx = CTX_DEFAULT;
    for (int i = 0; i < ps->n; i++) {
        snn_ast *p = ps->items[i];
        for (int j = 0; j < i; j++)
            if (ps->items[j]->name == p->name) {
                snn_error(s->d, p->loc, "duplicate parameter '%s'", p->name);
                snn_note(s->d, ps->items[j]->loc, "'%s' is first declared here", p->name);
            }
        snn_type declared = SNN_TY_UNKNOWN;
        if (p->param.type_name) {
            declared = type_from_name(p->param.type_name);
            if (!declared || declared == SNN_TY_ENCODER || declared == SNN_TY_LOSS || declared == SNN_TY_OPTIMIZER ||
                declared == SNN_TY_METRIC || declared == SNN_TY_DATA) {
                snn_error(s->d, p->loc, "unknown parameter type '%s' (types: num, int, bool, str, reset, pair, "
                                        "tensor, surrogate, spikes, membrane)", p->param.type_name);
                declared = SNN_TY_UNKNOWN;
                p->type = SNN_TY_UNKNOWN;
                continue;
            }
        }
        snn_type t = SNN_TY_UNKNOWN;
        if (p->param.def_value) {
            t = expr(s, p->param.def_value);
            if (t != SNN_TY_UNKNOWN && t != SNN_TY_SURROGATE && t != SNN_TY_STR && t != SNN_TY_PAIR &&
                !p->param.def_value->is_const) {
                snn_error(s->d, p->param.def_value->loc, "the default of '%s' must be a constant", p->name);
                t = SNN_TY_UNKNOWN;
            } else if (p->param.def_value->is_const && !isfinite(p->param.def_value->cval)) {
                snn_error(s->d, p->param.def_value->loc, "the default of '%s' is not a finite number (it evaluates "
                          "to %s)", p->name, nonfinite_word(p->param.def_value->cval));
                t = SNN_TY_UNKNOWN;
            }
            if (t == SNN_TY_UNKNOWN) { p->type = SNN_TY_UNKNOWN; continue; }
        }
        if (declared) {
            const snn_ast *dv = p->param.def_value;
            bool whole = t == SNN_TY_NUM && dv->is_const && dv->cval == floor(dv->cval);  /* 2.0 for an int */
            if (t && !type_fits(declared, t) && !(declared == SNN_TY_INT && whole)) {
                snn_error(s->d, dv->loc, "the default of '%s' must be %s, got %s", p->name, type_phrase(declared),
                          type_phrase(t));
            }
            p->type = declared;
        } else {
            p->type = t == SNN_TY_INT ? SNN_TY_NUM : t ? t : SNN_TY_NUM;
        }
        if (p->param.learn != SNN_LEARN_NONE) {
            if (def->kind != SNN_AST_NEURON)
                snn_error(s->d, p->loc, "only neuron parameters can be learnable ('%s' is in %s '%s')", p->name,
                          def_kind_word(def), def->name);
            else if (p->type != SNN_TY_NUM)
                snn_error(s->d, p->loc, "learnable parameter '%s' must be a number, not %s", p->name,
                          type_phrase(p->type));
            if (p->param.learn == SNN_LEARN_PER_NEURON && (!p->str || strcmp(p->str, "n") != 0))
                snn_error(s->d, p->loc, "a per-neuron learnable parameter is written 'learn[n] %s'", p->name);
        }
        if (def->kind != SNN_AST_BUILTIN &&
            (p->type == SNN_TY_TENSOR || p->type == SNN_TY_SPIKES || p->type == SNN_TY_MEMBRANE)) {
            snn_error(s->d, p->loc, "parameter '%s' of %s '%s' cannot be %s", p->name, def_kind_word(def),
                      def->name, type_phrase(p->type));
        }
        if ((def->kind == SNN_AST_SURROGATE || def->kind == SNN_AST_FUNC) && p->type == SNN_TY_SURROGATE)
            snn_error(s->d, p->loc, "%s '%s' cannot take a surrogate parameter", def_kind_word(def), def->name);
    }
}

static void check_stmts(sema *s, snn_ast_list *stmts, bool top);

static void check_stmt(sema *s, snn_ast *st, bool top) {
    snn_ast *def = s->def;
    switch (st->kind) {
    case SNN_AST_LET: {
        snn_type t = expr(s, st->stmt.value);
        if (t != SNN_TY_UNKNOWN && !numeric(t)) {
            snn_error(s->d, st->stmt.value->loc, "a local must hold a number, got %s", type_phrase(t));
            t = SNN_TY_UNKNOWN;
        }
        st->type = t == SNN_TY_UNKNOWN ? SNN_TY_UNKNOWN : SNN_TY_NUM;
        const snn_ast *prev = NULL;
        const char *what = NULL;
        for (int i = 0; i < s->n_locals; i++)
            if (s->locals[i]->name == st->name) { prev = s->locals[i]; what = "local"; }
        for (int i = 0; !prev && i < def->def.states.n; i++)
            if (def->def.states.items[i]->name == st->name) { prev = def->def.states.items[i]; what = "state"; }
        for (int i = 0; !prev && i < def->def.params.n; i++)
            if (def->def.params.items[i]->name == st->name) { prev = def->def.params.items[i]; what = "parameter"; }
        if (prev) {
            snn_error(s->d, st->loc, "'%s' is already defined (as a %s)", st->name, what);
            snn_note(s->d, prev->loc, "'%s' is defined here", st->name);
        } else if (st->name == def->def.var) {
            snn_error(s->d, st->loc, "'%s' is already defined (as the step's input)", st->name);
        }
        push_local(s, st);
        (void)top;
        break;
    }
    case SNN_AST_ASSIGN: {
        snn_type t = expr(s, st->stmt.value);
        if (t != SNN_TY_UNKNOWN && !numeric(t))
            snn_error(s->d, st->stmt.value->loc, "a state must hold a number, got %s", type_phrase(t));
        for (int i = 0; i < def->def.states.n; i++)
            if (def->def.states.items[i]->name == st->name) {
                st->stmt.target = def->def.states.items[i];
                return;
            }
        for (int i = s->n_locals - 1; i >= 0; i--)
            if (s->locals[i]->name == st->name) {
                snn_error(s->d, st->loc, "cannot assign to local '%s': locals are immutable; declare a state "
                                         "to carry a value across steps", st->name);
                return;
            }
        for (int i = 0; i < def->def.params.n; i++)
            if (def->def.params.items[i]->name == st->name) {
                snn_error(s->d, st->loc, "cannot assign to parameter '%s'", st->name);
                return;
            }
        if (st->name == def->def.var) {
            snn_error(s->d, st->loc, "cannot assign to the step's input '%s'", st->name);
            return;
        }
        snn_error(s->d, st->loc, "assignment to undeclared state '%s' (declare it with 'state %s = 0', or use "
                                 "'let' for a local)", st->name, st->name);
        break;
    }
    case SNN_AST_IF: {
        snn_type t = expr(s, st->ifs.cond);
        if (t != SNN_TY_UNKNOWN) {
            if (t != SNN_TY_BOOL)
                snn_error(s->d, st->ifs.cond->loc, "an 'if' condition must be a comparison, got %s", type_phrase(t));
            else
                require_layer_constant(s, st->ifs.cond, "an 'if' condition (chosen when the model is compiled)");
        }
        check_stmts(s, &st->ifs.then_, false);
        check_stmts(s, &st->ifs.else_, false);
        break;
    }
    default:
        snn_internal_error(s->d, st->loc, "unexpected %s node in a step", snn_ast_kind_name(st->kind));
        break;
    }
}

static void check_stmts(sema *s, snn_ast_list *stmts, bool top) {
    int mark = s->n_locals;
    for (int i = 0; i < stmts->n; i++) check_stmt(s, stmts->items[i], top);
    if (!top) s->n_locals = mark;
}

static void check_neuron(sema *s, snn_ast *n) {
    s->def = n;
    s->n_locals = 0;
    for (int i = 0; i < n->def.states.n; i++) {
        snn_ast *st = n->def.states.items[i];
        for (int j = 0; j < i; j++)
            if (n->def.states.items[j]->name == st->name) {
                snn_error(s->d, st->loc, "duplicate state '%s'", st->name);
                snn_note(s->d, n->def.states.items[j]->loc, "'%s' is first declared here", st->name);
            }
        for (int j = 0; j < n->def.params.n; j++)
            if (n->def.params.items[j]->name == st->name) {
                snn_error(s->d, st->loc, "state '%s' has the name of a parameter", st->name);
                snn_note(s->d, n->def.params.items[j]->loc, "parameter '%s' is declared here", st->name);
            }
        s->ctx = CTX_STATE_INIT;
        s->what = "a state initializer";
        snn_type t = expr(s, st->state.init);
        if (t != SNN_TY_UNKNOWN && !numeric(t))
            snn_error(s->d, st->state.init->loc, "a state's initial value must be a number, got %s", type_phrase(t));
        else if (t != SNN_TY_UNKNOWN)
            require_layer_constant(s, st->state.init, "a state initializer");
        st->type = SNN_TY_NUM;
        s->what = NULL;
    }
    s->ctx = CTX_STEP;
    check_stmts(s, &n->def.step, true);
    /* outs: states or top-level locals */
    for (int i = 0; i < n->def.outs.n; i++) {
        snn_ast *o = n->def.outs.items[i];
        for (int j = 0; j < i; j++)
            if (n->def.outs.items[j]->name == o->name)
                snn_error(s->d, o->loc, "'%s' is listed twice in 'out'", o->name);
        bool found = false;
        for (int j = s->n_locals - 1; j >= 0 && !found; j--)
            if (s->locals[j]->name == o->name) {
                o->ident.ref = (snn_ref){SNN_REF_LOCAL, s->locals[j], 0};
                found = true;
            }
        for (int j = 0; j < n->def.states.n && !found; j++)
            if (n->def.states.items[j]->name == o->name) {
                o->ident.ref = (snn_ref){SNN_REF_STATE, n->def.states.items[j], j};
                found = true;
            }
        if (found) { o->type = SNN_TY_NUM; continue; }
        bool assigned = false;        /* `spk = ...` without a state: already reported */
        for (int j = 0; j < n->def.step.n; j++) {
            const snn_ast *st = n->def.step.items[j];
            if (st->kind == SNN_AST_ASSIGN && st->name == o->name) assigned = true;
        }
        if (assigned) continue;
        snn_error(s->d, o->loc, "'out %s': '%s' is not a state or a local defined at the top of step",
                  o->name, o->name);
    }
    s->n_locals = 0;
}

static void check_body(sema *s, snn_ast *def) {
    s->def = def;
    s->ctx = CTX_BODY;
    s->n_locals = 0;
    snn_type t = expr(s, def->def.body);
    if (t != SNN_TY_UNKNOWN && !numeric(t))
        snn_error(s->d, def->def.body->loc, "the body of %s '%s' must be a number, got %s", def_kind_word(def),
                  def->name, type_phrase(t));
}

/* ---- models ---- */

static void see(sema *s, snn_ast *n) {
    if (find_symbol(n->name) || strcmp(n->name, "pi") == 0) {   /* `reset = zero` must mean the mode */
        snn_error(s->d, n->loc, "'%s' is a built-in constant and cannot name %s", n->name,
                  n->kind == SNN_AST_INPUT ? "an input" : "a layer");
    }
    for (int i = 0; i < s->n_seen; i++)
        if (s->seen[i]->name == n->name) {
            snn_error(s->d, n->loc, "'%s' is defined twice in model '%s'", n->name, s->model->name);
            snn_note(s->d, s->seen[i]->loc, "'%s' is first defined here", n->name);
            return;
        }
    SNN_PUSH(s->seen, s->n_seen, s->cap_seen, n);
}

static void check_model(sema *s, snn_ast *m) {
    s->def = m;
    s->model = m;
    s->ctx = CTX_MODEL;
    s->n_seen = 0;
    int n_inputs = 0, n_outputs = 0;
    snn_ast **encoded = NULL; int n_encoded = 0, cap_encoded = 0;
    snn_ast **out_ids = NULL; int n_out_ids = 0, cap_out_ids = 0;
    for (int i = 0; i < m->model.items.n; i++) {
        snn_ast *it = m->model.items.items[i];
        switch (it->kind) {
        case SNN_AST_INPUT: {
            n_inputs++;
            int64_t w = 1;
            bool ok = true;
            for (int j = 0; j < it->input.dims.n; j++) {
                snn_ast *dim = it->input.dims.items[j];
                snn_type t = expr(s, dim);
                if (t == SNN_TY_UNKNOWN) { ok = false; continue; }
                if (t != SNN_TY_INT || !dim->is_const || dim->cval < 1 || dim->cval > 1e9) {
                    snn_error(s->d, dim->loc, "an input dimension must be a positive integer constant");
                    ok = false;
                    continue;
                }
                w *= (int64_t)dim->cval;
                if (w > 1000000000) {
                    snn_error(s->d, dim->loc, "input '%s' is too large", it->name);
                    ok = false;
                    break;
                }
            }
            it->width = ok ? w : 0;
            it->type = ok ? SNN_TY_TENSOR : SNN_TY_UNKNOWN;   /* see below: uses of it stay quiet */
            see(s, it);
            break;
        }
        case SNN_AST_ENCODE: {
            snn_ast *input = NULL;
            for (int j = 0; j < s->n_seen; j++)
                if (s->seen[j]->name == it->name && s->seen[j]->kind == SNN_AST_INPUT) input = s->seen[j];
            if (!input) {
                snn_error(s->d, it->loc, "'encode %s': '%s' is not an input declared before", it->name, it->name);
            } else {
                for (int j = 0; j < n_encoded; j++)
                    if (encoded[j] == input) {
                        snn_error(s->d, it->loc, "input '%s' is encoded twice", it->name);
                        input = NULL;
                        break;
                    }
                if (input) SNN_PUSH(encoded, n_encoded, cap_encoded, input);
            }
            it->encode.input = input;
            it->width = input ? input->width : 0;
            snn_ast *v = it->encode.value;
            s->want = SNN_BUILTIN_ENCODER;
            snn_type t = expr(s, v);
            s->want = SNN_BUILTIN_NONE_;
            if (t != SNN_TY_UNKNOWN && t != SNN_TY_ENCODER)
                snn_error(s->d, v->loc, "'encode %s = ...' needs an encoder (direct, rate, latency, delta), got %s",
                          it->name, type_phrase(t));
            it->type = SNN_TY_TENSOR;
            break;
        }
        case SNN_AST_LAYER: {
            s->current_layer = it;
            snn_ast *v = it->layer.value;
            snn_type t = expr(s, v);
            s->current_layer = NULL;
            if (t == SNN_TY_TENSOR) {
                it->width = v->width;
                it->type = SNN_TY_TENSOR;
                if (v->kind == SNN_AST_CALL && v->call.def && v->call.def->kind == SNN_AST_NEURON) it->layer.neuron = v;
            } else if (t != SNN_TY_UNKNOWN) {
                snn_error(s->d, v->loc, "layer '%s' must be a layer expression (a neuron or linear(...)), got %s",
                          it->name, type_phrase(t));
            }
            see(s, it);
            break;
        }
        case SNN_AST_OUTPUT:
            for (int j = 0; j < it->output.names.n; j++) {
                snn_ast *id = it->output.names.items[j];
                snn_ast *layer = NULL;
                for (int k = 0; k < s->n_seen; k++)
                    if (s->seen[k]->name == id->name) layer = s->seen[k];
                if (!layer || layer->kind != SNN_AST_LAYER) {
                    snn_error(s->d, id->loc, "output '%s' is not a layer of model '%s'", id->name, m->name);
                    continue;
                }
                snn_ast *prev = NULL;
                for (int k = 0; k < n_out_ids && !prev; k++)
                    if (out_ids[k]->name == id->name) prev = out_ids[k];
                if (prev) {
                    snn_error(s->d, id->loc, "'%s' is listed as an output twice", id->name);
                    snn_note(s->d, prev->loc, "first listed here");
                    continue;
                }
                SNN_PUSH(out_ids, n_out_ids, cap_out_ids, id);
                id->ident.ref = (snn_ref){SNN_REF_LAYER, layer, 0};
                id->type = SNN_TY_TENSOR;
                id->width = layer->width;
                n_outputs++;
            }
            break;
        default:
            snn_internal_error(s->d, it->loc, "unexpected %s node in a model", snn_ast_kind_name(it->kind));
            break;
        }
    }
    free(encoded);
    free(out_ids);
    if (n_inputs == 0) snn_error(s->d, m->loc, "model '%s' has no input (add e.g. 'input x[784]')", m->name);
    if (n_outputs == 0) snn_error(s->d, m->loc, "model '%s' has no output (add e.g. 'output o')", m->name);
}

/* ---- the train block ---- */

typedef enum { SET_CALL, SET_POSITIVE, SET_NONNEG, SET_LOSS } setting_kind;
static const struct {
    const char *key;
    setting_kind kind;
    snn_builtin_kind builtin;
    bool required;
} settings_table[] = {
    {"data", SET_CALL, SNN_BUILTIN_DATA, true},
    {"steps", SET_POSITIVE, SNN_BUILTIN_NONE_, true},
    {"batch", SET_POSITIVE, SNN_BUILTIN_NONE_, true},
    {"epochs", SET_POSITIVE, SNN_BUILTIN_NONE_, true},
    {"loss", SET_LOSS, SNN_BUILTIN_LOSS, true},
    {"optimizer", SET_CALL, SNN_BUILTIN_OPTIMIZER, true},
    {"metric", SET_CALL, SNN_BUILTIN_METRIC, false},
    {"seed", SET_NONNEG, SNN_BUILTIN_NONE_, false},
};
#define N_SETTINGS ((int)(sizeof settings_table / sizeof settings_table[0]))

/* Checks that a loss expression is a sum of (optionally scaled) loss/regularizer calls. */
static bool loss_shape(sema *s, snn_ast *e, int *n_losses) {
    if (e->kind == SNN_AST_CALL && e->call.def && e->call.def->kind == SNN_AST_BUILTIN) {
        if (e->call.def->def.builtin == SNN_BUILTIN_LOSS) { (*n_losses)++; return true; }
        if (e->call.def->def.builtin == SNN_BUILTIN_REGULARIZER) return true;
    }
    if (e->kind == SNN_AST_BINARY && e->bin.op == SNN_BIN_ADD)
        return loss_shape(s, e->bin.lhs, n_losses) && loss_shape(s, e->bin.rhs, n_losses);
    if (e->kind == SNN_AST_BINARY && e->bin.op == SNN_BIN_MUL) {
        if (e->bin.lhs->is_const) return loss_shape(s, e->bin.rhs, n_losses);
        if (e->bin.rhs->is_const) return loss_shape(s, e->bin.lhs, n_losses);
    }
    snn_error(s->d, e->loc, "a loss must be a loss call such as ce_membrane(o), or a sum of loss and "
                            "regularizer calls");
    return false;
}

/* Arithmetic on LOSS values (a weighted sum of losses). */
static snn_type check_loss_expr(sema *s, snn_ast *e) {
    if (e->kind == SNN_AST_BINARY && (e->bin.op == SNN_BIN_ADD || e->bin.op == SNN_BIN_MUL)) {
        if (s->too_deep) return e->type = SNN_TY_UNKNOWN;
        if (++s->depth > MAX_DEPTH) {          /* a sum of 10^6 losses is as deep as it is long */
            snn_error(s->d, e->loc, "expression is nested too deeply");
            s->too_deep = true;
            s->depth--;
            return e->type = SNN_TY_UNKNOWN;
        }
        snn_type l = check_loss_expr(s, e->bin.lhs), r = check_loss_expr(s, e->bin.rhs);
        s->depth--;
        e->type = (l == SNN_TY_UNKNOWN || r == SNN_TY_UNKNOWN) ? SNN_TY_UNKNOWN : SNN_TY_LOSS;
        if (l != SNN_TY_UNKNOWN && r != SNN_TY_UNKNOWN && !(l == SNN_TY_LOSS || r == SNN_TY_LOSS)) e->type = SNN_TY_NUM;
        if (l != SNN_TY_UNKNOWN && r != SNN_TY_UNKNOWN) fold(e);
        return e->type;
    }
    return expr(s, e);
}

/* The optimizer's hyperparameters must make sense: PyTorch raises for the same values. */
static void check_optimizer_args(sema *s, const snn_ast *call) {
    static const struct { const char *param; double lo; bool lo_open; double hi; bool hi_open; } ranges[] = {
        {"lr", 0, true, INFINITY, true},         {"eps", 0, true, INFINITY, true},
        {"weight_decay", 0, false, INFINITY, true}, {"momentum", 0, false, INFINITY, true},
    };
    for (size_t i = 0; i < sizeof ranges / sizeof ranges[0]; i++) {
        const snn_ast *b = snn_call_bound(call, ranges[i].param);
        if (!b || !b->is_const) continue;
        double v = b->cval;
        bool bad = ranges[i].lo_open ? !(v > ranges[i].lo) : !(v >= ranges[i].lo);
        bad = bad || (ranges[i].hi_open ? !(v < ranges[i].hi) : !(v <= ranges[i].hi));
        if (bad)
            snn_error(s->d, b->loc, "%s: '%s' must be %s, got %g", call->name, ranges[i].param,
                      ranges[i].lo_open ? "positive" : "non-negative", v);
    }
    const snn_ast *betas = snn_call_bound(call, "betas");
    if (betas && betas->kind == SNN_AST_TUPLE) {
        for (int i = 0; i < betas->tuple.elems.n; i++) {
            const snn_ast *e = betas->tuple.elems.items[i];
            if (e->is_const && !(e->cval >= 0 && e->cval < 1))
                snn_error(s->d, e->loc, "%s: each of 'betas' must be in [0, 1), got %g", call->name, e->cval);
        }
    }
}

static void check_train(sema *s, snn_ast *t) {
    s->def = t;
    s->ctx = CTX_TRAIN;
    snn_ast *m = lookup_def(s, t->name);
    if (!m) {
        snn_error(s->d, t->loc, "train: unknown model '%s'", t->name);
    } else if (m->kind != SNN_AST_MODEL) {
        snn_error(s->d, t->loc, "train: '%s' is %s %s, not a model", t->name, a_or_an(def_kind_word(m)),
                  def_kind_word(m));
        m = NULL;
    }
    t->train.model = m;
    s->prog->model = m;
    s->model = m;
    /* layers of the model are visible by name */
    s->n_seen = 0;
    for (int i = 0; m && i < m->model.items.n; i++) {
        snn_ast *it = m->model.items.items[i];
        if (it->kind == SNN_AST_LAYER || it->kind == SNN_AST_INPUT) SNN_PUSH(s->seen, s->n_seen, s->cap_seen, it);
    }
    snn_ast *given[N_SETTINGS] = {0};
    bool suggested[N_SETTINGS] = {0};
    for (int i = 0; i < t->train.settings.n; i++) {
        snn_ast *st = t->train.settings.items[i];
        int k = -1;
        for (int j = 0; j < N_SETTINGS; j++)
            if (strcmp(settings_table[j].key, st->name) == 0) k = j;
        if (k < 0) {
            const char *best = NULL;
            int best_d = 99, best_j = -1;
            for (int j = 0; j < N_SETTINGS; j++) {
                const char *before = best;
                consider(st->name, settings_table[j].key, &best, &best_d);
                if (best != before) best_j = j;
            }
            if (best_j >= 0) suggested[best_j] = true;   /* no "missing 'steps'" after 'step' */
            if (best)
                snn_error(s->d, st->loc, "unknown train setting '%s'%s", st->name, did_you_mean(s->a, best));
            else
                snn_error(s->d, st->loc, "unknown train setting '%s' (settings: data, steps, batch, epochs, "
                                         "loss, optimizer, metric, seed)", st->name);
            continue;
        }
        if (given[k]) {
            snn_error(s->d, st->loc, "train setting '%s' is given twice", st->name);
            snn_note(s->d, given[k]->loc, "first given here");
            continue;
        }
        given[k] = st;
        snn_ast *v = st->setting.value;
        if (!m && (settings_table[k].kind == SET_LOSS || settings_table[k].builtin == SNN_BUILTIN_METRIC)) continue;
        s->want = settings_table[k].builtin;
        snn_type ty = settings_table[k].kind == SET_LOSS ? check_loss_expr(s, v) : expr(s, v);
        s->want = SNN_BUILTIN_NONE_;
        if (ty == SNN_TY_UNKNOWN) continue;
        switch (settings_table[k].kind) {
        case SET_POSITIVE:
        case SET_NONNEG: {
            bool pos = settings_table[k].kind == SET_POSITIVE;
            double lim = pos ? 1 : 0;
            if (ty != SNN_TY_INT || !v->is_const || v->cval < lim || v->cval > 9.2e18) {
                if (v->is_const && numeric(ty))
                    snn_error(s->d, v->loc, "'%s' must be a %s integer, got %g", st->name,
                              pos ? "positive" : "non-negative", v->cval);
                else
                    snn_error(s->d, v->loc, "'%s' must be a %s integer constant", st->name,
                              pos ? "positive" : "non-negative");
            }
            break;
        }
        case SET_CALL: {
            snn_builtin_kind want = settings_table[k].builtin;
            if (v->kind != SNN_AST_CALL || !v->call.def || v->call.def->kind != SNN_AST_BUILTIN ||
                v->call.def->def.builtin != want) {
                snn_error(s->d, v->loc, "'%s' needs %s, got %s", st->name, type_phrase(builtin_type(want)),
                          type_phrase(ty));
            } else if (want == SNN_BUILTIN_OPTIMIZER) {
                check_optimizer_args(s, v);
            }
            break;
        }
        case SET_LOSS: {
            int n_losses = 0;
            if (loss_shape(s, v, &n_losses) && n_losses == 0)
                snn_error(s->d, v->loc, "the loss has only regularizers; add a loss such as ce_membrane(o)");
            break;
        }
        }
    }
    char missing[200] = "";
    size_t len = 0;
    int n_missing = 0;
    for (int j = 0; j < N_SETTINGS; j++)
        if (settings_table[j].required && !given[j] && !suggested[j]) {
            len += (size_t)snprintf(missing + len, sizeof missing - len, "%s'%s'", len ? ", " : "",
                                    settings_table[j].key);
            n_missing++;
        }
    if (n_missing)
        snn_error(s->d, t->loc, "train block for '%s' is missing %s %s", t->name,
                  n_missing == 1 ? "the setting" : "the settings", missing);
}

/* ---- recursion and inlining size ----
 *
 * The calls recorded in sweep 3 form a graph over definitions (one edge per call site). The
 * back end inlines every call, so the graph must be acyclic, and the inlined size of each
 * definition (1 + the inlined sizes of its call sites) must stay reasonable: thirty defs that
 * each call the next twice are a few lines of text but 2^30 calls once inlined. One
 * depth-first search (an explicit stack: hostile programs can have thousands of definitions)
 * finds the cycles, reporting each once at the definition where it was entered, and computes
 * the sizes in post-order. */

#define MAX_INLINED_CALLS 1000000.0

typedef struct { int node, next; } dfs_frame;

static void report_cycle(sema *s, snn_ast **nodes, const dfs_frame *stack, int from, int top) {
    snn_ast *start = nodes[stack[from].node];
    if (from == top) {
        snn_error(s->d, start->loc, "%s '%s' calls itself; recursion is not allowed", def_kind_word(start),
                  start->name);
        return;
    }
    char buf[512] = "";
    size_t len = 0;
    for (int j = from; j <= top + 1; j++) {
        char piece[80];
        snprintf(piece, sizeof piece, "%s'%.60s'", j > from ? " -> " : "", nodes[stack[j <= top ? j : from].node]->name);
        size_t pl = strlen(piece);
        if (len + pl + 8 >= sizeof buf) { memcpy(buf + len, " -> ...", 8); break; }
        memcpy(buf + len, piece, pl + 1);
        len += pl;
    }
    snn_error(s->d, start->loc, "recursive definition: %s", buf);
}

static void check_recursion(sema *s) {
    /* number the definitions that take part in calls */
    snn_ast **nodes = NULL; int n_nodes = 0, cap_nodes = 0;
    size_t n_alloc = s->n_edges > 0 ? (size_t)s->n_edges : 1;   /* nodes <= 2 * edges */
    int *from = malloc(sizeof(int) * n_alloc);
    int *to = malloc(sizeof(int) * n_alloc);
    for (int e = 0; e < s->n_edges; e++) {
        for (int end = 0; end < 2; end++) {
            snn_ast *n = end ? s->edges[e].to : s->edges[e].from;
            int id = -1;
            for (int i = n_nodes - 1; i >= 0 && id < 0; i--) if (nodes[i] == n) id = i;
            if (id < 0) { id = n_nodes; SNN_PUSH(nodes, n_nodes, cap_nodes, n); }
            (end ? to : from)[e] = id;
        }
    }
    /* adjacency in call-site order (counting sort by source) */
    int *first = calloc((size_t)n_nodes + 1, sizeof(int));
    int *adj = malloc(sizeof(int) * n_alloc);
    for (int e = 0; e < s->n_edges; e++) first[from[e] + 1]++;
    for (int i = 0; i < n_nodes; i++) first[i + 1] += first[i];
    int *fill = malloc(sizeof(int) * (2 * n_alloc));
    for (int i = 0; i < n_nodes; i++) fill[i] = first[i];
    for (int e = 0; e < s->n_edges; e++) adj[fill[from[e]]++] = to[e];
    /* colour: 0 unvisited, 1 on the stack, 2 done; pos: index on the stack while colour 1 */
    char *colour = calloc((size_t)n_nodes + 1, 1);
    int *pos = malloc(sizeof(int) * (2 * n_alloc));
    bool *in_cycle = calloc((size_t)n_nodes + 1, sizeof(bool));
    double *size = calloc((size_t)n_nodes + 1, sizeof(double));
    dfs_frame *stack = malloc(sizeof(dfs_frame) * (2 * n_alloc));
    for (int root = 0; root < n_nodes; root++) {
        if (colour[root]) continue;
        int top = 0;
        stack[0] = (dfs_frame){root, first[root]};
        colour[root] = 1;
        pos[root] = 0;
        while (top >= 0) {
            dfs_frame *f = &stack[top];
            if (f->next < first[f->node + 1]) {
                int t = adj[f->next++];
                if (colour[t] == 0) {
                    colour[t] = 1;
                    pos[t] = ++top;
                    stack[top] = (dfs_frame){t, first[t]};
                } else if (colour[t] == 1 && !in_cycle[t]) {
                    report_cycle(s, nodes, stack, pos[t], top);
                    for (int j = pos[t]; j <= top; j++) in_cycle[stack[j].node] = true;
                }
                continue;
            }
            /* all callees done: the inlined size, saturated; report where it crosses the limit */
            int n = f->node;
            bool callee_too_big = false, cyclic = in_cycle[n];
            double total = 1;
            for (int k = first[n]; k < first[n + 1]; k++) {
                total += size[adj[k]];
                if (size[adj[k]] > MAX_INLINED_CALLS) callee_too_big = true;
                if (in_cycle[adj[k]]) cyclic = true;
            }
            size[n] = total > 1e300 ? 1e300 : total;
            if (!cyclic && !callee_too_big && size[n] > MAX_INLINED_CALLS)
                snn_error(s->d, nodes[n]->loc, "%s '%s' is too large once its calls are inlined (more than %.0f "
                          "calls); the back end inlines every call", def_kind_word(nodes[n]), nodes[n]->name,
                          MAX_INLINED_CALLS);
            if (cyclic) size[n] = 0;   /* already reported as recursion */
            colour[n] = 2;
            top--;
        }
    }
    free(nodes); free(from); free(to); free(first); free(adj); free(fill); free(colour); free(pos);
    free(in_cycle); free(size); free(stack);
}

/* ---- entry ---- */

snn_ast *snn_train_setting(const snn_ast *train, const char *key) {
    if (!train) return NULL;
    for (int i = 0; i < train->train.settings.n; i++)
        if (strcmp(train->train.settings.items[i]->name, key) == 0) return train->train.settings.items[i];
    return NULL;
}

int32_t snn_def_param_index(const snn_ast *def, const char *param) {
    if (!def || def->kind == SNN_AST_MODEL || def->kind == SNN_AST_TRAIN) return -1;
    for (int i = 0; i < def->def.params.n; i++)
        if (strcmp(def->def.params.items[i]->name, param) == 0) return i;
    return -1;
}

snn_ast *snn_call_bound(const snn_ast *call, const char *param) {
    if (!call || call->kind != SNN_AST_CALL || !call->call.def || !call->call.bound) return NULL;
    int i = snn_def_param_index(call->call.def, param);
    return i < 0 ? NULL : call->call.bound[i];
}

bool snn_sema(snn_arena *a, snn_diag *d, snn_program *prog) {
    int errors_before = snn_diag_error_count(d);
    sema s = {0};
    s.a = a;
    s.d = d;
    s.prog = prog;
    s.st = snn_alloc(a, sizeof *s.st);
    prog->symtab = s.st;
    collect(&s);
    /* builtin kinds first: parameter types of everything else may mention them */
    for (int u = 0; u < prog->n_units; u++) {
        snn_ast_list *items = &prog->units[u]->unit.items;
        for (int i = 0; i < items->n; i++) {
            snn_ast *n = items->items[i];
            if (n->kind != SNN_AST_BUILTIN) continue;
            n->def.builtin = builtin_from_word(n->def.kind_word);
            if (!n->def.builtin)
                snn_error(d, n->loc, "unknown builtin kind '%s'", n->def.kind_word);
        }
    }
    /* signatures: surrogates first, since neuron defaults call them */
    for (int pass = 0; pass < 2; pass++)
        for (int u = 0; u < prog->n_units; u++) {
            snn_ast_list *items = &prog->units[u]->unit.items;
            for (int i = 0; i < items->n; i++) {
                snn_ast *n = items->items[i];
                bool first = n->kind == SNN_AST_SURROGATE || n->kind == SNN_AST_FUNC || n->kind == SNN_AST_BUILTIN;
                if (n->kind == SNN_AST_MODEL || n->kind == SNN_AST_TRAIN || n->kind == SNN_AST_IMPORT) continue;
                if (first == (pass == 0)) check_params(&s, n);
            }
        }
    /* bodies */
    for (int u = 0; u < prog->n_units; u++) {
        snn_ast_list *items = &prog->units[u]->unit.items;
        for (int i = 0; i < items->n; i++) {
            snn_ast *n = items->items[i];
            s.too_deep = false;
            s.depth = 0;
            switch (n->kind) {
            case SNN_AST_SURROGATE: case SNN_AST_FUNC: check_body(&s, n); break;
            case SNN_AST_NEURON: check_neuron(&s, n); break;
            case SNN_AST_MODEL: check_model(&s, n); break;
            default: break;
            }
        }
    }
    s.model = NULL;
    if (prog->train) {
        s.too_deep = false;
        s.depth = 0;
        check_train(&s, prog->train);
    } else {
        snn_ast *only = NULL;
        int n_models = 0;
        for (int i = 0; i < s.st->n_user; i++)
            if (s.st->user[i].def->kind == SNN_AST_MODEL) { only = s.st->user[i].def; n_models++; }
        prog->model = n_models == 1 ? only : NULL;
    }
    check_recursion(&s);
    free(s.locals);
    free(s.seen);
    free(s.edges);
    /* the symbol table's arrays were malloc'd; move them into the arena */
    struct snn_symtab *st = s.st;
    sym *u = snn_alloc(a, (size_t)(st->n_user ? st->n_user : 1) * sizeof *u);
    if (st->n_user) memcpy(u, st->user, (size_t)st->n_user * sizeof *u);
    sym *sd = snn_alloc(a, (size_t)(st->n_std ? st->n_std : 1) * sizeof *sd);
    if (st->n_std) memcpy(sd, st->std, (size_t)st->n_std * sizeof *sd);
    free(st->user);
    free(st->std);
    st->user = u; st->cap_user = st->n_user;
    st->std = sd; st->cap_std = st->n_std;
    return snn_diag_error_count(d) == errors_before;
}
