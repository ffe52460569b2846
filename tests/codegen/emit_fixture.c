/* emit_fixture.c: writes an object file for the hand-built Tutorial 5 IR fixture
 * (tests/unit/ir_fixtures.h) of the given sizes, after autodiff, through snn_codegen. It lets
 * tests/codegen/check_codegen.sh test the back end (IR -> autodiff -> LLVM -> object -> linked
 * with the runtime) against the PyTorch fixtures without the front end.
 *
 *     emit_fixture [-O N] [--hoisted] IN HIDDEN OUT BETA THRESHOLD OUT.o
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "codegen/codegen.h"
#include "ir_fixtures.h"

int main(int argc, char **argv) {
    snn_codegen_options co;
    snn_codegen_options_default(&co);
    co.verify = true;
    snn_fixture_opts fo = snn_fixture_defaults();
    int i = 1;
    for (; i < argc && argv[i][0] == '-'; i++) {
        if (!strcmp(argv[i], "-O") && i + 1 < argc) co.opt_level = atoi(argv[++i]);
        else if (!strcmp(argv[i], "--hoisted")) fo.hoisted = true;
        else { fprintf(stderr, "emit_fixture: unknown flag %s\n", argv[i]); return 2; }
    }
    if (argc - i != 6) {
        fprintf(stderr, "usage: emit_fixture [-O N] [--hoisted] IN HIDDEN OUT BETA THRESHOLD OUT.o\n");
        return 2;
    }
    fo.n_in = atol(argv[i]); fo.n_hidden = atol(argv[i + 1]); fo.n_out = atol(argv[i + 2]);
    fo.beta = (float)atof(argv[i + 3]); fo.threshold = (float)atof(argv[i + 4]);
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    snn_ir_module *m = snn_fixture_tutorial5(a, &fo);
    bool ok = snn_autodiff(a, d, m) && snn_ir_verify(m, d) &&
              snn_codegen(a, d, m, &co, SNN_EMIT_OBJ, argv[i + 5]);
    snn_diag_print(d, stderr);
    snn_ir_module_free(m);
    snn_arena_free(a);
    return ok ? 0 : 1;
}
