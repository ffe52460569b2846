/* test_runtime_pool.c: the runtime's worker threads (runtime/snnrt_pool.c).
 *
 * Every task of a fork runs exactly once with its own k and the fork's n, on the caller for
 * k = 0; a fork from inside a task runs inline; many forks in a row (the trainer makes three
 * per iteration) lose no task and see every write of the previous fork. Affine units
 * (snnrt_units): one task takes its own range front to back, then the others' from their backs;
 * several tasks at once (more than there are CPUs, too) take every unit exactly once. Which
 * task gets which unit then depends on the scheduler and is not checked.
 */
#include <CUnit/CUnit.h>
#include <stdatomic.h>
#include <stdint.h>

#include "snnrt_lib.h"

typedef struct {
    atomic_int runs[8];
    int32_t seen_n[8];
    int inside[8];
} count_job;

static void count_task(void *ctx, int32_t k, int32_t n) {
    count_job *j = ctx;
    atomic_fetch_add(&j->runs[k], 1);
    j->seen_n[k] = n;
    j->inside[k] = snnrt_pool_inside();
}

static void test_pool_every_task_once(void) {
    for (int32_t n = 1; n <= 8; n++) {
        count_job j = {0};
        snnrt_pool_run(n, count_task, &j);
        for (int32_t k = 0; k < 8; k++) {
            CU_ASSERT_EQUAL(atomic_load(&j.runs[k]), k < n ? 1 : 0);
            if (k < n) CU_ASSERT_EQUAL(j.seen_n[k], n);
            if (k < n && n > 1) CU_ASSERT_TRUE(j.inside[k]);
        }
        CU_ASSERT_FALSE(snnrt_pool_inside());
    }
}

typedef struct {
    count_job inner[4];
} nest_job;

static void nest_task(void *ctx, int32_t k, int32_t n) {
    nest_job *j = ctx;
    (void)n;
    snnrt_pool_run(3, count_task, &j->inner[k]);   /* inline: all three on this thread */
}

static void test_pool_nested_inline(void) {
    nest_job j = {0};
    snnrt_pool_run(4, nest_task, &j);
    for (int k = 0; k < 4; k++)
        for (int i = 0; i < 3; i++) CU_ASSERT_EQUAL(atomic_load(&j.inner[k].runs[i]), 1);
}

typedef struct {
    int64_t *data;
    int64_t len, round;
} sum_job;

/* task k adds round + k to its slice; the caller checks every element after every fork */
static void slice_task(void *ctx, int32_t k, int32_t n) {
    sum_job *j = ctx;
    for (int64_t i = j->len * k / n; i < j->len * (k + 1) / n; i++) j->data[i] += j->round + k;
}

static void test_pool_many_forks(void) {
    enum { LEN = 1000, ROUNDS = 20000 };
    int64_t data[LEN] = {0}, expect[LEN] = {0};
    sum_job j = {data, LEN, 0};
    int bad = 0;
    for (int64_t r = 0; r < ROUNDS; r++) {
        const int32_t n = (int32_t)(1 + r % 3);
        j.round = r;
        snnrt_pool_run(n, slice_task, &j);
        for (int32_t k = 0; k < n; k++)
            for (int64_t i = LEN * k / n; i < LEN * (k + 1) / n; i++) expect[i] += r + k;
        for (int64_t i = 0; i < LEN; i++) bad += data[i] != expect[i];
        if (bad) break;
    }
    CU_ASSERT_EQUAL(bad, 0);
}

static void test_units_one_task(void) {
    snnrt_units u;
    snnrt_units_init(&u, 10, 3); /* ranges [0, 3), [3, 6), [6, 10) */
    const int64_t want[] = {3, 4, 5, 9, 8, 7, 6, 2, 1, 0, -1, -1};
    for (int i = 0; i < 12; i++) CU_ASSERT_EQUAL(snnrt_units_next(&u, 1), want[i]);
    snnrt_units_init(&u, 0, 2);
    CU_ASSERT_EQUAL(snnrt_units_next(&u, 0), -1);
    snnrt_units_init(&u, 5, 2);
    CU_ASSERT_EQUAL(snnrt_units_next(&u, 3), 2); /* task 3 of 2 ranges shares range 1 */
}

enum { UNITS = 100000 };

typedef struct {
    snnrt_units u;
    atomic_int taken[UNITS];
} units_job;

static void units_task(void *ctx, int32_t k, int32_t n) {
    units_job *j = ctx;
    (void)n;
    for (int64_t v; (v = snnrt_units_next(&j->u, k)) >= 0;) atomic_fetch_add(&j->taken[v], 1);
}

static void test_units_threads(void) {
    static units_job j;
    for (int32_t n = 2; n <= 4; n++) {
        for (int64_t i = 0; i < UNITS; i++) atomic_store(&j.taken[i], 0);
        snnrt_units_init(&j.u, UNITS, n);
        snnrt_pool_run(n, units_task, &j);
        int bad = 0;
        for (int64_t i = 0; i < UNITS; i++) bad += atomic_load(&j.taken[i]) != 1;
        CU_ASSERT_EQUAL(bad, 0);
    }
}

void test_runtime_pool_register(void) {
    CU_pSuite s = CU_add_suite("runtime_pool", NULL, NULL);
    CU_add_test(s, "every task runs once, with its k and n", test_pool_every_task_once);
    CU_add_test(s, "a fork inside a task runs inline", test_pool_nested_inline);
    CU_add_test(s, "20000 forks in a row lose nothing", test_pool_many_forks);
    CU_add_test(s, "affine units: own range front first, then the others' backs",
                test_units_one_task);
    CU_add_test(s, "affine units: 2-4 tasks take every unit once", test_units_threads);
}
