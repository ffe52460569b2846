/* snnrt_cli.c: the generated trainer's command line.
 *
 * One table (SNNRT_OPTIONS below) lists every flag with its argument and help line; the parser
 * and --help are both generated from it, so they cannot drift apart. Values are checked
 * strictly (the whole string must parse, ranges are enforced) and every message names the
 * flag, because "invalid argument" after a 20-minute data load helps no one. Parsing never
 * exits: it returns -1 with the message and trainer_main exits with status 2.
 *
 * Every flag overrides the model's `train` block, whose values --help shows as defaults.
 */
#include "snnrt_lib.h"

#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>

/* X(ID, "flag", "ARG" or NULL, "help") */
#define SNNRT_OPTIONS(X)                                                                         \
    X(DATA, "data", "DIR", "directory of IDX files, plain or .gz (train-images-idx3-ubyte, "    \
                           "train-labels-idx1-ubyte, t10k-...)")                                 \
    X(EPOCHS, "epochs", "N", "training epochs")                                                  \
    X(BATCH, "batch", "N", "batch size (the last partial training batch is dropped)")           \
    X(STEPS, "steps", "N", "time steps per example")                                             \
    X(LR, "lr", "X", "learning rate")                                                            \
    X(SEED, "seed", "N", "seed of init (as torch.manual_seed(N)), shuffling (as randperm of a "  \
                         "torch.Generator seeded N+1) and stochastic encoders")                  \
    X(THREADS, "threads", "N", "threads for OpenMP and OpenBLAS (default: their defaults)")     \
    X(MAX_ITERS, "max-iters", "N", "stop each epoch after N iterations (quick runs)")           \
    X(PROGRESS, "progress", "N", "progress line on stderr every N iterations (0: none; 50)")    \
    X(JSON, "json", NULL, "print a JSON summary as the last line of output")                     \
    X(INIT_FROM, "init-from", "DIR", "initial parameters from DIR/<name>.f32 (raw float32 LE)") \
    X(DUMP_INIT, "dump-init", "DIR", "write the initial parameters (DIR/<name>.f32) and the "    \
                                     "order of the epoch training starts with (DIR/batch_order.txt), then stop")            \
    X(BATCH_ORDER, "batch-order", "FILE", "training batches from FILE (one line of example "    \
                                          "indices per batch) instead of shuffling")             \
    X(LOSS_LOG, "loss-log", "FILE", "write each iteration's training loss to FILE, one a line") \
    X(LOG, "log", "FILE", "also append progress and epoch lines (and any error) to FILE")      \
    X(SAVE, "save", "FILE", "checkpoint to FILE after every epoch (atomic replace)")           \
    X(SAVE_EVERY, "save-every", "N", "also checkpoint every N iterations (needs --save)")      \
    X(LOAD, "load", "FILE", "start from checkpoint FILE (parameters and optimizer state)")     \
    X(EVAL, "eval", NULL, "only evaluate on the test set (with --load or --init-from)")          \
    X(PROFILE, "profile", NULL, "at the end, where a training iteration's time went, per thread")  \
    X(HELP, "help", NULL, "show this help")

typedef enum {
#define X(id, name, arg, help) OPT_##id,
    SNNRT_OPTIONS(X)
#undef X
        OPT_COUNT
} opt_id;

static const struct {
    const char *name, *arg, *help;
} options[OPT_COUNT] = {
#define X(id, name, arg, help) {name, arg, help},
    SNNRT_OPTIONS(X)
#undef X
};

static int parse_i64(const char *flag, const char *s, int64_t min, int64_t *out,
                     snnrt_error *err) {
    char *end;
    errno = 0;
    long long v = strtoll(s, &end, 10);
    if (end == s || *end || errno == ERANGE || v < min)
        return snnrt_fail(err, "--%s: '%s' is not an integer >= %lld", flag, s, (long long)min);
    *out = v;
    return 0;
}

/* Sizes that multiply into allocations (batch x inputs x steps) stay far from overflow. */
#define SIZE_MAX_FLAG ((int64_t)1 << 30)

static int parse_size(const char *flag, const char *s, int64_t *out, snnrt_error *err) {
    if (parse_i64(flag, s, 1, out, err) != 0) return -1;
    if (*out > SIZE_MAX_FLAG)
        return snnrt_fail(err, "--%s: %s is too large (at most %lld)", flag, s,
                          (long long)SIZE_MAX_FLAG);
    return 0;
}

static int parse_u64(const char *flag, const char *s, uint64_t *out, snnrt_error *err) {
    char *end;
    errno = 0;
    unsigned long long v = strtoull(s, &end, 10);
    if (*s == '-' || end == s || *end || errno == ERANGE)
        return snnrt_fail(err, "--%s: '%s' is not an integer in 0..2^64-1", flag, s);
    *out = v;
    return 0;
}

static int parse_pos_double(const char *flag, const char *s, double *out, snnrt_error *err) {
    char *end;
    errno = 0;
    double v = strtod(s, &end);
    if (end == s || *end || errno == ERANGE || !isfinite(v) || !(v > 0))
        return snnrt_fail(err, "--%s: '%s' is not a positive finite number", flag, s);
    *out = v;
    return 0;
}

int snnrt_cli_parse(int argc, char **argv, snnrt_options *o, snnrt_error *err) {
    memset(o, 0, sizeof *o);
    o->epochs = o->batch = o->steps = o->max_iters = o->threads = o->save_every = -1;
    o->progress_every = 50;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (strcmp(a, "-h") == 0) a = "--help";
        if (strncmp(a, "--", 2) != 0)
            return snnrt_fail(err, "unexpected argument '%s' (flags start with --; see --help)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t name_len = eq ? (size_t)(eq - name) : strlen(name);
        int id = -1;
        for (int k = 0; k < OPT_COUNT; k++)
            if (strlen(options[k].name) == name_len && strncmp(options[k].name, name, name_len) == 0)
                id = k;
        if (id < 0) return snnrt_fail(err, "unknown flag '--%.*s' (see --help)", (int)name_len, name);
        const char *flag = options[id].name, *val = NULL;
        if (options[id].arg) {
            if (eq) val = eq + 1;
            else if (i + 1 < argc) val = argv[++i];
            else return snnrt_fail(err, "--%s needs a value (%s)", flag, options[id].arg);
            if (!*val) return snnrt_fail(err, "--%s: empty value", flag);
        } else if (eq) {
            return snnrt_fail(err, "--%s takes no value", flag);
        }
        int rc = 0;
        switch ((opt_id)id) {
        case OPT_DATA: o->data_dir = val; break;
        case OPT_EPOCHS: rc = parse_i64(flag, val, 1, &o->epochs, err); break;
        case OPT_BATCH: rc = parse_size(flag, val, &o->batch, err); break;
        case OPT_STEPS: rc = parse_size(flag, val, &o->steps, err); break;
        case OPT_LR: rc = parse_pos_double(flag, val, &o->lr, err), o->has_lr = 1; break;
        case OPT_SEED: rc = parse_u64(flag, val, &o->seed, err), o->has_seed = 1; break;
        case OPT_THREADS:
            rc = parse_i64(flag, val, 1, &o->threads, err);
            if (rc == 0 && o->threads > 4096)
                rc = snnrt_fail(err, "--threads: %s is more than 4096", val);
            break;
        case OPT_MAX_ITERS: rc = parse_i64(flag, val, 1, &o->max_iters, err); break;
        case OPT_PROGRESS: rc = parse_i64(flag, val, 0, &o->progress_every, err); break;
        case OPT_JSON: o->json = 1; break;
        case OPT_INIT_FROM: o->init_from = val; break;
        case OPT_DUMP_INIT: o->dump_init = val; break;
        case OPT_BATCH_ORDER: o->batch_order = val; break;
        case OPT_LOSS_LOG: o->loss_log = val; break;
        case OPT_LOG: o->log_file = val; break;
        case OPT_SAVE: o->save = val; break;
        case OPT_SAVE_EVERY: rc = parse_i64(flag, val, 1, &o->save_every, err); break;
        case OPT_LOAD: o->load = val; break;
        case OPT_EVAL: o->eval_only = 1; break;
        case OPT_PROFILE: o->profile = 1; break;
        case OPT_HELP: o->help = 1; break;
        case OPT_COUNT: break;
        }
        if (rc != 0) return -1;
    }
    if (o->help) return 0;
    if (o->load && o->init_from)
        return snnrt_fail(err, "--load and --init-from both set the initial parameters; give one");
    if (o->dump_init && o->eval_only)
        return snnrt_fail(err, "--dump-init writes the start of training; it takes no --eval");
    if (o->save_every > 0 && !o->save) return snnrt_fail(err, "--save-every needs --save FILE");
    if (o->eval_only && (o->save || o->batch_order || o->loss_log || o->max_iters > 0 ||
                         o->epochs > 0))
        return snnrt_fail(err, "--eval only evaluates: it takes no --save, --batch-order, "
                          "--loss-log, --max-iters or --epochs");
    return 0;
}

void snnrt_cli_help(FILE *f, const char *prog, const snn_model_desc *m) {
    fprintf(f, "usage: %s [flags]\n", prog ? prog : "train");
    if (m)
        fprintf(f, "Trains model '%s' (compiled from %s): loss %s, metric %s.\n",
                m->model_name ? m->model_name : "?", m->source_file ? m->source_file : "?",
                m->loss_name ? m->loss_name : "?", m->metric_name ? m->metric_name : "?");
    fprintf(f, "\nflags:\n");
    for (int k = 0; k < OPT_COUNT; k++) {
        char left[64];
        snprintf(left, sizeof left, "--%s%s%s", options[k].name, options[k].arg ? " " : "",
                 options[k].arg ? options[k].arg : "");
        fprintf(f, "  %-22s %s", left, options[k].help);
        if (m) {
            const snn_train_defaults *d = &m->defaults;
            switch ((opt_id)k) {
            case OPT_DATA: fprintf(f, " [%s]", d->data_dir ? d->data_dir : "none"); break;
            case OPT_EPOCHS: fprintf(f, " [%lld]", (long long)d->epochs); break;
            case OPT_BATCH: fprintf(f, " [%lld]", (long long)d->batch); break;
            case OPT_STEPS: fprintf(f, " [%lld]", (long long)d->steps); break;
            case OPT_LR: fprintf(f, " [%g, %s]", (double)d->lr, snnrt_optim_name(d->optimizer)); break;
            case OPT_SEED: fprintf(f, " [%" PRIu64 "]", d->seed); break;
            default: break;
            }
        }
        fputc('\n', f);
    }
    fprintf(f, "\nexit status: 0 ok, 1 error (data, files, model), 2 bad flag or value, "
               "3 loss became NaN or infinite, 130 interrupted (checkpointed first if --save)\n");
}
