/*
 * test_cuda.c — the CUDA backend against the CPU backend on the same random inputs: every op
 * forward and backward at the DCGAN's shapes and at awkward ones (odd sizes, batch 1, channel
 * counts that are not multiples of 32), the fused Adam and SGD updates, the RNG, and a whole
 * GAN training step from the same seed. Without a GPU (or in a CPU-only build) every test is
 * reported as skipped, with the reason.
 */
#include "testutil.h"

#include "op_cases.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static tg_ctx *cpu, *gpu;
static char why[256];

static int setup(void **state) {
    (void)state;
    cpu = tg_ctx_new(TG_CPU, 7);
    gpu = tg_ctx_new(TG_CUDA, 7);
    if (!gpu) {
        snprintf(why, sizeof why, "%s", tg_last_error());
        print_message("CUDA tests skipped: %s\n", why);
    }
    return cpu ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    tg_ctx_free(gpu);
    tg_ctx_free(cpu);
    return 0;
}
#define NEED_GPU()                                                                              \
    do {                                                                                        \
        if (!gpu) skip();                                                                       \
    } while (0)

/* running statistics move the same way on both devices */
static void test_batch_norm_running(void **state) {
    (void)state;
    NEED_GPU();
    tu_seed(5);
    float x[2 * 33 * 5 * 3], rm[33], rv[33];
    tu_fill(x, 2 * 33 * 15, -1, 2);
    tu_fill(rm, 33, -1, 1);
    tu_fill(rv, 33, 0.5, 2);
    int64_t xs[4] = {2, 33, 5, 3}, cs[1] = {33};
    float *out[2][2];
    tg_ctx *ctxs[2] = {cpu, gpu};
    for (int d = 0; d < 2; d++) {
        tg_tensor *tx = tu_tensor(ctxs[d], 4, xs, x, 0), *m = tu_tensor(ctxs[d], 1, cs, rm, 0),
                  *v = tu_tensor(ctxs[d], 1, cs, rv, 0);
        assert_non_null(tg_batch_norm(ctxs[d], tx, NULL, NULL, m, v, true, 0.5f, 1e-3f));
        out[d][0] = tu_read(m);
        out[d][1] = tu_read(v);
        tg_ctx_clear_tape(ctxs[d]);
        tg_tensor_free(tx), tg_tensor_free(m), tg_tensor_free(v);
    }
    tu_close_ff(out[1][0], out[0][0], 33, 1e-5, 1e-4, "running_mean");
    tu_close_ff(out[1][1], out[0][1], 33, 1e-5, 1e-4, "running_var");
    for (int d = 0; d < 2; d++) free(out[d][0]), free(out[d][1]);
}

/* every case of the shared op table (tests/op_cases.c): the same inputs on both devices */
static void test_op_table(void **state) {
    (void)state;
    NEED_GPU();
    int n;
    const tu_op_case *cases = tu_op_cases(&n);
    for (int i = 0; i < n; i++) {
        tu_seed(cases[i].seed);
        print_message("  %s\n", cases[i].name);
        tu_compare_ctx(cpu, gpu, &cases[i].check, cases[i].dev_atol, cases[i].dev_rtol);
        tg_ctx_clear_tape(cpu);
        tg_ctx_clear_tape(gpu);
    }
}

/* The op table per precision: bf16 on both devices (the same bf16 operands, summed in float32 in
 * different orders: float32 tolerances), and the GPU's TF32 against the CPU's fp32 (TF32 keeps
 * 10 mantissa bits of each operand: 1e-2 relative). The precision is set on the contexts and put
 * back after. */
static void op_table_in(tg_precision cpu_p, tg_precision gpu_p, double scale) {
    int n;
    const tu_op_case *cases = tu_op_cases(&n);
    assert_int_equal(tg_ctx_set_precision(cpu, cpu_p), TG_OK);
    assert_int_equal(tg_ctx_set_precision(gpu, gpu_p), TG_OK);
    for (int i = 0; i < n; i++) {
        tu_seed(cases[i].seed);
        print_message("  %s (%s)\n", cases[i].name, tg_precision_name(gpu_p));
        const int rounded = cases[i].check.bf16_in != 0; /* the ops the precision applies to */
        const double f = rounded ? scale : 1.0;
        tu_compare_ctx(cpu, gpu, &cases[i].check, cases[i].dev_atol * f, cases[i].dev_rtol * f);
        tg_ctx_clear_tape(cpu);
        tg_ctx_clear_tape(gpu);
    }
    tg_ctx_set_precision(cpu, TG_PRECISION_FP32);
    tg_ctx_set_precision(gpu, TG_PRECISION_FP32);
}

static void test_op_table_bf16(void **state) {
    (void)state;
    NEED_GPU();
    op_table_in(TG_PRECISION_BF16, TG_PRECISION_BF16, 1.0);
}

static void test_op_table_tf32(void **state) {
    (void)state;
    NEED_GPU();
    op_table_in(TG_PRECISION_FP32, TG_PRECISION_TF32, 10.0);
}

/* Runs f on both devices from the same inputs (n_in tensors of the shapes given, values in
 * [lo, hi), gradients wanted) and compares its output and every input's gradient. f may use an
 * input several times, so gradients accumulate (the kernels' "add into dx" paths). */
typedef tg_tensor *(*two_dev_fn)(tg_ctx *c, tg_tensor **in);
static void both_devices(two_dev_fn f, int n_in, const int64_t (*shape)[4], double lo, double hi, double tol,
                         const char *what) {
    float *v[4], *outs[2], *grads[2][4];
    int64_t n[4], out_n = 0;
    for (int i = 0; i < n_in; i++) {
        n[i] = shape[i][0] * shape[i][1] * shape[i][2] * shape[i][3];
        v[i] = malloc(sizeof(float) * (size_t)n[i]);
        tu_fill(v[i], n[i], lo, hi);
    }
    for (int d = 0; d < 2; d++) {
        tg_ctx *c = d ? gpu : cpu;
        tg_tensor *in[4];
        for (int i = 0; i < n_in; i++) in[i] = tu_tensor(c, 4, shape[i], v[i], 1);
        tg_tensor *y = f(c, in);
        if (!y) fail_msg("%s: %s", what, tg_last_error());
        out_n = tg_tensor_numel(y);
        outs[d] = tu_read(y);
        if (tg_backward(c, tg_sum(c, tg_mul(c, y, y))) != TG_OK) fail_msg("%s backward: %s", what, tg_last_error());
        for (int i = 0; i < n_in; i++) grads[d][i] = tu_read(tg_tensor_grad(in[i]));
        tg_ctx_clear_tape(c);
        for (int i = 0; i < n_in; i++) tg_tensor_free(in[i]);
    }
    char w[128];
    snprintf(w, sizeof w, "%s: forward", what);
    tu_close_ff(outs[1], outs[0], out_n, tol, tol, w);
    for (int i = 0; i < n_in; i++) {
        snprintf(w, sizeof w, "%s: gradient of input %d", what, i);
        tu_close_ff(grads[1][i], grads[0][i], n[i], tol, 10 * tol, w);
        free(grads[0][i]), free(grads[1][i]), free(v[i]);
    }
    free(outs[0]), free(outs[1]);
}

/* x used twice: the unary backward kernels' accumulate paths (the second gradient adds) */
static tg_tensor *twice_unary(tg_ctx *c, tg_tensor **in) {
    tg_tensor *x = in[0];
    return tg_add(c, tg_add(c, tg_tanh(c, x), tg_leaky_relu(c, x, 0.2f)), tg_add(c, tg_sigmoid(c, x), tg_relu(c, x)));
}
/* x through two BatchNorms (training, then evaluation-like with fixed statistics): BatchNorm's
 * backward adding into a gradient that already holds something */
static tg_tensor *twice_bn(tg_ctx *c, tg_tensor **in) {
    int64_t cs[1] = {tg_tensor_dim(in[1], 1)};
    tg_tensor *g = tg_reshape(c, in[1], 1, cs); /* [1,C,1,1] -> [C] */
    tg_tensor *a = tg_batch_norm(c, in[0], g, NULL, NULL, NULL, true, 0.1f, 1e-5f);
    tg_tensor *b = tg_batch_norm_act(c, in[0], NULL, g, NULL, NULL, true, 0.1f, 1e-3f, 0.2f);
    return tg_add(c, a, b);
}
/* the channel broadcasts and their reductions, every branch: add and multiply, per channel and
 * per sample, into gradients already holding something */
static tg_tensor *channel_branches(tg_ctx *c, tg_tensor **in) {
    int64_t ps[2] = {tg_tensor_dim(in[0], 0), tg_tensor_dim(in[0], 1)};
    tg_tensor *per_sample = tg_reshape(c, in[2], 2, ps);
    tg_tensor *y = tg_add_channels(c, tg_mul_channels(c, in[0], in[1]), in[1]);
    y = tg_add(c, y, tg_mul_channels(c, in[0], per_sample));
    return tg_add(c, y, tg_add_channels(c, in[0], per_sample));
}

static void test_accumulating_backwards(void **state) {
    (void)state;
    NEED_GPU();
    tu_seed(31);
    const int64_t s1[1][4] = {{3, 5, 7, 9}};
    both_devices(twice_unary, 1, s1, -3, 3, 1e-5, "four activations of one input");
    const int64_t s2[2][4] = {{4, 6, 9, 7}, {1, 6, 1, 1}};
    both_devices(twice_bn, 2, s2, -2, 3, 2e-4, "two BatchNorms of one input");
    const int64_t s3[3][4] = {{3, 4, 5, 6}, {1, 4, 1, 1}, {3, 4, 1, 1}};
    both_devices(channel_branches, 3, s3, -1, 1, 1e-5, "channel broadcasts");
}

/* max and average pooling over NaN inputs: the same NaNs on both devices (forward and backward) */
static void test_pool_nan(void **state) {
    (void)state;
    NEED_GPU();
    tu_seed(32);
    int64_t s[4] = {2, 3, 8, 8};
    float v[384];
    tu_fill(v, 384, -1, 1);
    for (int i = 0; i < 384; i += 7) v[i] = NAN;
    float *out[2][2], *g[2][2];
    for (int d = 0; d < 2; d++)
        for (int k = 0; k < 2; k++) {
            tg_ctx *c = d ? gpu : cpu;
            tg_tensor *x = tu_tensor(c, 4, s, v, 1);
            tg_tensor *y = k ? tg_avg_pool2d(c, x, 3, 2, 1) : tg_max_pool2d(c, x, 3, 2, 1);
            assert_non_null(y);
            out[d][k] = tu_read(y);
            assert_int_equal(tg_backward(c, tg_sum(c, y)), TG_OK);
            g[d][k] = tu_read(tg_tensor_grad(x));
            tg_ctx_clear_tape(c);
            tg_tensor_free(x);
        }
    for (int k = 0; k < 2; k++) {
        for (int i = 0; i < 2 * 3 * 4 * 4; i++)
            if (isnan(out[0][k][i]) != isnan(out[1][k][i]) ||
                (!isnan(out[0][k][i]) && fabsf(out[0][k][i] - out[1][k][i]) > 1e-6f))
                fail_msg("%s pooling, output %d: CPU %g, GPU %g", k ? "average" : "max", i, out[0][k][i], out[1][k][i]);
        for (int i = 0; i < 384; i++)
            if (isnan(g[0][k][i]) != isnan(g[1][k][i]) || (!isnan(g[0][k][i]) && fabsf(g[0][k][i] - g[1][k][i]) > 1e-6f))
                fail_msg("%s pooling, gradient %d: CPU %g, GPU %g", k ? "average" : "max", i, g[0][k][i], g[1][k][i]);
        for (int d = 0; d < 2; d++) free(out[d][k]), free(g[d][k]);
    }
}

/* A tensor of more than 2^27 elements: the grid-stride loops wrap (tg_blocks caps the grid) */
static void test_grid_stride_wrap(void **state) {
    (void)state;
    NEED_GPU();
    const int64_t n = ((int64_t)1 << 27) + 4099;
    int64_t s[1] = {n};
    float *v = malloc(sizeof(float) * (size_t)n);
    assert_non_null(v);
    for (int64_t i = 0; i < n; i++) v[i] = (float)((i % 2001) - 1000) * 1e-3f;
    tg_tensor *x = tu_tensor(gpu, 1, s, v, 1);
    tg_tensor *y = tg_leaky_relu(gpu, x, 0.5f);
    assert_non_null(y);
    assert_int_equal(tg_backward(gpu, tg_sum(gpu, y)), TG_OK);
    float *out = tu_read(y), *g = tu_read(tg_tensor_grad(x));
    for (int64_t i = 0; i < n; i++) {
        const float want = v[i] > 0 ? v[i] : 0.5f * v[i], wg = v[i] > 0 ? 1.0f : 0.5f;
        if (out[i] != want || g[i] != wg) fail_msg("element %lld: %g (want %g), gradient %g (want %g)", (long long)i,
                                                   out[i], want, g[i], wg);
    }
    free(out), free(g), free(v);
    tg_ctx_clear_tape(gpu);
    tg_tensor_free(x);
}

/* the same seed/offset draws the same numbers on both devices */
static void test_rng(void **state) {
    (void)state;
    NEED_GPU();
    const int64_t n = 100003;
    int64_t s[1] = {n};
    tg_ctx_rng_set(cpu, 99, 12345);
    tg_ctx_rng_set(gpu, 99, 12345);
    tg_tensor *a = tg_tensor_new(cpu, 1, s), *b = tg_tensor_new(gpu, 1, s);
    for (int k = 0; k < 2; k++) {
        if (k == 0) {
            tg_tensor_fill_normal(a, 0.5f, 2.0f);
            tg_tensor_fill_normal(b, 0.5f, 2.0f);
        } else {
            tg_tensor_fill_uniform(a, -3.0f, 1.0f);
            tg_tensor_fill_uniform(b, -3.0f, 1.0f);
        }
        float *va = tu_read(a), *vb = tu_read(b);
        tu_close_ff(vb, va, n, 1e-5, 1e-5, k ? "uniform draw" : "normal draw");
        free(va), free(vb);
    }
    tg_tensor_free(a), tg_tensor_free(b);
}

/* fused optimizer updates against the CPU loop, including a parameter with no gradient */
static void test_optimizers(void **state) {
    (void)state;
    NEED_GPU();
    tu_seed(8);
    int64_t sizes[3] = {1000, 7, 70001};
    for (int which = 0; which < 3; which++) {
        float *res[2][3];
        tg_ctx *ctxs[2] = {cpu, gpu};
        tu_seed(80 + which);
        float *init[3], *grads[3][3];
        for (int i = 0; i < 3; i++) {
            init[i] = malloc(sizeof(float) * (size_t)sizes[i]);
            tu_fill(init[i], sizes[i], -1, 1);
            for (int st = 0; st < 3; st++) {
                grads[st][i] = malloc(sizeof(float) * (size_t)sizes[i]);
                tu_fill(grads[st][i], sizes[i], -0.1, 0.1);
            }
        }
        for (int d = 0; d < 2; d++) {
            tg_tensor *p[3];
            for (int i = 0; i < 3; i++) p[i] = tu_tensor(ctxs[d], 1, &sizes[i], init[i], 1);
            tg_optim *o = which == 0   ? tg_adam(ctxs[d], p, 3, 1e-2f, 0.5f, 0.999f, 1e-7f)
                          : which == 1 ? tg_adam(ctxs[d], p, 3, 2e-3f, 0.9f, 0.99f, 1e-8f)
                                       : tg_sgd(ctxs[d], p, 3, 0.1f, 0.9f);
            if (which == 0) tg_adam_set_eps_mode(o, TG_ADAM_EPS_KERAS);
            for (int st = 0; st < 3; st++) {
                tg_optim_zero_grad(o);
                /* gradient via backward of sum(p * g); parameter 1 gets none at step 1 */
                for (int i = 0; i < 3; i++) {
                    if (st == 1 && i == 1) continue;
                    tg_tensor *g = tu_tensor(ctxs[d], 1, &sizes[i], grads[st][i], 0);
                    assert_int_equal(tg_backward(ctxs[d], tg_sum(ctxs[d], tg_mul(ctxs[d], p[i], g))), TG_OK);
                    tg_ctx_clear_tape(ctxs[d]);
                    tg_tensor_free(g);
                }
                assert_int_equal(tg_optim_step(o), TG_OK);
            }
            for (int i = 0; i < 3; i++) res[d][i] = tu_read(p[i]);
            tg_optim_free(o);
            for (int i = 0; i < 3; i++) tg_tensor_free(p[i]);
        }
        for (int i = 0; i < 3; i++) {
            tu_close_ff(res[1][i], res[0][i], sizes[i], 1e-6, 1e-5, "optimizer update");
            free(res[0][i]), free(res[1][i]), free(init[i]);
            for (int st = 0; st < 3; st++) free(grads[st][i]);
        }
    }
}

/* An optimizer over more than 65,535 parameter tensors: the CUDA kernels take one grid row per
 * tensor, a grid has at most 65,535 rows, so the table goes in chunks (cuda/optim.cu). The same
 * updates as the CPU's, and the last chunk's tensors updated at all. */
static void test_optimizer_many_tensors(void **state) {
    (void)state;
    NEED_GPU();
    if (getenv("TG_SKIP_SLOW")) { /* 200,000 tiny launches: minutes under compute-sanitizer */
        print_message("skipped: TG_SKIP_SLOW is set\n");
        skip();
    }
    enum { NT = 65600 };
    const int64_t two = 2;
    float *init = malloc(sizeof(float) * 2 * NT), *res[2] = {malloc(sizeof(float) * 2 * NT), malloc(sizeof(float) * 2 * NT)};
    tg_tensor **p = malloc(sizeof(tg_tensor *) * NT);
    assert_non_null(init), assert_non_null(res[0]), assert_non_null(res[1]), assert_non_null(p);
    for (int i = 0; i < 2 * NT; i++) init[i] = (float)sin(0.37 * i);
    for (int which = 0; which < 2; which++) {
        tg_ctx *ctxs[2] = {cpu, gpu};
        for (int d = 0; d < 2; d++) {
            for (int i = 0; i < NT; i++) assert_non_null(p[i] = tu_tensor(ctxs[d], 1, &two, init + 2 * i, 1));
            tg_optim *o = which ? tg_sgd(ctxs[d], p, NT, 0.1f, 0.9f) : tg_adam(ctxs[d], p, NT, 1e-2f, 0.5f, 0.999f, 1e-7f);
            assert_non_null(o);
            tg_tensor *loss = NULL; /* sum_i c_i sum(p_i): the gradient of p_i is c_i everywhere */
            for (int i = 0; i < NT; i++) {
                tg_tensor *t = tg_sum(ctxs[d], tg_scale(ctxs[d], p[i], 0.5f + 0.1f * (float)(i % 7)));
                loss = loss ? tg_add(ctxs[d], loss, t) : t;
            }
            assert_non_null(loss);
            assert_int_equal(tg_backward(ctxs[d], loss), TG_OK);
            tg_ctx_clear_tape(ctxs[d]);
            assert_int_equal(tg_optim_step(o), TG_OK);
            for (int i = 0; i < NT; i++) assert_int_equal(tg_tensor_read(p[i], res[d] + 2 * i, 2), TG_OK);
            tg_optim_free(o);
            for (int i = 0; i < NT; i++) tg_tensor_free(p[i]);
        }
        tu_close_ff(res[1], res[0], 2 * NT, 1e-6, 1e-5, which ? "SGD over 65,600 tensors" : "Adam over 65,600 tensors");
        for (int i = 2 * (NT - 8); i < 2 * NT; i++) /* the second chunk moved */
            if (fabsf(res[1][i] - init[i]) < 1e-4f) fail_msg("tensor %d was not updated on the GPU", i / 2);
    }
    free(init), free(res[0]), free(res[1]), free(p);
}

/* ---- a whole GAN step on both devices ------------------------------------------------------ */
typedef struct {
    tg_module *g, *d;
    tg_optim *og, *od;
} gan;

static gan gan_new(tg_ctx *c) {
    gan m;
    m.g = tg_sequential(c);
    tg_sequential_add(m.g, tg_layer_reshape(c, 16, 1, 1));
    tg_sequential_add(m.g, tg_layer_conv_transpose2d(c, 16, 32, 4, 1, 0, true));
    tg_sequential_add(m.g, tg_layer_batch_norm(c, 32, 0.5f, 1e-3f));
    tg_sequential_add(m.g, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(m.g, tg_layer_conv_transpose2d(c, 32, 3, 4, 2, 1, true));
    tg_sequential_add(m.g, tg_layer_tanh(c));
    m.d = tg_sequential(c);
    tg_sequential_add(m.d, tg_layer_conv2d(c, 3, 16, 4, 2, 1, true));
    tg_sequential_add(m.d, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(m.d, tg_layer_conv2d(c, 16, 32, 4, 2, 1, true));
    tg_sequential_add(m.d, tg_layer_batch_norm(c, 32, 0.5f, 1e-3f));
    tg_sequential_add(m.d, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(m.d, tg_layer_flatten(c));
    tg_sequential_add(m.d, tg_layer_dense(c, 32 * 2 * 2, 1, true));
    tg_tensor *p[32];
    int n = tg_module_params(m.g, p, 32);
    m.og = tg_adam(c, p, n, 1.5e-4f, 0.5f, 0.999f, 1e-7f);
    n = tg_module_params(m.d, p, 32);
    m.od = tg_adam(c, p, n, 2e-4f, 0.5f, 0.999f, 1e-7f);
    assert_non_null(m.og);
    assert_non_null(m.od);
    return m;
}

static void gan_free(gan *m) {
    tg_optim_free(m->og), tg_optim_free(m->od);
    tg_module_free(m->g), tg_module_free(m->d);
}

/* copies every parameter and buffer of src into dst (through the host) */
static void copy_state(tg_module *dst, tg_module *src) {
    tg_tensor *a[64], *b[64];
    int n = tg_module_state(src, NULL, a, 64);
    assert_int_equal(tg_module_state(dst, NULL, b, 64), n);
    for (int i = 0; i < n; i++) {
        float *v = tu_read(a[i]);
        assert_int_equal(tg_tensor_write(b[i], v, tg_tensor_numel(a[i])), TG_OK);
        free(v);
    }
}

static void gan_step(tg_ctx *c, gan *m, const float *real_host, int B, float losses[3]) {
    int64_t zs[2] = {B, 16}, xs[4] = {B, 3, 8, 8}, ls[2] = {B, 1};
    tg_tensor *z = tg_tensor_new(c, 2, zs), *real = tu_tensor(c, 4, xs, real_host, 0);
    tg_tensor *ones = tg_tensor_new(c, 2, ls), *zeros = tg_tensor_new(c, 2, ls);
    tg_tensor_fill(ones, 1.0f);
    tg_tensor_fill_normal(z, 0.0f, 1.0f);
    /* fakes in inference mode, no tape */
    bool old = tg_ctx_set_grad_enabled(c, false);
    tg_module_set_training(m->g, false);
    tg_tensor *fake = tg_module_forward(m->g, z);
    tg_ctx_set_grad_enabled(c, old);
    tg_module_set_training(m->g, true);
    tg_tensor *fake_leaf = tg_tensor_new(c, 4, xs);
    tg_tensor_copy(fake_leaf, fake);
    tg_ctx_clear_tape(c);
    /* D on real, then on fake */
    tg_tensor *in[2] = {real, fake_leaf}, *tg[2] = {ones, zeros};
    for (int k = 0; k < 2; k++) {
        tg_optim_zero_grad(m->od);
        tg_tensor *l = tg_bce_with_logits(c, tg_module_forward(m->d, in[k]), tg[k]);
        losses[k] = tg_tensor_item(l);
        assert_int_equal(tg_backward(c, l), TG_OK);
        assert_int_equal(tg_optim_step(m->od), TG_OK);
        tg_ctx_clear_tape(c);
    }
    /* G through frozen D */
    tg_module_set_frozen(m->d, true);
    tg_optim_zero_grad(m->og);
    tg_tensor_fill_normal(z, 0.0f, 1.0f);
    tg_tensor *l = tg_bce_with_logits(c, tg_module_forward(m->d, tg_module_forward(m->g, z)), ones);
    losses[2] = tg_tensor_item(l);
    assert_int_equal(tg_backward(c, l), TG_OK);
    assert_int_equal(tg_optim_step(m->og), TG_OK);
    tg_ctx_clear_tape(c);
    tg_module_set_frozen(m->d, false);
    tg_tensor_free(z), tg_tensor_free(real), tg_tensor_free(ones), tg_tensor_free(zeros);
    tg_tensor_free(fake_leaf);
}

#ifdef TG_WITH_CUDA
/* gan_step that returns the first failure instead of asserting (for allocation failures) */
static tg_status gan_step_status(tg_ctx *c, gan *m, const float *real_host, int B, float losses[3]) {
    int64_t zs[2] = {B, 16}, xs[4] = {B, 3, 8, 8}, ls[2] = {B, 1};
    tg_tensor *z = tg_tensor_new(c, 2, zs), *real = tg_tensor_new(c, 4, xs);
    tg_tensor *ones = tg_tensor_new(c, 2, ls), *zeros = tg_tensor_new(c, 2, ls);
    tg_tensor *fake_leaf = tg_tensor_new(c, 4, xs);
    tg_status st = (z && real && ones && zeros && fake_leaf) ? TG_OK : TG_ERR_NOMEM;
    if (!st) st = tg_tensor_write(real, real_host, tg_tensor_numel(real));
    if (!st) st = tg_tensor_fill(ones, 1.0f);
    if (!st) st = tg_tensor_fill_normal(z, 0.0f, 1.0f);
    if (!st) {
        bool old = tg_ctx_set_grad_enabled(c, false);
        tg_module_set_training(m->g, false);
        tg_tensor *fake = tg_module_forward(m->g, z);
        tg_ctx_set_grad_enabled(c, old);
        tg_module_set_training(m->g, true);
        st = fake ? tg_tensor_copy(fake_leaf, fake) : TG_ERR_NOMEM;
        tg_ctx_clear_tape(c);
    }
    tg_tensor *in[2] = {real, fake_leaf}, *tg[2] = {ones, zeros};
    for (int k = 0; k < 2 && !st; k++) {
        tg_optim_zero_grad(m->od);
        tg_tensor *l = tg_bce_with_logits(c, tg_module_forward(m->d, in[k]), tg[k]);
        st = l ? tg_backward(c, l) : TG_ERR_NOMEM;
        if (!st) st = tg_optim_step(m->od);
        if (!st) losses[k] = tg_tensor_item(l);
        tg_ctx_clear_tape(c);
    }
    if (!st) {
        tg_module_set_frozen(m->d, true);
        tg_optim_zero_grad(m->og);
        tg_tensor *l = tg_bce_with_logits(c, tg_module_forward(m->d, tg_module_forward(m->g, z)), ones);
        st = l ? tg_backward(c, l) : TG_ERR_NOMEM;
        if (!st) st = tg_optim_step(m->og);
        if (!st) losses[2] = tg_tensor_item(l);
        tg_ctx_clear_tape(c);
        tg_module_set_frozen(m->d, false);
    }
    tg_tensor_free(z), tg_tensor_free(real), tg_tensor_free(ones), tg_tensor_free(zeros);
    tg_tensor_free(fake_leaf);
    return st;
}
#endif

static void test_gan_step(void **state) {
    (void)state;
    NEED_GPU();
    const int B = 8;
    tg_ctx_rng_set(cpu, 5, 0);
    gan a = gan_new(cpu);
    gan b = gan_new(gpu);
    copy_state(b.g, a.g);
    copy_state(b.d, a.d);
    uint64_t seed, off;
    tg_ctx_rng_get(cpu, &seed, &off);
    tg_ctx_rng_set(gpu, seed, off); /* same noise from here on */
    float real[B * 3 * 64];
    tu_seed(9);
    tu_fill(real, B * 3 * 64, -1, 1);
    tg_ctx_stats first = {0}, now;
    for (int step = 0; step < 3; step++) {
        float la[3], lb[3];
        gan_step(cpu, &a, real, B, la);
        gan_step(gpu, &b, real, B, lb);
        tu_close_ff(lb, la, 3, 1e-4, 1e-3, "GAN losses (CUDA vs CPU)");
        /* after the first step, no new device arena chunk and no larger workspace */
        tg_ctx_stats_get(gpu, step == 0 ? &first : &now);
        if (step) {
            assert_int_equal(now.arena_chunk_allocs, first.arena_chunk_allocs);
            assert_int_equal(now.workspace_bytes, first.workspace_bytes);
        }
    }
    tg_tensor *pa[64], *pb[64];
    int n = tg_module_state(a.g, NULL, pa, 64);
    tg_module_state(b.g, NULL, pb, 64);
    for (int i = 0; i < n; i++) {
        float *va = tu_read(pa[i]), *vb = tu_read(pb[i]);
        tu_close_ff(vb, va, tg_tensor_numel(pa[i]), 2e-4, 2e-3, "generator state after 3 steps");
        free(va), free(vb);
    }
    gan_free(&a), gan_free(&b);
}

#ifdef TG_WITH_CUDA
extern long tg_cuda_fail_alloc_at, tg_cuda_alloc_count; /* cuda/backend_cuda.cu's test hook */
#endif

/* Device allocation failures: each device allocation of a GAN step on a fresh context fails in
 * turn; the step reports TG_ERR_NOMEM with a message, nothing crashes, and the same context then
 * steps correctly (the CUDA side of tests/test_faults.c). */
static void test_device_alloc_failures(void **state) {
    (void)state;
    NEED_GPU();
#ifdef TG_WITH_CUDA
    const int B = 4;
    float real[4 * 3 * 64];
    tu_seed(3);
    tu_fill(real, B * 3 * 64, -1, 1);
    int failures = 0;
    for (long k = 1; k < 1000; k++) {
        tg_ctx *c = tg_ctx_new(TG_CUDA, 5);
        assert_non_null(c);
        gan g = gan_new(c);
        float l[3];
        tg_cuda_alloc_count = 0;
        tg_cuda_fail_alloc_at = k;
        tg_status st = gan_step_status(c, &g, real, B, l);
        const int hit = tg_cuda_alloc_count >= k;
        tg_cuda_fail_alloc_at = 0;
        if (!hit) {
            assert_int_equal(st, TG_OK);
            gan_free(&g);
            tg_ctx_free(c);
            break;
        }
        failures++;
        if (st != TG_ERR_NOMEM || !tg_last_error()[0])
            fail_msg("device allocation %ld failed: %s (%s)", k, tg_status_str(st), tg_last_error());
        tg_ctx_clear_tape(c);
        if (gan_step_status(c, &g, real, B, l) != TG_OK) fail_msg("after failure %ld: %s", k, tg_last_error());
        gan_free(&g);
        tg_ctx_free(c);
    }
    print_message("failed each of %d device allocations of a first GAN step\n", failures);
    assert_true(failures > 0);
#endif
}

/* a CUDA context in a build or on a machine without a GPU fails with a message, not a crash */
static void test_no_gpu_message(void **state) {
    (void)state;
    if (gpu) skip();
    assert_true(strstr(why, "CUDA") != NULL || strstr(why, "cuda") != NULL);
    assert_null(strstr(why, "build defect")); /* refused for want of a GPU, not an incomplete table */
    assert_null(tg_ctx_new(TG_CUDA, 1));
    assert_true(strlen(tg_last_error()) > 10);
}

/* cuBLAS and NCCL are opened at the first CUDA context (cuda/libs.cu): in a CUDA build every
 * entry point resolves from the toolkit's libraries, which needs no GPU, so this runs everywhere
 * the CUDA backend is built; a CPU-only build has no such libraries to load. */
#ifdef TG_WITH_CUDA
extern tg_status tg_cuda_libs_load(void); /* cuda/libs.cu's test hook */
#endif
static void test_libraries_resolve(void **state) {
    (void)state;
#ifdef TG_WITH_CUDA
    if (tg_cuda_libs_load() != TG_OK) fail_msg("%s", tg_last_error());
    /* loaded now, so mapped: what the CPU-only test in test_errors.c looks for is really there */
    FILE *f = fopen("/proc/self/maps", "r");
    assert_non_null(f);
    char line[512];
    int mapped = 0;
    while (fgets(line, sizeof line, f)) mapped |= strstr(line, "libcublas") != NULL;
    fclose(f);
    assert_true(mapped);
#else
    skip();
#endif
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_libraries_resolve),
        cmocka_unit_test(test_batch_norm_running),
        cmocka_unit_test(test_op_table),
        cmocka_unit_test(test_op_table_bf16),
        cmocka_unit_test(test_op_table_tf32),
        cmocka_unit_test(test_accumulating_backwards),
        cmocka_unit_test(test_pool_nan),
        cmocka_unit_test(test_grid_stride_wrap),
        cmocka_unit_test(test_rng),
        cmocka_unit_test(test_optimizers),
        cmocka_unit_test(test_optimizer_many_tensors),
        cmocka_unit_test(test_gan_step),
        cmocka_unit_test(test_device_alloc_failures),
        cmocka_unit_test(test_no_gpu_message),
    };
    return cmocka_run_group_tests_name("cuda vs cpu", tests, setup, teardown);
}
