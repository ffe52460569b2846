/* snnrt_data.c: MNIST-format datasets from IDX files, plain or gzip-compressed.
 *
 * IDX (LeCun's format for MNIST, also used by Fashion-MNIST, KMNIST, EMNIST): four magic bytes
 * 00 00 <type> <ndim>, then ndim big-endian uint32 sizes, then the elements in row-major
 * order. Image files are [count, rows, cols] unsigned bytes, label files [count].
 *
 * Every file goes through zlib's gzread, which reads gzip and plain files alike (it sniffs the
 * content), so `train-images-idx3-ubyte` and `train-images-idx3-ubyte.gz` take one code path
 * and the same loader serves Debian's dataset-fashion-mnist (only .gz files in
 * /usr/share/datasets/fashion-mnist) and MNIST as Yann LeCun's site ships it or unpacked.
 *
 * Errors are the point of most of this file. A data problem found late (a NaN after an hour,
 * an image of the wrong size read as garbage) costs far more than one found at load, so the
 * loader checks everything it can and says which file: missing, unreadable, not IDX, wrong
 * element type, truncated (plain or gzip), corrupt gzip (bad CRC included: the stream is read
 * to its end), bytes after the announced data, image/label count mismatch, image size against
 * the model's n_inputs, labels against n_classes.
 *
 * Images stay as bytes (47 MB for Fashion-MNIST's training set, not 188 MB of floats) and are
 * converted to pixel / 255.0f per batch, the same float32 division torchvision's ToTensor does.
 */
#include "snnrt_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define IDX_MAX_BYTES ((int64_t)1 << 36) /* 64 GiB: more is a corrupt header, not a dataset */

/* Reads up to n bytes; *got is how many arrived. Returns 0, or -1 on a zlib error (message in
 * err: truncated gzip stream or corrupt data, naming path). */
static int read_bytes(gzFile f, const char *path, void *buf, int64_t n, int64_t *got,
                      snnrt_error *err) {
    *got = 0;
    while (*got < n) {
        int64_t want = n - *got;
        if (want > (1 << 30)) want = 1 << 30;
        int r = gzread(f, (char *)buf + *got, (unsigned)want);
        if (r < 0) {
            int errnum = 0;
            const char *msg = gzerror(f, &errnum);
            if (errnum == Z_BUF_ERROR)
                return snnrt_fail(err, "%s: truncated gzip stream (%s)", path, msg);
            if (errnum == Z_ERRNO)
                return snnrt_fail(err, "%s: read error: %s", path, strerror(errno));
            return snnrt_fail(err, "%s: corrupt gzip data (zlib: %s)", path, msg);
        }
        if (r == 0) {
            /* gzread reports a stream cut short inside a gzip member as EOF with Z_BUF_ERROR */
            int errnum = 0;
            const char *msg = gzerror(f, &errnum);
            if (errnum == Z_BUF_ERROR)
                return snnrt_fail(err, "%s: truncated gzip stream (%s)", path, msg);
            break;
        }
        *got += r;
    }
    return 0;
}

int snnrt_idx_read(const char *path, snnrt_idx *out, snnrt_error *err) {
    memset(out, 0, sizeof *out);
    int fd = open(path, O_RDONLY);
    if (fd < 0) return snnrt_fail(err, "cannot open %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return snnrt_fail(err, "%s is not a regular file", path);
    }
    gzFile f = gzdopen(fd, "rb");
    if (!f) {
        close(fd);
        return snnrt_fail(err, "cannot read %s: out of memory", path);
    }
    gzbuffer(f, 1 << 18);

    uint8_t head[4];
    int64_t got = 0;
    int rc = -1;
    if (read_bytes(f, path, head, 4, &got, err) != 0) goto done;
    if (got == 0) {
        snnrt_fail(err, "%s: empty file (expected an IDX header)", path);
        goto done;
    }
    if (got < 4) {
        snnrt_fail(err, "%s: truncated: %lld bytes, too short for an IDX header", path,
                   (long long)got);
        goto done;
    }
    if (head[0] != 0 || head[1] != 0) {
        snnrt_fail(err,
                   "%s: not an IDX file (wrong magic: starts with %02x %02x %02x %02x, "
                   "expected 00 00 08 <ndim>)",
                   path, head[0], head[1], head[2], head[3]);
        goto done;
    }
    if (head[2] != 0x08) {
        snnrt_fail(err,
                   "%s: unsupported IDX element type 0x%02x (only unsigned bytes, 0x08, are "
                   "supported)",
                   path, head[2]);
        goto done;
    }
    if (head[3] < 1 || head[3] > 4) {
        snnrt_fail(err, "%s: IDX header gives %d dimensions (1 to 4 are supported)", path,
                   head[3]);
        goto done;
    }
    out->ndim = head[3];
    uint8_t dims[16];
    if (read_bytes(f, path, dims, 4 * out->ndim, &got, err) != 0) goto done;
    if (got < 4 * out->ndim) {
        snnrt_fail(err, "%s: truncated: IDX header announces %d dimensions but the file ends",
                   path, out->ndim);
        goto done;
    }
    int64_t count = 1;
    for (int i = 0; i < out->ndim; i++) {
        const uint8_t *d = dims + 4 * i;
        out->dims[i] = ((int64_t)d[0] << 24) | ((int64_t)d[1] << 16) | ((int64_t)d[2] << 8) | d[3];
        count *= out->dims[i];
        if (count > IDX_MAX_BYTES) {
            snnrt_fail(err, "%s: IDX header announces an implausible size (corrupt header?)",
                       path);
            goto done;
        }
    }
    out->count = count;
    const int64_t header = 4 + 4 * (int64_t)out->ndim;
    if (gzdirect(f) && (int64_t)st.st_size < header + count) {
        /* a plain file: its size already tells whether the data is all there */
        snnrt_fail(err, "%s: truncated: the header announces %lld data bytes, the file has %lld",
                   path, (long long)count, (long long)(st.st_size - header));
        goto done;
    }
    /* Grow the buffer as data arrives (gzip: the size is only known by reading), so a corrupt
     * header announcing gigabytes costs an error message, not gigabytes. */
    int64_t cap = count < ((int64_t)1 << 26) ? count : ((int64_t)1 << 26);
    got = 0;
    out->data = malloc((size_t)(cap > 0 ? cap : 1));
    while (out->data) {
        int64_t more;
        if (read_bytes(f, path, out->data + got, cap - got, &more, err) != 0) goto done;
        got += more;
        if (got < cap || cap == count) break;
        cap = cap * 2 < count ? cap * 2 : count;
        uint8_t *grown = realloc(out->data, (size_t)cap);
        if (!grown) break;
        out->data = grown;
    }
    if (!out->data || (got == cap && cap < count)) {
        snnrt_fail(err, "%s: out of memory reading %lld bytes", path, (long long)count);
        goto done;
    }
    if (got < count) {
        snnrt_fail(err,
                   "%s: truncated: the header announces %lld data bytes, the file has %lld",
                   path, (long long)count, (long long)got);
        goto done;
    }
    /* Read past the end: catches trailing bytes and, for gzip, makes zlib check the CRC. */
    uint8_t extra[64];
    if (read_bytes(f, path, extra, sizeof extra, &got, err) != 0) goto done;
    if (got > 0) {
        snnrt_fail(err,
                   "%s: unexpected bytes after the %lld data bytes the header announces (wrong "
                   "dimensions in the header?)",
                   path, (long long)count);
        goto done;
    }
    rc = 0;
done:
    gzclose(f);
    if (rc != 0) snnrt_idx_free(out);
    return rc;
}

void snnrt_idx_free(snnrt_idx *idx) {
    snnrt_free(idx->data);
    memset(idx, 0, sizeof *idx);
}

static int is_file(const char *path) {
    struct stat st;
    return stat(path, &st) == 0 && S_ISREG(st.st_mode);
}

int snnrt_idx_find(const char *dir, const char *base, char *path, size_t cap, snnrt_error *err) {
    struct stat st;
    if (stat(dir, &st) != 0)
        return snnrt_fail(err, "data directory %s: %s", dir, strerror(errno));
    if (!S_ISDIR(st.st_mode)) return snnrt_fail(err, "data directory %s is not a directory", dir);

    char dotted[256];
    snprintf(dotted, sizeof dotted, "%s", base);
    char *dash = strstr(dotted, "-idx");
    if (dash) *dash = '.';
    const char *names[2] = {base, dotted};
    const char *suffixes[2] = {"", ".gz"};
    for (int n = 0; n < (dash ? 2 : 1); n++)
        for (int s = 0; s < 2; s++) {
            int len = snprintf(path, cap, "%s/%s%s", dir, names[n], suffixes[s]);
            if (len < 0 || (size_t)len >= cap)
                return snnrt_fail(err, "data directory path too long: %s", dir);
            if (is_file(path)) return 0;
        }
    if (dash)
        return snnrt_fail(err, "%s: no %s or %s.gz (nor %s[.gz]) in this data directory", dir,
                          base, base, dotted);
    return snnrt_fail(err, "%s: no %s or %s.gz in this data directory", dir, base, base);
}

int snnrt_split_load(const char *dir, const char *prefix, int64_t n_inputs, int64_t n_classes,
                     snnrt_split *out, snnrt_error *err) {
    memset(out, 0, sizeof *out);
    char base[128];
    snnrt_idx images = {0}, labels = {0};

    snprintf(base, sizeof base, "%s-images-idx3-ubyte", prefix);
    if (snnrt_idx_find(dir, base, out->images_path, sizeof out->images_path, err) != 0)
        return -1;
    snprintf(base, sizeof base, "%s-labels-idx1-ubyte", prefix);
    if (snnrt_idx_find(dir, base, out->labels_path, sizeof out->labels_path, err) != 0)
        return -1;

    if (snnrt_idx_read(out->images_path, &images, err) != 0) goto fail;
    if (images.ndim != 3) {
        snnrt_fail(err, "%s: an images file must have 3 dimensions (count, rows, cols), this has %d",
                   out->images_path, images.ndim);
        goto fail;
    }
    if (images.dims[1] * images.dims[2] != n_inputs) {
        snnrt_fail(err, "%s: images are %lldx%lld = %lld values, but the model expects n_inputs = %lld",
                   out->images_path, (long long)images.dims[1], (long long)images.dims[2],
                   (long long)(images.dims[1] * images.dims[2]), (long long)n_inputs);
        goto fail;
    }
    if (snnrt_idx_read(out->labels_path, &labels, err) != 0) goto fail;
    if (labels.ndim != 1) {
        snnrt_fail(err, "%s: a labels file must have 1 dimension, this has %d", out->labels_path,
                   labels.ndim);
        goto fail;
    }
    if (labels.dims[0] != images.dims[0]) {
        snnrt_fail(err, "image/label count mismatch: %s has %lld images but %s has %lld labels",
                   out->images_path, (long long)images.dims[0], out->labels_path,
                   (long long)labels.dims[0]);
        goto fail;
    }
    for (int64_t i = 0; i < labels.count; i++)
        if (labels.data[i] >= n_classes) {
            snnrt_fail(err, "%s: label %d of example %lld is >= n_classes = %lld",
                       out->labels_path, labels.data[i], (long long)i, (long long)n_classes);
            goto fail;
        }
    out->n = images.dims[0];
    out->rows = (int32_t)images.dims[1];
    out->cols = (int32_t)images.dims[2];
    out->dim = images.dims[1] * images.dims[2];
    out->pixels = images.data;
    out->labels = labels.data;
    return 0;
fail:
    snnrt_idx_free(&images);
    snnrt_idx_free(&labels);
    return -1;
}

void snnrt_split_free(snnrt_split *s) {
    snnrt_free(s->pixels);
    snnrt_free(s->labels);
    memset(s, 0, sizeof *s);
}

/* Rows of a window whose lines are requested before the window before it is converted. */
enum { GATHER_WINDOW = 32 };

/* Always inlined: as a call, GCC 12 finds (IPA mod-ref) that it changes no memory and deletes
 * it, prefetches and all. */
static inline __attribute__((always_inline)) void gather_prefetch(const snnrt_split *s,
                                                                  const int64_t *idx, int64_t r0,
                                                                  int64_t r1) {
    for (int64_t r = r0; r < r1; r++) {
        const char *px = (const char *)(s->pixels + idx[r] * s->dim);
        for (int64_t o = 0; o < s->dim; o += 64) __builtin_prefetch(px + o);
        __builtin_prefetch(px + s->dim - 1);
        __builtin_prefetch(s->labels + idx[r]);
    }
}

/* A batch's rows are scattered over the data set (47 MB for Fashion-MNIST's training images)
 * and come from memory. Converted one after another, a row's lines arrive a few at a time: 128
 * rows took 93-102 us (bench/RESULTS.md, "Tenth session"). Requesting the lines of the next
 * window of rows before converting this one keeps many of them in flight: 29-31 us. */
void snnrt_gather(const snnrt_split *s, const int64_t *idx, int64_t n, float *x, int32_t *labels) {
    const int64_t dim = s->dim;
    gather_prefetch(s, idx, 0, n < GATHER_WINDOW ? n : GATHER_WINDOW);
    for (int64_t w0 = 0; w0 < n; w0 += GATHER_WINDOW) {
        const int64_t w1 = w0 + GATHER_WINDOW < n ? w0 + GATHER_WINDOW : n;
        gather_prefetch(s, idx, w1, w1 + GATHER_WINDOW < n ? w1 + GATHER_WINDOW : n);
        for (int64_t r = w0; r < w1; r++) {
            const uint8_t *restrict px = s->pixels + idx[r] * dim;
            float *restrict xr = x + r * dim;
            for (int64_t j = 0; j < dim; j++) xr[j] = (float)px[j] / 255.0f;
            labels[r] = s->labels[idx[r]];
        }
    }
}
