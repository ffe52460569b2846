/* test_runtime_ckpt.c: checkpoints (runtime/snnrt_ckpt.c): roundtrip, and every corruption the
 * loader must catch without touching the caller's parameters.
 */
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[64], path[128];

static int suite_init(void) {
    snprintf(dir, sizeof dir, "/tmp/snnrt_ckpt_XXXXXX");
    if (!mkdtemp(dir)) return 1;
    snprintf(path, sizeof path, "%s/model.ckpt", dir);
    return 0;
}

static int suite_clean(void) {
    char cmd[128];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

/* entry points that are never called: the descriptor only has to be complete */
static int64_t wb(int64_t b, int64_t s) { return b * s; }
static int32_t fb(const float *const *p, float *const *g, const snn_batch *b, void *w,
                  snn_result *r) {
    (void)p, (void)g, (void)b, (void)w, (void)r;
    return 0;
}
static int32_t fw(const float *const *p, const snn_batch *b, void *w, snn_result *r) {
    (void)p, (void)b, (void)w, (void)r;
    return 0;
}

static const snn_param_desc PARAMS[2] = {
    {"h.weight", 2, {3, 5}, 15, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 5},
    {"h.beta", 1, {3}, 3, SNN_INIT_CONST, 0.95f, 0},
};
static const snn_model_desc MODEL = {.abi_version = SNN_ABI_VERSION, .model_name = "ckpt_test",
                                     .n_inputs = 5, .n_classes = 3, .n_params = 2,
                                     .params = PARAMS, .work_bytes = wb,
                                     .forward_backward = fb, .forward = fw};

static float w[15], beta[3];
static float *params[2] = {w, beta};
static const int64_t sizes[2] = {15, 3};
static const snnrt_optim_config ADAM = {SNN_OPT_ADAM, 1e-3, 0.9, 0.999, 1e-8, 0.0, 0.0};

/* Writes a checkpoint of a model after two Adam steps; returns the optimizer (caller frees). */
static void save_reference(snnrt_optim *o) {
    snnrt_error err = {{0}};
    for (int i = 0; i < 15; i++) w[i] = 0.1f * (float)i - 0.7f;
    for (int i = 0; i < 3; i++) beta[i] = 0.9f + 0.01f * (float)i;
    CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(o, &ADAM, 2, sizes, &err), 0);
    float gw[15], gb[3];
    for (int i = 0; i < 15; i++) gw[i] = 0.01f * (float)(i % 4) - 0.02f;
    for (int i = 0; i < 3; i++) gb[i] = -0.5f + (float)i;
    const float *grads[2] = {gw, gb};
    snnrt_optim_step(o, params, grads);
    snnrt_optim_step(o, params, grads);
    snnrt_ckpt_meta meta = {3, 1234, 99, 0};
    CU_ASSERT_EQUAL_FATAL(snnrt_ckpt_save(path, &MODEL, (const float *const *)params, o, &meta, &err), 0);
}

static long file_size(const char *p) {
    struct stat st;
    return stat(p, &st) == 0 ? (long)st.st_size : -1;
}

static void test_roundtrip(void) {
    snnrt_optim o, o2;
    snnrt_error err = {{0}};
    save_reference(&o);
    float w2[15] = {0}, b2[3] = {0};
    float *p2[2] = {w2, b2};
    CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(&o2, &ADAM, 2, sizes, &err), 0);
    snnrt_ckpt_meta meta;
    CU_ASSERT_EQUAL_FATAL(snnrt_ckpt_load(path, &MODEL, p2, &o2, &meta, &err), 0);
    CU_ASSERT(memcmp(w, w2, sizeof w) == 0);
    CU_ASSERT(memcmp(beta, b2, sizeof beta) == 0);
    CU_ASSERT_EQUAL(meta.epochs_done, 3);
    CU_ASSERT_EQUAL(meta.iters_done, 1234);
    CU_ASSERT_EQUAL(meta.seed, 99);
    CU_ASSERT_EQUAL(meta.opt_restored, 1);
    CU_ASSERT_EQUAL(o2.step, 2);
    for (int i = 0; i < 2; i++) {
        CU_ASSERT(memcmp(o.m[i], o2.m[i], (size_t)sizes[i] * 4) == 0);
        CU_ASSERT(memcmp(o.v[i], o2.v[i], (size_t)sizes[i] * 4) == 0);
    }
    /* the same next step from both */
    float gw[15] = {0.5f}, gb[3] = {0.25f};
    const float *grads[2] = {gw, gb};
    snnrt_optim_step(&o, params, grads);
    snnrt_optim_step(&o2, p2, grads);
    CU_ASSERT(memcmp(w, w2, sizeof w) == 0);
    /* no temporary left behind */
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CU_ASSERT_EQUAL(file_size(tmp), -1);
    snnrt_optim_free(&o);
    snnrt_optim_free(&o2);
}

static void test_other_optimizer(void) {
    snnrt_optim o, sgd;
    snnrt_error err = {{0}};
    save_reference(&o);
    const snnrt_optim_config cfg = {SNN_OPT_SGD, 0.1, 0, 0, 0, 0, 0.9};
    CU_ASSERT_EQUAL_FATAL(snnrt_optim_init(&sgd, &cfg, 2, sizes, &err), 0);
    float w2[15], b2[3];
    float *p2[2] = {w2, b2};
    snnrt_ckpt_meta meta;
    CU_ASSERT_EQUAL(snnrt_ckpt_load(path, &MODEL, p2, &sgd, &meta, &err), 0);
    CU_ASSERT_EQUAL(meta.opt_restored, 0);
    CU_ASSERT_EQUAL(sgd.step, 0);
    CU_ASSERT(memcmp(w, w2, sizeof w) == 0);
    CU_ASSERT_EQUAL(snnrt_ckpt_load(path, &MODEL, p2, NULL, NULL, &err), 0);
    snnrt_optim_free(&o);
    snnrt_optim_free(&sgd);
}

/* Rewrites the checkpoint through edit(), loads, expects failure mentioning `needle` and the
 * caller's parameters untouched. */
static void expect_corrupt(void (*edit)(uint8_t *b, long *n), const char *needle) {
    snnrt_optim o;
    save_reference(&o);
    snnrt_optim_free(&o);
    static uint8_t b[8192];
    FILE *f = fopen(path, "rb");
    long n = (long)fread(b, 1, sizeof b, f);
    fclose(f);
    edit(b, &n);
    f = fopen(path, "wb");
    fwrite(b, 1, (size_t)n, f);
    fclose(f);
    float w2[15], b2[3];
    for (int i = 0; i < 15; i++) w2[i] = 42.0f;
    float *p2[2] = {w2, b2};
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_ckpt_load(path, &MODEL, p2, NULL, NULL, &err), -1);
    if (!strstr(err.msg, needle) || !strstr(err.msg, path)) {
        fprintf(stderr, "\n  message '%s' lacks '%s' or the path\n", err.msg, needle);
        CU_FAIL("message");
    }
    for (int i = 0; i < 15; i++) CU_ASSERT_EQUAL(w2[i], 42.0f);
}

static void flip_middle(uint8_t *b, long *n) { b[*n / 2] ^= 0x10; }
static void truncate_half(uint8_t *b, long *n) { (void)b, *n /= 2; }
static void truncate_crc(uint8_t *b, long *n) { (void)b, *n -= 2; }
static void append_byte(uint8_t *b, long *n) { b[(*n)++] = 0; }
static void bad_magic(uint8_t *b, long *n) { (void)n, b[0] = 'X'; }
static void bad_version(uint8_t *b, long *n) { (void)n, b[8] = 2; }
static void empty(uint8_t *b, long *n) { (void)b, *n = 0; }

static void test_corrupt_byte(void) { expect_corrupt(flip_middle, "checksum mismatch"); }
static void test_truncated(void) {
    expect_corrupt(truncate_half, "truncated");
    expect_corrupt(truncate_crc, "truncated");
}
static void test_appended(void) { expect_corrupt(append_byte, "corrupt"); }
static void test_magic_version(void) {
    expect_corrupt(bad_magic, "not an snnrt checkpoint");
    expect_corrupt(empty, "not an snnrt checkpoint");
    expect_corrupt(bad_version, "format version 2");
}

static void test_wrong_model(void) {
    snnrt_optim o;
    snnrt_error err = {{0}};
    save_reference(&o);
    snnrt_optim_free(&o);
    snn_param_desc other[2] = {PARAMS[0], PARAMS[1]};
    other[0].shape[0] = 5, other[0].shape[1] = 3; /* same size, other shape */
    snn_model_desc m = MODEL;
    m.params = other;
    m.model_name = "other";
    float w2[15], b2[3];
    float *p2[2] = {w2, b2};
    CU_ASSERT_EQUAL(snnrt_ckpt_load(path, &m, p2, NULL, NULL, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "h.weight [3x5] in the checkpoint, h.weight [5x3] in the model"));
    m.n_params = 1;
    CU_ASSERT_EQUAL(snnrt_ckpt_load(path, &m, p2, NULL, NULL, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "has 2 parameters"));
    CU_ASSERT_EQUAL(snnrt_ckpt_load("/nonexistent/x.ckpt", &MODEL, p2, NULL, NULL, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/x.ckpt"));
}

static void test_failed_save_keeps_previous(void) {
    snnrt_optim o;
    snnrt_error err = {{0}};
    save_reference(&o);
    FILE *f = fopen(path, "rb");
    static uint8_t before[8192], after[8192];
    size_t n1 = fread(before, 1, sizeof before, f);
    fclose(f);
    /* make the temporary file impossible to create: a directory already has its name */
    char tmp[200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    CU_ASSERT_EQUAL_FATAL(mkdir(tmp, 0755), 0);
    w[0] = 1000.0f;
    snnrt_ckpt_meta meta = {4, 2000, 99, 0};
    CU_ASSERT_EQUAL(snnrt_ckpt_save(path, &MODEL, (const float *const *)params, &o, &meta, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "unchanged"));
    rmdir(tmp);
    f = fopen(path, "rb");
    size_t n2 = fread(after, 1, sizeof after, f);
    fclose(f);
    CU_ASSERT(n1 == n2 && memcmp(before, after, n1) == 0);
    snnrt_optim_free(&o);
}

void test_runtime_ckpt_register(void) {
    CU_pSuite s = CU_add_suite("runtime_ckpt", suite_init, suite_clean);
    CU_add_test(s, "roundtrip with Adam state", test_roundtrip);
    CU_add_test(s, "load with another optimizer", test_other_optimizer);
    CU_add_test(s, "flipped byte", test_corrupt_byte);
    CU_add_test(s, "truncated", test_truncated);
    CU_add_test(s, "appended byte", test_appended);
    CU_add_test(s, "magic and version", test_magic_version);
    CU_add_test(s, "wrong model", test_wrong_model);
    CU_add_test(s, "failed save keeps the previous checkpoint", test_failed_save_keeps_previous);
}
