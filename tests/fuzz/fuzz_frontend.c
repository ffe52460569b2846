/* fuzz_frontend.c: libFuzzer target for the whole front end (lexer, parser, loader, sema, the
 * diagnostics printer and the AST printer).
 *
 * Each input is one .snn file. It is loaded with imports disabled (the fuzzer must not read
 * the file system) but with the embedded standard library, so sema sees real neurons and
 * builtins; then checked. The properties asserted, besides "no crash, no leak, no undefined
 * behaviour" (ASan/UBSan/LSan):
 *   - an input that is rejected produced at least one error message (no silent failure);
 *   - an accepted input produced no error, its tree prints, and the annotations sema.h
 *     promises are all there (every name resolved, every call bound, every width positive);
 *   - every diagnostic prints (source line and caret included) without faulting.
 * Everything lives in one arena per input, freed at the end, which is exactly what lets LSan
 * catch any malloc the front end forgets to release.
 *
 * Built and run by tests/fuzz/check_fuzz.sh (clang-16, -fsanitize=fuzzer,address,undefined).
 */
#include "ast.h"
#include "sema.h"

#include <stdio.h>
#include <stdlib.h>

static FILE *devnull(void) {
    static FILE *f;
    if (!f) f = fopen("/dev/null", "w");
    return f;
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size);

static void fail(const snn_ast *n, const char *what) {
    fprintf(stderr, "fuzz_frontend: accepted program breaks sema.h: %s (%s node at %d:%d)\n", what,
            snn_ast_kind_name(n->kind), (int)n->loc.line, (int)n->loc.col);
    abort();
}

static void check_tree(const snn_ast *n, int depth);

static void check_list(const snn_ast_list *l, int depth) {
    for (int i = 0; i < l->n; i++) check_tree(l->items[i], depth + 1);
}

/* The post-sema contract of sema.h, node by node. */
static void check_tree(const snn_ast *n, int depth) {
    if (!n) return;
    if (depth > 5000) fail(n, "tree deeper than any accepted program should be");
    switch (n->kind) {
    case SNN_AST_UNIT: check_list(&n->unit.items, depth); break;
    case SNN_AST_IMPORT: break;
    case SNN_AST_SURROGATE: case SNN_AST_FUNC:
        check_list(&n->def.params, depth);
        check_tree(n->def.body, depth + 1);
        break;
    case SNN_AST_NEURON:
        check_list(&n->def.params, depth);
        check_list(&n->def.states, depth);
        check_list(&n->def.step, depth);
        check_list(&n->def.outs, depth);
        for (int i = 0; i < n->def.params.n; i++)
            if (n->def.params.items[i]->type == SNN_TY_UNKNOWN) fail(n->def.params.items[i], "untyped parameter");
        break;
    case SNN_AST_BUILTIN: check_list(&n->def.params, depth); break;
    case SNN_AST_MODEL: check_list(&n->model.items, depth); break;
    case SNN_AST_TRAIN:
        if (!n->train.model) fail(n, "train block without its model");
        check_list(&n->train.settings, depth);
        break;
    case SNN_AST_PARAM: check_tree(n->param.def_value, depth + 1); break;
    case SNN_AST_STATE: check_tree(n->state.init, depth + 1); break;
    case SNN_AST_LET: check_tree(n->stmt.value, depth + 1); break;
    case SNN_AST_ASSIGN:
        if (!n->stmt.target) fail(n, "assignment without its state");
        check_tree(n->stmt.value, depth + 1);
        break;
    case SNN_AST_IF:
        check_tree(n->ifs.cond, depth + 1);
        check_list(&n->ifs.then_, depth);
        check_list(&n->ifs.else_, depth);
        break;
    case SNN_AST_INPUT: case SNN_AST_ENCODE:
        if (n->width <= 0) fail(n, "input without a positive width");
        if (n->kind == SNN_AST_ENCODE) check_tree(n->encode.value, depth + 1);
        break;
    case SNN_AST_LAYER:
        if (n->width <= 0) fail(n, "layer without a positive width");
        check_tree(n->layer.value, depth + 1);
        break;
    case SNN_AST_OUTPUT: check_list(&n->output.names, depth); break;
    case SNN_AST_SETTING: check_tree(n->setting.value, depth + 1); break;
    case SNN_AST_IDENT:
        if (n->ident.ref.kind == SNN_REF_NONE) fail(n, "unresolved name");
        break;
    case SNN_AST_UNARY: check_tree(n->un.operand, depth + 1); break;
    case SNN_AST_BINARY: check_tree(n->bin.lhs, depth + 1); check_tree(n->bin.rhs, depth + 1); break;
    case SNN_AST_SELECT:
        check_tree(n->sel.cond, depth + 1);
        check_tree(n->sel.a, depth + 1);
        check_tree(n->sel.b, depth + 1);
        break;
    case SNN_AST_CALL:
        if (!n->call.def && !n->call.intrinsic) fail(n, "call of nothing");
        if (n->call.def) {
            if (!n->call.bound) fail(n, "call without bound parameters");
            for (int i = 0; i < n->call.def->def.params.n; i++)
                if (!n->call.bound[i]) fail(n, "parameter left unbound");
            if (n->call.def->kind == SNN_AST_NEURON && !n->call.input) fail(n, "neuron call without input");
        }
        check_list(&n->call.args, depth);
        break;
    case SNN_AST_ARG: check_tree(n->arg.value, depth + 1); break;
    case SNN_AST_MEMBER:
        if (!n->member.layer) fail(n, "member without its layer");
        check_tree(n->member.object, depth + 1);
        break;
    case SNN_AST_TUPLE: check_list(&n->tuple.elems, depth); break;
    default: break;
    }
}

int LLVMFuzzerTestOneInput(const unsigned char *data, size_t size) {
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_load_options opt = {.no_imports = true, .no_stdlib = false};
    snn_program *prog = snn_load_program(a, d, "fuzz.snn", (const char *)data, size, &opt);
    bool ok = prog != NULL && snn_sema(a, d, prog);
    int errors = snn_diag_error_count(d);
    if (!ok && errors == 0) {
        fprintf(stderr, "fuzz_frontend: input rejected without any diagnostic\n");
        abort();
    }
    if (ok && errors != 0) {
        fprintf(stderr, "fuzz_frontend: input accepted but %d errors were reported\n", errors);
        abort();
    }
    if (ok)
        for (int u = 0; u < prog->n_units; u++) check_tree(prog->units[u], 0);
    FILE *out = devnull();
    if (out) {
        snn_diag_print(d, out);
        if (ok) snn_ast_print(prog->units[0], out);
    }
    snn_arena_free(a);
    return 0;
}
