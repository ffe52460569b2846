/* test_runtime_data.c: IDX loading (runtime/snnrt_data.c) on small files made here.
 *
 * Every case writes its files into a fresh temporary directory: a valid 5-image 2x3 set
 * (plain and gzip), then each way a file can be wrong, checking both that loading fails and
 * that the message names the file and says what is wrong.
 */
#include "snnrt_lib.h"

#include <CUnit/CUnit.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>
#include <zlib.h>

static char dir[256];

static int suite_init(void) {
    snprintf(dir, sizeof dir, "/tmp/snnrt_data_XXXXXX");
    return mkdtemp(dir) ? 0 : 1;
}

static int suite_clean(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf '%s'", dir);
    return system(cmd) == 0 ? 0 : 1;
}

static const char *path_of(const char *name) {
    static char p[512];
    snprintf(p, sizeof p, "%s/%s", dir, name);
    return p;
}

/* Writes bytes to dir/name, gzip-compressed if gz. */
static void write_file(const char *name, const uint8_t *b, size_t n, int gz) {
    const char *p = path_of(name);
    if (gz) {
        gzFile f = gzopen(p, "wb");
        gzwrite(f, b, (unsigned)n);
        gzclose(f);
    } else {
        FILE *f = fopen(p, "wb");
        fwrite(b, 1, n, f);
        fclose(f);
    }
}

static void remove_all(void) {
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -f '%s'/*", dir);
    CU_ASSERT(system(cmd) == 0);
}

/* An images file: n images of rows x cols, pixel (i, j) = (7*i + j) mod 256. */
static size_t make_images(uint8_t *b, uint32_t n, uint32_t rows, uint32_t cols) {
    uint8_t head[16] = {0, 0, 8, 3};
    uint32_t dims[3] = {n, rows, cols};
    for (int d = 0; d < 3; d++)
        for (int k = 0; k < 4; k++) head[4 + 4 * d + k] = (uint8_t)(dims[d] >> (24 - 8 * k));
    memcpy(b, head, 16);
    for (uint32_t i = 0; i < n; i++)
        for (uint32_t j = 0; j < rows * cols; j++) b[16 + i * rows * cols + j] = (uint8_t)(7 * i + j);
    return 16 + (size_t)n * rows * cols;
}

static size_t make_labels(uint8_t *b, uint32_t n, const uint8_t *labels) {
    uint8_t head[8] = {0, 0, 8, 1, (uint8_t)(n >> 24), (uint8_t)(n >> 16), (uint8_t)(n >> 8), (uint8_t)n};
    memcpy(b, head, 8);
    memcpy(b + 8, labels, n);
    return 8 + n;
}

static const uint8_t five_labels[5] = {0, 3, 1, 2, 3};

/* Writes a valid set: train has 5 images of 2x3, labels 0..3. */
static void make_valid_set(int gz) {
    uint8_t b[256];
    remove_all();
    size_t n = make_images(b, 5, 2, 3);
    write_file(gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte", b, n, gz);
    n = make_labels(b, 5, five_labels);
    write_file(gz ? "train-labels-idx1-ubyte.gz" : "train-labels-idx1-ubyte", b, n, gz);
}

static void check_valid_split(const snnrt_split *s) {
    CU_ASSERT_EQUAL(s->n, 5);
    CU_ASSERT_EQUAL(s->rows, 2);
    CU_ASSERT_EQUAL(s->cols, 3);
    CU_ASSERT_EQUAL(s->dim, 6);
    CU_ASSERT_EQUAL(s->pixels[4 * 6 + 5], (uint8_t)(28 + 5));
    CU_ASSERT_EQUAL(s->labels[1], 3);
}

static void test_load_plain(void) {
    make_valid_set(0);
    snnrt_split s;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(snnrt_split_load(dir, "train", 6, 4, &s, &err), 0);
    check_valid_split(&s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.images_path, "train-images-idx3-ubyte"));
    snnrt_split_free(&s);
}

static void test_load_gz(void) {
    make_valid_set(1);
    snnrt_split s;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(snnrt_split_load(dir, "train", 6, 4, &s, &err), 0);
    check_valid_split(&s);
    CU_ASSERT_PTR_NOT_NULL(strstr(s.images_path, ".gz"));
    snnrt_split_free(&s);
}

static void test_dotted_names(void) {
    uint8_t b[256];
    remove_all();
    size_t n = make_images(b, 5, 2, 3);
    write_file("train-images.idx3-ubyte", b, n, 0);
    n = make_labels(b, 5, five_labels);
    write_file("train-labels.idx1-ubyte.gz", b, n, 1);
    snnrt_split s;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(snnrt_split_load(dir, "train", 6, 4, &s, &err), 0);
    check_valid_split(&s);
    snnrt_split_free(&s);
}

static void test_gather(void) {
    make_valid_set(1);
    snnrt_split s;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(snnrt_split_load(dir, "train", 6, 4, &s, &err), 0);
    int64_t idx[2] = {4, 1};
    float x[12];
    int32_t labels[2];
    snnrt_gather(&s, idx, 2, x, labels);
    CU_ASSERT_EQUAL(labels[0], 3);
    CU_ASSERT_EQUAL(labels[1], 3);
    CU_ASSERT_EQUAL(x[0], 28.0f / 255.0f);
    CU_ASSERT_EQUAL(x[6 + 2], 9.0f / 255.0f);
    snnrt_split_free(&s);
    /* the extremes: 0 -> 0, 255 -> exactly 1 */
    uint8_t px[2] = {0, 255}, lb[1] = {0};
    snnrt_split t = {.n = 1, .dim = 2, .pixels = px, .labels = lb};
    int64_t zero = 0;
    snnrt_gather(&t, &zero, 1, x, labels);
    CU_ASSERT_EQUAL(x[0], 0.0f);
    CU_ASSERT_EQUAL(x[1], 1.0f);
}

/* More rows than one prefetch window (snnrt_gather works in windows of 32): 77 rows, the last
 * window partial, rows of 37 pixels (not whole lines), rows repeated and out of order. */
static void test_gather_windows(void) {
    enum { N = 100, DIM = 37, ROWS = 77 };
    static uint8_t px[N * DIM], lb[N];
    for (int i = 0; i < N * DIM; i++) px[i] = (uint8_t)(i * 7 + i / DIM);
    for (int i = 0; i < N; i++) lb[i] = (uint8_t)(i % 10);
    snnrt_split t = {.n = N, .dim = DIM, .pixels = px, .labels = lb};
    int64_t idx[ROWS];
    for (int r = 0; r < ROWS; r++) idx[r] = (r * 37 + 11) % N;
    idx[40] = idx[3];
    static float x[ROWS * DIM];
    int32_t labels[ROWS];
    snnrt_gather(&t, idx, ROWS, x, labels);
    int bad = 0;
    for (int r = 0; r < ROWS; r++) {
        bad += labels[r] != lb[idx[r]];
        for (int j = 0; j < DIM; j++) bad += x[r * DIM + j] != (float)px[idx[r] * DIM + j] / 255.0f;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

/* Loads and expects failure with every `needles` substring in the message. */
static void expect_fail(int64_t n_inputs, int64_t n_classes, const char *n1, const char *n2) {
    snnrt_split s;
    snnrt_error err = {{0}};
    int rc = snnrt_split_load(dir, "train", n_inputs, n_classes, &s, &err);
    CU_ASSERT_EQUAL(rc, -1);
    if (rc == 0) snnrt_split_free(&s);
    if (n1 && !strstr(err.msg, n1)) {
        fprintf(stderr, "\n  message '%s' lacks '%s'\n", err.msg, n1);
        CU_FAIL("message");
    }
    if (n2 && !strstr(err.msg, n2)) {
        fprintf(stderr, "\n  message '%s' lacks '%s'\n", err.msg, n2);
        CU_FAIL("message");
    }
}

static void test_missing(void) {
    remove_all();
    expect_fail(6, 4, "train-images-idx3-ubyte", dir);
    snnrt_split s;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL(snnrt_split_load("/nonexistent/snnrt", "train", 6, 4, &s, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "/nonexistent/snnrt"));
    /* images there, labels missing */
    uint8_t b[256];
    write_file("train-images-idx3-ubyte", b, make_images(b, 5, 2, 3), 0);
    expect_fail(6, 4, "train-labels-idx1-ubyte", NULL);
}

static void test_wrong_magic(void) {
    uint8_t b[256];
    make_valid_set(0);
    size_t n = make_images(b, 5, 2, 3);
    b[0] = 0x1f;
    write_file("train-images-idx3-ubyte", b, n, 0);
    expect_fail(6, 4, "train-images-idx3-ubyte", "magic");
    n = make_images(b, 5, 2, 3);
    b[2] = 0x0D; /* float data */
    write_file("train-images-idx3-ubyte", b, n, 0);
    expect_fail(6, 4, "train-images-idx3-ubyte", "element type 0x0d");
    /* labels file given where images are expected: dimension count is wrong */
    n = make_labels(b, 5, five_labels);
    write_file("train-images-idx3-ubyte", b, n, 0);
    expect_fail(6, 4, "train-images-idx3-ubyte", "3 dimensions");
}

static void test_empty_and_short_header(void) {
    uint8_t b[256] = {0};
    make_valid_set(0);
    write_file("train-images-idx3-ubyte", b, 0, 0);
    expect_fail(6, 4, "train-images-idx3-ubyte", "empty");
    b[2] = 8;
    b[3] = 3;
    write_file("train-images-idx3-ubyte", b, 10, 0); /* header needs 16 */
    expect_fail(6, 4, "train-images-idx3-ubyte", "truncated");
}

static void test_truncated_plain(void) {
    uint8_t b[256];
    make_valid_set(0);
    size_t n = make_images(b, 5, 2, 3);
    write_file("train-images-idx3-ubyte", b, n - 7, 0);
    expect_fail(6, 4, "train-images-idx3-ubyte", "truncated");
}

static void test_truncated_gz(void) {
    /* a gzip stream of random-ish bytes cut in the middle */
    static uint8_t big[20016 + 64];
    uint8_t b[256];
    size_t n = make_images(big, 500, 4, 10);
    for (size_t i = 16; i < n; i++) big[i] = (uint8_t)(i * 2654435761u >> 13);
    make_valid_set(1);
    write_file("train-images-idx3-ubyte.gz", big, n, 1);
    FILE *f = fopen(path_of("train-images-idx3-ubyte.gz"), "rb");
    static uint8_t gz[40000];
    size_t gn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    CU_ASSERT(gn > 1000);
    write_file("train-images-idx3-ubyte.gz", gz, gn / 2, 0);
    expect_fail(40, 4, "train-images-idx3-ubyte.gz", "truncated");
    /* cut just before the 8-byte gzip trailer: all data there, CRC missing */
    write_file("train-images-idx3-ubyte.gz", gz, gn - 6, 0);
    expect_fail(40, 4, "train-images-idx3-ubyte.gz", "truncated");
    (void)b;
}

/* A header announcing 1 GiB of images in a tiny gzip file: an error about truncation, found by
 * reading, without allocating the 1 GiB first. */
static void test_huge_header(void) {
    uint8_t b[64] = {0, 0, 8, 3, 0, 0, 0x40, 0, 0, 0, 1, 0, 0, 0, 1, 0}; /* 16384 x 256 x 256 */
    make_valid_set(1);
    write_file("train-images-idx3-ubyte.gz", b, 40, 1);
    expect_fail(65536, 4, "train-images-idx3-ubyte.gz", "truncated");
    write_file("train-images-idx3-ubyte", b, 40, 0); /* plain: caught from the file size */
    expect_fail(65536, 4, "train-images-idx3-ubyte: truncated", "1073741824 data bytes");
}

static void test_corrupt_gz(void) {
    uint8_t b[256];
    make_valid_set(1);
    FILE *f = fopen(path_of("train-labels-idx1-ubyte.gz"), "rb");
    uint8_t gz[512];
    size_t gn = fread(gz, 1, sizeof gz, f);
    fclose(f);
    gz[gn - 8] ^= 0xff; /* the CRC-32 in the trailer */
    write_file("train-labels-idx1-ubyte.gz", gz, gn, 0);
    expect_fail(6, 4, "train-labels-idx1-ubyte.gz", "corrupt");
    (void)b;
}

static void test_trailing_bytes(void) {
    uint8_t b[256];
    make_valid_set(0);
    size_t n = make_labels(b, 5, five_labels);
    b[n] = 9;
    write_file("train-labels-idx1-ubyte", b, n + 1, 0);
    expect_fail(6, 4, "train-labels-idx1-ubyte", "unexpected bytes");
}

static void test_count_mismatch(void) {
    uint8_t b[256];
    make_valid_set(1);
    size_t n = make_labels(b, 4, five_labels);
    write_file("train-labels-idx1-ubyte.gz", b, n, 1);
    expect_fail(6, 4, "5 images", "4 labels");
}

static void test_label_range(void) {
    make_valid_set(0);
    expect_fail(6, 3, "train-labels-idx1-ubyte", "label 3 of example 1 is >= n_classes = 3");
}

static void test_image_size(void) {
    make_valid_set(0);
    expect_fail(784, 10, "2x3 = 6 values", "n_inputs = 784");
}

static void test_idx_generic(void) {
    uint8_t b[64] = {0, 0, 8, 2, 0, 0, 0, 2, 0, 0, 0, 3, 1, 2, 3, 4, 5, 6};
    remove_all();
    write_file("m.idx", b, 18, 1);
    snnrt_idx idx;
    snnrt_error err = {{0}};
    CU_ASSERT_EQUAL_FATAL(snnrt_idx_read(path_of("m.idx"), &idx, &err), 0);
    CU_ASSERT_EQUAL(idx.ndim, 2);
    CU_ASSERT_EQUAL(idx.dims[0], 2);
    CU_ASSERT_EQUAL(idx.dims[1], 3);
    CU_ASSERT_EQUAL(idx.count, 6);
    CU_ASSERT_EQUAL(idx.data[5], 6);
    snnrt_idx_free(&idx);
    b[3] = 7; /* 7 dimensions */
    write_file("m.idx", b, 18, 0);
    CU_ASSERT_EQUAL(snnrt_idx_read(path_of("m.idx"), &idx, &err), -1);
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "7 dimensions"));
    CU_ASSERT_EQUAL(snnrt_idx_read(dir, &idx, &err), -1); /* a directory */
    CU_ASSERT_PTR_NOT_NULL(strstr(err.msg, "not a regular file"));
}

void test_runtime_data_register(void) {
    CU_pSuite s = CU_add_suite("runtime_data", suite_init, suite_clean);
    CU_add_test(s, "plain IDX", test_load_plain);
    CU_add_test(s, "gzip IDX", test_load_gz);
    CU_add_test(s, "dotted MNIST names", test_dotted_names);
    CU_add_test(s, "gather pixel/255", test_gather);
    CU_add_test(s, "gather in prefetch windows", test_gather_windows);
    CU_add_test(s, "missing files", test_missing);
    CU_add_test(s, "wrong magic / type / rank", test_wrong_magic);
    CU_add_test(s, "empty / short header", test_empty_and_short_header);
    CU_add_test(s, "truncated plain", test_truncated_plain);
    CU_add_test(s, "truncated gzip", test_truncated_gz);
    CU_add_test(s, "corrupt gzip CRC", test_corrupt_gz);
    CU_add_test(s, "huge header, tiny file", test_huge_header);
    CU_add_test(s, "trailing bytes", test_trailing_bytes);
    CU_add_test(s, "image/label count mismatch", test_count_mismatch);
    CU_add_test(s, "label >= n_classes", test_label_range);
    CU_add_test(s, "image size != n_inputs", test_image_size);
    CU_add_test(s, "generic IDX, bad rank, directory", test_idx_generic);
}
