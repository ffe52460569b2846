/* ast.h: the abstract syntax tree of a .snn program, the contract between the front end
 * (parser, loader, sema) and lowering.
 *
 * One node type, snn_ast, tagged by kind, with a few fields every node has (kind, loc, name, and
 * the annotations sema fills: type, width, cval) and a union of per-kind fields. Every node
 * lives in the compilation's arena and every identifier in it is interned (compare names with
 * ==). Lists are snn_ast_list: a pointer array in the arena plus a count.
 *
 * Life of a tree:
 *   1. snn_parse (parse.y) builds one SNN_AST_UNIT per file; grammar actions only build nodes,
 *      so right after parsing only the "syntax" fields below are set.
 *   2. snn_load_program (load.c) parses the main file, follows `import`s, parses the embedded
 *      standard library, and returns an snn_program listing the units.
 *   3. snn_sema (sema.c) resolves every name, checks the program and fills the "sema" fields
 *      marked [sema] below. sema.h says exactly what it guarantees when it returns true.
 *
 * The node kinds, with the fields each uses (field names are union members below):
 *
 * ---- files and top-level definitions ----
 *   UNIT       a source file. unit.file, unit.items (IMPORT and definition nodes in order),
 *              unit.is_stdlib.
 *   IMPORT     `import "path"`. str = the path as written; import.unit = the loaded UNIT
 *              (set by the loader; NULL if the file could not be read or was already loaded).
 *   SURROGATE  `surrogate NAME(params) { grad(VAR) = EXPR }`. name, def.params (PARAM nodes),
 *              def.var (VAR, interned), def.body (the EXPR, a derivative dS/dx in terms of VAR
 *              and the params).
 *   NEURON     `neuron NAME(params) { state ...  step(INPUT) { stmts }  out a, b }`.
 *              name, def.params, def.states (STATE nodes, in order), def.var (INPUT's name),
 *              def.step (statements: LET, ASSIGN, IF), def.outs (IDENT nodes; the first is
 *              the primary output a following layer reads), def.step_loc.
 *   FUNC       `def NAME(params) = EXPR`, a pure expression function usable in neuron steps,
 *              surrogates and other FUNCs. name, def.params, def.body.
 *   BUILTIN    `builtin KIND NAME(params)`: the signature of something the back end implements
 *              (encoders, losses, optimizers, metrics, data sources, model-level layers such as
 *              `linear`). Only the standard library may declare them. name, def.params,
 *              def.kind_word (the KIND as written), [sema] def.builtin (snn_builtin_kind).
 *   MODEL      `model NAME { items }`. name, model.items (INPUT, ENCODE, LAYER, OUTPUT in
 *              source order).
 *   TRAIN      `train MODEL { settings }`. name = the model's name as written,
 *              train.settings (SETTING nodes), [sema] train.model (the MODEL node).
 *
 * ---- parts of definitions ----
 *   PARAM      a parameter `[learn | learn[n]] NAME [: TYPE] [= DEFAULT]`. name,
 *              param.learn (snn_learn), param.type_name (interned or NULL), param.def_value
 *              (the default expression or NULL = required), param.index (position in the
 *              definition's parameter list), [sema] type (the parameter's snn_type).
 *   STATE      `state NAME = INIT` in a neuron. name, state.init (a constant expression),
 *              state.index (position among the neuron's states).
 *   LET        `let NAME = EXPR` in a step: an immutable local. name, stmt.value.
 *   ASSIGN     `NAME = EXPR` in a step: assigns a state. name, stmt.value,
 *              [sema] stmt.target (the STATE node). Statements run in order: reading a state
 *              before its assignment in this step gives the previous step's value (or its
 *              init at the first step); after it, the new value.
 *   IF         `if COND { stmts } else { stmts }` (else optional; `else if` nests an IF as the
 *              only statement of the else list). A compile-time choice: COND must be constant
 *              for each layer (e.g. `reset == zero`). ifs.cond, ifs.then_, ifs.else_.
 *   INPUT      `input NAME[d1, d2, ...]` in a model. name, input.dims (NUM nodes),
 *              [sema] width (product of dims).
 *   ENCODE     `encode NAME = ENCODER` in a model. name (the input's), encode.value (a CALL of
 *              an encoder BUILTIN after sema), [sema] encode.input (the INPUT node), width.
 *   LAYER      `NAME = EXPR` in a model. name, layer.value, [sema] width (number of neurons),
 *              layer.neuron (the CALL of a NEURON def if the value is a neuron call, else NULL).
 *   OUTPUT     `output a, b` in a model. output.names (IDENT nodes, [sema] resolved to LAYERs).
 *   SETTING    `KEY VALUE` in a train block (data, steps, batch, epochs, loss, optimizer, metric,
 *              seed). name = KEY, setting.value.
 *
 * ---- expressions ----
 *   NUM        a number. num.value (double), num.ival (int64 if num.is_int), num.is_int
 *              (written without '.' or exponent).
 *   BOOL       `true` / `false`: cval.
 *   STR        a string literal: str (escapes processed).
 *   IDENT      a name. name, [sema] ident.ref: what it refers to (snn_ref below).
 *   UNARY      un.op (SNN_UN_NEG, SNN_UN_NOT), un.operand.
 *   BINARY     bin.op (snn_binop), bin.lhs, bin.rhs. `^` is power (right associative).
 *   SELECT     `COND ? A : B`: elementwise select. sel.cond, sel.a, sel.b.
 *   CALL       `NAME(args)`. name = callee as written, call.args (positional expressions and
 *              ARG nodes for named arguments, in source order).
 *              [sema] call.def (the SURROGATE/NEURON/FUNC/BUILTIN node called) or
 *              call.intrinsic (SNN_INTR_*, then call.def is NULL);
 *              [sema] call.bound: call.def's parameter count entries, bound[i] = the
 *              expression for parameter i (the argument given, else the parameter's default);
 *              [sema] call.input: for a NEURON call, its input expression (the first
 *              positional argument; it is not a parameter).
 *              An identifier naming a definition used as a value (`encode x = direct`,
 *              `surrogate = atan`) is rewritten by sema into a CALL with no arguments.
 *   ARG        a named argument `NAME = EXPR` inside a CALL. name, arg.value.
 *   MEMBER     `EXPR.NAME`: a named output of a layer, e.g. `o.mem`. member.object, name,
 *              [sema] member.layer (the LAYER), member.out_index (index in the neuron's outs).
 *   TUPLE      `(a, b, ...)` with at least two elements: tuple.elems.
 *
 * Annotations every expression gets from sema: type (snn_type); in a model or train block,
 * width (tensor width of a TENSOR-typed expression; 0 for scalars); cval/is_const when the
 * expression is a compile-time constant independent of any layer (literals, pi, arithmetic on
 * them, symbols, bools).
 */
#ifndef SNN_AST_H
#define SNN_AST_H

#include "common.h"

#include <stdio.h>

/* Kind list: X(NAME, "printed name"). Feeds the enum and the AST printer. */
#define SNN_AST_KINDS(X)                                                                 \
    X(UNIT, "unit") X(IMPORT, "import") X(SURROGATE, "surrogate") X(NEURON, "neuron")    \
    X(FUNC, "def") X(BUILTIN, "builtin") X(MODEL, "model") X(TRAIN, "train")             \
    X(PARAM, "param") X(STATE, "state") X(LET, "let") X(ASSIGN, "assign") X(IF, "if")    \
    X(INPUT, "input") X(ENCODE, "encode") X(LAYER, "layer") X(OUTPUT, "output")          \
    X(SETTING, "setting") X(NUM, "num") X(BOOL, "bool") X(STR, "str") X(IDENT, "ident")  \
    X(UNARY, "unary") X(BINARY, "binary") X(SELECT, "select") X(CALL, "call")            \
    X(ARG, "arg") X(MEMBER, "member") X(TUPLE, "tuple")

typedef enum {
#define X(n, s) SNN_AST_##n,
    SNN_AST_KINDS(X)
#undef X
    SNN_AST_KIND_COUNT_
} snn_ast_kind;

typedef struct snn_ast snn_ast;

/* A list of nodes in the arena. Build with snn_ast_list_push. */
typedef struct {
    snn_ast **items;
    int32_t n, cap;
} snn_ast_list;

typedef enum { SNN_LEARN_NONE, SNN_LEARN_SCALAR, SNN_LEARN_PER_NEURON } snn_learn;

typedef enum { SNN_UN_NEG, SNN_UN_NOT } snn_unop;

#define SNN_BINOPS(X)                                                                    \
    X(ADD, "+") X(SUB, "-") X(MUL, "*") X(DIV, "/") X(POW, "^") X(LT, "<") X(LE, "<=")  \
    X(GT, ">") X(GE, ">=") X(EQ, "==") X(NE, "!=") X(AND, "&&") X(OR, "||")
typedef enum {
#define X(n, s) SNN_BIN_##n,
    SNN_BINOPS(X)
#undef X
    SNN_BIN_COUNT_
} snn_binop;

/* Value types sema assigns (and PARAM `: TYPE` annotations name, spelled as in quotes). */
#define SNN_TYPES(X)                                                                     \
    X(UNKNOWN, "?")           /* not yet typed, or after an error */                     \
    X(NUM, "num")             /* a real number (scalar, or per-neuron inside a neuron) */\
    X(INT, "int")             /* an integer constant (sizes, counts, seeds) */           \
    X(BOOL, "bool")           /* true / false, or a comparison */                        \
    X(STR, "str")             /* a string constant */                                    \
    X(RESET, "reset")         /* a reset mode: subtract, zero, none */                   \
    X(PAIR, "pair")           /* a tuple of two numbers, e.g. Adam's betas */            \
    X(TENSOR, "tensor")       /* a model-level tensor [B, width] */                      \
    X(SURROGATE, "surrogate") /* a surrogate instance (a CALL of a SURROGATE def) */     \
    X(SPIKES, "spikes")       /* a model output, read through its primary output */      \
    X(MEMBRANE, "membrane")   /* a model output that has an out named `mem` */           \
    X(ENCODER, "encoder") X(LOSS, "loss") X(OPTIMIZER, "optimizer")                      \
    X(METRIC, "metric") X(DATA, "data")
typedef enum {
#define X(n, s) SNN_TY_##n,
    SNN_TYPES(X)
#undef X
    SNN_TY_COUNT_
} snn_type;

/* What a BUILTIN declares, from its KIND word. */
#define SNN_BUILTIN_KINDS(X)                                                             \
    X(ENCODER, "encoder") X(LOSS, "loss") X(REGULARIZER, "regularizer")                  \
    X(OPTIMIZER, "optimizer") X(METRIC, "metric") X(DATA, "data") X(LAYER, "layer")
typedef enum {
    SNN_BUILTIN_NONE_,
#define X(n, s) SNN_BUILTIN_##n,
    SNN_BUILTIN_KINDS(X)
#undef X
    SNN_BUILTIN_COUNT_
} snn_builtin_kind;

/* Intrinsic functions usable inside neurons, surrogates and FUNCs:
 * X(NAME, "spelling", arity). fire(x) is Heaviside forward with the neuron's surrogate
 * backward (fire(x, s) names the surrogate-typed parameter s explicitly); detach(e) stops the
 * gradient; heaviside(x) = x > 0 ? 1 : 0 with zero gradient; linear(v) (neurons only) is a
 * learnable all-to-all n x n weight plus bias applied to v, one per call site (the
 * recurrent connection of rleaky). */
#define SNN_INTRINSICS(X)                                                                \
    X(EXP, "exp", 1) X(LOG, "log", 1) X(TANH, "tanh", 1) X(ABS, "abs", 1)                \
    X(SQRT, "sqrt", 1) X(SIGMOID, "sigmoid", 1) X(MIN, "min", 2) X(MAX, "max", 2)        \
    X(CLAMP, "clamp", 3) X(HEAVISIDE, "heaviside", 1) X(DETACH, "detach", 1)             \
    X(FIRE, "fire", -1) X(LINEAR, "linear", 1)
typedef enum {
    SNN_INTR_NONE_,
#define X(n, s, a) SNN_INTR_##n,
    SNN_INTRINSICS(X)
#undef X
    SNN_INTR_COUNT_
} snn_intrinsic;

/* Built-in symbolic constants: X(NAME, "spelling", type). */
#define SNN_SYMBOLS(X)                                                                   \
    X(SUBTRACT, "subtract", RESET) X(ZERO, "zero", RESET) X(NONE, "none", RESET)
typedef enum {
    SNN_SYM_NONE_,
#define X(n, s, t) SNN_SYM_##n,
    SNN_SYMBOLS(X)
#undef X
    SNN_SYM_COUNT_
} snn_symbol;

/* What an IDENT refers to, after sema. */
typedef enum {
    SNN_REF_NONE,        /* unresolved (before sema, or an error was reported) */
    SNN_REF_PARAM,       /* decl: PARAM of the enclosing definition; index = param.index */
    SNN_REF_STATE,       /* decl: STATE of the enclosing neuron; index = state.index */
    SNN_REF_LOCAL,       /* decl: LET in the enclosing step */
    SNN_REF_VAR,         /* the surrogate's grad variable or the neuron's step input */
    SNN_REF_CONST,       /* pi (cval holds the value) */
    SNN_REF_SYMBOL,      /* index: snn_symbol (subtract, zero, none); cval = index */
    SNN_REF_INPUT,       /* decl: INPUT of the model (after `encode`, the encoded input) */
    SNN_REF_LAYER,       /* decl: LAYER of the model; the layer's primary output */
} snn_ref_kind;

typedef struct {
    snn_ref_kind kind;
    snn_ast *decl;
    int32_t index;
} snn_ref;

struct snn_ast {
    snn_ast_kind kind;
    snn_loc loc;
    const char *name;       /* interned; meaning per kind (see the list above) */
    const char *str;        /* STR value, IMPORT path */
    /* [sema] annotations */
    snn_type type;
    int64_t width;          /* model-level tensor width; LAYER/INPUT/ENCODE width */
    bool is_const;          /* cval is valid */
    double cval;            /* compile-time value (numbers, bools as 0/1, symbols as ids) */
    union {
        struct { const char *file; snn_ast_list items; bool is_stdlib; } unit;
        struct { snn_ast *unit; } import;
        struct {                                   /* SURROGATE NEURON FUNC BUILTIN */
            snn_ast_list params;
            const char *var;                       /* grad variable / step input */
            snn_ast *body;                         /* SURROGATE grad, FUNC body */
            snn_ast_list states, step, outs;       /* NEURON */
            snn_loc step_loc;                      /* NEURON: where `step` is */
            const char *kind_word;                 /* BUILTIN */
            snn_builtin_kind builtin;              /* BUILTIN [sema] */
            snn_ast *unit;                         /* the UNIT it was defined in */
        } def;
        struct { snn_ast_list items; } model;
        struct { snn_ast_list settings; snn_ast *model; } train;
        struct { snn_learn learn; const char *type_name; snn_ast *def_value; int32_t index; } param;
        struct { snn_ast *init; int32_t index; } state;
        struct { snn_ast *value; snn_ast *target; } stmt;          /* LET, ASSIGN */
        struct { snn_ast *cond; snn_ast_list then_, else_; } ifs;
        struct { snn_ast_list dims; } input;
        struct { snn_ast *value; snn_ast *input; } encode;
        struct { snn_ast *value; snn_ast *neuron; } layer;
        struct { snn_ast_list names; } output;
        struct { snn_ast *value; } setting;
        struct { double value; int64_t ival; bool is_int; } num;
        struct { snn_ref ref; } ident;
        struct { snn_unop op; snn_ast *operand; } un;
        struct { snn_binop op; snn_ast *lhs, *rhs; } bin;
        struct { snn_ast *cond, *a, *b; } sel;
        struct {
            snn_ast_list args;
            snn_ast *def;                          /* [sema] */
            snn_intrinsic intrinsic;               /* [sema] */
            snn_ast **bound;                       /* [sema] def's param count entries */
            snn_ast *input;                        /* [sema] NEURON calls */
        } call;
        struct { snn_ast *value; } arg;
        struct { snn_ast *object; snn_ast *layer; int32_t out_index; } member;
        struct { snn_ast_list elems; } tuple;
    };
};

/* ---- construction (ast.c) ---- */

/* A zeroed node of the given kind at loc, in arena a. */
snn_ast *snn_ast_new(snn_arena *a, snn_ast_kind kind, snn_loc loc);
/* Appends node to list l (growing it in the arena). */
void snn_ast_list_push(snn_arena *a, snn_ast_list *l, snn_ast *node);

/* Names for printing and messages. */
const char *snn_ast_kind_name(snn_ast_kind k);
const char *snn_binop_spelling(snn_binop op);
const char *snn_type_name(snn_type t);
const char *snn_builtin_kind_name(snn_builtin_kind k);
const char *snn_intrinsic_name(snn_intrinsic i);
const char *snn_symbol_name(snn_symbol s);

/* Prints the tree under node as an indented, readable tree to f, one node per line with its
 * line:col, including the [sema] annotations that are set (types, widths, resolved
 * references). Used by --emit=ast. */
void snn_ast_print(const snn_ast *node, FILE *f);

/* ---- the program: every file of one compilation ---- */
typedef struct snn_program {
    snn_ast **units;            /* UNITs: [0] is the main file, then imports, then stdlib */
    int32_t n_units, cap_units;
    const char *main_file;
    /* [sema] */
    snn_ast *model;             /* the model the train block trains (else the only model) */
    snn_ast *train;             /* the train block, NULL if the program has none */
    struct snn_symtab *symtab;  /* definitions by name, see snn_program_lookup (sema.h) */
} snn_program;

/* ---- parsing (parse.y) and loading (load.c) ---- */

/* Parses one file's text (len bytes; text[len] need not be NUL) into a UNIT. file must be
 * interned. Syntax errors go to d; returns NULL if there was any (no partial tree). */
snn_ast *snn_parse(snn_arena *a, snn_diag *d, const char *file, const char *text, size_t len);

typedef struct {
    bool no_imports;            /* report `import` as an error instead of reading files (fuzz) */
    bool no_stdlib;             /* do not load the embedded standard library (tests) */
} snn_load_options;

/* Reads and parses path (its text also registered with d for diagnostics), every file it
 * imports (relative to the importing file's directory; each file once), and the embedded
 * standard library. If text is non-NULL it is used as path's contents instead of reading it.
 * Returns the program, or NULL after reporting errors to d (unreadable file: the message is
 * "cannot open 'PATH': REASON" with an unknown location). */
snn_program *snn_load_program(snn_arena *a, snn_diag *d, const char *path, const char *text,
                              size_t len, const snn_load_options *opt);

#endif
