/*
 * augment.c — tg_diff_augment: differentiable augmentation (Zhao et al. 2020, "Differentiable
 * Augmentation for Data-Efficient GAN Training"), applied to real and fake batches alike before a
 * discriminator so that gradients flow through it into a generator. Per sample: colour
 * (brightness, saturation, contrast), translation by up to 1/8 of the size with zeros shifted
 * in, and a cutout square of half the size; parameters drawn from the context's RNG on the host
 * (so every backend draws the same), the per-element math in tg_math.h, the kernels in
 * lib/cpu/augment.c and cuda/augment.cu.
 */
#include "core.h"

#include <stdlib.h>
#include <string.h>

static void augment_backward(tg_ctx *ctx, tg_node *nd) {
    tg_tensor *x = nd->in[0], *y = nd->out;
    float *dx = tg_grad_of(ctx, x);
    if (!dx) return;
    const tg_aug a = {x->shape[0], x->shape[1], x->shape[2], x->shape[3], tg_mem_of(nd->saved[0]), tg_mem_of(nd->saved[1])};
    ctx->be->augment_bwd(ctx, &a, tg_mem_of(y->grad), tg_mem_f32(dx, x->numel));
}

tg_tensor *tg_diff_augment_with(tg_ctx *ctx, tg_tensor *x, const float *params) {
    static const char *fn = "tg_diff_augment";
    if (!tg_check_nchw(ctx, x, fn)) return NULL;
    const int64_t N = x->shape[0], np = N * TG_AUG_NPARAM;
    tg_tensor *p = tg_result(ctx, 1, &np, fn), *mean = tg_result(ctx, 1, &N, fn);
    tg_tensor *y = tg_result(ctx, 4, x->shape, fn);
    if (!p || !mean || !y) return NULL;
    if (ctx->be->to_device(ctx, p->data, params, sizeof(float) * (size_t)np) != TG_OK) return NULL;
    const tg_aug a = {N, x->shape[1], x->shape[2], x->shape[3], tg_mem_of(p), tg_mem_of(mean)};
    ctx->be->augment_fwd(ctx, &a, tg_mem_of(x), tg_mem_of(y));
    if (tg_needs_grad(ctx, &x, 1)) {
        tg_node *nd = tg_record(ctx, TG_OP_AUGMENT, augment_backward, y, &x, 1, fn);
        if (!nd) return NULL;
        nd->saved[0] = p;
        nd->saved[1] = mean;
    }
    return y;
}

/* an integer in [lo, hi] from 24 random bits */
static int rand_int(uint32_t bits, int lo, int hi) {
    return lo + (int)((double)(bits >> 8) * (1.0 / 16777216.0) * (double)(hi - lo + 1));
}

tg_tensor *tg_diff_augment(tg_ctx *ctx, tg_tensor *x, unsigned policy) {
    static const char *fn = "tg_diff_augment";
    if (!tg_check_nchw(ctx, x, fn)) return NULL;
    if (policy & ~(unsigned)(TG_AUG_COLOR | TG_AUG_TRANSLATION | TG_AUG_CUTOUT)) {
        tg_fail(TG_ERR_INVALID, fn, "unknown policy bits 0x%x", policy);
        return NULL;
    }
    if (x->shape[2] > TG_MAX_SIDE || x->shape[3] > TG_MAX_SIDE) {
        char b[64];
        tg_fail(TG_ERR_SHAPE, fn, "x %s: sides must be at most %d", SHP(x, b), TG_MAX_SIDE);
        return NULL;
    }
    const int64_t N = x->shape[0];
    const int H = (int)x->shape[2], W = (int)x->shape[3];
    size_t pbytes;
    float *p = tg_bytes_ok(N * TG_AUG_NPARAM, sizeof(float), &pbytes) ? malloc(pbytes) : NULL;
    if (!p) {
        tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
        return NULL;
    }
    const uint64_t off = tg_rng_take(ctx, 2 * N);
    const int shy = (int)(H * 0.125 + 0.5), shx = (int)(W * 0.125 + 0.5);
    const int cy = (int)(H * 0.5 + 0.5), cx = (int)(W * 0.5 + 0.5), csz = cy < cx ? cy : cx;
    for (int64_t n = 0; n < N; n++) {
        tg_u32x4 a = tg_philox(off + 2 * (uint64_t)n, ctx->rng_stream, ctx->seed);
        tg_u32x4 b = tg_philox(off + 2 * (uint64_t)n + 1, ctx->rng_stream, ctx->seed);
        float *q = p + n * TG_AUG_NPARAM;
        q[0] = 0.0f, q[1] = 1.0f, q[2] = 1.0f, q[3] = q[4] = q[5] = q[6] = q[7] = 0.0f;
        if (policy & TG_AUG_COLOR) {
            q[0] = tg_u01(a.v[0]) - 0.5f;        /* brightness in (-0.5, 0.5] */
            q[1] = 2.0f * tg_u01(a.v[1]);        /* saturation in (0, 2] */
            q[2] = tg_u01(a.v[2]) + 0.5f;        /* contrast in (0.5, 1.5] */
        }
        if (policy & TG_AUG_TRANSLATION) {
            q[3] = (float)rand_int(a.v[3], -shy, shy);
            q[4] = (float)rand_int(b.v[0], -shx, shx);
        }
        if (policy & TG_AUG_CUTOUT) { /* a square of half the size centred anywhere (clipped) */
            q[5] = (float)(rand_int(b.v[1], 0, H - 1) - csz / 2);
            q[6] = (float)(rand_int(b.v[2], 0, W - 1) - csz / 2);
            q[7] = (float)csz;
        }
    }
    tg_tensor *y = tg_diff_augment_with(ctx, x, p);
    free(p);
    return y;
}
