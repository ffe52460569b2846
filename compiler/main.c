/* main.c: the snnc driver: the command line and the one pipeline function.
 *
 * compile() lists every stage in order, so the whole compiler reads in one screen:
 *
 *     load + lex + parse   (load.c, lex.re, parse.y)   file and imports -> AST
 *     sema                 (sema.c)                    names, types, widths -> checked AST
 *     lower                (lower.c)                   AST -> SNN IR, forward function
 *     passes, stage 1      (passes/)                   forward IR -> optimized forward IR
 *     autodiff             (autodiff/)                 forward IR -> backward (BPTT) IR
 *     passes, stage 2      (passes/)                   backward IR -> optimized backward IR
 *     codegen              (codegen/)                  IR -> LLVM -> O3 for the host -> object
 *     link                 (codegen/)                  object + libsnnrt.a -> trainer
 *
 * --emit=STAGE stops after STAGE and prints it. The flags live in one table (FLAGS below),
 * which also generates --help, so the help cannot drift from what is parsed.
 *
 * Exit status: 0 success; 1 the program has errors (all of them are printed); 2 the command
 * line is wrong, a file cannot be read, or a requested stage is not available.
 */
#include "ast.h"
#include "codegen/codegen.h"
#include "ir/ir.h"
#include "lex.h"
#include "lower.h"
#include "passes/passes.h"
#include "sema.h"
#include "stats.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#define SNNC_VERSION "0.1.0"

/* Stages --emit can print: X(ID, "name", available now). */
#define EMITS(X)                                                                         \
    X(TOKENS, "tokens", true) X(AST, "ast", true) X(IR, "ir", true)                       \
    X(IR_GRAD, "ir-grad", true) X(LOOPS, "loops", true) X(LLVM, "llvm", true)             \
    X(ASM, "asm", true) X(OBJ, "obj", true)
typedef enum {
    EMIT_NONE,
#define X(id, name, avail) EMIT_##id,
    EMITS(X)
#undef X
} emit_kind;
static const struct { const char *name; bool available; } emit_info[] = {
    {"none", true},
#define X(id, name, avail) {name, avail},
    EMITS(X)
#undef X
};

/* Flags: X(ID, "spelling", "ARG" or NULL, "help text"). A spelling ending in '=' takes its
 * argument after the '='; other flags with an ARG take it as the next word. */
#define FLAGS(X)                                                                         \
    X(CHECK, "--check", NULL, "parse and check FILE only (no output)")                   \
    X(EMIT, "--emit=", "STAGE", "print STAGE and stop: tokens, ast, ir, ir-grad, loops, llvm, asm, obj (obj: to -o OUT)") \
    X(OUT, "-o", "OUT", "compile FILE into the trainer executable OUT")                  \
    X(CPU, "--cpu=", "NAME", "target CPU for code generation (default: the host's)")   \
    X(VERIFY, "--verify", NULL, "verify the IR after every pass and the LLVM module")   \
    X(STATS, "--stats", NULL, "print per-layer FLOPs, memory for backward and the passes that fired") \
    X(NO_RECOMPUTE, "-fno-recompute", NULL, "codegen: keep the tape, no row tiles (see --emit=loops)") \
    X(NO_FUSE_MATMUL, "-fno-fuse-matmul", NULL, "codegen: no short-K matmul inside a loop, all through sgemm") \
    X(NO_REC_MERGE, "-fno-rec-merge", NULL, "codegen: backward's recomputation as its own loop, not merged") \
    X(NO_FUSE_WGRAD, "-fno-fuse-wgrad", NULL, "codegen: short weight gradients through sgemm, not inside a loop") \
    X(NO_TIME_INNER, "-fno-time-inner", NULL, "codegen: backward's tiled loop with the steps outermost") \
    X(NO_FUSE_LINEAR, "-fno-fuse-linear", NULL, "codegen: short linear layers of spikes through sgemm, not in the loop") \
    X(NO_ROWS_IN_LANES, "-fno-rows-in-lanes", NULL, "codegen: a linear layer summed in its loop with columns, not rows, in the lanes") \
    X(HELP, "--help", NULL, "print this help and exit")                                  \
    X(VERSION, "--version", NULL, "print the version and exit")
typedef enum {
#define X(id, spelling, arg, help) FLAG_##id,
    FLAGS(X)
#undef X
    FLAG_COUNT_
} flag_id;
static const struct { const char *spelling, *arg, *help; } flag_info[] = {
#define X(id, spelling, arg, help) {spelling, arg, help},
    FLAGS(X)
#undef X
};

typedef struct {
    const char *input;
    const char *output;
    emit_kind emit;
    bool check;
    const char *cpu;
    bool verify;
    bool stats;
    bool no_recompute;          /* -fno-recompute (codegen) */
    bool no_fuse_matmul;        /* -fno-fuse-matmul (codegen) */
    bool no_rec_merge;          /* -fno-rec-merge (codegen) */
    bool no_fuse_wgrad;         /* -fno-fuse-wgrad (codegen) */
    bool no_time_inner;         /* -fno-time-inner (codegen) */
    bool no_fuse_linear;        /* -fno-fuse-linear (codegen) */
    bool no_rows_in_lanes;      /* -fno-rows-in-lanes (codegen) */
    uint32_t fired;             /* passes that changed something (--stats) */
    snn_pass_options passes;
} options;

static void print_help(FILE *f) {
    fprintf(f, "usage: snnc FILE.snn [options]\n\n"
               "Compiles a spiking neural network description into a native training program.\n\n"
               "options:\n");
    for (int i = 0; i < FLAG_COUNT_; i++) {
        char left[64];
        const char *sp = flag_info[i].spelling;
        size_t n = strlen(sp);
        if (!flag_info[i].arg) snprintf(left, sizeof left, "%s", sp);
        else if (sp[n - 1] == '=') snprintf(left, sizeof left, "%s%s", sp, flag_info[i].arg);
        else snprintf(left, sizeof left, "%s %s", sp, flag_info[i].arg);
        fprintf(f, "  %-16s %s\n", left, flag_info[i].help);
    }
    fprintf(f, "  %-16s %s\n", "-O0 | -O1 | -O2", "IR optimization level (default -O1; -O0 also turns off LLVM's optimizer)");
    fprintf(f, "  %-16s %s\n", "-fno-PASS", "turn pass PASS off (-fPASS turns it back on)");
    fprintf(f, "  %-16s %s\n", "--print-after=PASS", "print the function after PASS if it changed it");
    fprintf(f, "  %-16s %s\n", "--print-after-all", "the same after every pass");
    fprintf(f, "\npasses, in the order they run:\n");
    snn_pass_print_help(f);
    fprintf(f, "\nexit status: 0 success, 1 errors in the program, 2 usage or I/O error\n");
}

static int usage_error(const char *fmt, const char *what) {
    fprintf(stderr, "snnc: ");
    fprintf(stderr, fmt, what);
    fprintf(stderr, "\n(run 'snnc --help' for usage)\n");
    return 2;
}

/* Parses argv into o. Returns -1 to go on, else the exit status. */
static int parse_args(int argc, char **argv, options *o) {
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (a[0] != '-' || a[1] == 0) {
            if (o->input) return usage_error("more than one input file ('%s')", a);
            o->input = a;
            continue;
        }
        int id = -1;
        const char *val = NULL;
        for (int f = 0; f < FLAG_COUNT_; f++) {
            const char *sp = flag_info[f].spelling;
            size_t n = strlen(sp);
            if (sp[n - 1] == '=' ? strncmp(a, sp, n) == 0 || strcmp(a, "--emit") == 0 : strcmp(a, sp) == 0) {
                id = f;
                if (sp[n - 1] == '=') val = strncmp(a, sp, n) == 0 ? a + n : NULL;
                else if (flag_info[f].arg) {
                    if (i + 1 >= argc) return usage_error("%s needs an argument", sp);
                    val = argv[++i];
                }
                break;
            }
        }
        switch (id) {
        case FLAG_CHECK: o->check = true; break;
        case FLAG_EMIT: {
            if (!val || !*val) return usage_error("%s", "--emit needs a stage: --emit=STAGE");
            o->emit = EMIT_NONE;
            for (int e = 1; e < (int)(sizeof emit_info / sizeof emit_info[0]); e++)
                if (strcmp(val, emit_info[e].name) == 0) o->emit = (emit_kind)e;
            if (o->emit == EMIT_NONE) return usage_error("unknown stage in --emit=%s", val);
            break;
        }
        case FLAG_OUT: o->output = val; break;
        case FLAG_CPU:
            if (!val || !*val) return usage_error("%s", "--cpu needs a name: --cpu=NAME");
            o->cpu = val;
            break;
        case FLAG_VERIFY: o->verify = o->passes.verify = true; break;
        case FLAG_STATS: o->stats = true; break;
        case FLAG_NO_RECOMPUTE: o->no_recompute = true; break;
        case FLAG_NO_FUSE_MATMUL: o->no_fuse_matmul = true; break;
        case FLAG_NO_REC_MERGE: o->no_rec_merge = true; break;
        case FLAG_NO_FUSE_WGRAD: o->no_fuse_wgrad = true; break;
        case FLAG_NO_TIME_INNER: o->no_time_inner = true; break;
        case FLAG_NO_FUSE_LINEAR: o->no_fuse_linear = true; break;
        case FLAG_NO_ROWS_IN_LANES: o->no_rows_in_lanes = true; break;
        case FLAG_HELP: print_help(stdout); return 0;
        case FLAG_VERSION: printf("snnc %s\n", SNNC_VERSION); return 0;
        default: {
            int r = snn_pass_parse_flag(&o->passes, a);
            if (r == 1) break;
            if (r < 0) return usage_error("unknown pass or optimization level in '%s'", a);
            return usage_error("unknown option '%s'", a);
        }
        }
    }
    if (!o->input) return usage_error("%s", "no input file");
    if (!o->check && o->emit == EMIT_NONE && !o->output && !o->stats)
        return usage_error("%s", "nothing to do: give -o OUT, --check or --emit=STAGE");
    if (o->emit == EMIT_OBJ && !o->output)
        return usage_error("%s", "--emit=obj writes an object file: give -o OUT.o");
    return -1;
}

/* --emit=tokens: one token a line, "LINE:COL KIND text". */
static int emit_tokens(snn_arena *a, snn_diag *d, const char *file, const char *text, size_t len) {
    snn_lexer lx;
    snn_lexer_init(&lx, a, d, file, text, len);
    for (;;) {
        snn_token t = snn_lex_next(&lx);
        printf("%d:%d %s", (int)t.loc.line, (int)t.loc.col, snn_tok_name(t.kind));
        if (t.kind == SNN_TOK_STRING) printf(" \"%s\"", t.str);
        else if (t.kind != SNN_TOK_EOF) printf(" %.*s", (int)t.len, t.text);
        putchar('\n');
        if (t.kind == SNN_TOK_EOF) break;
    }
    return snn_diag_error_count(d) ? 1 : 0;
}

/* Reads the whole input file; NULL (after a message) if it cannot. */
static char *read_input(const char *path, size_t *len) {
    FILE *f = fopen(path, "rb");
    if (!f) { fprintf(stderr, "snnc: cannot open '%s': %s\n", path, strerror(errno)); return NULL; }
    struct stat st;
    if (fstat(fileno(f), &st) != 0 || !S_ISREG(st.st_mode)) {
        fprintf(stderr, "snnc: cannot read '%s': not a regular file\n", path);
        fclose(f);
        return NULL;
    }
    char *buf = malloc((size_t)st.st_size + 1);
    size_t n = buf ? fread(buf, 1, (size_t)st.st_size, f) : 0;
    if (!buf || ferror(f)) {
        fprintf(stderr, "snnc: cannot read '%s'\n", path);
        free(buf);
        fclose(f);
        return NULL;
    }
    fclose(f);
    buf[n] = 0;
    *len = n;
    return buf;
}

/* --stats: per-layer FLOPs of one training iteration, memory for backward, passes that fired. */
static int print_stats(snn_arena *a, snn_diag *d, const snn_ir_module *m,
                       const snn_codegen_options *cg, uint32_t fired) {
    int64_t B = m->train.batch > 0 ? m->train.batch : 128, T = m->train.steps > 0 ? m->train.steps : 25;
    snn_layer_stats ls[64];
    int n = snn_stats_flops(m, B, T, ls, 64);
    snn_codegen_sizes sz;
    if (!snn_codegen_stats_with(a, d, m, cg, B, T, &sz)) return 1;
    for (int32_t i = 0; i < sz.n_taped && i < SNN_CODEGEN_TAPES_MAX; i++)
        n = snn_stats_add_tape(m, sz.tape_name[i], (double)sz.tape_each[i], ls, n, 64);
    if (sz.recompute_flops > 0)   /* backward's second run of the forward loop it does not tape */
        n = snn_stats_add_bwd_flops(m, sz.recompute_name, sz.recompute_flops, ls, n, 64);
    printf("model %s: one training iteration at batch %lld, %lld steps\n", m->name, (long long)B, (long long)T);
    printf("  %-10s %14s %14s %16s\n", "layer", "fwd GFLOP", "bwd GFLOP", "saved for bwd");
    double tf = 0, tb = 0;
    for (int i = 0; i < n; i++) {
        printf("  %-10s %14.4f %14.4f %12.2f MiB\n", ls[i].layer, ls[i].fwd_flops / 1e9,
               ls[i].bwd_flops / 1e9, ls[i].tape_bytes / 1048576.0);
        tf += ls[i].fwd_flops; tb += ls[i].bwd_flops;
    }
    printf("  %-10s %14.4f %14.4f %12.2f MiB   (total %.4f GFLOP)\n", "total", tf / 1e9, tb / 1e9,
           (double)sz.tape_bytes / 1048576.0, (tf + tb) / 1e9);
    printf("memory: work area %.2f MiB, of which saved for backward (tape) %.2f MiB, states %.2f MiB; "
           "%d buffers, %d taped values, %d fused loops\n",
           (double)sz.work_bytes / 1048576.0, (double)sz.tape_bytes / 1048576.0,
           (double)sz.state_bytes / 1048576.0, (int)sz.n_buffers, (int)sz.n_taped, (int)sz.n_loops);
    if (sz.recompute_flops > 0)
        printf("recompute: backward re-runs forward's loop of %%%s instead of taping it: %.4f GFLOP "
               "(in bwd above)\n", sz.recompute_name, sz.recompute_flops / 1e9);
    printf("codegen plans that fired (-fno-NAME turns one off):%s%s%s%s%s%s%s\n",
           sz.recompute_flops > 0 ? " recompute" : "", sz.rec_merge ? " rec-merge" : "",
           sz.n_fuse_matmul ? " fuse-matmul" : "", sz.n_fuse_wgrad ? " fuse-wgrad" : "",
           sz.time_inner ? " time-inner" : "", sz.n_fuse_linear ? " fuse-linear" : "",
           sz.n_rows_in_lanes ? " rows-in-lanes" : "");
    printf("passes that fired:");
    int k = 0;
    for (int p = 0; p < SNN_PASS_COUNT_; p++)
        if (fired & (1u << p)) printf("%s %s", k++ ? "," : "", snn_pass_table[p].name);
    printf("%s\n", k ? "" : " none");
    return 0;
}

/* The pipeline: every stage in order. Returns the exit status. */
static int compile(options *o, snn_arena *a, snn_diag *d) {
    size_t len = 0;
    char *text = read_input(o->input, &len);
    if (!text) return 2;
    int rc = 0;
    const char *file = snn_intern_cstr(a, o->input);

    /* 1. lex (printed alone for --emit=tokens) */
    if (o->emit == EMIT_TOKENS) {
        snn_diag_add_source(d, file, text, len);
        rc = emit_tokens(a, d, file, text, len);
        goto done;
    }

    /* 2. load: parse the file, its imports and the standard library */
    snn_program *prog = snn_load_program(a, d, o->input, text, len, NULL);
    if (!prog) { rc = 1; goto done; }

    /* 3. sema: names, types, widths */
    if (!snn_sema(a, d, prog)) { rc = 1; goto done; }
    if (o->emit == EMIT_AST) { snn_ast_print(prog->units[0], stdout); goto done; }
    if (o->check && o->emit == EMIT_NONE && !o->output) goto done;

    /* 4. lower: AST -> forward IR */
    snn_ir_module *m = snn_lower(a, d, prog);
    if (!m) { rc = 1; goto done; }
    if (o->verify && !snn_ir_verify(m, d)) { rc = 1; goto done_ir; }

    /* 5. forward passes (hoisting before autodiff, so the gradient is of the hoisted program) */
    if (!snn_run_passes(a, d, m, &o->passes)) { rc = 1; goto done_ir; }
    if (o->emit == EMIT_IR) { snn_ir_print(m, stdout, false); goto done_ir; }

    /* 6. autodiff: forward -> backward through time */
    if (!snn_autodiff(a, d, m)) { rc = 1; goto done_ir; }
    if (o->verify && !snn_ir_verify(m, d)) { rc = 1; goto done_ir; }

    /* 7. backward passes */
    if (!snn_run_passes(a, d, m, &o->passes)) { rc = 1; goto done_ir; }
    if (o->emit == EMIT_IR_GRAD) { snn_ir_print(m, stdout, true); goto done_ir; }
    snn_codegen_options cg;
    snn_codegen_options_default(&cg);
    cg.no_recompute = o->no_recompute;
    cg.no_fuse_matmul = o->no_fuse_matmul;
    cg.no_rec_merge = o->no_rec_merge;
    cg.no_fuse_wgrad = o->no_fuse_wgrad;
    cg.no_time_inner = o->no_time_inner;
    cg.no_fuse_linear = o->no_fuse_linear;
    cg.no_rows_in_lanes = o->no_rows_in_lanes;
    if (o->emit == EMIT_LOOPS) {
        if (!snn_codegen_print_loops_with(a, d, m, &cg, stdout)) rc = 1;
        goto done_ir;
    }
    if (o->stats) {
        rc = print_stats(a, d, m, &cg, o->fired);
        if (rc || !o->output) goto done_ir;
    }

    /* 8. codegen (and 9. link, for -o without --emit) */
    if (o->cpu) { cg.cpu = o->cpu; cg.features = NULL; }
    cg.verify = o->verify;
    if (o->passes.opt_level == 0) cg.opt_level = 0;
    snn_emit_kind kind = o->emit == EMIT_LLVM ? SNN_EMIT_LLVM
                       : o->emit == EMIT_ASM  ? SNN_EMIT_ASM
                       : o->emit == EMIT_OBJ  ? SNN_EMIT_OBJ : SNN_EMIT_EXE;
    const char *out = kind == SNN_EMIT_EXE || kind == SNN_EMIT_OBJ ? o->output
                                                                    : (o->output ? o->output : "-");
    if (!snn_codegen(a, d, m, &cg, kind, out)) rc = 1;
done_ir:
    snn_ir_module_free(m);
done:
    free(text);
    return rc;
}

int main(int argc, char **argv) {
    options o = {0};
    o.passes = snn_pass_options_default();
    o.passes.fired = &o.fired;
    int rc = parse_args(argc, argv, &o);
    if (rc >= 0) return rc;
    snn_arena *a = snn_arena_new();
    snn_diag *d = snn_diag_new(a);
    rc = compile(&o, a, d);
    snn_diag_print(d, stderr);
    snn_arena_free(a);
    return rc;
}
