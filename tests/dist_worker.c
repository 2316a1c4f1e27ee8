/*
 * dist_worker.c — the program test_dist starts under mpirun (and alone), one process per rank.
 *   dist_worker equal OUT B STEPS ARM BUCKET
 *       trains a small network without BatchNorm (conv, leaky ReLU, dense; MSE) for STEPS Adam
 *       steps on a global batch of B fixed examples, each rank on its B/world of them, the
 *       gradients averaged by tg_dist_grads_sync (ARM 1: armed before the backward pass, so
 *       buckets of BUCKET bytes start during it). Rank 0 writes the final parameters (float32,
 *       each tensor as its element count then its values) to OUT and prints whether every rank holds the same bits, and checks
 *       tg_dist_average and tg_dist_sum_host.
 *   dist_worker die     rank 1 exits with status 3 in the middle of a step
 *   dist_worker hang    rank 1 stops answering (sleeps); the others wait TG_DIST_TIMEOUT
 *   dist_worker reinit  tg_dist_init again after tg_dist_free finalised MPI: refused
 * Uses only the public header.
 */
#include "tensorgan.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#define CHECK(x)                                                                                    \
    do {                                                                                            \
        if (!(x)) {                                                                                 \
            fprintf(stderr, "dist_worker: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, tg_last_error()); \
            exit(1);                                                                                \
        }                                                                                           \
    } while (0)

static uint64_t mix(uint64_t z) {
    z += 0x9e3779b97f4a7c15ull;
    z = (z ^ (z >> 30)) * 0xbf58476d1ce4e5b9ull;
    z = (z ^ (z >> 27)) * 0x94d049bb133111ebull;
    return z ^ (z >> 31);
}
static float unif(uint64_t k) { return (float)((mix(k) >> 40) * (1.0 / 16777216.0)) * 2.0f - 1.0f; }

int main(int argc, char **argv) {
    if (argc < 2) return 2;
    tg_dist *d = tg_dist_init(&argc, &argv);
    CHECK(d);
    if (!strcmp(argv[1], "reinit")) { /* MPI cannot start twice: the second join is refused */
        tg_dist_free(d);
        d = tg_dist_init(&argc, &argv);
        printf("dist_worker: second tg_dist_init: %s\n", d ? "accepted" : tg_last_error());
        return d ? 1 : 0;
    }
    const int rank = tg_dist_rank(d), world = tg_dist_world(d);
    const int equal = !strcmp(argv[1], "equal");
    const int B = equal && argc > 3 ? atoi(argv[3]) : 8, steps = equal && argc > 4 ? atoi(argv[4]) : 3;
    const int arm = equal && argc > 5 ? atoi(argv[5]) : 0;
    const size_t bucket = equal && argc > 6 ? (size_t)atol(argv[6]) : 0;
    if (B % world) {
        fprintf(stderr, "dist_worker: batch %d does not split over %d ranks\n", B, world);
        return 1;
    }
    const int b = B / world;
    /* a rank-distinct seed: the initial weights differ until the broadcast */
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 100 + (uint64_t)rank);
    CHECK(ctx);
    tg_module *net = tg_sequential(ctx);
    CHECK(tg_sequential_add(net, tg_layer_conv2d(ctx, 3, 6, 3, 2, 1, true)) == TG_OK);
    CHECK(tg_sequential_add(net, tg_layer_leaky_relu(ctx, 0.2f)) == TG_OK);
    CHECK(tg_sequential_add(net, tg_layer_flatten(ctx)) == TG_OK);
    CHECK(tg_sequential_add(net, tg_layer_dense(ctx, 6 * 4 * 4, 2, true)) == TG_OK);
    tg_tensor *p[8];
    const int np = tg_module_params(net, p, 8);
    CHECK(tg_dist_broadcast(d, p, np, 0) == TG_OK);
    tg_optim *opt = tg_adam(ctx, p, np, 1e-2f, 0.9f, 0.999f, 1e-8f);
    CHECK(opt);
    tg_dist_grads *sync = tg_dist_grads_new(d, p, np, bucket);
    CHECK(sync);
    /* this rank's share of the fixed global batch: examples rank*b .. rank*b+b-1 */
    int64_t xs[4] = {b, 3, 8, 8}, ys[2] = {b, 2};
    tg_tensor *x = tg_tensor_new(ctx, 4, xs), *y = tg_tensor_new(ctx, 2, ys);
    float *hx = malloc(sizeof(float) * (size_t)b * 192), hy[4096];
    for (int i = 0; i < b; i++) {
        const int e = rank * b + i;
        for (int k = 0; k < 192; k++) hx[i * 192 + k] = unif((uint64_t)e * 1000 + (uint64_t)k);
        hy[i * 2] = unif((uint64_t)e * 7 + 999999), hy[i * 2 + 1] = 0.5f * unif((uint64_t)e * 13 + 555555);
    }
    CHECK(tg_tensor_write(x, hx, (int64_t)b * 192) == TG_OK && tg_tensor_write(y, hy, (int64_t)b * 2) == TG_OK);
    for (int s = 0; s < steps; s++) {
        tg_optim_zero_grad(opt);
        tg_tensor *loss = tg_mse_loss(ctx, tg_module_forward(net, x), y);
        CHECK(loss);
        if (!strcmp(argv[1], "die") && rank == 1 && s == 1) {
            fprintf(stderr, "dist_worker: rank 1 exits in the middle of step %d\n", s);
            exit(3);
        }
        if (!strcmp(argv[1], "hang") && rank == 1 && s == 1) {
            fprintf(stderr, "dist_worker: rank 1 stops answering in step %d\n", s);
            sleep(3600);
        }
        if (arm) CHECK(tg_dist_grads_arm(sync) == TG_OK);
        CHECK(tg_backward(ctx, loss) == TG_OK);
        CHECK(tg_dist_grads_sync(sync) == TG_OK);
        CHECK(tg_optim_step(opt) == TG_OK);
        tg_ctx_clear_tape(ctx);
    }
    /* every rank must hold rank 0's bits */
    double mismatched = 0, total = 0;
    for (int i = 0; i < np; i++) {
        const int64_t n = tg_tensor_numel(p[i]);
        int64_t shape[4];
        for (int k = 0; k < tg_tensor_ndim(p[i]); k++) shape[k] = tg_tensor_dim(p[i], k);
        tg_tensor *c = tg_tensor_new(ctx, tg_tensor_ndim(p[i]), shape);
        CHECK(c && tg_tensor_copy(c, p[i]) == TG_OK);
        CHECK(tg_dist_broadcast(d, &c, 1, 0) == TG_OK);
        float *a = malloc(sizeof(float) * (size_t)n), *r0 = malloc(sizeof(float) * (size_t)n);
        CHECK(tg_tensor_read(p[i], a, n) == TG_OK && tg_tensor_read(c, r0, n) == TG_OK);
        mismatched += memcmp(a, r0, sizeof(float) * (size_t)n) != 0;
        total += n;
        if (rank == 0 && equal) {
            FILE *f = fopen(argv[2], i ? "ab" : "wb");
            const float count = (float)n; /* each tensor: its element count, then its values */
            CHECK(f && fwrite(&count, sizeof count, 1, f) == 1);
            CHECK(fwrite(a, sizeof(float), (size_t)n, f) == (size_t)n && fclose(f) == 0);
        }
        free(a), free(r0);
        tg_tensor_free(c);
    }
    double sums[2] = {mismatched, (double)rank + 1};
    CHECK(tg_dist_sum_host(d, sums, 2) == TG_OK);
    /* tg_dist_average: rank r holds r + 1 everywhere, the mean is (world + 1) / 2 */
    int64_t as[1] = {37};
    tg_tensor *avg = tg_tensor_new(ctx, 1, as);
    CHECK(avg && tg_tensor_fill(avg, (float)rank + 1) == TG_OK && tg_dist_average(d, &avg, 1) == TG_OK);
    float av[37];
    CHECK(tg_tensor_read(avg, av, 37) == TG_OK);
    int avg_ok = 1;
    for (int i = 0; i < 37; i++) avg_ok &= fabsf(av[i] - 0.5f * (float)(world + 1)) < 1e-6f;
    CHECK(tg_dist_barrier(d) == TG_OK);
    if (rank == 0)
        printf("dist_worker: world %d, %d parameters (%.0f values), ranks identical: %s, sum of ranks %g, average %s\n",
               world, np, total, sums[0] == 0 ? "yes" : "NO", sums[1], avg_ok ? "ok" : "WRONG");
    free(hx);
    tg_tensor_free(x), tg_tensor_free(y), tg_tensor_free(avg);
    tg_dist_grads_free(sync);
    tg_optim_free(opt);
    tg_module_free(net);
    tg_ctx_free(ctx);
    tg_dist_free(d);
    return 0;
}
