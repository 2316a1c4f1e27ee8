/*
 * model.c — mangagan's two networks, built from a recipe (recipes.c), their optimizers, and the
 * GAN step: the seed's (Keras blog) or the PyTorch example's, with BCE or hinge losses, an
 * exponential moving average of G, DiffAugment and data-parallel gradient averaging.
 */
#define _GNU_SOURCE
#include "mangagan.h"

#include <math.h>
#include <string.h>

static int out_channels(const lspec *l, int width) { return l->lit ? l->lit : l->mult * width; }

/* One network of a recipe as a tg_sequential; *flops gets its forward FLOPs, a convolution's being
 * 2 * N * Cin * Cout * k*k * (the input grid of a ConvTranspose2D, the output grid of a Conv2D). */
static tg_module *build(tg_ctx *ctx, const recipe *r, const lspec *ls, int in_ch, int width,
                        int spatial, double *flops, int batch, float bn_momentum, int init, int no_bn) {
    tg_module *m = need(tg_sequential(ctx));
    int ch = in_ch, hw = spatial;
    *flops = 0;
    for (int i = 0; i < MAX_LAYERS && ls[i].kind != LAYER_END; i++) {
        const lspec *l = &ls[i];
        int out = out_channels(l, width);
        tg_module *layer = NULL;
        if (l->kind == LAYER_CONVT) {
            *flops += 2.0 * batch * ch * out * l->k * l->k * hw * hw;
            layer = tg_layer_conv_transpose2d(ctx, ch, out, l->k, l->s, l->p, r->bias);
            hw = (hw - 1) * l->s - 2 * l->p + l->k;
        } else if (l->kind == LAYER_CONV) {
            hw = (hw + 2 * l->p - l->k) / l->s + 1;
            *flops += 2.0 * batch * ch * out * l->k * l->k * hw * hw;
            layer = tg_layer_conv2d(ctx, ch, out, l->k, l->s, l->p, r->bias);
        } else if (l->kind == LAYER_FLATTEN) {
            layer = tg_layer_flatten(ctx);
            out = ch * hw * hw;
        } else {
            *flops += 2.0 * batch * ch * out;
            layer = tg_layer_dense(ctx, ch, out, r->bias);
        }
        TRY(tg_sequential_add(m, need(layer)));
        if (l->bn && !no_bn) TRY(tg_sequential_add(m, need(tg_layer_batch_norm(ctx, out, bn_momentum, r->bn_eps))));
        if (l->act == ACT_LEAKY) TRY(tg_sequential_add(m, need(tg_layer_leaky_relu(ctx, 0.2f))));
        if (l->act == ACT_RELU) TRY(tg_sequential_add(m, need(tg_layer_relu(ctx))));
        if (l->act == ACT_TANH) TRY(tg_sequential_add(m, need(tg_layer_tanh(ctx))));
        ch = out;
    }
    if (init) TRY(tg_module_init(m, r->init, r->init_std, r->bn_std));
    return m;
}

static tg_optim *adam_for(gan *g, tg_module *m, float lr) {
    tg_tensor *p[64];
    int n = tg_module_params(m, p, 64);
    tg_optim *o = need(tg_adam(g->ctx, p, n, lr, g->r->beta1, g->r->beta2, g->r->eps));
    tg_optim_set_check_finite(o, true);
    if (g->r->keras_eps) TRY(tg_adam_set_eps_mode(o, TG_ADAM_EPS_KERAS));
    return o;
}

void gan_init(gan *g, const recipe *r, int width, int batch, tg_device dev, uint64_t seed,
                     int with_optim) {
    memset(g, 0, sizeof *g);
    g->rc = *r;
    g->r = r = &g->rc;
    g->width = width;
    g->batch = batch;
    g->world = 1;
    g->ctx = tg_ctx_new(dev, seed);
    if (!g->ctx) die("%s", tg_last_error());
    double fg, fd;
    g->G = build(g->ctx, r, r->g, r->nz, width, 1, &fg, batch, r->bn_momentum, 1, 0);
    g->D = build(g->ctx, r, r->d, 3, width, SIZE, &fd, batch, r->bn_momentum, 1, r->sn);
    if (r->sn) TRY(tg_module_spectral_norm(g->D, 1, 1e-12f));
    if (r->ema > 0) {
        /* starts as a copy of G (drawing nothing from the RNG); its BatchNorm layers keep the
         * statistics of the last batch they saw (momentum 1), re-estimated before each use */
        double unused;
        g->Gema = build(g->ctx, r, r->g, r->nz, width, 1, &unused, batch, 1.0f, 0, 0);
        TRY(tg_module_ema(g->Gema, g->G, 0.0f));
    }
    /* seed: G fwd (inference) + 2x D fwd/bwd (3 each) + G fwd/bwd (3) + D fwd/dx (2);
     * dcgan: G fwd + 2x D fwd/bwd + D fwd/dx + G bwd (2) */
    g->flops_per_step = r->keras_step ? 4 * fg + 8 * fd : 3 * fg + 8 * fd;
    int64_t zs[4] = {batch, r->nz, 1, 1}, xs[4] = {batch, 3, SIZE, SIZE}, ls[2] = {batch, 1};
    int64_t fs[4] = {64, r->nz, 1, 1};
    g->z = need(tg_tensor_new(g->ctx, 4, zs));
    g->real = need(tg_tensor_new(g->ctx, 4, xs));
    g->fake_copy = need(tg_tensor_new(g->ctx, 4, xs));
    /* D's output is [B,1] (dense head) or [B,1,1,1] (conv head): targets match it */
    int dense_head = 0;
    for (int i = 0; i < MAX_LAYERS && r->d[i].kind != LAYER_END; i++) dense_head |= r->d[i].kind == LAYER_DENSE;
    int64_t ts[4] = {batch, 1, 1, 1};
    g->t_real = need(dense_head ? tg_tensor_new(g->ctx, 2, ls) : tg_tensor_new(g->ctx, 4, ts));
    g->t_fake = need(dense_head ? tg_tensor_new(g->ctx, 2, ls) : tg_tensor_new(g->ctx, 4, ts));
    g->fixed = need(tg_tensor_new(g->ctx, 4, fs));
    TRY(tg_tensor_fill_normal(g->fixed, 0.0f, 1.0f));
    if (with_optim) {
        g->og = adam_for(g, g->G, r->lr_g);
        g->od = adam_for(g, g->D, r->lr_d);
    }
}

void gan_set_precision(gan *g, const char *name) { set_precision(g->ctx, name); }

void gan_free(gan *g) {
    tg_dist_grads_free(g->sync_g), tg_dist_grads_free(g->sync_d);
    tg_optim_free(g->og), tg_optim_free(g->od);
    tg_tensor_free(g->z), tg_tensor_free(g->real), tg_tensor_free(g->fake_copy);
    tg_tensor_free(g->t_real), tg_tensor_free(g->t_fake), tg_tensor_free(g->fixed);
    tg_module_free(g->G), tg_module_free(g->D), tg_module_free(g->Gema);
    tg_ctx_free(g->ctx);
}

/* mean sigmoid of logits, off the tape */
static float mean_prob(tg_ctx *ctx, tg_tensor *logits) {
    bool old = tg_ctx_set_grad_enabled(ctx, false);
    float p = tg_tensor_item(tg_mean(ctx, tg_sigmoid(ctx, logits)));
    tg_ctx_set_grad_enabled(ctx, old);
    return p;
}

/* D's loss on its logits for a real (is_real) or a fake batch.
 *   LOSS_BCE, LOSS_NS: binary cross-entropy against the targets of the step (soft and noisy for the
 *       seed's bce, 1 and 0 otherwise: the non-saturating loss of Goodfellow et al.);
 *   LOSS_HINGE (Lim & Ye 2017): mean(relu(1 - D(x))) on real, mean(relu(1 + D(G(z)))) on fake. */
static tg_tensor *d_loss(gan *g, tg_tensor *logits, int is_real) {
    if (g->r->loss != LOSS_HINGE) return tg_bce_with_logits(g->ctx, logits, is_real ? g->t_real : g->t_fake);
    /* t_real holds 1 in every step of a loss other than LOSS_BCE */
    tg_tensor *m = is_real ? tg_sub(g->ctx, g->t_real, logits) : tg_add(g->ctx, g->t_real, logits);
    return tg_mean(g->ctx, tg_relu(g->ctx, m));
}

/* G's loss on D's logits for its fakes: BCE against the real targets, or -mean(D(G(z))) (hinge) */
static tg_tensor *g_loss(gan *g, tg_tensor *logits) {
    if (g->r->loss != LOSS_HINGE) return tg_bce_with_logits(g->ctx, logits, g->t_real);
    return tg_scale(g->ctx, tg_mean(g->ctx, logits), -1.0f);
}

/* What D sees: x, or x through DiffAugment when --augment is on (real and fake alike). */
static tg_tensor *d_forward(gan *g, tg_tensor *x) {
    if (g->r->aug) x = need(tg_diff_augment(g->ctx, x, g->r->aug));
    return tg_module_forward(g->D, x);
}

/* D on x, real or fake; one backward. Returns the loss, stores mean D(x). last: the last backward
 * before D's optimizer step, during which its gradients' reduction over the ranks can start. */
static float d_pass(gan *g, tg_tensor *x, int is_real, float *prob, int last) {
    tg_tensor *logits = d_forward(g, x);
    tg_tensor *l = d_loss(g, logits, is_real);
    if (!l) die("%s", tg_last_error());
    *prob = mean_prob(g->ctx, logits);
    if (last && g->sync_d) TRY(tg_dist_grads_arm(g->sync_d));
    TRY(tg_backward(g->ctx, l));
    return tg_tensor_item(l);
}

/* An optimizer step whose gradients hold a NaN or infinity changes nothing (finite checking is
 * on): training stops there, naming the step, and the last checkpoint on disk stays the last
 * good one. */
static void opt_step(gan *g, tg_optim *o) {
    tg_dist_grads *sync = o == g->od ? g->sync_d : g->sync_g;
    if (sync) TRY(tg_dist_grads_sync(sync)); /* the mean over the ranks' shares of the batch */
    tg_status st = tg_optim_step(o);
    if (st == TG_ERR_NUMERIC)
        die("training diverged at step %ld: %s; nothing of this step was applied%s%s%s", g->step,
            tg_last_error(), g->out ? ", and the last checkpoint in " : "", g->out ? g->out : "",
            g->out ? " is the last good one" : "");
    if (st) die("%s", tg_last_error());
}

/* G trains through the frozen D: D's parameters get no gradients and its BatchNorm keeps its
 * running statistics, but gradients flow through D into G. */
static float g_through_frozen_d(gan *g, tg_tensor *fake) {
    tg_module_set_frozen(g->D, true);
    tg_tensor *l = g_loss(g, d_forward(g, fake));
    if (!l) die("%s", tg_last_error());
    if (g->sync_g) TRY(tg_dist_grads_arm(g->sync_g));
    TRY(tg_backward(g->ctx, l));
    opt_step(g, g->og);
    if (g->Gema) {
        /* the average's decay ramps up over the first steps, (1 + t) / (10 + t), so early
         * random weights do not linger in it */
        double t = (double)g->step, d = fmin((double)g->r->ema, (1.0 + t) / (10.0 + t));
        TRY(tg_module_ema(g->Gema, g->G, (float)d));
        g->ema_calibrated = 0;
    }
    tg_module_set_frozen(g->D, false);
    tg_ctx_clear_tape(g->ctx);
    return tg_tensor_item(l);
}

/* One training step on the batch already in g->real. */
void gan_step(gan *g, step_stats *st) {
    tg_ctx *ctx = g->ctx;
    const recipe *r = g->r;
    double t0 = now();
    if (r->soft_labels && r->loss == LOSS_BCE) {
        TRY(tg_tensor_fill_uniform(g->t_real, 0.8f, 1.0f));
        TRY(tg_tensor_fill_uniform(g->t_fake, 0.0f, 0.2f));
    } else {
        TRY(tg_tensor_fill(g->t_real, 1.0f));
        TRY(tg_tensor_fill(g->t_fake, 0.0f));
    }
    TRY(tg_tensor_fill_normal(g->z, 0.0f, 1.0f));
    if (r->keras_step) {
        /* fakes from G in inference mode, off the tape */
        bool old = tg_ctx_set_grad_enabled(ctx, false);
        tg_module_set_training(g->G, false);
        TRY(tg_tensor_copy(g->fake_copy, need(tg_module_forward(g->G, g->z))));
        tg_module_set_training(g->G, true);
        tg_ctx_set_grad_enabled(ctx, old);
        tg_ctx_clear_tape(ctx);
        tg_optim_zero_grad(g->od);
        st->d_real = d_pass(g, g->real, 1, &st->dx, 1);
        opt_step(g, g->od);
        tg_ctx_clear_tape(ctx);
        TRY(tg_ctx_sync(ctx));
        double t1 = now();
        tg_optim_zero_grad(g->od);
        st->d_fake = d_pass(g, g->fake_copy, 0, &st->dgz, 1);
        opt_step(g, g->od);
        tg_ctx_clear_tape(ctx);
        TRY(tg_ctx_sync(ctx));
        double t2 = now();
        /* G on fresh noise, against the soft real targets */
        tg_optim_zero_grad(g->og);
        TRY(tg_tensor_fill_normal(g->z, 0.0f, 1.0f));
        st->g = g_through_frozen_d(g, need(tg_module_forward(g->G, g->z)));
        st->t_real = t1 - t0, st->t_fake = t2 - t1, st->t_g = now() - t2;
        return;
    }
    /* the PyTorch example: one D update from real + detached fake, then G on the same fakes */
    tg_optim_zero_grad(g->od);
    st->d_real = d_pass(g, g->real, 1, &st->dx, 0);
    tg_ctx_clear_tape(ctx); /* D's gradients are in its parameters; its graph can go */
    TRY(tg_ctx_sync(ctx));
    double t1 = now();
    tg_tensor *fake = need(tg_module_forward(g->G, g->z));
    st->d_fake = d_pass(g, tg_detach(ctx, fake), 0, &st->dgz, 1);
    opt_step(g, g->od);
    TRY(tg_ctx_sync(ctx));
    double t2 = now();
    tg_optim_zero_grad(g->og);
    st->g = g_through_frozen_d(g, fake);
    st->t_real = t1 - t0, st->t_fake = t2 - t1, st->t_g = now() - t2;
}

