/* snnrt.h: the seam between code that snnc generates and the runtime library (libsnnrt.a).
 *
 * The compiler generates the mathematics; the runtime owns the outer loop. A generated object
 * exports exactly one symbol, `snn_model` (an snn_model_desc), and the runtime's trainer main
 * (runtime/trainer_main.c) finds it at link time, parses the command line, loads data, allocates
 * parameters, gradients and the work buffer, calls the entry points, steps the optimizer and
 * reports. A test harness can link the same object with its own main and call the entry points
 * directly (tests/e2e/gradcheck.c does).
 *
 * The struct is versioned: a runtime refuses a model whose abi_version differs from its own.
 * All tensors are dense float32, row-major, in the shapes the descriptor gives. Weight matrices
 * are [out, in] like torch.nn.Linear.weight.
 */
#ifndef SNNRT_H
#define SNNRT_H

#include <stdint.h>

#define SNN_ABI_VERSION 4   /* 2: snn_batch.row0; 3: snnrt_sgemm_bias; 4: snnrt_transpose */
#define SNN_MAX_RANK 4

/* How the runtime initialises a parameter before training (unless --init-from overrides). */
typedef enum {
    SNN_INIT_CONST,        /* every element = init_value (e.g. a learnable beta) */
    SNN_INIT_UNIFORM_FAN_IN /* uniform(-1/sqrt(fan_in), 1/sqrt(fan_in)), as torch.nn.Linear does
                              for both weight and bias */
} snn_init_kind;

typedef struct {
    const char *name;               /* "h.weight", "h.bias", "h.beta": layer name, then role */
    int32_t rank;
    int64_t shape[SNN_MAX_RANK];
    int64_t size;                   /* product of shape */
    int32_t init;                   /* snn_init_kind */
    float init_value;               /* SNN_INIT_CONST */
    int64_t fan_in;                 /* SNN_INIT_UNIFORM_FAN_IN */
} snn_param_desc;

typedef enum { SNN_OPT_ADAM, SNN_OPT_ADAMW, SNN_OPT_SGD } snn_optimizer_kind;

/* The `train` block's settings; every one can be overridden on the trainer's command line. */
typedef struct {
    const char *data_dir;           /* directory of IDX files (train-images-idx3-ubyte[.gz], ...) */
    int64_t steps, batch, epochs;
    uint64_t seed;
    int32_t optimizer;              /* snn_optimizer_kind */
    float lr, beta1, beta2, eps, weight_decay, momentum;
} snn_train_defaults;

/* One batch as the entry points see it. */
typedef struct {
    int64_t batch;                  /* rows in x and labels */
    int64_t steps;                  /* time steps T */
    const float *x;                 /* [batch, n_inputs], pixel / 255 */
    const int32_t *labels;          /* [batch], 0 <= label < n_classes */
    uint64_t seed;                  /* key of the counter-based generator for stochastic encoders;
                                       the runtime derives it from --seed, epoch and iteration */
    int64_t row0;                   /* index of row 0 in the whole batch when this is a block of
                                       its rows (snnrt_shard.c), else 0: stochastic encoders key
                                       their draws by row0 + row, so a block draws what the same
                                       rows draw unsplit */
} snn_batch;

/* What a forward pass reports. */
typedef struct {
    float loss;                     /* the `loss` of the train block for this batch */
    float *scores;                  /* caller-owned [batch, n_classes]: the metric's per-class score
                                       (spike counts for rate_accuracy); prediction = argmax,
                                       ties to the lowest class index */
} snn_result;

typedef struct snn_model_desc {
    int32_t abi_version;            /* SNN_ABI_VERSION */
    const char *model_name;
    const char *source_file;        /* the .snn it was compiled from */
    int64_t n_inputs;               /* features per example (784) */
    int64_t n_classes;              /* width of the output layer (10) */
    int32_t n_params;
    const snn_param_desc *params;
    snn_train_defaults defaults;
    const char *loss_name;          /* "ce_membrane", for the log */
    const char *metric_name;        /* "rate_accuracy" */

    /* Bytes of scratch memory forward_backward/forward need for this batch size and step count
     * (the tape for BPTT included). The caller allocates it 64-byte aligned; contents on entry
     * are irrelevant. */
    int64_t (*work_bytes)(int64_t batch, int64_t steps);

    /* Forward over all steps, then backward through time. Writes (overwrites, not adds) the
     * gradient of the loss w.r.t. every parameter into grads[i] (same shape as params[i]) and
     * fills res->loss and res->scores. Returns 0, or non-zero if the loss is not finite.
     * The loss is the mean over the batch's rows of a per-row term, and no row's result
     * depends on another row: the runtime relies on this to run blocks of rows on threads
     * and combine them by row-weighted sums (snnrt_shard.c). */
    int32_t (*forward_backward)(const float *const *params, float *const *grads,
                                const snn_batch *batch, void *work, snn_result *res);

    /* Forward only (evaluation): fills res->loss and res->scores. */
    int32_t (*forward)(const float *const *params, const snn_batch *batch, void *work,
                       snn_result *res);
} snn_model_desc;

/* Defined by the generated object. */
extern const snn_model_desc snn_model;

/* ---- Runtime services the generated code calls (defined in libsnnrt.a) ---- */

/* C[m,n] = alpha * op(A)[m,k] * op(B)[k,n] + beta * C, row-major, op = transpose if trans_x != 0.
 * Thin wrapper over cblas_sgemm so generated code does not depend on a BLAS header. */
void snnrt_sgemm(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k, float alpha,
                 const float *a, int64_t lda, const float *b, int64_t ldb, float beta, float *c,
                 int64_t ldc);

/* C[m,n] = alpha * op(A) * op(B) + bias, bias[j] added to column j of every row: a linear
 * layer with its bias. The same bits as filling C's rows with the bias and calling snnrt_sgemm
 * with beta 1, but C is never read: with two threads half of each thread's rows of the input
 * layer's product are written by the other, and reading them first moved every line between
 * the cores twice. Added in ABI version 3. */
void snnrt_sgemm_bias(int32_t trans_a, int32_t trans_b, int64_t m, int64_t n, int64_t k,
                      float alpha, const float *a, int64_t lda, const float *b, int64_t ldb,
                      const float *bias, float *c, int64_t ldc);

/* dst[j * ldd + i] = src[i * lds + j] for 0 <= i < rows, 0 <= j < cols: a [rows, cols] matrix
 * written transposed (the other elements of dst untouched). For loops that keep a layer's rows
 * in their vector lanes (codegen's rows-in-lanes kernel reads the input layer's output as
 * [N, B]). Added in ABI version 4. */
void snnrt_transpose(const float *src, int64_t rows, int64_t cols, int64_t lds, float *dst,
                     int64_t ldd);

/* Counter-based uniform random number in [0, 1) for (key, a, b, c): stateless, so every encoder
 * draw is reproducible whatever the order of evaluation (Philox-style mixing). */
float snnrt_uniform(uint64_t key, uint64_t a, uint64_t b, uint64_t c);

/* out[i] = snnrt_uniform(key, a, b, c0 + i) for 0 <= i < n, bit for bit, several times faster
 * (vectorized): for an encoder that draws a whole row of (step a, example b) at once.
 * Added in ABI version 1 (compatible: a new function, nothing changed). */
void snnrt_uniform_fill(uint64_t key, uint64_t a, uint64_t b, uint64_t c0, int64_t n,
                        float *out);

#endif
