/* test_runtime_cli.c: the trainer's command line (snnrt_cli.c) and its loop (snnrt_train.c),
 * in process.
 *
 * The loop is driven with a tiny model defined here (softmax regression on 2x2 "images",
 * 2 classes, class = whether the first pixel is bright) and a generated gzip IDX data set in
 * a temporary directory, so the test needs neither the compiler nor the real data. The model
 * can be told to return a NaN loss at a given call, to check that training stops with the
 * iteration in the message and keeps the last checkpoint.
 */
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

/* ---------------------------------------------------------------- parsing */

static int parse(snnrt_options *o, snnrt_error *err, ...) {
    char *argv[32] = {"train"};
    int argc = 1;
    va_list ap;
    va_start(ap, err);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    return snnrt_cli_parse(argc, argv, o, err);
}

static void test_parse_all(void) {
    snnrt_options o;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(parse(&o, &err, "--data", "/d", "--epochs", "3", "--batch=64",
                                "--steps", "25", "--lr", "5e-4", "--seed", "18446744073709551615",
                                "--threads", "2", "--max-iters", "30", "--json", "--init-from",
                                "w", "--batch-order", "b.txt", "--loss-log", "l.txt", "--save",
                                "s.ckpt", "--save-every", "10", "--progress", "0", NULL), 0);
    CU_ASSERT_STRING_EQUAL(o.data_dir, "/d");
    CU_ASSERT_EQUAL(o.epochs, 3);
    CU_ASSERT_EQUAL(o.batch, 64);
    CU_ASSERT_EQUAL(o.steps, 25);
    CU_ASSERT(o.has_lr && o.lr == 5e-4);
    CU_ASSERT(o.has_seed && o.seed == UINT64_MAX);
    CU_ASSERT_EQUAL(o.threads, 2);
    CU_ASSERT_EQUAL(o.max_iters, 30);
    CU_ASSERT_EQUAL(o.progress_every, 0);
    CU_ASSERT_EQUAL(o.save_every, 10);
    CU_ASSERT(o.json && !o.eval_only && !o.help);
    CU_ASSERT_STRING_EQUAL(o.init_from, "w");
    CU_ASSERT_STRING_EQUAL(o.batch_order, "b.txt");
    CU_ASSERT_STRING_EQUAL(o.loss_log, "l.txt");
    CU_ASSERT_STRING_EQUAL(o.save, "s.ckpt");
    CU_ASSERT_EQUAL_FATAL(parse(&o, &err, NULL), 0);
    CU_ASSERT(o.epochs == -1 && o.batch == -1 && !o.has_lr && !o.has_seed && !o.data_dir);
    CU_ASSERT_EQUAL(o.progress_every, 50);
    CU_ASSERT_EQUAL_FATAL(parse(&o, &err, "--load", "x", "--eval", NULL), 0);
    CU_ASSERT(o.eval_only && !o.profile);
    CU_ASSERT_EQUAL_FATAL(parse(&o, &err, "--profile", NULL), 0);
    CU_ASSERT(o.profile);
    CU_ASSERT_EQUAL_FATAL(parse(&o, &err, "-h", NULL), 0);
    CU_ASSERT(o.help);
}

static void expect_bad(const char *needle, ...) {
    char *argv[8] = {"train"};
    int argc = 1;
    va_list ap;
    va_start(ap, needle);
    for (char *a; (a = va_arg(ap, char *)) != NULL;) argv[argc++] = a;
    va_end(ap);
    snnrt_options o;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_cli_parse(argc, argv, &o, &err), -1);
    if (!strstr(err.msg, needle)) {
        fprintf(stderr, "\n  message '%s' lacks '%s'\n", err.msg, needle);
        CU_FAIL("message");
    }
}

static void test_parse_errors(void) {
    expect_bad("unknown flag '--epoch'", "--epoch", "3", NULL);
    expect_bad("--epochs: 'abc' is not an integer >= 1", "--epochs", "abc", NULL);
    expect_bad("--epochs: '0'", "--epochs", "0", NULL);
    expect_bad("--batch: '12x'", "--batch", "12x", NULL);
    expect_bad("--batch needs a value", "--batch", NULL);
    expect_bad("--batch: 9999999999999 is too large", "--batch", "9999999999999", NULL);
    expect_bad("--steps: '99999999999999999999' is not an integer", "--steps", "99999999999999999999", NULL);
    expect_bad("--lr: '-1' is not a positive", "--lr", "-1", NULL);
    expect_bad("--lr: 'nan'", "--lr", "nan", NULL);
    expect_bad("--lr: '1e999'", "--lr", "1e999", NULL);
    expect_bad("--seed: '-3'", "--seed", "-3", NULL);
    expect_bad("--threads: '0'", "--threads", "0", NULL);
    expect_bad("--json takes no value", "--json=1", NULL);
    expect_bad("--data: empty value", "--data=", NULL);
    expect_bad("unexpected argument 'model.snn'", "model.snn", NULL);
    expect_bad("--load and --init-from", "--load", "a", "--init-from", "b", NULL);
    expect_bad("--save-every needs --save", "--save-every", "5", NULL);
    expect_bad("--eval only evaluates", "--eval", "--epochs", "2", NULL);
}

static void test_help(void) {
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    snnrt_cli_help(f, "train", NULL);
    fclose(f);
    const char *flags[] = {"--data DIR", "--epochs N", "--batch N", "--steps N", "--lr X",
                           "--seed N", "--threads N", "--max-iters N", "--json", "--init-from DIR",
                           "--batch-order FILE", "--loss-log FILE", "--save FILE", "--load FILE",
                           "--eval", "--log FILE", "--profile", "--help", "exit status"};
    for (size_t i = 0; i < sizeof flags / sizeof *flags; i++)
        CU_ASSERT_PTR_NOT_NULL(strstr(buf, flags[i]));
    free(buf);
}

/* ---------------------------------------------------------------- a tiny model */

static int64_t calls, nan_at = -1, stop_at = -1;
static volatile sig_atomic_t stop_flag;

static int64_t tiny_work(int64_t batch, int64_t steps) {
    (void)steps;
    return batch * 2 * 4;
}

static float tiny_core(const float *const *p, const snn_batch *b, float *prob, float *scores) {
    double loss = 0;
    for (int64_t r = 0; r < b->batch; r++) {
        float z[2];
        for (int c = 0; c < 2; c++) {
            z[c] = p[1][c];
            for (int j = 0; j < 4; j++) z[c] += p[0][c * 4 + j] * b->x[r * 4 + j];
            scores[r * 2 + c] = z[c];
        }
        float mx = fmaxf(z[0], z[1]);
        double s = exp(z[0] - mx) + exp(z[1] - mx);
        for (int c = 0; c < 2; c++) prob[r * 2 + c] = (float)(exp(z[c] - mx) / s);
        loss += log(s) + mx - z[b->labels[r]];
    }
    return (float)(loss / (double)b->batch);
}

static int32_t tiny_fw(const float *const *p, const snn_batch *b, void *work, snn_result *res) {
    res->loss = tiny_core(p, b, work, res->scores);
    return 0;
}

static int32_t tiny_fb(const float *const *p, float *const *g, const snn_batch *b, void *work,
                       snn_result *res) {
    float *prob = work;
    res->loss = tiny_core(p, b, prob, res->scores);
    if (++calls == nan_at) res->loss = NAN;
    if (calls == stop_at) stop_flag = 1; /* as trainer_main's SIGINT handler would */
    if (!isfinite(res->loss)) return 1;
    memset(g[0], 0, 8 * 4);
    memset(g[1], 0, 2 * 4);
    for (int64_t r = 0; r < b->batch; r++)
        for (int c = 0; c < 2; c++) {
            float d = (prob[r * 2 + c] - (b->labels[r] == c)) / (float)b->batch;
            g[1][c] += d;
            for (int j = 0; j < 4; j++) g[0][c * 4 + j] += d * b->x[r * 4 + j];
        }
    return 0;
}

static const snn_param_desc TINY_PARAMS[2] = {
    {"fc.weight", 2, {2, 4}, 8, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 4},
    {"fc.bias", 1, {2}, 2, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 4},
};
static char dir[64];
static snn_model_desc TINY = {
    .abi_version = SNN_ABI_VERSION, .model_name = "tiny", .source_file = "test_runtime_cli.c",
    .n_inputs = 4, .n_classes = 2, .n_params = 2, .params = TINY_PARAMS,
    .defaults = {.data_dir = NULL, .steps = 1, .batch = 8, .epochs = 2, .seed = 0,
                 .optimizer = SNN_OPT_ADAM, .lr = 0.05f, .beta1 = 0.9f, .beta2 = 0.999f,
                 .eps = 1e-8f},
    .loss_name = "ce", .metric_name = "accuracy",
    .work_bytes = tiny_work, .forward_backward = tiny_fb, .forward = tiny_fw};

static void write_idx(const char *name, int images, uint32_t n) {
    char p[128];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    gzFile f = gzopen(p, "wb");
    uint8_t head[16] = {0, 0, 8, (uint8_t)(images ? 3 : 1), 0, 0, (uint8_t)(n >> 8), (uint8_t)n,
                        0, 0, 0, 2, 0, 0, 0, 2};
    gzwrite(f, head, images ? 16 : 8);
    snnrt_rng r;
    snnrt_rng_seed(&r, n, 0);
    for (uint32_t i = 0; i < n; i++) {
        uint8_t px[4];
        for (int j = 0; j < 4; j++) px[j] = (uint8_t)snnrt_rng_below(&r, 256);
        uint8_t label = px[0] > 127;
        if (images) gzwrite(f, px, 4);
        else gzwrite(f, &label, 1);
    }
    gzclose(f);
}

static int suite_init(void) {
    snprintf(dir, sizeof dir, "/tmp/snnrt_cli_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    /* labels are computed from the same generator sequence as the images (seeded by n) */
    write_idx("train-images-idx3-ubyte.gz", 1, 200);
    write_idx("train-labels-idx1-ubyte.gz", 0, 200);
    write_idx("t10k-images-idx3-ubyte.gz", 1, 50);
    write_idx("t10k-labels-idx1-ubyte.gz", 0, 50);
    return 0;
}

static int suite_clean(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

typedef struct {
    int status;
    char *out, *log;
    snnrt_error err;
} run_result;

static run_result run(const char *first, ...) {
    char *argv[32] = {"train", "--data", dir};
    int argc = 3;
    va_list ap;
    va_start(ap, first);
    for (const char *a = first; a; a = va_arg(ap, const char *)) argv[argc++] = (char *)a;
    va_end(ap);
    run_result r = {0};
    snnrt_options o;
    if (snnrt_cli_parse(argc, argv, &o, &r.err) != 0) {
        r.status = SNNRT_EXIT_USAGE;
        return r;
    }
    stop_flag = 0;
    o.stop = &stop_flag;
    size_t n1, n2;
    FILE *out = open_memstream(&r.out, &n1), *log = open_memstream(&r.log, &n2);
    r.status = snnrt_run(&TINY, &o, out, log, &r.err);
    fclose(out);
    fclose(log);
    return r;
}

static void free_run(run_result *r) {
    free(r->out);
    free(r->log);
}

static const char *last_line(const char *s) {
    const char *end = s + strlen(s);
    if (end > s && end[-1] == '\n') end--;
    while (end > s && end[-1] != '\n') end--;
    return end;
}

static double json_field(const char *json, const char *key) {
    char k[64];
    snprintf(k, sizeof k, "\"%s\": ", key);
    const char *p = strstr(json, k);
    return p ? strtod(p + strlen(k), NULL) : NAN;
}

static void test_run_learns(void) {
    calls = 0, nan_at = -1;
    char log[128];
    snprintf(log, sizeof log, "%s/loss.txt", dir);
    run_result r = run("--json", "--loss-log", log, "--progress", "5", NULL);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    const char *j = last_line(r.out);
    CU_ASSERT(j[0] == '{' && strstr(j, "\"status\": \"ok\"") && j[strlen(j) - 2] == '}');
    CU_ASSERT_EQUAL(json_field(j, "iters"), 50); /* 2 epochs x floor(200 / 8) */
    CU_ASSERT_EQUAL(json_field(j, "epochs"), 2);
    CU_ASSERT(json_field(j, "test_accuracy") >= 0.8);
    CU_ASSERT(json_field(j, "last_loss") < json_field(j, "first_loss"));
    CU_ASSERT(json_field(j, "epoch_seconds") >= 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.log, "iter 5/25"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.log, "ETA"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "epoch 2/2: train loss"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.out, "peak RSS"));
    FILE *f = fopen(log, "r");
    int lines = 0;
    for (int c; (c = fgetc(f)) != EOF;) lines += c == '\n';
    fclose(f);
    CU_ASSERT_EQUAL(lines, 50);
    /* same seed, same run; --max-iters caps each epoch */
    run_result r2 = run("--json", "--progress", "0", NULL);
    CU_ASSERT_EQUAL(json_field(last_line(r2.out), "last_loss"), json_field(j, "last_loss"));
    run_result r3 = run("--json", "--max-iters", "3", "--seed", "7", NULL);
    CU_ASSERT_EQUAL(json_field(last_line(r3.out), "iters"), 6);
    CU_ASSERT(json_field(last_line(r3.out), "first_loss") != json_field(j, "first_loss"));
    free_run(&r);
    free_run(&r2);
    free_run(&r3);
}

/* --profile: the table after training, before the JSON line; one block here (the tiny model
 * runs on one thread), so no joint-product lines; every number a mean per iteration that the
 * phases' clocks can have produced. The unit's own arithmetic: test_profile_table. */
static void test_run_profile(void) {
    calls = 0, nan_at = -1;
    run_result r = run("--json", "--profile", "--epochs", "1", "--progress", "0", NULL);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    const char *p = strstr(r.out, "profile: 25 training iterations, 1 row block;");
    CU_ASSERT_PTR_NOT_NULL_FATAL(p);
    CU_ASSERT(last_line(r.out)[0] == '{' && last_line(r.out) > p);
    double it = -1, fb = -1, opt = -1;
    const char *q;
    if ((q = strstr(p, "iteration (wall clock)"))) it = strtod(q + 22, NULL);
    if ((q = strstr(p, "forward_backward"))) fb = strtod(q + 16, NULL);
    if ((q = strstr(p, "optimizer step (with the next batch's gather)"))) opt = strtod(q + 46, NULL);
    CU_ASSERT(it > 0 && fb > 0 && opt > 0 && fb + opt <= it * 1.01 + 0.2);
    CU_ASSERT_PTR_NULL(strstr(p, "joint products"));
    run_result r2 = run("--json", "--epochs", "1", NULL);
    CU_ASSERT_PTR_NULL(strstr(r2.out, "profile:"));
    free_run(&r);
    free_run(&r2);
}

/* The table's arithmetic on made-up phases of two blocks: means per iteration in
 * microseconds, a column per block, the block's own loops as what the joint phases leave. */
static void test_profile_table(void) {
    snnrt_profile_reset();
    snnrt_profile_add(0, SNNRT_PROF_ITER, 4e-3);
    snnrt_profile_add(0, SNNRT_PROF_FB, 3e-3);
    snnrt_profile_add(1, SNNRT_PROF_FB, 3.2e-3);
    snnrt_profile_add(0, SNNRT_PROF_JOINT_TILES, 1e-3);
    snnrt_profile_add(1, SNNRT_PROF_JOINT_TILES, 0.6e-3);
    snnrt_profile_add(1, SNNRT_PROF_JOINT_LISTS, 0.2e-3);
    snnrt_profile_add(0, SNNRT_PROF_JOINT_WAIT, 0.4e-3);
    snnrt_profile_add(0, SNNRT_PROF_OPTIM, 0.8e-3);
    snnrt_profile_add(SNNRT_MAX_SHARDS, SNNRT_PROF_FB, 1.0); /* out of range: ignored */
    CU_ASSERT_DOUBLE_EQUAL(snnrt_profile_get(1, SNNRT_PROF_FB), 3.2e-3, 1e-12);
    char *buf = NULL;
    size_t len = 0;
    FILE *f = open_memstream(&buf, &len);
    snnrt_profile_print(f, 2);
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(buf, "profile: 2 training iterations, 2 row blocks;"));
    const struct { const char *label; double us[2]; int cols; } want[] = {
        {"iteration (wall clock)", {2000}, 1},
        {"forward_backward", {1500, 1600}, 2},
        {"the block's own loops and products", {800, 1200}, 2},
        {"joint products: tiles", {500, 300}, 2},
        {"joint products: kind, masks, groups, lists", {0, 100}, 2},
        {"joint products: waiting for other threads", {200, 0}, 2},
        {"combining the blocks' gradients", {0}, 1},
        {"optimizer step (with the next batch's gather)", {400}, 1}};
    for (size_t i = 0; i < sizeof want / sizeof *want; i++) {
        const char *q = strstr(buf, want[i].label);
        CU_ASSERT_PTR_NOT_NULL_FATAL(q);
        char *end = (char *)q + strlen(want[i].label);
        for (int c = 0; c < want[i].cols; c++) {
            const double v = strtod(end, &end);
            CU_ASSERT_DOUBLE_EQUAL(v, want[i].us[c], 0.05);
        }
        CU_ASSERT_EQUAL(*end, '\n'); /* and no further column */
    }
    free(buf);
    snnrt_profile_reset();
    CU_ASSERT_DOUBLE_EQUAL(snnrt_profile_get(1, SNNRT_PROF_FB), 0.0, 0.0);
}

static void test_run_nan_keeps_checkpoint(void) {
    char ck[128];
    snprintf(ck, sizeof ck, "%s/nan.ckpt", dir);
    calls = 0, nan_at = 7;
    run_result r = run("--save", ck, "--save-every", "2", "--json", NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_NONFINITE);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "NaN at epoch 1, iteration 7"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "after iteration 6"));
    CU_ASSERT_PTR_NOT_NULL(strstr(last_line(r.out), "\"status\": \"nonfinite_loss\""));
    float w[8], b[2];
    float *p[2] = {w, b};
    snnrt_ckpt_meta meta;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_ckpt_load(ck, &TINY, p, NULL, &meta, &err), 0);
    CU_ASSERT_EQUAL(meta.iters_done, 6);
    for (int i = 0; i < 8; i++) CU_ASSERT(isfinite(w[i]));
    free_run(&r);
    nan_at = -1;
}

static void test_run_interrupt_and_log(void) {
    char ck[128], log[128];
    snprintf(ck, sizeof ck, "%s/int.ckpt", dir);
    snprintf(log, sizeof log, "%s/train.log", dir);
    calls = 0, nan_at = -1, stop_at = 9;
    run_result r = run("--save", ck, "--json", "--log", log, "--progress", "4", NULL);
    stop_at = -1;
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_INTERRUPTED);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "interrupted at epoch 1, iteration 9"));
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "int.ckpt saved"));
    CU_ASSERT_PTR_NOT_NULL(strstr(last_line(r.out), "\"status\": \"interrupted\""));
    float w[8], b[2];
    float *p[2] = {w, b};
    snnrt_ckpt_meta meta;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_ckpt_load(ck, &TINY, p, NULL, &meta, &err), 0);
    CU_ASSERT_EQUAL(meta.iters_done, 9);
    CU_ASSERT_EQUAL(meta.epochs_done, 0);
    /* --log got the progress lines, the header and the error */
    FILE *f = fopen(log, "r");
    CU_ASSERT_PTR_NOT_NULL_FATAL(f);
    char text[4096] = "";
    size_t n = fread(text, 1, sizeof text - 1, f);
    text[n] = 0;
    fclose(f);
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "model tiny"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "iter 8/25"));
    CU_ASSERT_PTR_NOT_NULL(strstr(text, "error: interrupted at epoch 1"));
    free_run(&r);
}

static void test_run_save_load_eval(void) {
    char ck[128];
    snprintf(ck, sizeof ck, "%s/good.ckpt", dir);
    calls = 0, nan_at = -1;
    run_result r = run("--save", ck, "--json", "--epochs", "1", NULL);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    run_result e = run("--load", ck, "--eval", "--json", NULL);
    CU_ASSERT_EQUAL_FATAL(e.status, 0);
    CU_ASSERT_EQUAL(json_field(last_line(e.out), "test_accuracy"),
                    json_field(last_line(r.out), "test_accuracy"));
    CU_ASSERT_EQUAL(json_field(last_line(e.out), "test_loss"),
                    json_field(last_line(r.out), "test_loss"));
    /* resuming continues the epoch count and the optimizer */
    run_result c = run("--load", ck, "--epochs", "1", "--json", NULL);
    CU_ASSERT_EQUAL(c.status, 0);
    CU_ASSERT_PTR_NOT_NULL(strstr(c.out, "optimizer state restored"));
    free_run(&r);
    free_run(&e);
    free_run(&c);
}

static void test_run_errors(void) {
    run_result r = run("--batch-order", "/nonexistent/order", NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "/nonexistent/order"));
    free_run(&r);
    char order[128];
    snprintf(order, sizeof order, "%s/order.txt", dir);
    FILE *f = fopen(order, "w");
    fprintf(f, "0 1 2 3\n4 5 6 7\n");
    fclose(f);
    r = run("--batch-order", order, "--batch", "8", NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_USAGE);
    free_run(&r);
    r = run("--batch-order", order, "--json", "--epochs", "1", NULL);
    CU_ASSERT_EQUAL(r.status, 0);
    CU_ASSERT_EQUAL(json_field(last_line(r.out), "iters"), 2);
    CU_ASSERT_EQUAL(json_field(last_line(r.out), "batch"), 4);
    free_run(&r);
    r = run("--save", "/nonexistent/dir/x.ckpt", NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "cannot write in directory /nonexistent/dir"));
    free_run(&r);
    r = run("--batch", "500", NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "fewer than one batch"));
    free_run(&r);
    r = run("--init-from", dir, NULL); /* no fc.weight.f32 there */
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "fc.weight.f32"));
    free_run(&r);
    TINY.abi_version = 999;
    r = run(NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "ABI version 999"));
    TINY.abi_version = SNN_ABI_VERSION;
    free_run(&r);
}

static void test_run_init_from(void) {
    char p[128];
    const float wz[8] = {0}, bz[2] = {0};
    snprintf(p, sizeof p, "%s/fc.weight.f32", dir);
    FILE *f = fopen(p, "wb");
    fwrite(wz, 4, 8, f);
    fclose(f);
    snprintf(p, sizeof p, "%s/fc.bias.f32", dir);
    f = fopen(p, "wb");
    fwrite(bz, 4, 2, f);
    fclose(f);
    run_result r = run("--init-from", dir, "--eval", "--json", NULL);
    CU_ASSERT_EQUAL_FATAL(r.status, 0);
    CU_ASSERT(fabs(json_field(last_line(r.out), "test_loss") - log(2.0)) < 1e-6);
    free_run(&r);
    f = fopen(p, "wb");
    fwrite(bz, 4, 1, f); /* one float short */
    fclose(f);
    r = run("--init-from", dir, "--eval", NULL);
    CU_ASSERT_EQUAL(r.status, SNNRT_EXIT_ERROR);
    CU_ASSERT_PTR_NOT_NULL(strstr(r.err.msg, "has 4 bytes, but parameter fc.bias needs exactly 8"));
    free_run(&r);
}

void test_runtime_cli_register(void) {
    CU_pSuite s = CU_add_suite("runtime_cli", NULL, NULL);
    CU_add_test(s, "parse every flag", test_parse_all);
    CU_add_test(s, "bad flags and values", test_parse_errors);
    CU_add_test(s, "help lists every flag", test_help);
    CU_add_test(s, "--profile's table", test_profile_table);
    CU_pSuite t = CU_add_suite("runtime_train", suite_init, suite_clean);
    CU_add_test(t, "trains, logs, JSON, deterministic", test_run_learns);
    CU_add_test(t, "--profile", test_run_profile);
    CU_add_test(t, "NaN stops and keeps the checkpoint", test_run_nan_keeps_checkpoint);
    CU_add_test(t, "interrupt checkpoints; --log", test_run_interrupt_and_log);
    CU_add_test(t, "save, load, eval, resume", test_run_save_load_eval);
    CU_add_test(t, "run-time errors", test_run_errors);
    CU_add_test(t, "--init-from", test_run_init_from);
}
