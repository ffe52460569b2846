/* test_runtime_rng.c: random numbers, shuffling, batches and init (snnrt_rng.c, snnrt_batch.c,
 * snnrt_init.c).
 *
 * Philox is checked against Random123's published known-answer vectors (tests/kat_vectors in
 * github.com/DEShawResearch/random123, the three "philox4x32 10" lines). The rest checks the
 * properties the trainer relies on: determinism for a seed, independence of epochs, valid
 * permutations, drop-last batch counts, --batch-order parsing, and the init bounds.
 */
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static void test_philox_kat(void) {
    static const uint32_t kat[3][10] = {
        {0, 0, 0, 0, 0, 0, 0x6627e8d5, 0xe169c58d, 0xbc57ac4c, 0x9b00dbd8},
        {0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0xffffffff, 0x408f276d,
         0x41c83b0e, 0xa20bc7c6, 0x6d5451fd},
        {0x243f6a88, 0x85a308d3, 0x13198a2e, 0x03707344, 0xa4093822, 0x299f31d0, 0xd16cfe09,
         0x94fdcceb, 0x5001e420, 0x24126ea1},
    };
    for (int k = 0; k < 3; k++) {
        uint32_t out[4];
        snnrt_philox4x32_10(kat[k], kat[k] + 4, out);
        for (int i = 0; i < 4; i++) CU_ASSERT_EQUAL(out[i], kat[k][6 + i]);
    }
}

static void test_uniform(void) {
    /* pure function of its arguments, in [0, 1), roughly uniform, sensitive to every argument */
    CU_ASSERT_EQUAL(snnrt_uniform(1, 2, 3, 4), snnrt_uniform(1, 2, 3, 4));
    CU_ASSERT(snnrt_uniform(1, 2, 3, 4) != snnrt_uniform(2, 2, 3, 4));
    CU_ASSERT(snnrt_uniform(1, 2, 3, 4) != snnrt_uniform(1, 3, 3, 4));
    CU_ASSERT(snnrt_uniform(1, 2, 3, 4) != snnrt_uniform(1, 2, 4, 4));
    CU_ASSERT(snnrt_uniform(1, 2, 3, 4) != snnrt_uniform(1, 2, 3, 5));
    CU_ASSERT(snnrt_uniform(1, 1ull << 32, 0, 0) != snnrt_uniform(1, 0, 1, 0));
    double sum = 0.0, sq = 0.0;
    int bins[10] = {0};
    const int n = 200000;
    int outside = 0;
    for (int i = 0; i < n; i++) {
        float u = snnrt_uniform(42, (uint64_t)i % 25, (uint64_t)i / 25, 7);
        if (!(u >= 0.0f && u < 1.0f)) {
            outside++;
            continue;
        }
        sum += u;
        sq += (double)u * u;
        bins[(int)(u * 10)]++;
    }
    CU_ASSERT_EQUAL(outside, 0);
    CU_ASSERT(fabs(sum / n - 0.5) < 0.005);
    CU_ASSERT(fabs(sq / n - 1.0 / 3.0) < 0.005);
    for (int b = 0; b < 10; b++) CU_ASSERT(abs(bins[b] - n / 10) < n / 100);
}

/* The vectorized fill gives the scalar function's values bit for bit, for any n and start,
 * across a carry into the counter's high word, and leaves the rest of the buffer alone. */
static void test_uniform_fill(void) {
    enum { N = 1000 };
    static float got[N + 1];
    const uint64_t starts[5] = {0, 5, 4 * 0xFFFFFFF0ull + 2, (1ull << 40) + 3, UINT64_MAX - 500};
    const int64_t lens[6] = {0, 1, 7, 32, 35, N};
    int mismatches = 0;
    for (int si = 0; si < 5; si++)
        for (int li = 0; li < 6; li++) {
            got[lens[li]] = -1.0f;
            snnrt_uniform_fill(99, 3, 1234567890123ull, starts[si], lens[li], got);
            for (int64_t i = 0; i < lens[li]; i++)
                mismatches += got[i] != snnrt_uniform(99, 3, 1234567890123ull, starts[si] + (uint64_t)i);
            CU_ASSERT_EQUAL(got[lens[li]], -1.0f);
        }
    CU_ASSERT_EQUAL(mismatches, 0);
}

static void test_rng_below(void) {
    snnrt_rng r;
    snnrt_rng_seed(&r, 1, 2);
    int counts[7] = {0};
    int outside = 0;
    for (int i = 0; i < 70000; i++) {
        uint64_t v = snnrt_rng_below(&r, 7);
        if (v < 7) counts[v]++;
        else outside++;
    }
    CU_ASSERT_EQUAL(outside, 0);
    for (int b = 0; b < 7; b++) CU_ASSERT(abs(counts[b] - 10000) < 500);
    CU_ASSERT_EQUAL(snnrt_rng_below(&r, 1), 0);
    snnrt_rng a, b;
    snnrt_rng_seed(&a, 5, 0);
    snnrt_rng_seed(&b, 5, 1);
    CU_ASSERT(snnrt_rng_next(&a) != snnrt_rng_next(&b));
}

static int is_permutation(const int64_t *p, int64_t n) {
    char *seen = calloc((size_t)n, 1);
    int ok = 1;
    for (int64_t i = 0; i < n; i++) {
        if (p[i] < 0 || p[i] >= n || seen[p[i]]) ok = 0;
        else seen[p[i]] = 1;
    }
    free(seen);
    return ok;
}

static void test_shuffle_determinism(void) {
    enum { n = 1000 };
    static int64_t a[n], b[n], c[n], d[n];
    snnrt_epoch_order(0, 0, n, a);
    snnrt_epoch_order(0, 0, n, b);
    snnrt_epoch_order(0, 1, n, c);
    snnrt_epoch_order(1, 0, n, d);
    CU_ASSERT(is_permutation(a, n));
    CU_ASSERT(is_permutation(c, n));
    CU_ASSERT(memcmp(a, b, sizeof a) == 0); /* same seed, same epoch: same order */
    CU_ASSERT(memcmp(a, c, sizeof a) != 0); /* next epoch: new order */
    CU_ASSERT(memcmp(a, d, sizeof a) != 0); /* other seed: new order */
    int fixed = 0;
    for (int i = 0; i < n; i++) fixed += a[i] == i;
    CU_ASSERT(fixed < 10); /* a shuffle, not the identity */
    /* the first element is uniform over positions: check over many seeds */
    int first[4] = {0};
    int64_t p4[4];
    for (uint64_t s = 0; s < 4000; s++) {
        snnrt_epoch_order(s, 0, 4, p4);
        first[p4[0]]++;
    }
    for (int k = 0; k < 4; k++) CU_ASSERT(abs(first[k] - 1000) < 120);
}

static void test_batch_counts_and_seeds(void) {
    CU_ASSERT_EQUAL(snnrt_n_batches(60000, 128, 1), 468);
    CU_ASSERT_EQUAL(snnrt_n_batches(60000, 128, 0), 469);
    CU_ASSERT_EQUAL(snnrt_n_batches(10000, 128, 0), 79);
    CU_ASSERT_EQUAL(snnrt_n_batches(256, 128, 1), 2);
    CU_ASSERT_EQUAL(snnrt_n_batches(256, 128, 0), 2);
    CU_ASSERT_EQUAL(snnrt_n_batches(100, 128, 1), 0);
    CU_ASSERT_EQUAL(snnrt_n_batches(100, 128, 0), 1);
    CU_ASSERT_EQUAL(snnrt_batch_seed(0, 0, 0, 0), snnrt_batch_seed(0, 0, 0, 0));
    CU_ASSERT(snnrt_batch_seed(0, 0, 0, 0) != snnrt_batch_seed(0, 0, 1, 0));
    CU_ASSERT(snnrt_batch_seed(0, 0, 0, 0) != snnrt_batch_seed(0, 1, 0, 0));
    CU_ASSERT(snnrt_batch_seed(0, 0, 0, 0) != snnrt_batch_seed(0, 0, 0, 1));
    CU_ASSERT(snnrt_batch_seed(0, 0, 0, 0) != snnrt_batch_seed(1, 0, 0, 0));
}

static char *write_tmp(const char *text) {
    static char path[64];
    snprintf(path, sizeof path, "/tmp/snnrt_order_XXXXXX");
    int fd = mkstemp(path);
    if (fd < 0) return NULL;
    ssize_t w = write(fd, text, strlen(text));
    close(fd);
    return w == (ssize_t)strlen(text) ? path : NULL;
}

static void test_batch_order_file(void) {
    snnrt_batch_order o;
    snnrt_error err = {{0}};
    char *p = write_tmp("# two batches\n3 1 4\n\n  1 5 9  \n");
    CU_ASSERT_EQUAL_FATAL(snnrt_batch_order_read(p, 10, &o, &err), 0);
    CU_ASSERT_EQUAL(o.n_batches, 2);
    CU_ASSERT_EQUAL(o.batch, 3);
    CU_ASSERT_EQUAL(o.idx[0], 3);
    CU_ASSERT_EQUAL(o.idx[5], 9);
    snnrt_batch_order_free(&o);
    unlink(p);

    p = write_tmp("1 2 3\n4 5\n");
    CU_ASSERT_EQUAL(snnrt_batch_order_read(p, 10, &o, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, ":2: 2 indices"));
    unlink(p);
    p = write_tmp("1 2 10\n");
    CU_ASSERT_EQUAL(snnrt_batch_order_read(p, 10, &o, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "index 10 is out of range"));
    unlink(p);
    p = write_tmp("1 x2 3\n");
    CU_ASSERT_EQUAL(snnrt_batch_order_read(p, 10, &o, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "'x2' is not an example index"));
    unlink(p);
    p = write_tmp("\n# nothing\n");
    CU_ASSERT_EQUAL(snnrt_batch_order_read(p, 10, &o, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "no batches"));
    unlink(p);
    CU_ASSERT_EQUAL(snnrt_batch_order_read("/nonexistent/order.txt", 10, &o, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/order.txt"));
}

static void test_init(void) {
    const snn_param_desc w = {"h.weight", 2, {100, 784}, 78400, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 784};
    const snn_param_desc beta = {"h.beta", 1, {100}, 100, SNN_INIT_CONST, 0.95f, 0};
    float *a = malloc(78400 * 4), *b = malloc(78400 * 4), c[100];
    snnrt_error err = {{0}};
    snnrt_torch_gen g, g2;
    snnrt_torch_seed(&g, 0);
    snnrt_torch_seed(&g2, 0);
    CU_ASSERT_EQUAL(snnrt_param_init(&w, &g, a, &err), 0);
    CU_ASSERT_EQUAL(snnrt_param_init(&w, &g2, b, &err), 0);
    CU_ASSERT(memcmp(a, b, 78400 * 4) == 0);
    CU_ASSERT_EQUAL(snnrt_param_init(&w, &g, b, &err), 0); /* the generator moved on */
    CU_ASSERT(memcmp(a, b, 78400 * 4) != 0);
    const float bound = (float)(1.0 / sqrt(784.0)); /* 1/28 */
    float lo = 1, hi = -1;
    double mean = 0, var = 0;
    for (int i = 0; i < 78400; i++) {
        lo = fminf(lo, a[i]);
        hi = fmaxf(hi, a[i]);
        mean += a[i];
        var += (double)a[i] * a[i];
    }
    mean /= 78400;
    var = var / 78400 - mean * mean;
    CU_ASSERT(lo >= -bound && hi < bound);
    CU_ASSERT(lo < -0.99f * bound && hi > 0.99f * bound);
    CU_ASSERT(fabs(mean) < 2e-4);
    CU_ASSERT(fabs(var - (double)bound * bound / 3.0) < 0.02 * bound * bound / 3.0);
    const uint32_t next = snnrt_torch_random(&g2);
    CU_ASSERT_EQUAL(snnrt_param_init(&beta, &g, c, &err), 0);
    for (int i = 0; i < 100; i++) CU_ASSERT_EQUAL(c[i], 0.95f);
    snnrt_torch_seed(&g, 0);
    CU_ASSERT_EQUAL(snnrt_param_init(&w, &g, b, &err), 0);
    CU_ASSERT_EQUAL(snnrt_param_init(&beta, &g, c, &err), 0);
    CU_ASSERT_EQUAL(snnrt_torch_random(&g), next); /* a constant draws nothing */
    free(a);
    free(b);
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

static void test_model_check(void) {
    snn_param_desc ps[2] = {
        {"a.weight", 2, {3, 4}, 12, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 4},
        {"a.bias", 1, {3}, 3, SNN_INIT_UNIFORM_FAN_IN, 0.0f, 4},
    };
    snn_model_desc m = {.abi_version = SNN_ABI_VERSION, .model_name = "t", .n_inputs = 4,
                        .n_classes = 3, .n_params = 2, .params = ps, .work_bytes = wb,
                        .forward_backward = fb, .forward = fw};
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_model_check(&m, &err), 0);
    m.abi_version = SNN_ABI_VERSION + 1;
    CU_ASSERT_EQUAL(snnrt_model_check(&m, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "ABI version"));
    m.abi_version = SNN_ABI_VERSION;
    ps[1].size = 4;
    CU_ASSERT_EQUAL(snnrt_model_check(&m, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "a.bias"));
    ps[1].size = 3;
    ps[1].name = "a.weight";
    CU_ASSERT_EQUAL(snnrt_model_check(&m, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "two parameters named a.weight"));
    ps[1].name = "a.bias";
    m.forward = NULL;
    CU_ASSERT_EQUAL(snnrt_model_check(&m, &err), -1);
}

void test_runtime_rng_register(void) {
    CU_pSuite s = CU_add_suite("runtime_rng", NULL, NULL);
    CU_add_test(s, "Philox4x32-10 known answers", test_philox_kat);
    CU_add_test(s, "snnrt_uniform", test_uniform);
    CU_add_test(s, "snnrt_uniform_fill = snnrt_uniform", test_uniform_fill);
    CU_add_test(s, "bounded draws", test_rng_below);
    CU_add_test(s, "shuffling determinism", test_shuffle_determinism);
    CU_add_test(s, "batch counts and seeds", test_batch_counts_and_seeds);
    CU_add_test(s, "--batch-order files", test_batch_order_file);
    CU_add_test(s, "nn.Linear and const init", test_init);
    CU_add_test(s, "model descriptor checks", test_model_check);
}
