/* snnrt_metrics.c: turning per-class scores into predictions and counts.
 *
 * Rate-decoded accuracy predicts the class with the most output spikes. Spike counts are small
 * integers, so ties are common (a third of the test images after one epoch of Tutorial 5), and
 * how they are broken moves accuracy by whole percentage points: like torch.max / argmax, the
 * lowest class index wins. A strict '>' scan does exactly that. NaN scores never win (a NaN
 * compares false), except that an all-NaN row predicts class 0, as the scan starts there.
 */
#include "snnrt_lib.h"

int64_t snnrt_argmax(const float *x, int64_t n) {
    int64_t best = 0;
    for (int64_t i = 1; i < n; i++)
        if (x[i] > x[best] || (x[best] != x[best] && x[i] == x[i])) best = i;
    return best;
}

int64_t snnrt_count_correct(const float *scores, const int32_t *labels, int64_t batch,
                            int64_t n_classes) {
    int64_t correct = 0;
    for (int64_t r = 0; r < batch; r++)
        correct += snnrt_argmax(scores + r * n_classes, n_classes) == labels[r];
    return correct;
}
