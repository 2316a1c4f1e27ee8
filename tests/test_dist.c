/*
 * test_dist.c — data-parallel training (lib/dist.c). Without a launcher, a world of one rank whose
 * calls change nothing; under `mpirun -np 2` (tests/dist_worker.c), 2 ranks x batch B/2 end
 * with the parameters of 1 rank x batch B after several Adam steps (within 1e-6 relative), and so
 * do 4 ranks x B/4 (oversubscribed), every rank with the same bits, armed (overlapped) buckets equal to unarmed ones, and a rank that dies
 * or hangs ends the job with a message in bounded time. The MPI tests skip, saying why, in a
 * build without MPI or where mpirun is missing.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <time.h>

static char worker[512], tmp[512];

/* mpirun as CI runs it: as root allowed, no binding surprises on a small machine, and Open MPI's
 * single-copy shared memory off (containers forbid the ptrace it needs) */
#define MPIRUN "OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1 " \
               "OMPI_MCA_btl_vader_single_copy_mechanism=none OMPI_MCA_rmaps_base_oversubscribe=1 " \
               "OMP_NUM_THREADS=1 mpirun "

static int setup(void **state) {
    (void)state;
    const char *b = getenv("BUILD");
    snprintf(worker, sizeof worker, "%s/tests/dist_worker", b ? b : "build");
    snprintf(tmp, sizeof tmp, "/tmp/tg_dist_test_%d", (int)getpid());
    mkdir(tmp, 0700);
    return 0;
}
static int teardown(void **state) {
    (void)state;
    char cmd[1024];
    snprintf(cmd, sizeof cmd, "%s%s", getenv("KEEP") ? "true " : "rm -rf ", tmp);
    return system(cmd) == 0 ? 0 : -1;
}

static int have_mpi(void) {
    if (!strncmp(tg_dist_info(), "unavailable", 11)) {
        print_message("skipped: %s\n", tg_dist_info());
        return 0;
    }
    if (system("command -v mpirun >/dev/null 2>&1") != 0) {
        print_message("skipped: mpirun not found (Debian: openmpi-bin)\n");
        return 0;
    }
    return 1;
}

static double now_s(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (double)t.tv_sec + 1e-9 * (double)t.tv_nsec;
}

/* says what this build can do */
static void test_info(void **state) {
    (void)state;
    const char *i = tg_dist_info();
    assert_non_null(i);
    print_message("tg_dist_info: %s\n", i);
#ifdef TG_WITH_MPI
    assert_non_null(strstr(i, "MPI ("));
#else
    assert_non_null(strstr(i, "built without MPI"));
#endif
#if defined(TG_WITH_CUDA) && defined(TG_WITH_NCCL)
    assert_non_null(strstr(i, "NCCL"));
#endif
}

/* No launcher: one rank, and every call leaves values and gradients as they are. */
static void test_world_of_one(void **state) {
    (void)state;
    tg_dist *d = tg_dist_init(NULL, NULL);
    assert_non_null(d);
    assert_int_equal(tg_dist_world(d), 1);
    assert_int_equal(tg_dist_rank(d), 0);
    assert_int_equal(tg_dist_local_rank(d), 0);
    assert_null(tg_dist_init(NULL, NULL)); /* one per process */
    assert_non_null(strstr(tg_last_error(), "already"));
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 3);
    int64_t s[2] = {3, 5};
    float v[15];
    for (int i = 0; i < 15; i++) v[i] = (float)i - 4.5f;
    tg_tensor *w = tu_tensor(ctx, 2, s, v, 1);
    assert_int_equal(tg_backward(ctx, tg_sum(ctx, tg_mul(ctx, w, w))), TG_OK);
    tg_dist_grads *g = tg_dist_grads_new(d, &w, 1, 0);
    assert_non_null(g);
    assert_int_equal(tg_dist_grads_arm(g), TG_OK);
    assert_int_equal(tg_dist_grads_sync(g), TG_OK);
    float *gv = tu_read(tg_tensor_grad(w));
    for (int i = 0; i < 15; i++) assert_true(gv[i] == 2.0f * v[i]);
    assert_int_equal(tg_dist_average(d, &w, 1), TG_OK);
    assert_int_equal(tg_dist_broadcast(d, &w, 1, 0), TG_OK);
    float *wv = tu_read(w);
    assert_memory_equal(wv, v, sizeof v);
    double h[2] = {1.5, -2};
    assert_int_equal(tg_dist_sum_host(d, h, 2), TG_OK);
    assert_true(h[0] == 1.5 && h[1] == -2);
    assert_int_equal(tg_dist_barrier(d), TG_OK);
    /* refusals */
    assert_int_equal(tg_dist_broadcast(d, &w, 1, 1), TG_ERR_INVALID); /* root outside the world */
    assert_null(tg_dist_grads_new(d, &w, 0, 0));
    tg_tensor *nul = NULL;
    assert_int_equal(tg_dist_average(d, &nul, 1), TG_ERR_INVALID);
    assert_int_equal(tg_dist_sum_host(NULL, h, 2), TG_ERR_INVALID);
    free(gv), free(wv);
    tg_dist_grads_free(g);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(w);
    tg_ctx_free(ctx);
    tg_dist_free(d);
    d = tg_dist_init(NULL, NULL); /* a new one after the first is freed */
    assert_non_null(d);
    tg_dist_free(d);
#ifndef TG_WITH_MPI
    /* launched as one of two ranks by a build that cannot talk to the other: refused */
    setenv("OMPI_COMM_WORLD_SIZE", "2", 1);
    assert_null(tg_dist_init(NULL, NULL));
    assert_non_null(strstr(tg_last_error(), "built without MPI"));
    unsetenv("OMPI_COMM_WORLD_SIZE");
#endif
}

static float *read_floats(const char *path, long *n) {
    FILE *f = fopen(path, "rb");
    if (!f) fail_msg("cannot read %s", path);
    fseek(f, 0, SEEK_END);
    *n = ftell(f) / 4;
    fseek(f, 0, SEEK_SET);
    float *v = malloc(sizeof(float) * (size_t)*n);
    assert_int_equal(fread(v, sizeof(float), (size_t)*n, f), (size_t)*n);
    fclose(f);
    return v;
}

/* runs the worker's "equal" mode on np ranks (0: without mpirun) into tmp/name */
static void run_equal(int np, const char *name, int arm, int bucket) {
    char cmd[2048], out[8192];
    if (np)
        snprintf(cmd, sizeof cmd, MPIRUN "-np %d %s equal %s/%s 8 6 %d %d 2>&1", np, worker, tmp, name, arm, bucket);
    else
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s equal %s/%s 8 6 %d %d 2>&1", worker, tmp, name, arm, bucket);
    int rc = tu_run_capture(cmd, out, sizeof out);
    print_message("%s", out);
    if (rc) fail_msg("%s exited with %d", cmd, rc);
    char want[64];
    snprintf(want, sizeof want, "world %d,", np ? np : 1);
    assert_non_null(strstr(out, want));
    assert_non_null(strstr(out, "ranks identical: yes"));
    assert_non_null(strstr(out, "average ok"));
}

/* 2 ranks x batch 4 == 1 rank x batch 8 after 6 Adam steps, within 1e-6 relative */
static void test_two_ranks_equal_one(void **state) {
    (void)state;
    if (!have_mpi()) skip();
    run_equal(0, "plain", 0, 0);
    run_equal(1, "one", 0, 0);
    run_equal(2, "two", 0, 0);
    run_equal(2, "two_armed", 1, 256); /* small buckets, started during the backward pass */
    run_equal(4, "four", 1, 1024);      /* 4 ranks (oversubscribed): still the same bits everywhere */
    long n0, n1, n2, n3, n4;
    char path[600];
    snprintf(path, sizeof path, "%s/plain", tmp);
    float *p0 = read_floats(path, &n0);
    snprintf(path, sizeof path, "%s/one", tmp);
    float *p1 = read_floats(path, &n1);
    snprintf(path, sizeof path, "%s/two", tmp);
    float *p2 = read_floats(path, &n2);
    snprintf(path, sizeof path, "%s/two_armed", tmp);
    float *p3 = read_floats(path, &n3);
    snprintf(path, sizeof path, "%s/four", tmp);
    float *p4 = read_floats(path, &n4);
    assert_true(n0 == n1 && n1 == n2 && n2 == n3 && n3 == n4 && n0 > 100);
    /* one rank through MPI is the plain run, bit for bit; armed buckets change nothing */
    assert_memory_equal(p0, p1, sizeof(float) * (size_t)n0);
    assert_memory_equal(p2, p3, sizeof(float) * (size_t)n0);
    /* per tensor: the largest difference relative to the tensor's largest value */
    const float *many[2] = {p2, p4};
    for (int m = 0; m < 2; m++) {
        double worst = 0;
        int tensors = 0;
        for (long at = 0; at < n0; tensors++) {
            const long n = (long)p1[at++];
            assert_true(n > 0 && at + n <= n0 && many[m][at - 1] == p1[at - 1]);
            double scale = 0, diff = 0;
            for (long i = at; i < at + n; i++) {
                scale = fmax(scale, fabs((double)p1[i]));
                diff = fmax(diff, fabs((double)many[m][i] - p1[i]));
            }
            assert_true(scale > 0);
            worst = fmax(worst, diff / scale);
            at += n;
        }
        print_message("%d ranks x %d vs 1 rank x 8 after 6 Adam steps: largest difference %.3g relative to its "
                      "tensor's largest value (%d tensors)\n", m ? 4 : 2, m ? 2 : 4, worst, tensors);
        assert_int_equal(tensors, 4);
        if (worst > 1e-6) fail_msg("%d ranks differ from 1 rank by %.3g (relative)", m ? 4 : 2, worst);
    }
    free(p0), free(p1), free(p2), free(p3), free(p4);
}

/* A rank that exits, or stops answering, ends the job with a message within bounded time. */
static void test_dead_rank_fails_fast(void **state) {
    (void)state;
    if (!have_mpi()) skip();
    char cmd[2048], out[16384];
    double t0 = now_s();
    snprintf(cmd, sizeof cmd, "timeout -s KILL 120 env " MPIRUN "-np 2 %s die 2>&1", worker);
    int rc = tu_run_capture(cmd, out, sizeof out);
    double dt = now_s() - t0;
    print_message("a rank that exits: status %d after %.1f s\n", rc, dt);
    assert_true(rc != 0 && rc != 137); /* failed, and not by the outer timeout */
    assert_non_null(strstr(out, "rank 1 exits"));
    assert_true(dt < 60);
    t0 = now_s();
    snprintf(cmd, sizeof cmd, "timeout -s KILL 120 env TG_DIST_TIMEOUT=3 " MPIRUN "-np 2 %s hang 2>&1", worker);
    rc = tu_run_capture(cmd, out, sizeof out);
    dt = now_s() - t0;
    print_message("a rank that hangs: status %d after %.1f s\n", rc, dt);
    assert_true(rc != 0 && rc != 137);
    assert_non_null(strstr(out, "TG_DIST_TIMEOUT"));
    assert_true(dt < 60);
    /* after tg_dist_free has finalised MPI, joining again is refused with a reason */
    snprintf(cmd, sizeof cmd, MPIRUN "-np 1 %s reinit 2>&1", worker);
    rc = tu_run_capture(cmd, out, sizeof out);
    if (rc) fail_msg("reinit: %d\n%s", rc, out);
    assert_non_null(strstr(out, "MPI cannot start twice"));
}

static int mangagan(int np, char *out, size_t cap, const char *args) {
    char cmd[2048];
    const char *b = getenv("BUILD");
    if (np)
        snprintf(cmd, sizeof cmd, MPIRUN "-np %d %s/examples/mangagan train --device cpu %s 2>&1", np, b ? b : "build", args);
    else
        snprintf(cmd, sizeof cmd, "OMP_NUM_THREADS=1 %s/examples/mangagan train --device cpu %s 2>&1", b ? b : "build", args);
    return tu_run_capture(cmd, out, cap);
}

/* mangagan under mpirun: the modern recipe (EMA, hinge, DiffAugment: every rank draws its own
 * augmentations) trains on 2 ranks; 2 steps + resume to 4 give the 4 uninterrupted steps' losses
 * and generator bit for bit; one rank under mpirun is the plain run; a checkpoint of 2 ranks is
 * refused on 1, and a batch that does not split is refused. */
static void test_mangagan_two_ranks(void **state) {
    (void)state;
    if (!have_mpi()) skip();
    char out[16384], args[1024], a[600], b[600], c[600], d[600];
    snprintf(a, sizeof a, "%s/mg-straight", tmp);
    snprintf(b, sizeof b, "%s/mg-resumed", tmp);
    snprintf(c, sizeof c, "%s/mg-one", tmp);
    snprintf(d, sizeof d, "%s/mg-plain", tmp);
    const char *data = "--data examples/mangagan/data/faces.safetensors.xz";
    const char *common = "--recipe modern --batch 8 --width 8 --seed 5 --flip --checkpoint-every 100 --sample-every 100";
    snprintf(args, sizeof args, "%s --out %s --steps 4 %s", data, a, common);
    int rc = mangagan(2, out, sizeof out, args);
    if (rc) fail_msg("2 ranks exited %d:\n%s", rc, out);
    assert_non_null(strstr(out, "2 ranks of 4 images each"));
    snprintf(args, sizeof args, "%s --out %s --steps 2 %s", data, b, common);
    assert_int_equal(mangagan(2, out, sizeof out, args), 0);
    snprintf(args, sizeof args, "%s --out %s --steps 4 --resume", data, b);
    rc = mangagan(2, out, sizeof out, args);
    if (rc) fail_msg("2-rank resume exited %d:\n%s", rc, out);
    char *la = tu_log_losses(a), *lb = tu_log_losses(b);
    if (strcmp(la, lb)) fail_msg("resumed on 2 ranks differs:\n%s\nvs\n%s", la, lb);
    char cmd[1400];
    snprintf(cmd, sizeof cmd, "cmp -s %s/generator.safetensors %s/generator.safetensors", a, b);
    assert_int_equal(system(cmd), 0);
    /* one rank through MPI == no MPI */
    snprintf(args, sizeof args, "%s --out %s --steps 3 %s", data, c, common);
    assert_int_equal(mangagan(1, out, sizeof out, args), 0);
    snprintf(args, sizeof args, "%s --out %s --steps 3 %s", data, d, common);
    assert_int_equal(mangagan(0, out, sizeof out, args), 0);
    char *lc = tu_log_losses(c), *ld = tu_log_losses(d);
    if (strcmp(lc, ld)) fail_msg("1 rank under mpirun differs from the plain run:\n%s\nvs\n%s", lc, ld);
    /* the 2-rank losses are not the 1-rank ones (each rank draws its own noise) */
    assert_true(strncmp(la, lc, 60) != 0);
    free(la), free(lb), free(lc), free(ld);
    /* refusals */
    snprintf(args, sizeof args, "%s --out %s --steps 6 --resume", data, b);
    rc = mangagan(0, out, sizeof out, args);
    assert_int_equal(rc, 1);
    assert_non_null(strstr(out, "trained on 2 rank(s), this run has 1"));
    snprintf(args, sizeof args, "%s --out %s/mg-odd --steps 1 --batch 7", data, tmp);
    rc = mangagan(2, out, sizeof out, args);
    assert_int_not_equal(rc, 0);
    assert_non_null(strstr(out, "--batch 7 does not split over 2 ranks"));
}

/* A CUDA context under mpirun -np 1: the gradients go through NCCL (whose join polls an event:
 * a "not ready" answer must not be left as the thread's last CUDA error, or the next launch
 * check fails the step) and a whole run equals the plain CUDA run. Needs a GPU. */
static void test_mangagan_cuda_one_rank(void **state) {
    (void)state;
    if (!have_mpi()) skip();
    if (tg_cuda_device_count() == 0) {
        print_message("skipped: no GPU (this test is owed to tests/gpu_validate.sh)\n");
        skip();
    }
    char out[16384], args[1024], c[600], d[600];
    snprintf(c, sizeof c, "%s/mg-cuda-one", tmp);
    snprintf(d, sizeof d, "%s/mg-cuda-plain", tmp);
    const char *common = "--data examples/mangagan/data/faces.safetensors.xz --recipe modern --batch 16 --width 16 "
                         "--seed 5 --device cuda --checkpoint-every 100 --sample-every 100 --steps 5";
    snprintf(args, sizeof args, "--out %s %s", c, common);
    int rc = mangagan(1, out, sizeof out, args);
    if (rc) fail_msg("1 CUDA rank under mpirun exited %d:\n%s", rc, out);
    snprintf(args, sizeof args, "--out %s %s", d, common);
    rc = mangagan(0, out, sizeof out, args);
    if (rc) fail_msg("the plain CUDA run exited %d:\n%s", rc, out);
    char *lc = tu_log_losses(c), *ld = tu_log_losses(d);
    if (strcmp(lc, ld)) fail_msg("1 CUDA rank under mpirun differs from the plain run:\n%s\nvs\n%s", lc, ld);
    free(lc), free(ld);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_info),
        cmocka_unit_test(test_world_of_one),
        cmocka_unit_test(test_two_ranks_equal_one),
        cmocka_unit_test(test_dead_rank_fails_fast),
        cmocka_unit_test(test_mangagan_two_ranks),
        cmocka_unit_test(test_mangagan_cuda_one_rank),
    };
    return cmocka_run_group_tests_name("distributed", tests, setup, teardown);
}
