/* pipeline.c: the pass manager (see passes.h).
 *
 * It is deliberately small: the order and the placement of passes are data (passes.def), and
 * the manager only walks the table for the current stage, calls each enabled pass on each
 * function the table names, and after a pass that changed something prints the function if
 * asked (--print-after: only when changed, as Halide's LoweringLogger does) and runs the
 * verifier if asked, so a broken pass is caught at the pass, not three stages later in codegen.
 */
#include "passes/passes.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

const snn_pass_info snn_pass_table[SNN_PASS_COUNT_] = {
#define SNN_PASS(name, function, where, level, help) [SNN_PASS_ID_##name] = {#name, function, where, level, help},
#include "passes/passes.def"
#undef SNN_PASS
};

snn_pass_options snn_pass_options_default(void) {
    return (snn_pass_options){.opt_level = 1};
}

int snn_pass_lookup(const char *name) {
    for (int i = 0; i < SNN_PASS_COUNT_; i++)
        if (strcmp(snn_pass_table[i].name, name) == 0) return i;
    return -1;
}

int snn_pass_parse_flag(snn_pass_options *o, const char *arg) {
    int id;
    if (strncmp(arg, "-O", 2) == 0 && arg[2] >= '0' && arg[2] <= '9' && arg[3] == 0) {
        if (arg[2] > '3') return -1;
        o->opt_level = arg[2] - '0';
        return 1;
    }
    if (strcmp(arg, "--print-after-all") == 0) { o->print_after_all = true; return 1; }
    if (strcmp(arg, "--verify-each") == 0) { o->verify = true; return 1; }
    if (strncmp(arg, "--print-after=", 14) == 0) {
        if ((id = snn_pass_lookup(arg + 14)) < 0) return -1;
        o->print_after |= 1u << id;
        return 1;
    }
    if (strncmp(arg, "-fno-", 5) == 0) {
        if ((id = snn_pass_lookup(arg + 5)) < 0) return -1;
        o->disabled |= 1u << id;
        o->enabled &= ~(1u << id);
        return 1;
    }
    if (strncmp(arg, "-f", 2) == 0 && (id = snn_pass_lookup(arg + 2)) >= 0) {
        o->disabled &= ~(1u << id);
        o->enabled |= 1u << id;
        return 1;
    }
    return 0;
}

static const char *where_str(unsigned w) {
    switch (w & (SNN_PASS_FORWARD | SNN_PASS_BACKWARD)) {
    case SNN_PASS_FORWARD | SNN_PASS_BACKWARD: return "forward + backward";
    case SNN_PASS_FORWARD: return "forward";
    case SNN_PASS_BACKWARD: return "backward";
    default: return (w & SNN_PASS_FORWARD_LATE) ? "forward (late)" : "-";
    }
}

void snn_pass_print_help(void *file) {
    FILE *out = file;
    for (int i = 0; i < SNN_PASS_COUNT_; i++)
        fprintf(out, "  %-10s -O%d  %-20s %s\n", snn_pass_table[i].name, snn_pass_table[i].level,
                where_str(snn_pass_table[i].where), snn_pass_table[i].help);
}

/* Runs pass id on f; prints and verifies as asked. Returns -1 on error, else whether it changed f. */
static int run_one(snn_arena *a, snn_diag *d, snn_ir_module *m, snn_ir_func *f, int id,
                   const snn_pass_options *o) {
    const snn_pass_info *p = &snn_pass_table[id];
    int errors = snn_diag_error_count(d);
    bool changed = p->fn(a, d, m, f);
    snn_loc where = {m->source_file, 0, 0};
    if (snn_diag_error_count(d) != errors) {
        snn_internal_error(d, where, "pass %s failed on the %s function", p->name, f->name);
        return -1;
    }
    if (!changed) return 0;
    if (o->fired) *o->fired |= 1u << id;
    if (o->print_after_all || (o->print_after & (1u << id))) {
        FILE *out = o->print_file ? o->print_file : stdout;
        fprintf(out, "; *** IR after %s on %s ***\n", p->name, f->name);
        snn_ir_print_func(m, f, out);
    }
    if (o->verify && !snn_ir_verify(m, d)) {
        snn_internal_error(d, where, "the IR is malformed after pass %s on the %s function", p->name, f->name);
        return -1;
    }
    return 1;
}

bool snn_run_passes(snn_arena *a, snn_diag *d, snn_ir_module *m, const snn_pass_options *opt) {
    snn_pass_options def = snn_pass_options_default();
    const snn_pass_options *o = opt ? opt : &def;
    if (o->opt_level <= 0) return true;
    const bool late = m->backward.n_values > 0;
    const int rounds = o->opt_level >= 2 ? 4 : 1;
    for (int round = 0; round < rounds; round++) {
        bool any = false;
        for (int id = 0; id < SNN_PASS_COUNT_; id++) {
            if ((o->disabled & (1u << id)) ||
                (snn_pass_table[id].level > o->opt_level && !(o->enabled & (1u << id))))
                continue;
            unsigned w = snn_pass_table[id].where;
            snn_ir_func *fs[2];
            int nf = 0;
            if (!late && (w & SNN_PASS_FORWARD)) fs[nf++] = &m->forward;
            if (late && (w & SNN_PASS_FORWARD_LATE)) fs[nf++] = &m->forward;
            if (late && (w & SNN_PASS_BACKWARD)) fs[nf++] = &m->backward;
            for (int k = 0; k < nf; k++) {
                int r = run_one(a, d, m, fs[k], id, o);
                if (r < 0) return false;
                any = any || r > 0;
            }
        }
        if (!any) break;
    }
    return true;
}
