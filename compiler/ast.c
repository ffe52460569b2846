/* ast.c: AST construction helpers, names of the enums of ast.h, and the --emit=ast printer.
 *
 * The printer writes one node per line, indented two spaces per level, as
 *     KIND DETAILS [-> WHAT IT RESOLVED TO] [: TYPE] [[WIDTH]] <LINE:COL>
 * Sub-trees that have a role (a parameter's default, a state's init, an if's branches) are
 * introduced by a label line ("default:", "then:"), so the tree reads without knowing the
 * struct layout. After sema, calls of definitions also show every parameter's bound value in
 * source-like form ("with beta=0.95 threshold=1.0 ..."), which makes defaults visible. The
 * output is stable text: the golden tests in tests/parse compare it. An import that loaded a
 * file shows that file's unit under it (a file imported twice is shown once, where first seen).
 */
#include "ast.h"

#include <string.h>

snn_ast *snn_ast_new(snn_arena *a, snn_ast_kind kind, snn_loc loc) {
    snn_ast *n = snn_alloc(a, sizeof *n);
    n->kind = kind;
    n->loc = loc;
    return n;
}

void snn_ast_list_push(snn_arena *a, snn_ast_list *l, snn_ast *node) {
    if (l->n == l->cap) {
        int32_t cap = l->cap ? 2 * l->cap : 4;
        snn_ast **items = snn_alloc(a, (size_t)cap * sizeof *items);
        if (l->n) memcpy(items, l->items, (size_t)l->n * sizeof *items);
        l->items = items;
        l->cap = cap;
    }
    l->items[l->n++] = node;
}

const char *snn_ast_kind_name(snn_ast_kind k) {
    static const char *names[] = {
#define X(n, s) s,
        SNN_AST_KINDS(X)
#undef X
    };
    return (unsigned)k < SNN_AST_KIND_COUNT_ ? names[k] : "?";
}

const char *snn_binop_spelling(snn_binop op) {
    static const char *names[] = {
#define X(n, s) s,
        SNN_BINOPS(X)
#undef X
    };
    return (unsigned)op < SNN_BIN_COUNT_ ? names[op] : "?";
}

const char *snn_type_name(snn_type t) {
    static const char *names[] = {
#define X(n, s) s,
        SNN_TYPES(X)
#undef X
    };
    return (unsigned)t < SNN_TY_COUNT_ ? names[t] : "?";
}

const char *snn_builtin_kind_name(snn_builtin_kind k) {
    static const char *names[] = {
        "?",
#define X(n, s) s,
        SNN_BUILTIN_KINDS(X)
#undef X
    };
    return (unsigned)k < SNN_BUILTIN_COUNT_ ? names[k] : "?";
}

const char *snn_intrinsic_name(snn_intrinsic i) {
    static const char *names[] = {
        "?",
#define X(n, s, a) s,
        SNN_INTRINSICS(X)
#undef X
    };
    return (unsigned)i < SNN_INTR_COUNT_ ? names[i] : "?";
}

const char *snn_symbol_name(snn_symbol s) {
    static const char *names[] = {
        "?",
#define X(n, s, t) s,
        SNN_SYMBOLS(X)
#undef X
    };
    return (unsigned)s < SNN_SYM_COUNT_ ? names[s] : "?";
}

/* ---- printing ---- */

static void print_num(double v, FILE *f) {
    /* the range test first: converting a double outside int64's range is undefined */
    if (v > -1e15 && v < 1e15 && v == (double)(int64_t)v) fprintf(f, "%.1f", v);
    else fprintf(f, "%.9g", v);
}

static void print_string(const char *s, FILE *f) {
    fputc('"', f);
    for (; s && *s; s++) {
        if (*s == '"' || *s == '\\') fprintf(f, "\\%c", *s);
        else if (*s == '\n') fputs("\\n", f);
        else if (*s == '\t') fputs("\\t", f);
        else fputc(*s, f);
    }
    fputc('"', f);
}

/* An expression in source-like form, fully parenthesized where it nests. */
static void print_inline(const snn_ast *e, FILE *f) {
    if (!e) { fputs("<null>", f); return; }
    switch (e->kind) {
    case SNN_AST_NUM:
        if (e->num.is_int) fprintf(f, "%lld", (long long)e->num.ival);
        else print_num(e->num.value, f);
        break;
    case SNN_AST_BOOL: fputs(e->cval != 0 ? "true" : "false", f); break;
    case SNN_AST_STR: print_string(e->str, f); break;
    case SNN_AST_IDENT: fputs(e->name, f); break;
    case SNN_AST_UNARY:
        fputs(e->un.op == SNN_UN_NEG ? "-" : "!", f);
        print_inline(e->un.operand, f);
        break;
    case SNN_AST_BINARY:
        fputc('(', f);
        print_inline(e->bin.lhs, f);
        fprintf(f, " %s ", snn_binop_spelling(e->bin.op));
        print_inline(e->bin.rhs, f);
        fputc(')', f);
        break;
    case SNN_AST_SELECT:
        fputc('(', f);
        print_inline(e->sel.cond, f);
        fputs(" ? ", f);
        print_inline(e->sel.a, f);
        fputs(" : ", f);
        print_inline(e->sel.b, f);
        fputc(')', f);
        break;
    case SNN_AST_CALL:
        fprintf(f, "%s(", e->name);
        if (e->call.def && e->call.bound) {
            const snn_ast_list *ps = &e->call.def->def.params;
            for (int i = 0; i < ps->n; i++) {
                if (i) fputs(", ", f);
                fprintf(f, "%s=", ps->items[i]->name);
                print_inline(e->call.bound[i], f);
            }
        } else {
            for (int i = 0; i < e->call.args.n; i++) {
                if (i) fputs(", ", f);
                print_inline(e->call.args.items[i], f);
            }
        }
        fputc(')', f);
        break;
    case SNN_AST_ARG:
        fprintf(f, "%s=", e->name);
        print_inline(e->arg.value, f);
        break;
    case SNN_AST_MEMBER:
        print_inline(e->member.object, f);
        fprintf(f, ".%s", e->name);
        break;
    case SNN_AST_TUPLE:
        fputc('(', f);
        for (int i = 0; i < e->tuple.elems.n; i++) {
            if (i) fputs(", ", f);
            print_inline(e->tuple.elems.items[i], f);
        }
        fputc(')', f);
        break;
    default: fprintf(f, "<%s>", snn_ast_kind_name(e->kind)); break;
    }
}

static void indent(int depth, FILE *f) {
    for (int i = 0; i < depth; i++) fputs("  ", f);
}

static void label(const char *text, int depth, FILE *f) {
    indent(depth, f);
    fprintf(f, "%s:\n", text);
}

static void print_node(const snn_ast *n, int depth, FILE *f);

static void print_list(const snn_ast_list *l, int depth, FILE *f) {
    for (int i = 0; i < l->n; i++) print_node(l->items[i], depth, f);
}

static const char *ref_kind_name(snn_ref_kind k) {
    switch (k) {
    case SNN_REF_NONE: return "?";
    case SNN_REF_PARAM: return "param";
    case SNN_REF_STATE: return "state";
    case SNN_REF_LOCAL: return "local";
    case SNN_REF_VAR: return "var";
    case SNN_REF_CONST: return "const";
    case SNN_REF_SYMBOL: return "symbol";
    case SNN_REF_INPUT: return "input";
    case SNN_REF_LAYER: return "layer";
    }
    return "?";
}

/* The annotations sema added, then the location, then a newline. */
static void end_line(const snn_ast *n, FILE *f) {
    if (n->type != SNN_TY_UNKNOWN) fprintf(f, " : %s", snn_type_name(n->type));
    if (n->width > 0) fprintf(f, " [%lld]", (long long)n->width);
    fprintf(f, " <%d:%d>\n", (int)n->loc.line, (int)n->loc.col);
}

static void print_def_head(const snn_ast *n, FILE *f) {
    fprintf(f, "%s %s", snn_ast_kind_name(n->kind), n->name);
}

static void print_node(const snn_ast *n, int depth, FILE *f) {
    if (!n) { indent(depth, f); fputs("<null>\n", f); return; }
    indent(depth, f);
    switch (n->kind) {
    case SNN_AST_UNIT:
        fprintf(f, "unit %s%s\n", n->unit.file, n->unit.is_stdlib ? " (stdlib)" : "");
        print_list(&n->unit.items, depth + 1, f);
        break;
    case SNN_AST_IMPORT:
        fputs("import ", f);
        print_string(n->str, f);
        end_line(n, f);
        if (n->import.unit) print_node(n->import.unit, depth + 1, f);   /* the file it loaded */
        break;
    case SNN_AST_SURROGATE:
        print_def_head(n, f);
        end_line(n, f);
        print_list(&n->def.params, depth + 1, f);
        label("grad", depth + 1, f);
        indent(depth + 2, f);
        fprintf(f, "var %s\n", n->def.var);
        print_node(n->def.body, depth + 2, f);
        break;
    case SNN_AST_NEURON:
        print_def_head(n, f);
        end_line(n, f);
        print_list(&n->def.params, depth + 1, f);
        print_list(&n->def.states, depth + 1, f);
        indent(depth + 1, f);
        fprintf(f, "step %s <%d:%d>\n", n->def.var, (int)n->def.step_loc.line, (int)n->def.step_loc.col);
        print_list(&n->def.step, depth + 2, f);
        label("out", depth + 1, f);
        print_list(&n->def.outs, depth + 2, f);
        break;
    case SNN_AST_FUNC:
        print_def_head(n, f);
        end_line(n, f);
        print_list(&n->def.params, depth + 1, f);
        label("body", depth + 1, f);
        print_node(n->def.body, depth + 2, f);
        break;
    case SNN_AST_BUILTIN:
        fprintf(f, "builtin %s %s", n->def.kind_word, n->name);
        end_line(n, f);
        print_list(&n->def.params, depth + 1, f);
        break;
    case SNN_AST_MODEL:
        print_def_head(n, f);
        end_line(n, f);
        print_list(&n->model.items, depth + 1, f);
        break;
    case SNN_AST_TRAIN:
        print_def_head(n, f);
        end_line(n, f);
        print_list(&n->train.settings, depth + 1, f);
        break;
    case SNN_AST_PARAM:
        fprintf(f, "param %s", n->name);
        if (n->param.learn == SNN_LEARN_SCALAR) fputs(" learn", f);
        if (n->param.learn == SNN_LEARN_PER_NEURON) fprintf(f, " learn[%s]", n->str ? n->str : "?");
        if (n->param.type_name) fprintf(f, " (declared %s)", n->param.type_name);
        end_line(n, f);
        if (n->param.def_value) {
            label("default", depth + 1, f);
            print_node(n->param.def_value, depth + 2, f);
        }
        break;
    case SNN_AST_STATE:
        fprintf(f, "state %s", n->name);
        end_line(n, f);
        print_node(n->state.init, depth + 1, f);
        break;
    case SNN_AST_LET:
    case SNN_AST_ASSIGN:
        fprintf(f, "%s %s", snn_ast_kind_name(n->kind), n->name);
        end_line(n, f);
        print_node(n->stmt.value, depth + 1, f);
        break;
    case SNN_AST_IF:
        fputs("if", f);
        end_line(n, f);
        print_node(n->ifs.cond, depth + 1, f);
        label("then", depth + 1, f);
        print_list(&n->ifs.then_, depth + 2, f);
        if (n->ifs.else_.n) {
            label("else", depth + 1, f);
            print_list(&n->ifs.else_, depth + 2, f);
        }
        break;
    case SNN_AST_INPUT:
        fprintf(f, "input %s", n->name);
        end_line(n, f);
        print_list(&n->input.dims, depth + 1, f);
        break;
    case SNN_AST_ENCODE:
        fprintf(f, "encode %s", n->name);
        end_line(n, f);
        print_node(n->encode.value, depth + 1, f);
        break;
    case SNN_AST_LAYER:
        fprintf(f, "layer %s", n->name);
        end_line(n, f);
        print_node(n->layer.value, depth + 1, f);
        break;
    case SNN_AST_OUTPUT:
        fputs("output", f);
        end_line(n, f);
        print_list(&n->output.names, depth + 1, f);
        break;
    case SNN_AST_SETTING:
        fprintf(f, "setting %s", n->name);
        end_line(n, f);
        print_node(n->setting.value, depth + 1, f);
        break;
    case SNN_AST_NUM:
        fputs("num ", f);
        if (n->num.is_int) fprintf(f, "%lld", (long long)n->num.ival);
        else print_num(n->num.value, f);
        end_line(n, f);
        break;
    case SNN_AST_BOOL:
        fprintf(f, "bool %s", n->cval != 0 ? "true" : "false");
        end_line(n, f);
        break;
    case SNN_AST_STR:
        fputs("str ", f);
        print_string(n->str, f);
        end_line(n, f);
        break;
    case SNN_AST_IDENT:
        fprintf(f, "ident %s", n->name);
        if (n->ident.ref.kind != SNN_REF_NONE) fprintf(f, " -> %s", ref_kind_name(n->ident.ref.kind));
        end_line(n, f);
        break;
    case SNN_AST_UNARY:
        fprintf(f, "unary %s", n->un.op == SNN_UN_NEG ? "-" : "!");
        end_line(n, f);
        print_node(n->un.operand, depth + 1, f);
        break;
    case SNN_AST_BINARY:
        fprintf(f, "binary %s", snn_binop_spelling(n->bin.op));
        end_line(n, f);
        print_node(n->bin.lhs, depth + 1, f);
        print_node(n->bin.rhs, depth + 1, f);
        break;
    case SNN_AST_SELECT:
        fputs("select", f);
        end_line(n, f);
        print_node(n->sel.cond, depth + 1, f);
        print_node(n->sel.a, depth + 1, f);
        print_node(n->sel.b, depth + 1, f);
        break;
    case SNN_AST_CALL:
        fprintf(f, "call %s", n->name);
        if (n->call.def) fprintf(f, " -> %s", snn_ast_kind_name(n->call.def->kind));
        else if (n->call.intrinsic) fputs(" -> intrinsic", f);
        end_line(n, f);
        print_list(&n->call.args, depth + 1, f);
        if (n->call.def && n->call.bound && n->call.def->def.params.n) {
            indent(depth + 1, f);
            fputs("with", f);
            const snn_ast_list *ps = &n->call.def->def.params;
            for (int i = 0; i < ps->n; i++) {
                fprintf(f, " %s=", ps->items[i]->name);
                print_inline(n->call.bound[i], f);
            }
            fputc('\n', f);
        }
        break;
    case SNN_AST_ARG:
        fprintf(f, "arg %s", n->name);
        end_line(n, f);
        print_node(n->arg.value, depth + 1, f);
        break;
    case SNN_AST_MEMBER:
        fprintf(f, "member .%s", n->name);
        end_line(n, f);
        print_node(n->member.object, depth + 1, f);
        break;
    case SNN_AST_TUPLE:
        fputs("tuple", f);
        end_line(n, f);
        print_list(&n->tuple.elems, depth + 1, f);
        break;
    case SNN_AST_KIND_COUNT_:
        fputs("?\n", f);
        break;
    }
}

void snn_ast_print(const snn_ast *node, FILE *f) { print_node(node, 0, f); }
