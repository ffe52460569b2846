/* snnrt_ckpt.c: checkpoints that survive crashes and refuse to load into the wrong model.
 *
 * Format (version 1, all integers little-endian):
 *
 *     "SNNRTCKP"                      8-byte magic
 *     u32 version                     1
 *     u32 flags                       0 (reserved)
 *     u64 total_bytes                 the whole file, CRC included
 *     str model_name                  str = u32 length, then bytes (no terminator)
 *     i64 epochs_done, i64 iters_done, u64 seed
 *     i32 optimizer kind, i32 state tensors per parameter (0, 1, 2), i64 optimizer step
 *     u32 n_params
 *     n_params x { str name, u32 rank, i64 shape[rank], i64 size, f32 data[size] }
 *     n_params x n_state x f32[size]  optimizer state (Adam: exp_avg then exp_avg_sq)
 *     u32 crc32                       zlib's CRC-32 of every byte before it
 *
 * Loading checks in an order that gives the most useful message: magic (not a checkpoint),
 * version, total_bytes against the file's size (truncated, or bytes appended), the CRC
 * (corrupt), then the structure and every parameter's name, rank and shape against the
 * model. Nothing is copied into the caller's tensors until all of that has passed, so a
 * failed load leaves the model as it was.
 *
 * Saving writes the whole image to `<path>.tmp.<pid>`, fsyncs it, renames it over `<path>` and
 * fsyncs the directory: at every moment `<path>` is either the previous complete checkpoint
 * or the new one, so a crash, a full disk or a NaN that stops training never costs the last
 * good checkpoint.
 */
#define _GNU_SOURCE
#include "snnrt_lib.h"

#include <errno.h>
#include <fcntl.h>
#include <libgen.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <zlib.h>

#define CKPT_MAGIC "SNNRTCKP"
#define CKPT_VERSION 1u

/* ---- a growable little-endian byte buffer */

typedef struct {
    uint8_t *p;
    size_t len, cap;
    int oom;
} wbuf;

static void put(wbuf *b, const void *src, size_t n) {
    if (b->oom) return;
    if (b->len + n > b->cap) {
        size_t cap = b->cap ? b->cap : 4096;
        while (cap < b->len + n) cap *= 2;
        uint8_t *q = realloc(b->p, cap);
        if (!q) {
            b->oom = 1;
            return;
        }
        b->p = q;
        b->cap = cap;
    }
    memcpy(b->p + b->len, src, n);
    b->len += n;
}

static void put_u32(wbuf *b, uint32_t v) {
    uint8_t x[4] = {(uint8_t)v, (uint8_t)(v >> 8), (uint8_t)(v >> 16), (uint8_t)(v >> 24)};
    put(b, x, 4);
}
static void put_u64(wbuf *b, uint64_t v) {
    put_u32(b, (uint32_t)v);
    put_u32(b, (uint32_t)(v >> 32));
}
static void put_str(wbuf *b, const char *s) {
    size_t n = s ? strlen(s) : 0;
    put_u32(b, (uint32_t)n);
    put(b, s ? s : "", n);
}
static void put_f32s(wbuf *b, const float *x, int64_t n) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    put(b, x, (size_t)n * 4);
#else
    for (int64_t i = 0; i < n; i++) {
        uint32_t u;
        memcpy(&u, &x[i], 4);
        put_u32(b, u);
    }
#endif
}

/* ---- a bounds-checked reader */

typedef struct {
    const uint8_t *p;
    size_t len, at;
    int bad;
} rbuf;

static const uint8_t *take(rbuf *r, size_t n) {
    if (r->bad || n > r->len - r->at) {
        r->bad = 1;
        return NULL;
    }
    const uint8_t *q = r->p + r->at;
    r->at += n;
    return q;
}
static uint32_t get_u32(rbuf *r) {
    const uint8_t *q = take(r, 4);
    return q ? (uint32_t)q[0] | (uint32_t)q[1] << 8 | (uint32_t)q[2] << 16 | (uint32_t)q[3] << 24
             : 0;
}
static uint64_t get_u64(rbuf *r) {
    uint64_t lo = get_u32(r);
    return lo | (uint64_t)get_u32(r) << 32;
}
/* Returns a pointer to the string's bytes (not terminated) and its length. */
static const char *get_str(rbuf *r, uint32_t *n) {
    *n = get_u32(r);
    return (const char *)take(r, *n);
}
static void copy_f32s(float *dst, const uint8_t *src, int64_t n) {
#if __BYTE_ORDER__ == __ORDER_LITTLE_ENDIAN__
    memcpy(dst, src, (size_t)n * 4);
#else
    for (int64_t i = 0; i < n; i++) {
        uint32_t u = (uint32_t)src[4 * i] | (uint32_t)src[4 * i + 1] << 8 |
                     (uint32_t)src[4 * i + 2] << 16 | (uint32_t)src[4 * i + 3] << 24;
        memcpy(&dst[i], &u, 4);
    }
#endif
}

static uint32_t crc_of(const uint8_t *p, size_t n) {
    uLong crc = crc32(0L, Z_NULL, 0);
    while (n > 0) {
        uInt chunk = n > (1u << 30) ? (1u << 30) : (uInt)n;
        crc = crc32(crc, p, chunk);
        p += chunk;
        n -= chunk;
    }
    return (uint32_t)crc;
}

static int write_all(int fd, const uint8_t *p, size_t n) {
    while (n > 0) {
        ssize_t w = write(fd, p, n);
        if (w < 0) {
            if (errno == EINTR) continue;
            return -1;
        }
        p += w;
        n -= (size_t)w;
    }
    return 0;
}

int snnrt_ckpt_save(const char *path, const snn_model_desc *m, const float *const *params,
                    const snnrt_optim *opt, const snnrt_ckpt_meta *meta, snnrt_error *err) {
    wbuf b = {0};
    const int32_t n_state = opt ? snnrt_optim_n_state(&opt->cfg) : 0;
    put(&b, CKPT_MAGIC, 8);
    put_u32(&b, CKPT_VERSION);
    put_u32(&b, 0);
    put_u64(&b, 0); /* total_bytes, patched below */
    put_str(&b, m->model_name);
    put_u64(&b, (uint64_t)meta->epochs_done);
    put_u64(&b, (uint64_t)meta->iters_done);
    put_u64(&b, meta->seed);
    put_u32(&b, (uint32_t)(opt ? opt->cfg.kind : -1));
    put_u32(&b, (uint32_t)n_state);
    put_u64(&b, (uint64_t)(opt ? opt->step : 0));
    put_u32(&b, (uint32_t)m->n_params);
    for (int32_t i = 0; i < m->n_params; i++) {
        const snn_param_desc *p = &m->params[i];
        put_str(&b, p->name);
        put_u32(&b, (uint32_t)p->rank);
        for (int32_t d = 0; d < p->rank; d++) put_u64(&b, (uint64_t)p->shape[d]);
        put_u64(&b, (uint64_t)p->size);
        put_f32s(&b, params[i], p->size);
    }
    for (int32_t i = 0; i < m->n_params; i++) {
        if (n_state >= 1) put_f32s(&b, opt->m[i], m->params[i].size);
        if (n_state >= 2) put_f32s(&b, opt->v[i], m->params[i].size);
    }
    if (b.oom) {
        free(b.p);
        return snnrt_fail(err, "checkpoint %s: out of memory", path);
    }
    const uint64_t total = b.len + 4;
    for (int k = 0; k < 8; k++) b.p[16 + k] = (uint8_t)(total >> (8 * k));
    put_u32(&b, crc_of(b.p, b.len));
    if (b.oom) {
        free(b.p);
        return snnrt_fail(err, "checkpoint %s: out of memory", path);
    }

    char tmp[4200];
    snprintf(tmp, sizeof tmp, "%s.tmp.%ld", path, (long)getpid());
    int fd = open(tmp, O_WRONLY | O_CREAT | O_TRUNC, 0644);
    if (fd < 0) {
        free(b.p);
        return snnrt_fail(err, "cannot write checkpoint %s: %s (%s, if any, is unchanged)", tmp,
                          strerror(errno), path);
    }
    int bad = write_all(fd, b.p, b.len) != 0 || fsync(fd) != 0;
    int saved_errno = errno;
    bad |= close(fd) != 0;
    free(b.p);
    if (bad || rename(tmp, path) != 0) {
        if (!bad) saved_errno = errno;
        unlink(tmp);
        return snnrt_fail(err, "cannot write checkpoint %s: %s (the previous one, if any, is "
                          "unchanged)", path, strerror(saved_errno));
    }
    /* Make the rename itself durable. */
    char dir[4200];
    snprintf(dir, sizeof dir, "%s", path);
    int dfd = open(dirname(dir), O_RDONLY | O_DIRECTORY);
    if (dfd >= 0) {
        fsync(dfd);
        close(dfd);
    }
    return 0;
}

int snnrt_ckpt_load(const char *path, const snn_model_desc *m, float *const *params,
                    snnrt_optim *opt, snnrt_ckpt_meta *meta, snnrt_error *err) {
    int fd = open(path, O_RDONLY);
    if (fd < 0) return snnrt_fail(err, "cannot open checkpoint %s: %s", path, strerror(errno));
    struct stat st;
    if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode)) {
        close(fd);
        return snnrt_fail(err, "checkpoint %s is not a regular file", path);
    }
    size_t len = (size_t)st.st_size;
    uint8_t *data = malloc(len ? len : 1);
    if (!data) {
        close(fd);
        return snnrt_fail(err, "checkpoint %s: out of memory", path);
    }
    size_t got = 0;
    while (got < len) {
        ssize_t r = read(fd, data + got, len - got);
        if (r < 0 && errno == EINTR) continue;
        if (r <= 0) break;
        got += (size_t)r;
    }
    close(fd);
    int rc = -1;
    if (got != len) {
        snnrt_fail(err, "checkpoint %s: read error", path);
        goto done;
    }
    if (len < 24 || memcmp(data, CKPT_MAGIC, 8) != 0) {
        snnrt_fail(err, "%s is not an snnrt checkpoint (wrong magic)", path);
        goto done;
    }
    rbuf r = {data, len, 8, 0};
    uint32_t version = get_u32(&r);
    (void)get_u32(&r); /* flags */
    uint64_t total = get_u64(&r);
    if (version != CKPT_VERSION) {
        snnrt_fail(err, "checkpoint %s has format version %u; this runtime reads version %u",
                   path, version, CKPT_VERSION);
        goto done;
    }
    if (total > len) {
        snnrt_fail(err, "checkpoint %s is truncated (%zu of %llu bytes)", path, len,
                   (unsigned long long)total);
        goto done;
    }
    if (total < len || total < 28) {
        snnrt_fail(err, "checkpoint %s is corrupt (%zu bytes, header says %llu)", path, len,
                   (unsigned long long)total);
        goto done;
    }
    const uint32_t stored = (uint32_t)data[len - 4] | (uint32_t)data[len - 3] << 8 |
                            (uint32_t)data[len - 2] << 16 | (uint32_t)data[len - 1] << 24;
    if (crc_of(data, len - 4) != stored) {
        snnrt_fail(err, "checkpoint %s is corrupt (checksum mismatch)", path);
        goto done;
    }
    r.len = len - 4; /* the structure must end where the CRC starts */

    uint32_t name_len;
    const char *name = get_str(&r, &name_len);
    snnrt_ckpt_meta mt = {0};
    mt.epochs_done = (int64_t)get_u64(&r);
    mt.iters_done = (int64_t)get_u64(&r);
    mt.seed = get_u64(&r);
    int32_t kind = (int32_t)get_u32(&r);
    int32_t n_state = (int32_t)get_u32(&r);
    int64_t opt_step = (int64_t)get_u64(&r);
    uint32_t n_params = get_u32(&r);
    if (r.bad || n_state < 0 || n_state > 2) goto malformed;
    const char *mname = m->model_name ? m->model_name : "";
    if (n_params != (uint32_t)m->n_params) {
        snnrt_fail(err, "checkpoint %s (model %.*s) has %u parameters; model %s has %d", path,
                   (int)name_len, name, n_params, mname, m->n_params);
        goto done;
    }
    const uint8_t **pdata = calloc(n_params ? n_params : 1, sizeof *pdata);
    if (!pdata) {
        snnrt_fail(err, "checkpoint %s: out of memory", path);
        goto done;
    }
    for (uint32_t i = 0; i < n_params; i++) {
        const snn_param_desc *p = &m->params[i];
        uint32_t pl;
        const char *pn = get_str(&r, &pl);
        uint32_t rank = get_u32(&r);
        if (r.bad || rank > SNN_MAX_RANK) {
            free(pdata);
            goto malformed;
        }
        int64_t shape[SNN_MAX_RANK];
        for (uint32_t d = 0; d < rank; d++) shape[d] = (int64_t)get_u64(&r);
        int64_t size = (int64_t)get_u64(&r);
        if (r.bad) {
            free(pdata);
            goto malformed;
        }
        int same = pl == strlen(p->name) && memcmp(pn, p->name, pl) == 0 &&
                   (int32_t)rank == p->rank && size == p->size;
        for (uint32_t d = 0; same && d < rank; d++) same = shape[d] == p->shape[d];
        if (!same) {
            char have[128] = "", want[128] = "";
            for (uint32_t d = 0; d < rank; d++)
                snprintf(have + strlen(have), sizeof have - strlen(have), "%s%lld", d ? "x" : "",
                         (long long)shape[d]);
            for (int32_t d = 0; d < p->rank; d++)
                snprintf(want + strlen(want), sizeof want - strlen(want), "%s%lld", d ? "x" : "",
                         (long long)p->shape[d]);
            snnrt_fail(err, "checkpoint %s does not fit model %s: parameter %u is %.*s [%s] in "
                       "the checkpoint, %s [%s] in the model", path, mname, i, (int)pl, pn, have,
                       p->name, want);
            free(pdata);
            goto done;
        }
        if (size < 0 || (uint64_t)size > (r.len - r.at) / 4 ||
            !(pdata[i] = take(&r, (size_t)size * 4))) {
            free(pdata);
            goto malformed;
        }
    }
    /* Optimizer state follows; restore it only into an optimizer of the same kind. */
    const uint8_t *state_at = r.p + r.at;
    size_t state_bytes = 0;
    for (uint32_t i = 0; i < n_params; i++) state_bytes += (size_t)m->params[i].size * 4 * n_state;
    if (!take(&r, state_bytes) || r.at != r.len) {
        free(pdata);
        goto malformed;
    }
    for (uint32_t i = 0; i < n_params; i++) copy_f32s(params[i], pdata[i], m->params[i].size);
    free(pdata);
    if (opt && kind == opt->cfg.kind && n_state == snnrt_optim_n_state(&opt->cfg) &&
        opt->n == m->n_params) {
        for (uint32_t i = 0; i < n_params; i++) {
            const int64_t sz = m->params[i].size;
            if (n_state >= 1) copy_f32s(opt->m[i], state_at, sz), state_at += sz * 4;
            if (n_state >= 2) copy_f32s(opt->v[i], state_at, sz), state_at += sz * 4;
        }
        opt->step = opt_step;
        mt.opt_restored = 1;
    }
    if (meta) *meta = mt;
    rc = 0;
    goto done;
malformed:
    snnrt_fail(err, "checkpoint %s is corrupt (malformed structure)", path);
done:
    free(data);
    return rc;
}
