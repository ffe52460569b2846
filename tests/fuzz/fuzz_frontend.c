/* fuzz_frontend.c: libFuzzer target for the whole front end (lexer, parser, loader, sema, the
 * diagnostics printer and the AST printer).
 *
 * Each input is one .snn file. It is loaded with imports disabled (the fuzzer must not read
 * the file system) but with the embedded standard library, so sema sees real neurons and
 * builtins; then checked. The properties asserted, besides "no crash, no leak, no undefined
 * behaviour" (ASan/UBSan/LSan):
 *   - an input that is rejected produced at least one error message (no silent failure);
 *   - an accepted input produced no error, and its tree prints;
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
    FILE *out = devnull();
    if (out) {
        snn_diag_print(d, out);
        if (ok) snn_ast_print(prog->units[0], out);
    }
    snn_arena_free(a);
    return 0;
}
