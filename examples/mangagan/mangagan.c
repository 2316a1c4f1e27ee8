/*
 * mangagan — a DCGAN that learns to draw 64x64 anime faces, written against <tensorgan.h> only.
 *
 *   mangagan train [--data P] [--out DIR] [--steps N] [--batch B] [--recipe seed|dcgan|modern]
 *                  [--device auto|cpu|cuda] [--seed S] [--width W] [--flip] [--resume] ...
 *   mangagan eval --checkpoint F | --images P  [--data P] [--n N] [--seed S] [--no-ema]
 *   mangagan sample --checkpoint F [--n N] --out X.png|DIR [--seed S] [--device D]
 *   mangagan interpolate --checkpoint F --out X.png [--rows R] [--cols C] [--seed S]
 *   mangagan bench [--device D] [--batch B] [--recipe R] [--width W] [--steps N] [--warmup N]
 *   mangagan pack --data DIR --out FILE[.xz]
 * (`mangagan COMMAND --help` lists each option, its default and its meaning.)
 *
 * The recipes are data (struct recipe below), not programs (modern: see its row):
 *   seed  — the Keras 2.2.4 blog model: biases, Glorot-uniform init, BatchNorm (Keras momentum
 *           0.5, eps 1e-3) + LeakyReLU(0.2) everywhere, an extra 3x3 conv in G, dense head in D,
 *           Adam (D 2e-4, G 1.5e-4, beta1 0.5, Keras epsilon 1e-7), soft noisy labels; G makes
 *           the fake batch in inference mode, D updates on real then on fake, G trains through
 *           the frozen D on fresh noise.
 *   dcgan — the PyTorch DCGAN example: no biases, ReLU in G, conv head, N(0, 0.02) init, hard
 *           labels, Adam 2e-4 for both (eps 1e-8); one D update from real + detached fake, then G
 *           through the frozen D on the same fakes.
 * Everything that makes a step (weights, Adam moments and step counts, BatchNorm buffers, the
 * RNG offset, the data order) is in the checkpoint, so --resume continues bit for bit on the CPU
 * with the same thread count.
 *
 * Data-parallel: `mpirun -np N mangagan train ...` splits each global batch of --batch images
 * into N shares (one per rank, from the same data order), averages the gradients over the ranks
 * before every optimizer step (tg_dist) and BatchNorm's running statistics after it, draws noise
 * and augmentations from a rank-distinct RNG stream, and writes samples, log and checkpoints
 * from rank 0 only. A checkpoint resumes bit for bit on the same number of ranks.
 */
#define _GNU_SOURCE
#define EXAMPLE_NAME "mangagan"
#include "../example.h"
#include "../cli.h"

#include "plot.h"

#include <dirent.h>
#include <errno.h>
#include <math.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#define SIZE 64
#define MAX_LAYERS 12

/* ---- recipes ---------------------------------------------------------------------------- */
typedef struct {
    char kind;     /* 'T' conv-transpose, 'C' conv, 'F' flatten, 'D' dense */
    int mult, lit; /* output channels: lit if non-zero, else mult * width */
    int k, s, p;
    int bn;        /* BatchNorm after the layer */
    char act;      /* 'l' LeakyReLU(0.2), 'r' ReLU, 't' tanh, 0 none */
} lspec;

typedef struct {
    const char *name;
    int nz;
    lspec g[MAX_LAYERS], d[MAX_LAYERS];
    int bias;
    tg_init_kind init;
    float init_std, bn_std, bn_momentum, bn_eps;
    float lr_g, lr_d, beta1, beta2, eps;
    int keras_eps;
    int soft_labels;  /* real ~ U[0.8,1), fake ~ U[0,0.2); else 1 and 0 */
    int keras_step;   /* seed's step (see the file comment) vs the PyTorch example's */
    char loss;        /* 'b' BCE on the labels above, 'h' hinge (see d_loss / g_loss) */
    float ema;        /* decay of G's exponential moving average (0: none) */
    int sn;           /* spectral normalisation on D's layers, which then drop BatchNorm (SNGAN) */
    unsigned aug;     /* DiffAugment policy (TG_AUG_*) on every batch D sees, 0: none */
} recipe;

static const recipe RECIPES[] = {
    {"seed", 100,
     {{'T', 8, 0, 4, 1, 0, 1, 'l'}, {'T', 4, 0, 4, 2, 1, 1, 'l'}, {'T', 2, 0, 4, 2, 1, 1, 'l'},
      {'T', 1, 0, 4, 2, 1, 1, 'l'}, {'C', 1, 0, 3, 1, 1, 1, 'l'}, {'T', 0, 3, 4, 2, 1, 0, 't'}},
     {{'C', 1, 0, 4, 2, 1, 0, 'l'}, {'C', 2, 0, 4, 2, 1, 1, 'l'}, {'C', 4, 0, 4, 2, 1, 1, 'l'},
      {'C', 8, 0, 4, 2, 1, 1, 'l'}, {'F', 0, 0, 0, 0, 0, 0, 0}, {'D', 0, 1, 0, 0, 0, 0, 0}},
     1, TG_INIT_GLOROT_UNIFORM, 0.0f, 0.0f, 0.5f, 1e-3f,
     1.5e-4f, 2e-4f, 0.5f, 0.999f, 1e-7f, 1, 1, 1, 'b', 0.0f, 0, 0},
    {"dcgan", 100,
     {{'T', 8, 0, 4, 1, 0, 1, 'r'}, {'T', 4, 0, 4, 2, 1, 1, 'r'}, {'T', 2, 0, 4, 2, 1, 1, 'r'},
      {'T', 1, 0, 4, 2, 1, 1, 'r'}, {'T', 0, 3, 4, 2, 1, 0, 't'}},
     {{'C', 1, 0, 4, 2, 1, 0, 'l'}, {'C', 2, 0, 4, 2, 1, 1, 'l'}, {'C', 4, 0, 4, 2, 1, 1, 'l'},
      {'C', 8, 0, 4, 2, 1, 1, 'l'}, {'C', 0, 1, 4, 1, 0, 0, 0}},
     0, TG_INIT_NORMAL, 0.02f, 0.02f, 0.1f, 1e-5f,
     2e-4f, 2e-4f, 0.5f, 0.999f, 1e-8f, 0, 0, 0, 'b', 0.0f, 0, 0},
    /* modern: dcgan's networks and step with the hinge loss, an EMA generator and DiffAugment
     * (colour, translation, cutout) on every batch D sees; chosen by measurement (SWD to held-out
     * faces after 2000 steps at width 32): examples/mangagan/README.md, "Recipes" */
    {"modern", 100,
     {{'T', 8, 0, 4, 1, 0, 1, 'r'}, {'T', 4, 0, 4, 2, 1, 1, 'r'}, {'T', 2, 0, 4, 2, 1, 1, 'r'},
      {'T', 1, 0, 4, 2, 1, 1, 'r'}, {'T', 0, 3, 4, 2, 1, 0, 't'}},
     {{'C', 1, 0, 4, 2, 1, 0, 'l'}, {'C', 2, 0, 4, 2, 1, 1, 'l'}, {'C', 4, 0, 4, 2, 1, 1, 'l'},
      {'C', 8, 0, 4, 2, 1, 1, 'l'}, {'C', 0, 1, 4, 1, 0, 0, 0}},
     0, TG_INIT_NORMAL, 0.02f, 0.02f, 0.1f, 1e-5f,
     2e-4f, 2e-4f, 0.5f, 0.999f, 1e-8f, 0, 0, 0, 'h', 0.999f, 0, TG_AUG_COLOR | TG_AUG_TRANSLATION | TG_AUG_CUTOUT},
};

#define RECIPE_NAMES "seed, dcgan or modern"

static char loss_code(const char *name) { return !strcmp(name, "hinge") ? 'h' : !strcmp(name, "ns") ? 'n' : 'b'; }
static const char *loss_name(char c) { return c == 'h' ? "hinge" : c == 'n' ? "ns" : "bce"; }

/* "color,translation,cutout" (DiffAugment's names) <-> TG_AUG_* bits; -1 for an unknown word */
static long aug_parse(const char *v) {
    long bits = 0;
    char buf[128];
    snprintf(buf, sizeof buf, "%s", v);
    for (char *save = NULL, *t = strtok_r(buf, ",", &save); t; t = strtok_r(NULL, ",", &save)) {
        if (!strcmp(t, "color")) bits |= TG_AUG_COLOR;
        else if (!strcmp(t, "translation")) bits |= TG_AUG_TRANSLATION;
        else if (!strcmp(t, "cutout")) bits |= TG_AUG_CUTOUT;
        else if (strcmp(t, "none")) return -1;
    }
    return bits;
}
static const char *aug_name(unsigned a, char *b, size_t n) {
    snprintf(b, n, "%s%s%s%s", a & TG_AUG_COLOR ? "color," : "", a & TG_AUG_TRANSLATION ? "translation," : "",
             a & TG_AUG_CUTOUT ? "cutout," : "", a ? "" : "none");
    size_t l = strlen(b);
    if (l && b[l - 1] == ',') b[l - 1] = 0;
    return b;
}

static const recipe *find_recipe(const char *name) {
    for (size_t i = 0; i < sizeof RECIPES / sizeof RECIPES[0]; i++)
        if (!strcmp(RECIPES[i].name, name)) return &RECIPES[i];
    return NULL;
}

/* ---- small utilities (die, TRY, need, now, mix64: ../example.h) -------------------------- */
static int mkdirs(const char *path) {
    char tmp[4096];
    snprintf(tmp, sizeof tmp, "%s", path);
    for (char *p = tmp + 1; *p; p++) {
        if (*p != '/') continue;
        *p = 0;
        if (mkdir(tmp, 0755) != 0 && errno != EEXIST) return -1;
        *p = '/';
    }
    return mkdir(tmp, 0755) != 0 && errno != EEXIST ? -1 : 0;
}

/* ---- the model -------------------------------------------------------------------------- */
typedef struct {
    recipe rc;          /* the recipe with the command line's changes (loss, rates, EMA) */
    const recipe *r;    /* = &rc */
    int width, batch;
    tg_ctx *ctx;
    tg_module *G, *D;
    tg_module *Gema;    /* G's exponential moving average (--ema), or NULL */
    int ema_calibrated; /* Gema's BatchNorm statistics match its weights (see sampler) */
    tg_optim *og, *od;
    tg_tensor *z, *real, *fake_copy, *t_real, *t_fake, *fixed;
    double flops_per_step;
    long step;          /* the step being trained (1-based), for messages */
    /* data-parallel (tg_dist): batch is this rank's share of a global batch of batch * world */
    tg_dist *dist;
    int rank, world;
    tg_dist_grads *sync_g, *sync_d; /* gradient averagers of G's and D's parameters */
    tg_tensor *bn_stats[64];        /* BatchNorm running statistics of G and D, averaged per step */
    int n_bn_stats;
    const char *out;    /* the output directory, for messages (NULL in bench) */
} gan;

static int out_channels(const lspec *l, int width) { return l->lit ? l->lit : l->mult * width; }

/* forward FLOPs of a conv-like layer: 2 * N * Cin * Cout * k*k * (input grid for T, output for C) */
static tg_module *build(tg_ctx *ctx, const recipe *r, const lspec *ls, int in_ch, int width,
                        int spatial, double *flops, int batch, float bn_momentum, int init, int no_bn) {
    tg_module *m = need(tg_sequential(ctx));
    int ch = in_ch, hw = spatial;
    *flops = 0;
    for (int i = 0; i < MAX_LAYERS && ls[i].kind; i++) {
        const lspec *l = &ls[i];
        int out = out_channels(l, width);
        tg_module *layer = NULL;
        if (l->kind == 'T') {
            *flops += 2.0 * batch * ch * out * l->k * l->k * hw * hw;
            layer = tg_layer_conv_transpose2d(ctx, ch, out, l->k, l->s, l->p, r->bias);
            hw = (hw - 1) * l->s - 2 * l->p + l->k;
        } else if (l->kind == 'C') {
            hw = (hw + 2 * l->p - l->k) / l->s + 1;
            *flops += 2.0 * batch * ch * out * l->k * l->k * hw * hw;
            layer = tg_layer_conv2d(ctx, ch, out, l->k, l->s, l->p, r->bias);
        } else if (l->kind == 'F') {
            layer = tg_layer_flatten(ctx);
            out = ch * hw * hw;
        } else {
            *flops += 2.0 * batch * ch * out;
            layer = tg_layer_dense(ctx, ch, out, r->bias);
        }
        TRY(tg_sequential_add(m, need(layer)));
        if (l->bn && !no_bn) TRY(tg_sequential_add(m, need(tg_layer_batch_norm(ctx, out, bn_momentum, r->bn_eps))));
        if (l->act == 'l') TRY(tg_sequential_add(m, need(tg_layer_leaky_relu(ctx, 0.2f))));
        if (l->act == 'r') TRY(tg_sequential_add(m, need(tg_layer_relu(ctx))));
        if (l->act == 't') TRY(tg_sequential_add(m, need(tg_layer_tanh(ctx))));
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

static void gan_init(gan *g, const recipe *r, int width, int batch, tg_device dev, uint64_t seed,
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
    for (int i = 0; i < MAX_LAYERS && r->d[i].kind; i++) dense_head |= r->d[i].kind == 'D';
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

static void gan_free(gan *g) {
    tg_dist_grads_free(g->sync_g), tg_dist_grads_free(g->sync_d);
    tg_optim_free(g->og), tg_optim_free(g->od);
    tg_tensor_free(g->z), tg_tensor_free(g->real), tg_tensor_free(g->fake_copy);
    tg_tensor_free(g->t_real), tg_tensor_free(g->t_fake), tg_tensor_free(g->fixed);
    tg_module_free(g->G), tg_module_free(g->D), tg_module_free(g->Gema);
    tg_ctx_free(g->ctx);
}

typedef struct {
    float d_real, d_fake, g, dx, dgz;
    double t_real, t_fake, t_g; /* phase seconds (synchronised) */
} step_stats;

/* mean sigmoid of logits, off the tape */
static float mean_prob(tg_ctx *ctx, tg_tensor *logits) {
    bool old = tg_ctx_set_grad_enabled(ctx, false);
    float p = tg_tensor_item(tg_mean(ctx, tg_sigmoid(ctx, logits)));
    tg_ctx_set_grad_enabled(ctx, old);
    return p;
}

/* D's loss on its logits for a real (is_real) or a fake batch.
 *   'b' (bce, ns): binary cross-entropy against the targets of the step (soft and noisy for the
 *       seed's bce, 1 and 0 otherwise: the non-saturating loss of Goodfellow et al.);
 *   'h' (hinge, Lim & Ye 2017): mean(relu(1 - D(x))) on real, mean(relu(1 + D(G(z)))) on fake. */
static tg_tensor *d_loss(gan *g, tg_tensor *logits, int is_real) {
    if (g->r->loss != 'h') return tg_bce_with_logits(g->ctx, logits, is_real ? g->t_real : g->t_fake);
    /* t_real holds 1 in every step of a non-'b' loss */
    tg_tensor *m = is_real ? tg_sub(g->ctx, g->t_real, logits) : tg_add(g->ctx, g->t_real, logits);
    return tg_mean(g->ctx, tg_relu(g->ctx, m));
}

/* G's loss on D's logits for its fakes: BCE against the real targets, or -mean(D(G(z))) (hinge) */
static tg_tensor *g_loss(gan *g, tg_tensor *logits) {
    if (g->r->loss != 'h') return tg_bce_with_logits(g->ctx, logits, g->t_real);
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
static void gan_step(gan *g, step_stats *st) {
    tg_ctx *ctx = g->ctx;
    const recipe *r = g->r;
    double t0 = now();
    if (r->soft_labels && r->loss == 'b') {
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

/* ---- images ----------------------------------------------------------------------------- */
/* Writes n images (uint8 [n][S][S][3]) as a grid with cols columns and 2-pixel gutters. */
static void write_grid(const char *path, const uint8_t *img, int n, int cols) {
    const int rows = (n + cols - 1) / cols, pad = 2;
    const int W = cols * SIZE + (cols + 1) * pad, H = rows * SIZE + (rows + 1) * pad;
    uint8_t *g = need(malloc((size_t)W * H * 3));
    memset(g, 255, (size_t)W * H * 3);
    for (int i = 0; i < n; i++) {
        int x0 = pad + (i % cols) * (SIZE + pad), y0 = pad + (i / cols) * (SIZE + pad);
        for (int y = 0; y < SIZE; y++)
            memcpy(g + ((size_t)(y0 + y) * W + x0) * 3, img + ((size_t)i * SIZE + y) * SIZE * 3, SIZE * 3);
    }
    TRY(tg_image_save_png(path, g, W, H));
    free(g);
}

/* Runs f(g, u) with the context's RNG at its own fixed position (stream `which`), then puts the
 * RNG back where it was: sampling and evaluation never change what training draws. */
static void with_rng(gan *g, uint64_t which, void (*f)(gan *, void *), void *u) {
    uint64_t seed, off;
    tg_ctx_rng_get(g->ctx, &seed, &off);
    tg_ctx_rng_set(g->ctx, mix64(seed ^ which), 0);
    f(g, u);
    tg_ctx_rng_set(g->ctx, seed, off);
}

static void recalibrate_draw(gan *g, void *u) {
    (void)u;
    TRY(tg_tensor_fill_normal(g->z, 0.0f, 1.0f));
    bool old = tg_ctx_set_grad_enabled(g->ctx, false);
    tg_module_set_training(g->Gema, true);
    need(tg_module_forward(g->Gema, g->z));
    tg_ctx_set_grad_enabled(g->ctx, old);
    tg_ctx_clear_tape(g->ctx);
}

/* The generator that samples: the moving average (its BatchNorm statistics re-estimated on one
 * batch of noise from a fixed RNG position) when --ema is on, else G. */
static tg_module *sampler(gan *g) {
    if (!g->Gema) return g->G;
    if (!g->ema_calibrated) { /* once per change of its weights: grid, evaluation and checkpoint share it */
        with_rng(g, 0x656d61, recalibrate_draw, NULL);
        g->ema_calibrated = 1;
    }
    return g->Gema;
}

/* generator m in inference mode on z [n,nz,1,1] -> uint8 images */
static uint8_t *generate(gan *g, tg_module *m, tg_tensor *z) {
    int64_t n = tg_tensor_dim(z, 0);
    bool old = tg_ctx_set_grad_enabled(g->ctx, false);
    tg_module_set_training(m, false);
    tg_tensor *x = need(tg_module_forward(m, z));
    uint8_t *img = need(malloc((size_t)n * SIZE * SIZE * 3));
    TRY(tg_tensor_to_rgb(x, img));
    tg_module_set_training(m, true);
    tg_ctx_set_grad_enabled(g->ctx, old);
    tg_ctx_clear_tape(g->ctx);
    return img;
}

/* ---- evaluation: sliced Wasserstein distance to real faces ------------------------------ */
typedef struct {
    tg_module *m;
    uint8_t *out;
    int64_t n;
} gen_job;

static void generate_n(gan *g, void *u) {
    gen_job *j = u;
    int64_t zs[4] = {64, g->r->nz, 1, 1};
    tg_tensor *z = need(tg_tensor_new(g->ctx, 4, zs));
    for (int64_t i = 0; i < j->n; i += 64) {
        TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
        uint8_t *img = generate(g, j->m, z);
        int64_t k = j->n - i < 64 ? j->n - i : 64;
        memcpy(j->out + (size_t)i * SIZE * SIZE * 3, img, (size_t)k * SIZE * SIZE * 3);
        free(img);
    }
    tg_tensor_free(z);
}

/* n images of ds (the first n) as one block */
static uint8_t *first_images(const tg_dataset *ds, int64_t n, const char *what) {
    if (tg_dataset_count(ds) < n)
        die("%s has %lld images, fewer than the %lld the evaluation compares (--eval-n)", what,
            (long long)tg_dataset_count(ds), (long long)n);
    uint8_t *b = need(malloc((size_t)n * SIZE * SIZE * 3));
    for (int64_t i = 0; i < n; i++) memcpy(b + (size_t)i * SIZE * SIZE * 3, tg_dataset_image(ds, i), SIZE * SIZE * 3);
    return b;
}

/* SWD x1e3 (levels 64, 32, 16 and their mean) between n samples of the sampling generator
 * (noise from a fixed RNG position) and n real images (first_images). */
static double eval_swd(gan *g, const uint8_t *real, int64_t n, double lv[3]) {
    gen_job j = {sampler(g), need(malloc((size_t)n * SIZE * SIZE * 3)), n};
    with_rng(g, 0x6576616c, generate_n, &j);
    tg_swd_options o;
    tg_swd_defaults(&o);
    double mean = 0;
    int nl = 0;
    TRY(tg_swd(j.out, n, real, n, SIZE, &o, lv, 3, &nl, &mean));
    free(j.out);
    return mean;
}

/* ---- command line ----------------------------------------------------------------------- */
/* Options a command leaves unset stay 0/NULL (or -1 where 0 is a value), so a command can tell
 * "not given" from a default: the recipe's, or the checkpoint's on --resume. */
typedef struct {
    const char *data, *out, *recipe, *device, *checkpoint, *loss, *images, *eval_data, *augment;
    long steps, batch, width, sample_every, ckpt_every, n, rows, cols, warmup, log_every;
    long eval_every, eval_n;
    double lr_g, lr_d, ema; /* < 0: not given */
    unsigned long long seed;
    int resume, flip, no_ema;
    long sn;                /* < 0: not given */
    long aug;               /* < 0: not given (from --augment) */
} opts;

static opts O = {.device = "auto", .seed = 1, .warmup = 2, .rows = 8, .cols = 10, .lr_g = -1, .lr_d = -1,
                 .ema = -1, .sn = -1, .aug = -1};

#define OPT_DEVICE {"--device", CLI_STR, &O.device, 0, 0, NULL, "where to run; auto takes a GPU when there is one (default auto)", "auto|cpu|cuda"}
#define OPT_SEED(what) {"--seed", CLI_U64, &O.seed, 0, 9223372036854775807.0, "S", "seed of " what " (default 1)", NULL}
#define OPT_NO_EMA {"--no-ema", CLI_FLAG, &O.no_ema, 0, 0, NULL, "use the trained generator, not its moving average", NULL}
static const cli_opt TRAIN_OPTS[] = {
    {"--data", CLI_STR, &O.data, 0, 0, "DIR|FILE", "PNG/JPEG folder or packed faces (default: the bundled 20,000 faces)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "DIR", "samples, checkpoints, log.csv (default mangagan-out; checked first)", NULL},
    {"--recipe", CLI_STR, &O.recipe, 0, 0, NULL, "networks, losses and optimizer settings (default seed)", "seed|dcgan|modern"},
    {"--steps", CLI_INT, &O.steps, 1, 100000000, "N", "train until this step (default 20000)", NULL},
    {"--batch", CLI_INT, &O.batch, 2, 4096, "B", "images per step, over all ranks (default 64)", NULL},
    {"--width", CLI_INT, &O.width, 1, 1024, "W", "channel width of both networks (default 64)", NULL},
    OPT_DEVICE,
    OPT_SEED("the weights, noise and data order"),
    {"--flip", CLI_FLAG, &O.flip, 0, 0, NULL, "mirror a random half of each batch", NULL},
    {"--resume", CLI_FLAG, &O.resume, 0, 0, NULL, "continue from DIR/checkpoint.safetensors (bit for bit)", NULL},
    {"--sample-every", CLI_INT, &O.sample_every, 1, 100000000, "N", "a grid of samples every N steps and at the end (default 200)", NULL},
    {"--checkpoint-every", CLI_INT, &O.ckpt_every, 1, 100000000, "N", "a checkpoint every N steps and at the end (default 500)", NULL},
    {"--log-every", CLI_INT, &O.log_every, 1, 100000000, "N", "a progress line (ETA) and log.csv row every N steps (default 1 on a terminal, else 50)", NULL},
    {"--loss", CLI_STR, &O.loss, 0, 0, NULL, "GAN loss (default: the recipe's)", "bce|ns|hinge"},
    {"--lr-g", CLI_NUM, &O.lr_g, 1e-8, 1.0, "LR", "G's learning rate (default: the recipe's)", NULL},
    {"--lr-d", CLI_NUM, &O.lr_d, 1e-8, 1.0, "LR", "D's learning rate (default: the recipe's)", NULL},
    {"--ema", CLI_NUM, &O.ema, 0.0, 0.99999, "DECAY", "moving average of G, 0 none (default: the recipe's)", NULL},
    {"--sn", CLI_INT, &O.sn, 0, 1, "0|1", "spectral normalisation in D (default: the recipe's)", NULL},
    {"--augment", CLI_STR, &O.augment, 0, 0, "LIST", "DiffAugment: color,translation,cutout or none (default: the recipe's)", NULL},
    {"--eval-every", CLI_INT, &O.eval_every, 0, 100000000, "N", "SWD to held-out faces every N steps, 0 never (default 0)", NULL},
    {"--eval-n", CLI_INT, &O.eval_n, 1, 100000, "N", "images the SWD compares (default 2048)", NULL},
    {"--eval-data", CLI_STR, &O.eval_data, 0, 0, "FILE|DIR", "held-out faces (default: the bundled ones)", NULL},
};
static const cli_opt EVAL_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator (or checkpoint) to sample and score", NULL},
    {"--images", CLI_STR, &O.images, 0, 0, "FILE|DIR", "or a set of images to score instead", NULL},
    {"--data", CLI_STR, &O.data, 0, 0, "FILE|DIR", "the real faces to compare with (default: the bundled held-out faces)", NULL},
    {"--n", CLI_INT, &O.n, 1, 100000, "N", "images compared (default 2048)", NULL},
    OPT_SEED("the noise and the SWD's projections"),
    OPT_NO_EMA,
    OPT_DEVICE,
};
static const cli_opt SAMPLE_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator or checkpoint written by train (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "X.png|DIR", "one grid, or a directory of single images (required)", NULL},
    {"--n", CLI_INT, &O.n, 1, 4096, "N", "how many faces (default 64)", NULL},
    OPT_SEED("the noise"),
    OPT_NO_EMA,
    OPT_DEVICE,
};
static const cli_opt INTERP_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator or checkpoint written by train (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "X.png", "the grid to write (required)", NULL},
    {"--rows", CLI_INT, &O.rows, 1, 64, "R", "walks, one per row (default 8)", NULL},
    {"--cols", CLI_INT, &O.cols, 2, 64, "C", "faces per walk (default 10)", NULL},
    OPT_SEED("the walks' end points"),
    OPT_NO_EMA,
    OPT_DEVICE,
};
static const cli_opt BENCH_OPTS[] = {
    {"--recipe", CLI_STR, &O.recipe, 0, 0, NULL, "networks and step to time (default seed)", "seed|dcgan|modern"},
    {"--batch", CLI_INT, &O.batch, 2, 4096, "B", "images per step (default 64)", NULL},
    {"--width", CLI_INT, &O.width, 1, 1024, "W", "channel width (default 64)", NULL},
    {"--steps", CLI_INT, &O.steps, 1, 100000000, "N", "timed steps; the median is reported (default 10)", NULL},
    {"--warmup", CLI_INT, &O.warmup, 0, 1000, "N", "untimed steps first (default 2)", NULL},
    OPT_SEED("the weights"),
    OPT_DEVICE,
};
static const cli_opt PACK_OPTS[] = {
    {"--data", CLI_STR, &O.data, 0, 0, "DIR", "a folder of PNG/JPEG images, searched recursively (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "FILE[.xz]", "the packed 64x64 faces; .xz compresses (required)", NULL},
};
enum { CMD_TRAIN, CMD_EVAL, CMD_SAMPLE, CMD_INTERP, CMD_BENCH, CMD_PACK };
static const cli_cmd CMDS[] = {
    [CMD_TRAIN] = {"mangagan", "train", "Trains the GAN, writing samples, checkpoints and log.csv into --out.", TRAIN_OPTS,
                   CLI_N(TRAIN_OPTS), "recipes: seed (the Keras blog model), dcgan (PyTorch's example), modern (hinge loss, EMA,\n"
                   "DiffAugment; the README's choice). SIGINT/SIGTERM save a checkpoint and stop."},
    [CMD_EVAL] = {"mangagan", "eval", "Scores a generator (or a set of images) by the sliced Wasserstein distance to real faces.",
                  EVAL_OPTS, CLI_N(EVAL_OPTS), NULL},
    [CMD_SAMPLE] = {"mangagan", "sample", "Draws faces from a trained generator.", SAMPLE_OPTS, CLI_N(SAMPLE_OPTS), NULL},
    [CMD_INTERP] = {"mangagan", "interpolate", "Draws walks through the latent space (spherical interpolation).", INTERP_OPTS,
                    CLI_N(INTERP_OPTS), NULL},
    [CMD_BENCH] = {"mangagan", "bench", "Times training steps on synthetic data.", BENCH_OPTS, CLI_N(BENCH_OPTS), NULL},
    [CMD_PACK] = {"mangagan", "pack", "Packs a folder of images into one file that loads in seconds.", PACK_OPTS,
                  CLI_N(PACK_OPTS), NULL},
};

/* a refusal of a command's arguments (exit 2) */
#define bad(cmd, ...) cli_refuse(&CMDS[cmd], __VA_ARGS__)

static tg_device pick_device(const char *d) {
    if (!strcmp(d, "cpu")) return TG_CPU;
    if (!strcmp(d, "cuda")) return TG_CUDA;
    return tg_cuda_device_count() > 0 ? TG_CUDA : TG_CPU;
}

/* A bundled file (the faces, the held-out faces): $MANGAGAN_DATA for the faces, then next to an
 * installed binary, then the source tree. */
static const char *bundled(char *buf, size_t n, const char *file) {
    const char *env = getenv("MANGAGAN_DATA");
    if (env && !strcmp(file, "faces.safetensors.xz")) return env;
    char exe[2048];
    ssize_t len = readlink("/proc/self/exe", exe, sizeof exe - 1);
    if (len > 0) {
        exe[len] = 0;
        char *slash = strrchr(exe, '/');
        if (slash) *slash = 0;
        snprintf(buf, n, "%s/../share/tensorgan/%s", exe, file);
        if (access(buf, R_OK) == 0) return buf;
    }
#ifdef MANGAGAN_SRCDATA
    snprintf(buf, n, "%s/%s", MANGAGAN_SRCDATA, file);
    if (access(buf, R_OK) == 0) return buf;
#endif
    return NULL;
}

/* ---- checkpoints ------------------------------------------------------------------------ */
typedef struct {
    long step, epoch, pos;
    unsigned long long data_seed;
    double seconds;
} progress;

static tg_state *train_state(gan *g) {
    tg_state *s = need(tg_state_new());
    TRY(tg_state_add_module(s, "G.main.", g->G));
    TRY(tg_state_add_module(s, "D.main.", g->D));
    TRY(tg_state_add_optim(s, "optG.", g->og));
    TRY(tg_state_add_optim(s, "optD.", g->od));
    TRY(tg_state_add(s, "fixed_noise", g->fixed));
    if (g->Gema) TRY(tg_state_add_module(s, "Gema.main.", g->Gema));
    return s;
}

static void set_meta_num(tg_state *s, const char *k, unsigned long long v) {
    char b[32];
    snprintf(b, sizeof b, "%llu", v);
    TRY(tg_state_set_meta(s, k, b));
}

static void model_meta(tg_state *s, const gan *g) {
    TRY(tg_state_set_meta(s, "format", "mangagan-v1"));
    TRY(tg_state_set_meta(s, "recipe", g->r->name));
    set_meta_num(s, "width", (unsigned long long)g->width);
    set_meta_num(s, "nz", (unsigned long long)g->r->nz);
    set_meta_num(s, "image_size", SIZE);
    char b[32];
    TRY(tg_state_set_meta(s, "loss", loss_name(g->r->loss)));
    snprintf(b, sizeof b, "%.9g", g->r->lr_g);
    TRY(tg_state_set_meta(s, "lr_g", b));
    snprintf(b, sizeof b, "%.9g", g->r->lr_d);
    TRY(tg_state_set_meta(s, "lr_d", b));
    snprintf(b, sizeof b, "%.9g", g->r->ema);
    TRY(tg_state_set_meta(s, "ema", b));
    TRY(tg_state_set_meta(s, "sn", g->r->sn ? "1" : "0"));
    TRY(tg_state_set_meta(s, "augment", aug_name(g->r->aug, b, sizeof b)));
}

static void save_checkpoint(gan *g, const progress *p, const char *out, int flip) {
    char path[4096];
    tg_module *gen = sampler(g); /* re-estimates the average's BatchNorm statistics first */
    tg_state *s = train_state(g);
    model_meta(s, g);
    uint64_t seed, off;
    tg_ctx_rng_get(g->ctx, &seed, &off);
    set_meta_num(s, "batch", (unsigned long long)g->batch * (unsigned long long)g->world);
    set_meta_num(s, "world", (unsigned long long)g->world);
    set_meta_num(s, "step", (unsigned long long)p->step);
    set_meta_num(s, "epoch", (unsigned long long)p->epoch);
    set_meta_num(s, "pos", (unsigned long long)p->pos);
    set_meta_num(s, "data_seed", p->data_seed);
    set_meta_num(s, "rng_seed", seed);
    set_meta_num(s, "rng_offset", off);
    set_meta_num(s, "flip", (unsigned long long)flip);
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", p->seconds);
    TRY(tg_state_set_meta(s, "seconds", secs));
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    TRY(tg_state_save(s, path));
    tg_state_free(s);
    /* the generator alone (the moving average when --ema is on), with the names of a
     * torch.nn.Sequential stored as `main` */
    s = need(tg_state_new());
    TRY(tg_state_add_module(s, "main.", gen));
    model_meta(s, g);
    snprintf(path, sizeof path, "%s/generator.safetensors", out);
    TRY(tg_state_save(s, path));
    tg_state_free(s);
}

/* Reads only the metadata of a mangagan file. */
static tg_state *peek(const char *path) {
    tg_state *s = need(tg_state_new());
    if (tg_state_load(s, path, false) != TG_OK) die("%s", tg_last_error());
    const char *f = tg_state_get_meta(s, "format");
    if (!f || strcmp(f, "mangagan-v1")) die("%s is not a mangagan checkpoint or generator file", path);
    return s;
}

static long meta_num(tg_state *s, const char *k, const char *path) {
    const char *v = tg_state_get_meta(s, k);
    if (!v) die("%s lacks '%s' in its metadata", path, k);
    return strtol(v, NULL, 10);
}

/* A run killed in the instant between naming a checkpoint's temporary file and renaming it can
 * leave "<name>.safetensors.tmp.XXXXXX" behind; this program owns its output directory, so it
 * removes such leftovers when it starts. */
static void remove_stale_temps(const char *out) {
    DIR *d = opendir(out);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if ((strncmp(e->d_name, "checkpoint.safetensors.tmp.", 27) &&
             strncmp(e->d_name, "generator.safetensors.tmp.", 26)))
            continue;
        snprintf(path, sizeof path, "%s/%s", out, e->d_name);
        if (unlink(path) == 0) fprintf(stderr, "mangagan: removed a stale temporary file %s\n", path);
    }
    closedir(d);
}

/* The command line's changes to a recipe (loss, learning rates, EMA). */
static void apply_settings(recipe *r, const opts *o) {
    if (o->loss) r->loss = loss_code(o->loss);
    if (o->lr_g >= 0) r->lr_g = (float)o->lr_g;
    if (o->lr_d >= 0) r->lr_d = (float)o->lr_d;
    if (o->ema >= 0) r->ema = (float)o->ema;
    if (o->sn >= 0) r->sn = (int)o->sn;
    if (o->aug >= 0) r->aug = (unsigned)o->aug;
}

/* On --resume: the settings the checkpoint was trained with (older checkpoints lack them: the
 * recipe's), and a refusal when the command line asks for others. */
static void checkpoint_settings(recipe *r, tg_state *m, const opts *o, const char *path) {
    const char *v;
    if ((v = tg_state_get_meta(m, "loss"))) r->loss = loss_code(v);
    if ((v = tg_state_get_meta(m, "lr_g"))) r->lr_g = strtof(v, NULL);
    if ((v = tg_state_get_meta(m, "lr_d"))) r->lr_d = strtof(v, NULL);
    if ((v = tg_state_get_meta(m, "ema"))) r->ema = strtof(v, NULL);
    if ((v = tg_state_get_meta(m, "sn"))) r->sn = atoi(v);
    if (o->sn >= 0 && o->sn != r->sn) die("%s was trained with --sn %d, not %ld", path, r->sn, o->sn);
    if ((v = tg_state_get_meta(m, "augment"))) r->aug = (unsigned)aug_parse(v);
    if (o->aug >= 0 && (unsigned)o->aug != r->aug) {
        char b[64];
        die("%s was trained with --augment %s", path, aug_name(r->aug, b, sizeof b));
    }
    if (o->loss && loss_code(o->loss) != r->loss)
        die("%s was trained with loss '%s', not '%s'", path, loss_name(r->loss), o->loss);
    if ((o->lr_g >= 0 && (float)o->lr_g != r->lr_g) || (o->lr_d >= 0 && (float)o->lr_d != r->lr_d))
        die("%s was trained with learning rates G %g, D %g; resuming keeps them", path, r->lr_g, r->lr_d);
    if (o->ema >= 0 && (float)o->ema != r->ema) die("%s was trained with --ema %g, not %g", path, r->ema, o->ema);
}

/* ---- train ------------------------------------------------------------------------------ */
static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* The epoch's order: Fisher-Yates driven by (data seed, epoch) alone, so a resumed run rebuilds
 * it exactly. */
static void shuffle_epoch(int64_t *perm, int64_t n, const progress *p) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t s = mix64(p->data_seed ^ mix64((uint64_t)p->epoch));
    for (int64_t i = n - 1; i > 0; i--) {
        s = mix64(s);
        int64_t j = (int64_t)(s % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* The next global batch (batch x world images of the epoch's order) with this rank's share of it
 * into g->real; a new epoch (and order) when the current one cannot fill it. */
static void fill_batch(gan *g, const tg_dataset *ds, progress *p, int64_t *perm, int flip) {
    const int64_t n = tg_dataset_count(ds), B = (int64_t)g->batch * g->world, own = (int64_t)g->rank * g->batch;
    int64_t idx[4096];
    uint8_t flips[4096];
    if (p->pos + B > n) {
        p->epoch++;
        p->pos = 0;
        shuffle_epoch(perm, n, p);
    }
    for (int64_t b = 0; b < g->batch; b++) {
        const int64_t at = p->pos + own + b;
        idx[b] = perm[at];
        flips[b] = flip ? (uint8_t)(mix64(p->data_seed ^ mix64((uint64_t)(p->epoch * n + at))) & 1) : 0;
    }
    TRY(tg_dataset_batch(ds, g->real, idx, flips));
    p->pos += B;
}

static void fmt_time(char *b, size_t n, double s) {
    if (s >= 3600) snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
}

/* For tests: MANGAGAN_POISON_STEP=N puts a NaN into the real batch of step N. */
static void poison(gan *g) {
    const int64_t n = tg_tensor_numel(g->real);
    float *h = need(malloc(sizeof(float) * (size_t)n));
    TRY(tg_tensor_read(g->real, h, n));
    h[n / 2] = NAN;
    TRY(tg_tensor_write(g->real, h, n));
    free(h);
}

/* Rank r's RNG seed: rank 0 keeps the run's seed (so one rank is the plain run), the others
 * derive theirs from it, so every rank draws its own noise and augmentations, reproducibly. */
static uint64_t rank_seed(uint64_t seed, int rank) { return rank ? mix64(seed ^ mix64(0x72616e6b00ull + (uint64_t)rank)) : seed; }

/* Data-parallel set-up after the model exists: gradient averagers for G and D, the BatchNorm
 * running statistics to average after each step, and (fresh runs) rank 0's initial state on
 * every rank. */
static void dist_setup(gan *g, tg_dist *dist, int fresh) {
    g->dist = dist;
    g->rank = tg_dist_rank(dist), g->world = tg_dist_world(dist);
    tg_tensor *p[64];
    int n = tg_module_params(g->G, p, 64);
    g->sync_g = need(tg_dist_grads_new(dist, p, n, 0));
    n = tg_module_params(g->D, p, 64);
    g->sync_d = need(tg_dist_grads_new(dist, p, n, 0));
    tg_module *mods[3] = {g->G, g->D, g->Gema};
    for (int m = 0; m < 3; m++) {
        if (!mods[m]) continue;
        tg_tensor *t[128];
        n = tg_module_state(mods[m], NULL, t, 128);
        if (fresh) TRY(tg_dist_broadcast(dist, t, n, 0));
        if (m == 2) continue; /* the moving average's statistics are re-estimated, not averaged */
        n = tg_module_batch_norm_stats(mods[m], g->bn_stats + g->n_bn_stats, 64 - g->n_bn_stats);
        if (n < 0 || g->n_bn_stats + n > 64) die("too many BatchNorm layers");
        g->n_bn_stats += n;
    }
    if (fresh) TRY(tg_dist_broadcast(dist, &g->fixed, 1, 0));
}

static int cmd_train(opts o) {
    const char *pe = getenv("MANGAGAN_POISON_STEP");
    const long poison_step = pe ? strtol(pe, NULL, 10) : 0;
    if (!o.steps) o.steps = 20000;
    if (!o.out) o.out = "mangagan-out";
    recipe rc = *find_recipe(o.recipe ? o.recipe : "seed");
    const recipe *r = &rc;
    char buf[4096], path[4096];
    const char *data = o.data ? o.data : bundled(buf, sizeof buf, "faces.safetensors.xz");
    if (!data) die("no --data given and the bundled faces were not found (set MANGAGAN_DATA or pass --data DIR)");
    /* one rank, or one of those mpirun started: rank 0 alone writes files and prints */
    tg_dist *dist = need(tg_dist_init(NULL, NULL));
    const int rank = tg_dist_rank(dist), world = tg_dist_world(dist), lead = rank == 0;
    if (lead) {
        if (mkdirs(o.out) != 0) die("cannot create %s: %s", o.out, strerror(errno));
        remove_stale_temps(o.out);
        snprintf(path, sizeof path, "%s/samples", o.out);
        if (mkdirs(path) != 0) die("cannot create %s: %s", path, strerror(errno));
    }

    progress p = {0, 0, 0, o.seed ^ 0x6d616e6761ull, 0};
    gan g;
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", o.out);
    if (o.resume) {
        if (access(path, R_OK) != 0) die("--resume: no checkpoint at %s", path);
        tg_state *m = peek(path);
        const char *rec = tg_state_get_meta(m, "recipe");
        long w = meta_num(m, "width", path), b = meta_num(m, "batch", path);
        if (!rec || !find_recipe(rec)) die("%s names an unknown recipe", path);
        if (o.recipe && strcmp(rec, o.recipe))
            die("%s was trained with recipe '%s', not '%s'", path, rec, o.recipe);
        if (meta_num(m, "image_size", path) != SIZE)
            die("%s is for %ldx%ld images, this program makes %dx%d", path,
                meta_num(m, "image_size", path), meta_num(m, "image_size", path), SIZE, SIZE);
        if (o.width && o.width != w) die("%s has width %ld, not %ld", path, w, o.width);
        if (o.batch && o.batch != b) die("%s was trained at batch %ld, not %ld", path, b, o.batch);
        const long cw = tg_state_get_meta(m, "world") ? meta_num(m, "world", path) : 1;
        if (cw != world)
            die("%s was trained on %ld rank(s), this run has %d: the data order and the noise streams depend on "
                "the number of ranks, so resume it with mpirun -np %ld",
                path, cw, world, cw);
        rc = *find_recipe(rec);
        checkpoint_settings(&rc, m, &o, path);
        o.width = w;
        o.batch = b;
        o.flip = (int)meta_num(m, "flip", path);
        tg_state_free(m);
    }
    if (!o.width) o.width = 64;
    if (!o.batch) o.batch = 64;
    if (!o.resume) apply_settings(&rc, &o);
    if (o.batch % world) die("--batch %ld does not split over %d ranks", o.batch, world);
    gan_init(&g, r, (int)o.width, (int)(o.batch / world), pick_device(o.device), rank_seed(o.seed, rank), 1);
    g.out = o.out;
    dist_setup(&g, dist, !o.resume);
    if (o.resume) {
        tg_state *s = train_state(&g);
        TRY(tg_state_load(s, path, true));
        p.step = meta_num(s, "step", path);
        p.epoch = meta_num(s, "epoch", path);
        p.pos = meta_num(s, "pos", path);
        p.data_seed = strtoull(tg_state_get_meta(s, "data_seed"), NULL, 10);
        p.seconds = atof(tg_state_get_meta(s, "seconds"));
        tg_ctx_rng_set(g.ctx, rank_seed(strtoull(tg_state_get_meta(s, "rng_seed"), NULL, 10), rank),
                       strtoull(tg_state_get_meta(s, "rng_offset"), NULL, 10));
        tg_state_free(s);
        if (p.step >= o.steps) die("%s is already at step %ld (--steps %ld)", path, p.step, o.steps);
    }
    int skipped = 0;
    double tl = now();
    tg_dataset *ds = tg_dataset_load(data, SIZE, &skipped);
    if (!ds) die("%s", tg_last_error());
    if (skipped) fprintf(stderr, "mangagan: warning: skipped %d unreadable image(s) under %s\n", skipped, data);
    if (tg_dataset_count(ds) < (int64_t)g.batch * world)
        die("%s has %lld usable images, fewer than one batch of %d", data, (long long)tg_dataset_count(ds), g.batch * world);
    int64_t *perm = need(malloc(sizeof(int64_t) * (size_t)tg_dataset_count(ds)));
    shuffle_epoch(perm, tg_dataset_count(ds), &p); /* the current epoch's order, also on resume */
    if (!lead && !freopen("/dev/null", "w", stdout)) die("cannot redirect stdout"); /* rank 0 speaks for the job */
    printf("mangagan: recipe %s (width %d), batch %d, %lld images from %s (%.1f s), device %s%s\n",
           r->name, g.width, g.batch * world, (long long)tg_dataset_count(ds), data, now() - tl,
           tg_ctx_device(g.ctx) == TG_CUDA ? "cuda" : "cpu", o.resume ? ", resuming" : "");
    if (world > 1) {
        /* what each step all-reduces: G's gradients once, D's once per D update */
        tg_tensor *pp[64];
        double ng = 0, nd = 0;
        for (int i = 0, n = tg_module_params(g.G, pp, 64); i < n; i++) ng += (double)tg_tensor_numel(pp[i]);
        for (int i = 0, n = tg_module_params(g.D, pp, 64); i < n; i++) nd += (double)tg_tensor_numel(pp[i]);
        const int d_updates = r->keras_step ? 2 : 1;
        printf("mangagan: %d ranks of %d images each (%s); gradients averaged per step: G %.3fM + %dx D %.3fM "
               "parameters (%.1f MB)\n", world, g.batch, tg_dist_info(), ng / 1e6, d_updates, nd / 1e6,
               4.0 * (ng + d_updates * nd) / 1e6);
    }
    printf("mangagan: loss %s, learning rates G %g D %g, ", loss_name(r->loss), r->lr_g, r->lr_d);
    if (r->ema > 0) printf("EMA of G with decay %g", r->ema);
    else printf("no EMA");
    char ab[64];
    printf("%s, augment %s\n", r->sn ? ", spectral normalisation in D (no BatchNorm there)" : "",
           aug_name(r->aug, ab, sizeof ab));
    printf("mangagan: %s\n", tg_ctx_describe(g.ctx));
    /* --eval-every: the sliced Wasserstein distance to held-out faces, into log.csv */
    uint8_t *eval_real = NULL; /* the real images every evaluation compares with, copied once */
    const int64_t eval_n = o.eval_n ? o.eval_n : 2048;
    if (o.eval_every && lead) {
        char eb[4096];
        const char *ed = o.eval_data ? o.eval_data : bundled(eb, sizeof eb, "heldout.safetensors.xz");
        if (!ed) die("--eval-every: the bundled held-out faces were not found (pass --eval-data FILE|DIR)");
        tg_dataset *eval_ds = tg_dataset_load(ed, SIZE, NULL);
        if (!eval_ds) die("%s", tg_last_error());
        eval_real = first_images(eval_ds, eval_n, ed);
        tg_dataset_free(eval_ds);
    }

    snprintf(path, sizeof path, "%s/log.csv", o.out);
    FILE *log = lead ? fopen(path, o.resume ? "a" : "w") : NULL;
    if (lead && !log) die("cannot write %s: %s", path, strerror(errno));
    if (lead && !o.resume) fprintf(log, "step,seconds,d_loss_real,d_loss_fake,g_loss,d_x,d_g_z,swd,images_per_s\n");
    signal(SIGINT, on_sigint);
    const int tty = isatty(STDOUT_FILENO);
    const long sample_every = o.sample_every ? o.sample_every : 200;
    const long ckpt_every = o.ckpt_every ? o.ckpt_every : 500;
    const long log_every = o.log_every ? o.log_every : (tty ? 1 : 50);
    const long start = p.step;
    double t_start = now(), secs0 = p.seconds;
    int stop = 0;
    while (p.step < o.steps && !stop) {
        double t0 = now();
        fill_batch(&g, ds, &p, perm, o.flip);
        g.step = p.step + 1;
        if (poison_step == g.step) poison(&g);
        step_stats st;
        gan_step(&g, &st);
        if (world > 1) {
            /* BatchNorm's running statistics: the mean of the ranks' (the same on all of them) */
            TRY(tg_dist_average(dist, g.bn_stats, g.n_bn_stats));
            /* the global batch's losses, and whether any rank was interrupted */
            double v[6] = {st.d_real, st.d_fake, st.g, st.dx, st.dgz, interrupted};
            TRY(tg_dist_sum_host(dist, v, 6));
            st.d_real = (float)(v[0] / world), st.d_fake = (float)(v[1] / world), st.g = (float)(v[2] / world);
            st.dx = (float)(v[3] / world), st.dgz = (float)(v[4] / world);
            stop = v[5] > 0;
        } else {
            stop = interrupted;
        }
        p.step++;
        double dt = now() - t0;
        p.seconds = secs0 + (now() - t_start);
        if (!isfinite(st.d_real) || !isfinite(st.d_fake) || !isfinite(st.g))
            die("losses became non-finite at step %ld; the last checkpoint in %s is the last good one",
                p.step, o.out);
        if (!lead) continue;
        char swd[32] = "";
        if (eval_real && (p.step % o.eval_every == 0 || p.step == o.steps)) {
            double lv[3], te = now();
            double m = eval_swd(&g, eval_real, eval_n, lv);
            snprintf(swd, sizeof swd, "%.3f", m);
            printf("%smangagan: step %ld: SWD x1e3 to held-out faces %.2f (64px %.2f, 32px %.2f, 16px %.2f; %lld images, %.1f s)\n",
                   tty ? "\n" : "", p.step, m, lv[0], lv[1], lv[2], (long long)eval_n, now() - te);
        }
        fprintf(log, "%ld,%.3f,%.9g,%.9g,%.9g,%.6f,%.6f,%s,%.2f\n", p.step, p.seconds, st.d_real,
                st.d_fake, st.g, st.dx, st.dgz, swd, g.batch * world / dt);
        if (p.step % log_every == 0 || p.step == o.steps) {
            char eta[32];
            fmt_time(eta, sizeof eta, (now() - t_start) / (double)(p.step - start) * (double)(o.steps - p.step));
            printf("%sstep %ld/%ld  D(real) %.3f  D(fake) %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f  %.1f img/s  ETA %s%s",
                   tty ? "\r" : "", p.step, o.steps, st.d_real, st.d_fake, st.g, st.dx, st.dgz,
                   g.batch * world / dt, eta, tty ? "   " : "\n");
            fflush(stdout);
        }
        if (p.step % sample_every == 0 || p.step == o.steps) {
            uint8_t *img = generate(&g, sampler(&g), g.fixed);
            snprintf(path, sizeof path, "%s/samples/step-%06ld.png", o.out, p.step);
            write_grid(path, img, 64, 8);
            free(img);
            /* the plot of the log so far, beside the grids */
            fflush(log);
            char csv[4096];
            snprintf(csv, sizeof csv, "%s/log.csv", o.out);
            snprintf(path, sizeof path, "%s/samples/losses.png", o.out);
            if (plot_log(csv, path) != 0) fprintf(stderr, "mangagan: warning: could not draw %s\n", path);
        }
        if (p.step % ckpt_every == 0 || p.step == o.steps) {
            fflush(log);
            save_checkpoint(&g, &p, o.out, o.flip);
        }
    }
    if (tty && lead) printf("\n");
    if (log) fclose(log);
    if (stop && lead) {
        save_checkpoint(&g, &p, o.out, o.flip);
        printf("mangagan: interrupted at step %ld; checkpoint saved in %s (continue with --resume)\n", p.step, o.out);
    } else if (lead) {
        printf("mangagan: done, %ld steps; samples, checkpoint and log in %s\n", p.step, o.out);
    }
    free(perm);
    tg_dataset_free(ds);
    free(eval_real);
    gan_free(&g);
    tg_dist_free(dist);
    return 0;
}

/* ---- sample / interpolate --------------------------------------------------------------- */
/* Builds G from a checkpoint or a generator file. */
static void load_generator(gan *g, const char *path, tg_device dev, uint64_t seed, int batch, int no_ema) {
    tg_state *m = peek(path);
    const recipe *r = find_recipe(tg_state_get_meta(m, "recipe"));
    if (!r) die("%s names an unknown recipe", path);
    if (meta_num(m, "image_size", path) != SIZE) die("%s is for another image size", path);
    int width = (int)meta_num(m, "width", path);
    int is_ckpt = tg_state_get_meta(m, "step") != NULL;
    const char *ev = tg_state_get_meta(m, "ema");
    int ema = ev && strtof(ev, NULL) > 0 && !no_ema; /* a checkpoint samples from its average */
    recipe rc = *r;
    rc.ema = 0; /* the loaded weights are the ones that sample */
    tg_state_free(m);
    gan_init(g, &rc, width, batch, dev, seed, 0);
    tg_state *s = need(tg_state_new());
    TRY(tg_state_add_module(s, is_ckpt ? (ema ? "Gema.main." : "G.main.") : "main.", g->G));
    TRY(tg_state_load(s, path, false));
    tg_state_free(s);
}

static int cmd_sample(opts o) {
    if (!o.checkpoint) bad(CMD_SAMPLE, "--checkpoint FILE is required");
    if (!o.out) bad(CMD_SAMPLE, "--out X.png|DIR is required");
    if (!o.n) o.n = 64;
    int to_dir = !(strlen(o.out) > 4 && !strcmp(o.out + strlen(o.out) - 4, ".png"));
    if (to_dir) cli_out_dir("mangagan", "--out", o.out); /* before the generator is loaded and run */
    else cli_out_file("mangagan", "--out", o.out);
    gan g;
    load_generator(&g, o.checkpoint, pick_device(o.device), o.seed, 2, o.no_ema);
    int64_t zs[4] = {o.n, g.r->nz, 1, 1};
    tg_tensor *z = need(tg_tensor_new(g.ctx, 4, zs));
    TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
    uint8_t *img = generate(&g, sampler(&g), z);
    if (to_dir) {
        if (mkdirs(o.out) != 0) die("cannot create %s: %s", o.out, strerror(errno));
        for (long i = 0; i < o.n; i++) {
            char path[4096];
            snprintf(path, sizeof path, "%s/sample-%04ld.png", o.out, i);
            TRY(tg_image_save_png(path, img + (size_t)i * SIZE * SIZE * 3, SIZE, SIZE));
        }
        printf("mangagan: wrote %ld images into %s\n", o.n, o.out);
    } else {
        int cols = (int)ceil(sqrt((double)o.n));
        write_grid(o.out, img, (int)o.n, cols);
        printf("mangagan: wrote a grid of %ld samples to %s\n", o.n, o.out);
    }
    free(img);
    tg_tensor_free(z);
    gan_free(&g);
    return 0;
}

/* rows of spherical interpolations between pairs of random latent points */
static int cmd_interpolate(opts o) {
    if (!o.checkpoint) bad(CMD_INTERP, "--checkpoint FILE is required");
    if (!o.out) bad(CMD_INTERP, "--out X.png is required");
    cli_out_file("mangagan", "--out", o.out);
    gan g;
    load_generator(&g, o.checkpoint, pick_device(o.device), o.seed, 2, o.no_ema);
    const int nz = g.r->nz, R = (int)o.rows, C = (int)o.cols;
    int64_t es[2] = {2 * R, nz}, zs[4] = {R * C, nz, 1, 1};
    tg_tensor *ends = need(tg_tensor_new(g.ctx, 2, es)), *z = need(tg_tensor_new(g.ctx, 4, zs));
    TRY(tg_tensor_fill_normal(ends, 0.0f, 1.0f));
    float *e = need(malloc(sizeof(float) * 2 * R * nz)), *zh = need(malloc(sizeof(float) * R * C * nz));
    TRY(tg_tensor_read(ends, e, 2 * R * nz));
    for (int r = 0; r < R; r++) {
        const float *a = e + 2 * r * nz, *b = a + nz;
        double na = 0, nb = 0, dot = 0;
        for (int k = 0; k < nz; k++) na += a[k] * a[k], nb += b[k] * b[k], dot += a[k] * b[k];
        double omega = acos(fmax(-1.0, fmin(1.0, dot / sqrt(na * nb)))), so = sin(omega);
        for (int c = 0; c < C; c++) {
            double t = (double)c / (C - 1);
            double wa = so < 1e-6 ? 1 - t : sin((1 - t) * omega) / so, wb = so < 1e-6 ? t : sin(t * omega) / so;
            for (int k = 0; k < nz; k++) zh[((size_t)r * C + c) * nz + k] = (float)(wa * a[k] + wb * b[k]);
        }
    }
    TRY(tg_tensor_write(z, zh, R * C * nz));
    uint8_t *img = generate(&g, sampler(&g), z);
    write_grid(o.out, img, R * C, C);
    printf("mangagan: wrote %d interpolation rows of %d to %s\n", R, C, o.out);
    free(img), free(e), free(zh);
    tg_tensor_free(ends), tg_tensor_free(z);
    gan_free(&g);
    return 0;
}

/* ---- eval -------------------------------------------------------------------------------- */
static int cmd_eval(opts o) {
    if (!o.checkpoint == !o.images)
        bad(CMD_EVAL, "give either --checkpoint FILE (a generator to sample) or --images FILE|DIR (a set of images)");
    const int64_t n = o.n ? o.n : 2048;
    char buf[4096];
    const char *data = o.data ? o.data : bundled(buf, sizeof buf, "heldout.safetensors.xz");
    if (!data) die("the bundled held-out faces were not found (pass --data FILE|DIR)");
    double t0 = now();
    tg_dataset *real = tg_dataset_load(data, SIZE, NULL);
    if (!real) die("%s", tg_last_error());
    double lv[3] = {0, 0, 0}, mean;
    if (o.checkpoint) {
        gan g;
        load_generator(&g, o.checkpoint, pick_device(o.device), o.seed, 64, o.no_ema);
        uint8_t *r = first_images(real, n, data);
        mean = eval_swd(&g, r, n, lv);
        free(r);
        gan_free(&g);
    } else {
        tg_dataset *other = tg_dataset_load(o.images, SIZE, NULL);
        if (!other) die("%s", tg_last_error());
        uint8_t *a = first_images(other, n, o.images), *b = first_images(real, n, data);
        tg_swd_options so;
        tg_swd_defaults(&so);
        so.seed = o.seed;
        TRY(tg_swd(a, n, b, n, SIZE, &so, lv, 3, NULL, &mean));
        free(a), free(b);
        tg_dataset_free(other);
    }
    printf("mangagan eval: SWD x1e3 between %s and %s, %lld images each: 64px %.2f, 32px %.2f, 16px %.2f, "
           "mean %.2f (%.1f s)\n", o.checkpoint ? o.checkpoint : o.images, data, (long long)n, lv[0], lv[1], lv[2],
           mean, now() - t0);
    tg_dataset_free(real);
    return 0;
}

/* ---- bench ------------------------------------------------------------------------------ */
static int cmp_d(const void *a, const void *b) {
    double x = *(const double *)a, y = *(const double *)b;
    return x < y ? -1 : x > y;
}

static double median(double *v, int n) {
    qsort(v, (size_t)n, sizeof *v, cmp_d);
    return n % 2 ? v[n / 2] : 0.5 * (v[n / 2 - 1] + v[n / 2]);
}

static int cmd_bench(opts o) {
    if (!o.steps) o.steps = 10;
    gan g;
    gan_init(&g, find_recipe(o.recipe ? o.recipe : "seed"), o.width ? (int)o.width : 64,
             o.batch ? (int)o.batch : 64, pick_device(o.device), o.seed, 1);
    TRY(tg_tensor_fill_uniform(g.real, -1.0f, 1.0f)); /* synthetic data */
    int n = (int)o.steps;
    double *t = need(calloc((size_t)n * 4, sizeof(double)));
    step_stats st = {0};
    for (long s = 0; s < o.warmup + n; s++) {
        double t0 = now();
        gan_step(&g, &st);
        TRY(tg_ctx_sync(g.ctx));
        if (s < o.warmup) continue;
        int k = (int)(s - o.warmup);
        t[k] = now() - t0, t[n + k] = st.t_real, t[2 * n + k] = st.t_fake, t[3 * n + k] = st.t_g;
    }
    double m = median(t, n), mr = median(t + n, n), mf = median(t + 2 * n, n), mg = median(t + 3 * n, n);
    printf("mangagan bench: recipe %s, width %d, batch %d, device %s, %d steps after %ld warm-up\n",
           g.r->name, g.width, g.batch, tg_ctx_device(g.ctx) == TG_CUDA ? "cuda" : "cpu", n, o.warmup);
    printf("  %s\n", tg_ctx_describe(g.ctx));
    printf("  median %.1f ms/step, %.1f images/s, %.1f GFLOP/step, %.1f GFLOP/s\n", m * 1e3,
           g.batch / m, g.flops_per_step * 1e-9, g.flops_per_step / m * 1e-9);
    printf("  phases: D-real %.1f ms, D-fake %.1f ms, G %.1f ms\n", mr * 1e3, mf * 1e3, mg * 1e3);
    printf("  last losses: D(real) %.4f  D(fake) %.4f  G %.4f\n", st.d_real, st.d_fake, st.g);
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    printf("  peak RSS %.0f MB\n", (double)ru.ru_maxrss / 1024.0);
    free(t);
    gan_free(&g);
    return 0;
}

/* ---- pack ------------------------------------------------------------------------------- */
static int cmd_pack(opts o) {
    if (!o.data) bad(CMD_PACK, "--data DIR is required");
    if (!o.out) bad(CMD_PACK, "--out FILE is required");
    cli_out_file("mangagan", "--out", o.out); /* before the images are decoded */
    int skipped = 0;
    double t0 = now();
    tg_dataset *ds = tg_dataset_load(o.data, SIZE, &skipped);
    if (!ds) die("%s", tg_last_error());
    if (skipped) fprintf(stderr, "mangagan: warning: skipped %d unreadable image(s) under %s\n", skipped, o.data);
    TRY(tg_dataset_save(ds, o.out));
    printf("mangagan: packed %lld images from %s into %s (%.1f s)\n", (long long)tg_dataset_count(ds),
           o.data, o.out, now() - t0);
    tg_dataset_free(ds);
    return 0;
}

/* the library's warnings (a slow BLAS, ...) go to stderr */
static void on_log(tg_log_level level, const char *msg, void *user) {
    (void)user;
    fprintf(stderr, "mangagan: %s%s\n", level == TG_LOG_WARN ? "warning: " : "", msg);
}

int main(int argc, char **argv) {
    tg_set_log_callback(on_log, NULL);
    const int c = cli_dispatch("mangagan", "A DCGAN that learns to draw 64x64 anime faces.", CMDS, CLI_N(CMDS), argc, argv);
    if (O.augment && (O.aug = aug_parse(O.augment)) < 0)
        bad(c, "--augment wants a list of color, translation, cutout (or none), got '%s'", O.augment);
    switch (c) {
    case CMD_TRAIN: return cmd_train(O);
    case CMD_EVAL: return cmd_eval(O);
    case CMD_SAMPLE: return cmd_sample(O);
    case CMD_INTERP: return cmd_interpolate(O);
    case CMD_BENCH: return cmd_bench(O);
    default: return cmd_pack(O);
    }
}
