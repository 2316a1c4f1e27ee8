/*
 * cgan — a class-conditional DCGAN on Fashion-MNIST, written against <tensorgan.h> only: the
 * label is embedded (tg_layer_embedding) and joined to G's noise and to D's image
 * (tg_cat_channels), so `sample --class K` draws the class asked for.
 *
 *   cgan train [--data DIR] [--out DIR] [--steps N] [--batch B] [--seed S] [--device D]
 *              [--precision fp32|bf16]
 *              [--sample-every N]
 *   cgan sample --checkpoint DIR/generator.safetensors --out X.png [--class K|all] [--n N]
 *              [--seed S]                            (cgan COMMAND --help: each option)
 *
 * Images are the 28x28 ones padded to 32x32 with the background value. G: noise z [100] and the
 * label's 50-d embedding -> ConvT 150->256 (1->4) -> 128 -> 64 -> 1 (stride 2 to 32x32),
 * BatchNorm + ReLU between, tanh. D: the image and the label's embedding as a 32x32 plane (2
 * channels) -> Conv 64 -> 128 -> 256 (stride 2, LeakyReLU 0.2, BatchNorm after the first) -> Conv
 * 256->1 (4x4). Non-saturating loss, Adam 2e-4 (beta1 0.5), an EMA of G (0.999) for samples.
 * One step is the DCGAN example's: D on real + detached fake, then G through the frozen D.
 * G is a module of its own with two inputs (docs/api.md, "Networks that are not a chain"): the
 * noise and the label's embedding; its children `emb` and `net` name its state.
 */
#define _GNU_SOURCE
#define EXAMPLE_NAME "cgan"
#include "../example.h"
#include "../cli.h"

#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>

#include "../fashion/idx.h"

#define S 32 /* padded image side */
#define NZ 100
#define EMB 50


/* ---- the model ------------------------------------------------------------------------------ */
typedef struct {
    tg_ctx *ctx;
    tg_module *g, *d_emb, *d_net; /* G (generator()), D = (d_emb, d_net) */
    tg_module *e;                 /* the EMA of G (NULL when sampling only) */
} model;

static void add(tg_module *seq, tg_module *layer) { TRY(tg_sequential_add(seq, need(layer))); }

static tg_module *generator_net(tg_ctx *ctx, float bn_momentum) {
    tg_module *g = need(tg_sequential(ctx));
    const int ch[5] = {NZ + EMB, 256, 128, 64, 1};
    for (int i = 0; i < 4; i++) {
        add(g, tg_layer_conv_transpose2d(ctx, ch[i], ch[i + 1], 4, i ? 2 : 1, i ? 1 : 0, false));
        if (i < 3) {
            add(g, tg_layer_batch_norm(ctx, ch[i + 1], bn_momentum, 1e-5f));
            add(g, tg_layer_relu(ctx));
        }
    }
    add(g, tg_layer_tanh(ctx));
    return g;
}

/* G(z, e): net(z and the label's embedding e [B, EMB] as EMB more channels) */
static tg_tensor *generator_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in;
    tg_ctx *ctx = user;
    int64_t es[4] = {tg_tensor_dim(in[1], 0), EMB, 1, 1};
    tg_tensor *zc[2] = {in[0], tg_reshape(ctx, in[1], 4, es)};
    return tg_module_forward(tg_module_child(self, "net"), tg_cat_channels(ctx, zc, 2));
}

/* G: children emb (the labels' table, which the caller looks labels up in) and net */
static tg_module *generator(tg_ctx *ctx, float bn_momentum) {
    tg_module *g = need(tg_module_new(ctx, generator_forward, ctx));
    TRY(tg_module_add(g, "emb", need(tg_layer_embedding(ctx, IDX_CLASSES, EMB))));
    TRY(tg_module_add(g, "net", generator_net(ctx, bn_momentum)));
    return g;
}

static tg_module *discriminator_net(tg_ctx *ctx) {
    tg_module *d = need(tg_sequential(ctx));
    const int ch[4] = {2, 64, 128, 256};
    for (int i = 0; i < 3; i++) {
        add(d, tg_layer_conv2d(ctx, ch[i], ch[i + 1], 4, 2, 1, false));
        if (i) add(d, tg_layer_batch_norm(ctx, ch[i + 1], 0.1f, 1e-5f));
        add(d, tg_layer_leaky_relu(ctx, 0.2f));
    }
    add(d, tg_layer_conv2d(ctx, 256, 1, 4, 1, 0, false));
    return d;
}

static void model_init(model *m, tg_device dev, const char *precision, uint64_t seed, int train) {
    memset(m, 0, sizeof *m);
    m->ctx = tg_ctx_new(dev, seed);
    if (!m->ctx) die("%s", tg_last_error());
    set_precision(m->ctx, precision);
    m->g = generator(m->ctx, 0.1f);
    TRY(tg_module_init(tg_module_child(m->g, "net"), TG_INIT_NORMAL, 0.02f, 0.02f));
    if (!train) return;
    m->d_emb = need(tg_layer_embedding(m->ctx, IDX_CLASSES, S * S));
    m->d_net = discriminator_net(m->ctx);
    TRY(tg_module_init(m->d_net, TG_INIT_NORMAL, 0.02f, 0.02f));
    m->e = generator(m->ctx, 1.0f); /* BatchNorm statistics of the last batch it saw */
    TRY(tg_module_ema(m->e, m->g, 0.0f));
}

static void model_free(model *m) {
    tg_module_free(m->g), tg_module_free(m->d_emb), tg_module_free(m->d_net), tg_module_free(m->e);
    tg_ctx_free(m->ctx);
}

/* G(z, labels): z [B,NZ,1,1]; the labels looked up in G's own table */
static tg_tensor *generate(model *m, tg_module *g, tg_tensor *z, const int32_t *lab, int64_t B) {
    (void)m;
    tg_tensor *in[2] = {z, need(tg_module_embed(tg_module_child(g, "emb"), lab, B))};
    return need(tg_module_call(g, in, 2));
}

/* D(x, labels): x [B,1,S,S] -> logits [B,1,1,1] */
static tg_tensor *discriminate(model *m, tg_tensor *x, const int32_t *lab, int64_t B) {
    int64_t ps[4] = {B, 1, S, S};
    tg_tensor *plane = tg_reshape(m->ctx, need(tg_module_embed(m->d_emb, lab, B)), 4, ps);
    tg_tensor *in[2] = {x, need(plane)};
    return need(tg_module_forward(m->d_net, need(tg_cat_channels(m->ctx, in, 2))));
}

static tg_state *generator_state(tg_module *g) {
    tg_state *s = need(tg_state_new());
    TRY(tg_state_add_module(s, "", g)); /* emb.weight, net.0.weight, ... */
    TRY(tg_state_set_meta(s, "format", "cgan-fashion-v1"));
    return s;
}

/* [B,1,S,S] in [-1,1] -> a grid of `cols` columns, greyscale as RGB */
static void write_grid(const char *path, const float *x, int64_t B, int cols) {
    const int rows = (int)((B + cols - 1) / cols), pad = 2, W = cols * S + (cols + 1) * pad, H = rows * S + (rows + 1) * pad;
    uint8_t *g = need(malloc((size_t)W * H * 3));
    memset(g, 255, (size_t)W * H * 3);
    for (int64_t i = 0; i < B; i++) {
        const int x0 = pad + (int)(i % cols) * (S + pad), y0 = pad + (int)(i / cols) * (S + pad);
        for (int y = 0; y < S; y++)
            for (int k = 0; k < S; k++) {
                float v = (x[i * S * S + y * S + k] + 1.0f) * 127.5f;
                uint8_t b = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
                memset(g + ((size_t)(y0 + y) * W + x0 + k) * 3, b, 3);
            }
    }
    TRY(tg_image_save_png(path, g, W, H));
    free(g);
}

/* samples of G in inference mode: row r of the grid is class classes[r] */
static void sample_grid(model *m, tg_module *g, const char *path, const int32_t *classes, int rows, int cols) {
    const int64_t B = (int64_t)rows * cols;
    int64_t zs[4] = {B, NZ, 1, 1};
    tg_tensor *z = need(tg_tensor_new(m->ctx, 4, zs));
    TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
    int32_t *lab = need(malloc(sizeof(int32_t) * (size_t)B));
    for (int64_t i = 0; i < B; i++) lab[i] = classes[i / cols];
    bool old = tg_ctx_set_grad_enabled(m->ctx, false);
    tg_module_set_training(g, false);
    float *h = need(malloc(sizeof(float) * (size_t)B * S * S));
    TRY(tg_tensor_read(generate(m, g, z, lab, B), h, B * S * S));
    tg_module_set_training(g, true);
    tg_ctx_set_grad_enabled(m->ctx, old);
    tg_ctx_clear_tape(m->ctx);
    write_grid(path, h, B, cols);
    free(h), free(lab);
    tg_tensor_free(z);
}

/* the EMA's BatchNorm statistics, re-estimated on one batch of every class (RNG put back) */
static void recalibrate(model *m, tg_tensor *z, int64_t B) {
    uint64_t seed, off;
    tg_ctx_rng_get(m->ctx, &seed, &off);
    tg_ctx_rng_set(m->ctx, mix64(seed ^ 0x656d61), 0);
    int32_t *lab = need(malloc(sizeof(int32_t) * (size_t)B));
    for (int64_t i = 0; i < B; i++) lab[i] = (int32_t)(i % IDX_CLASSES);
    TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
    bool old = tg_ctx_set_grad_enabled(m->ctx, false);
    generate(m, m->e, z, lab, B);
    tg_ctx_set_grad_enabled(m->ctx, old);
    tg_ctx_clear_tape(m->ctx);
    tg_ctx_rng_set(m->ctx, seed, off);
    free(lab);
}

/* ---- command line ----------------------------------------------------------------------------- */
typedef struct {
    const char *data, *out, *device, *checkpoint, *cls, *precision, *onnx, *sample;
    long steps, batch, sample_every, n;
    unsigned long long seed;
} opts;

/* the options of each command (cgan train --help, cgan sample --help) */
static opts O = {IDX_DEFAULT_DIR, NULL, "auto", NULL, "all", "fp32", NULL, NULL, 3000, 64, 500, 8, 1};
#define OPT_PRECISION {"--precision", CLI_STR, &O.precision, 0, 0, NULL, "of convolutions and dense layers: bf16 multiplies bf16-rounded operands, sums in fp32 (tf32: CUDA only; default fp32)", "fp32|bf16|tf32"}
static const cli_opt TRAIN_OPTS[] = {
    {"--data", CLI_STR, &O.data, 0, 0, "DIR", "the Fashion-MNIST IDX files (default " IDX_DEFAULT_DIR ")", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "DIR", "grids, generator.safetensors (default cgan-out)", NULL},
    {"--steps", CLI_INT, &O.steps, 1, 10000000, "N", "training steps (default 3000)", NULL},
    {"--batch", CLI_INT, &O.batch, 2, 1024, "B", "images per step (default 64)", NULL},
    {"--sample-every", CLI_INT, &O.sample_every, 1, 10000000, "N", "a grid of every class every N steps (default 500)", NULL},
    {"--seed", CLI_U64, &O.seed, 0, 2147483647.0, "S", "seed of the weights, noise and data order (default 1)", NULL},
    {"--device", CLI_STR, &O.device, 0, 0, NULL, "where to train (default auto: a GPU when there is one)", "auto|cpu|cuda"},
    OPT_PRECISION,
};
static const cli_opt SAMPLE_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator.safetensors written by train (required)", NULL},
    {"--out", CLI_STR, &O.out, 0, 0, "X.png", "the grid to write (required)", NULL},
    {"--class", CLI_STR, &O.cls, 0, 0, "K|all", "one class 0-9 (see below), or all: a row each (default all)", NULL},
    {"--n", CLI_INT, &O.n, 1, 64, "N", "samples per row (default 8)", NULL},
    {"--seed", CLI_U64, &O.seed, 0, 2147483647.0, "S", "seed of the noise (default 1)", NULL},
    {"--device", CLI_STR, &O.device, 0, 0, NULL, "where to run (default auto)", "auto|cpu|cuda"},
    OPT_PRECISION,
};
static const cli_opt EXPORT_OPTS[] = {
    {"--checkpoint", CLI_STR, &O.checkpoint, 0, 0, "FILE", "a generator.safetensors written by train (required)", NULL},
    {"--onnx", CLI_STR, &O.onnx, 0, 0, "FILE", "the ONNX model to write: inputs z [batch,100,1,1] and label (int64) [batch], output image [batch,1,32,32] in [-1,1] (required)", NULL},
    {"--sample", CLI_STR, &O.sample, 0, 0, "FILE", "also write 4 noise vectors, their labels and this library's images for them (safetensors), to check a runtime against", NULL},
    {"--seed", CLI_U64, &O.seed, 0, 2147483647.0, "S", "seed of the sample's noise (default 1)", NULL},
};
static const cli_cmd CMDS[] = {
    {"cgan", "train", "Trains the class-conditional DCGAN on Fashion-MNIST.", TRAIN_OPTS, CLI_N(TRAIN_OPTS), NULL},
    {"cgan", "sample", "Draws a grid from a trained generator, one row per class asked for.", SAMPLE_OPTS,
     CLI_N(SAMPLE_OPTS),
     "classes: 0 T-shirt/top, 1 Trouser, 2 Pullover, 3 Dress, 4 Coat, 5 Sandal, 6 Shirt, 7 Sneaker, 8 Bag, 9 Ankle boot"},
    {"cgan", "export", "Writes a trained generator as an ONNX model (the label an int64 input, looked up in the graph).",
     EXPORT_OPTS, CLI_N(EXPORT_OPTS), "Run it with ONNX Runtime, TensorRT, OpenVINO, ... (README.md, \"Deploying\")."},
};

static tg_device device(const char *d) {
    if (!strcmp(d, "cpu")) return TG_CPU;
    if (!strcmp(d, "cuda")) return TG_CUDA;
    if (strcmp(d, "auto")) die("unknown device '%s' (auto, cpu or cuda)", d);
    return tg_cuda_device_count() > 0 ? TG_CUDA : TG_CPU;
}

static const int32_t ALL[IDX_CLASSES] = {0, 1, 2, 3, 4, 5, 6, 7, 8, 9};

static int cmd_train(opts o) {
    cli_out_dir("cgan", "--out", o.out); /* before the data is read and anything trains */
    idx_split tr = idx_load(o.data, "train", 0);
    const int64_t B = o.batch;
    model m;
    model_init(&m, device(o.device), o.precision, o.seed, 1);
    char path[4096];
    snprintf(path, sizeof path, "%s/samples", o.out);
    if (mkdir(path, 0755) != 0 && errno != EEXIST) die("cannot create %s: %s", path, strerror(errno));
    tg_tensor *gp[16], *dp[16];
    int ng = tg_module_params(m.g, gp, 16);
    int nd = tg_module_params(m.d_emb, dp, 16);
    nd += tg_module_params(m.d_net, dp + nd, 16 - nd);
    tg_optim *og = need(tg_adam(m.ctx, gp, ng, 2e-4f, 0.5f, 0.999f, 1e-8f));
    tg_optim *od = need(tg_adam(m.ctx, dp, nd, 2e-4f, 0.5f, 0.999f, 1e-8f));
    tg_optim_set_check_finite(og, true), tg_optim_set_check_finite(od, true);
    int64_t xs[4] = {B, 1, S, S}, zs[4] = {B, NZ, 1, 1}, ts[4] = {B, 1, 1, 1};
    tg_tensor *x = need(tg_tensor_new(m.ctx, 4, xs)), *z = need(tg_tensor_new(m.ctx, 4, zs));
    tg_tensor *ones = need(tg_tensor_new(m.ctx, 4, ts)), *zeros = need(tg_tensor_new(m.ctx, 4, ts));
    TRY(tg_tensor_fill(ones, 1.0f));
    TRY(tg_tensor_fill(zeros, 0.0f));
    float *h = need(malloc(sizeof(float) * (size_t)B * S * S));
    int32_t *lab = need(malloc(sizeof(int32_t) * (size_t)B)), *flab = need(malloc(sizeof(int32_t) * (size_t)B));
    printf("cgan: %lld training images from %s; %s\n", (long long)tr.n, o.data, tg_ctx_describe(m.ctx));
    uint64_t r = mix64(o.seed);
    double t0 = now();
    for (long step = 1; step <= o.steps; step++) {
        for (int64_t b = 0; b < B; b++) { /* a random batch, padded to 32x32 with the background */
            r = mix64(r);
            const int64_t i = (int64_t)(r % (uint64_t)tr.n);
            lab[b] = tr.lab[i];
            flab[b] = (int32_t)((r >> 40) % IDX_CLASSES);
            for (int y = 0; y < S; y++)
                for (int k = 0; k < S; k++) {
                    const int sy = y - 2, sk = k - 2;
                    const int in = sy >= 0 && sy < IDX_SIDE && sk >= 0 && sk < IDX_SIDE;
                    h[b * S * S + y * S + k] = in ? tr.img[i * IDX_PIX + sy * IDX_SIDE + sk] / 127.5f - 1.0f : -1.0f;
                }
        }
        TRY(tg_tensor_write(x, h, B * S * S));
        TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
        /* D on real + detached fake, one update */
        tg_optim_zero_grad(od);
        tg_tensor *lr_ = tg_bce_with_logits(m.ctx, discriminate(&m, x, lab, B), ones);
        TRY(tg_backward(m.ctx, need(lr_)));
        const float d_real = tg_tensor_item(lr_);
        tg_ctx_clear_tape(m.ctx);
        tg_tensor *fake = generate(&m, m.g, z, flab, B);
        tg_tensor *lf = tg_bce_with_logits(m.ctx, discriminate(&m, tg_detach(m.ctx, fake), flab, B), zeros);
        TRY(tg_backward(m.ctx, need(lf)));
        const float d_fake = tg_tensor_item(lf);
        TRY(tg_optim_step(od));
        /* G through the frozen D on the same fakes */
        tg_optim_zero_grad(og);
        tg_module_set_frozen(m.d_emb, true), tg_module_set_frozen(m.d_net, true);
        tg_tensor *lg = tg_bce_with_logits(m.ctx, discriminate(&m, fake, flab, B), ones);
        TRY(tg_backward(m.ctx, need(lg)));
        TRY(tg_optim_step(og));
        tg_module_set_frozen(m.d_emb, false), tg_module_set_frozen(m.d_net, false);
        const float g_loss = tg_tensor_item(lg);
        tg_ctx_clear_tape(m.ctx);
        const double decay = fmin(0.999, (1.0 + step) / (10.0 + step));
        TRY(tg_module_ema(m.e, m.g, (float)decay));
        if (step % 100 == 0 || step == o.steps) {
            char eta[32];
            cli_eta((now() - t0) / (double)step * (double)(o.steps - step), eta, sizeof eta);
            printf("step %ld/%ld  D(real) %.3f  D(fake) %.3f  G %.3f  %.1f s, %.1f steps/s, ETA %s\n", step, o.steps,
                   d_real, d_fake, g_loss, now() - t0, (double)step / (now() - t0), eta);
            fflush(stdout);
        }
        if (step % o.sample_every == 0 || step == o.steps) {
            recalibrate(&m, z, B);
            snprintf(path, sizeof path, "%s/samples/step-%06ld.png", o.out, step);
            uint64_t seed, off;
            tg_ctx_rng_get(m.ctx, &seed, &off);
            tg_ctx_rng_set(m.ctx, mix64(seed ^ 0x73616d), 0); /* the same noise for every grid */
            sample_grid(&m, m.e, path, ALL, IDX_CLASSES, 10);
            tg_ctx_rng_set(m.ctx, seed, off);
        }
    }
    tg_state *s = generator_state(m.e);
    snprintf(path, sizeof path, "%s/generator.safetensors", o.out);
    TRY(tg_state_save(s, path));
    tg_state_free(s);
    printf("cgan: done, %ld steps in %.1f s; grids in %s/samples, generator in %s\n", o.steps, now() - t0, o.out, path);
    free(h), free(lab), free(flab);
    tg_tensor_free(x), tg_tensor_free(z), tg_tensor_free(ones), tg_tensor_free(zeros);
    tg_optim_free(og), tg_optim_free(od);
    idx_free(&tr);
    model_free(&m);
    return 0;
}

static int cmd_sample(opts o) {
    if (!o.checkpoint) cli_refuse(&CMDS[1], "--checkpoint FILE is required");
    if (!o.out) cli_refuse(&CMDS[1], "--out X.png is required");
    int32_t k = -1;
    if (strcmp(o.cls, "all")) {
        long v;
        if (!parse_long(o.cls, 0, IDX_CLASSES - 1, &v)) cli_refuse(&CMDS[1], "--class wants 0 to 9 or all, got '%s'", o.cls);
        k = (int32_t)v;
    }
    cli_out_file("cgan", "--out", o.out);
    model m;
    model_init(&m, device(o.device), o.precision, o.seed, 0);
    tg_state *s = generator_state(m.g);
    TRY(tg_state_load(s, o.checkpoint, true));
    const char *f = tg_state_get_meta(s, "format");
    if (!f || strcmp(f, "cgan-fashion-v1")) die("%s is not a cgan generator file", o.checkpoint);
    tg_state_free(s);
    if (k < 0) sample_grid(&m, m.g, o.out, ALL, IDX_CLASSES, (int)o.n);
    else sample_grid(&m, m.g, o.out, &k, 1, (int)o.n);
    printf("cgan: wrote %s\n", o.out);
    model_free(&m);
    return 0;
}

/* G as ONNX: z and an int64 label (Gather in G's own table) -> image; and optionally a check sample */
static int cmd_export(opts o) {
    if (!o.checkpoint) cli_refuse(&CMDS[2], "--checkpoint FILE is required");
    if (!o.onnx) cli_refuse(&CMDS[2], "--onnx FILE is required");
    cli_out_file("cgan", "--onnx", o.onnx);
    if (o.sample) cli_out_file("cgan", "--sample", o.sample);
    model m;
    model_init(&m, TG_CPU, "fp32", o.seed, 0);
    tg_state *s = generator_state(m.g);
    TRY(tg_state_load(s, o.checkpoint, true));
    const char *f = tg_state_get_meta(s, "format");
    if (!f || strcmp(f, "cgan-fashion-v1")) die("%s is not a cgan generator file", o.checkpoint);
    tg_state_free(s);
    tg_onnx_input in[2] = {{"z", 4, {1, NZ, 1, 1}, NULL}, {"label", 1, {1}, tg_module_child(m.g, "emb")}};
    TRY(tg_module_export_onnx(m.g, in, 2, "image", o.onnx));
    printf("cgan: wrote the generator to %s\n", o.onnx);
    if (o.sample) {
        const int32_t lab[4] = {0, 3, 7, 9};
        const float labf[4] = {0, 3, 7, 9};
        int64_t zs[4] = {4, NZ, 1, 1}, ls = 4, xs[4] = {4, 1, S, S};
        tg_tensor *z = need(tg_tensor_new(m.ctx, 4, zs)), *l = need(tg_tensor_new(m.ctx, 1, &ls));
        tg_tensor *xc = need(tg_tensor_new(m.ctx, 4, xs));
        TRY(tg_tensor_fill_normal(z, 0.0f, 1.0f));
        TRY(tg_tensor_write(l, labf, 4));
        tg_module_set_training(m.g, false);
        TRY(tg_tensor_copy(xc, generate(&m, m.g, z, lab, 4)));
        tg_state *t = need(tg_state_new());
        TRY(tg_state_add(t, "in.z", z));
        TRY(tg_state_add(t, "in_i64.label", l));
        TRY(tg_state_add(t, "out", xc));
        TRY(tg_state_save(t, o.sample));
        tg_state_free(t);
        tg_tensor_free(z), tg_tensor_free(l), tg_tensor_free(xc);
        printf("cgan: wrote 4 noise vectors, labels 0 3 7 9 and their images to %s\n", o.sample);
    }
    model_free(&m);
    return 0;
}

int main(int argc, char **argv) {
    const int c = cli_dispatch("cgan", "A class-conditional DCGAN on Fashion-MNIST.", CMDS, CLI_N(CMDS), argc, argv);
    if (c == 0) {
        if (!O.out) O.out = "cgan-out";
        return cmd_train(O);
    }
    return c == 1 ? cmd_sample(O) : cmd_export(O);
}
