/*
 * fashion — a small convolutional classifier for Fashion-MNIST, written against <tensorgan.h>
 * only: conv, BatchNorm, ReLU, max-pool, dropout, dense and cross-entropy, trained with Adam.
 *
 *   fashion [--data DIR] [--epochs N] [--batch B] [--lr LR] [--seed S] [--device cpu|cuda|auto]
 *           [--precision fp32|bf16]
 *           [--limit N] [--test-limit N] [--save FILE.safetensors] [--bench N]   (fashion --help: each option)
 *
 * The data are the four IDX files of Debian's dataset-fashion-mnist package
 * (/usr/share/datasets/fashion-mnist, gzip-compressed; read with zlib). The network:
 *   conv 1->32 3x3 + BN + ReLU, conv 32->32 3x3 + BN + ReLU, max-pool 2,
 *   conv 32->64 3x3 + BN + ReLU, max-pool 2, flatten, dropout 0.25,
 *   dense 3136->256 + ReLU, dropout 0.5, dense 256->10.
 * Adam (lr 1e-3, betas 0.9/0.999), batch 128, the learning rate divided by 10 for the last epoch;
 * pixels scaled to [0,1] and standardised with the training set's mean and deviation.
 * bench/fashion_torch.py trains the same network the same way in PyTorch.
 */
#define _GNU_SOURCE
#define EXAMPLE_NAME "fashion"
#include "../example.h"
#include "../cli.h"

#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <zlib.h>

#include "idx.h"

#define SIDE IDX_SIDE
#define PIX IDX_PIX
#define CLASSES IDX_CLASSES


/* ---- the network --------------------------------------------------------------------------- */
static void add(tg_module *seq, tg_module *layer) { TRY(tg_sequential_add(seq, need(layer))); }

static tg_module *network(tg_ctx *ctx) {
    tg_module *m = need(tg_sequential(ctx));
    add(m, tg_layer_conv2d(ctx, 1, 32, 3, 1, 1, false));
    add(m, tg_layer_batch_norm(ctx, 32, 0.1f, 1e-5f));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_conv2d(ctx, 32, 32, 3, 1, 1, false));
    add(m, tg_layer_batch_norm(ctx, 32, 0.1f, 1e-5f));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_max_pool2d(ctx, 2, 2, 0));
    add(m, tg_layer_conv2d(ctx, 32, 64, 3, 1, 1, false));
    add(m, tg_layer_batch_norm(ctx, 64, 0.1f, 1e-5f));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_max_pool2d(ctx, 2, 2, 0));
    add(m, tg_layer_flatten(ctx));
    add(m, tg_layer_dropout(ctx, 0.25f));
    add(m, tg_layer_dense(ctx, 64 * 7 * 7, 256, true));
    add(m, tg_layer_relu(ctx));
    add(m, tg_layer_dropout(ctx, 0.5f));
    add(m, tg_layer_dense(ctx, 256, CLASSES, true));
    return m;
}

/* The exported classifier takes pixels in [0, 1]: the standardisation is in the graph. */
typedef struct {
    tg_tensor *shift; /* [1]: -mean */
    float scale;      /* 1 / deviation */
} norm;
static tg_tensor *classify_pixels(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in;
    const norm *nm = user;
    tg_ctx *ctx = tg_tensor_ctx(in[0]);
    return tg_module_forward(tg_module_child(self, "net"), tg_scale(ctx, tg_add_channels(ctx, in[0], nm->shift), nm->scale));
}

/* images idx[0..B) of s, standardised, into x [B,1,28,28]; labels into y */
static void batch(const idx_split *s, const int64_t *idx, int64_t B, float mean, float inv_sd, float *host, int32_t *y,
                  tg_tensor *x) {
    for (int64_t b = 0; b < B; b++) {
        const uint8_t *p = s->img + idx[b] * PIX;
        for (int k = 0; k < PIX; k++) host[b * PIX + k] = ((float)p[k] / 255.0f - mean) * inv_sd;
        y[b] = s->lab[idx[b]];
    }
    TRY(tg_tensor_write(x, host, B * PIX));
}


/* perm[0..n) = the shuffled training order of epoch ep */
static void shuffle(int64_t *perm, int64_t n, uint64_t seed, long ep) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t r = mix64(seed ^ mix64((uint64_t)ep));
    for (int64_t i = n - 1; i > 0; i--) {
        r = mix64(r);
        int64_t j = (int64_t)(r % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j], perm[j] = t;
    }
}

/* one training step on the batch in x (labels y); returns the loss */
static float train_step(tg_ctx *ctx, tg_module *net, tg_optim *opt, tg_tensor *x, const int32_t *y) {
    tg_optim_zero_grad(opt);
    tg_tensor *l = tg_cross_entropy(ctx, tg_module_forward(net, x), y, 0.0f);
    if (!l || tg_backward(ctx, l) != TG_OK) die("%s", tg_last_error());
    TRY(tg_optim_step(opt));
    const float loss = tg_tensor_item(l);
    tg_ctx_clear_tape(ctx);
    return loss;
}

int main(int argc, char **argv) {
    const char *dir = IDX_DEFAULT_DIR, *device = "auto", *save = NULL, *precision = "fp32", *onnx = NULL, *onnx_sample = NULL;
    long epochs = 8, B = 128, limit = 0, test_limit = 0, bench = 0;
    unsigned long long seed = 1;
    double lr = 1e-3;
    const cli_opt OPTS[] = {
        {"--data", CLI_STR, &dir, 0, 0, "DIR", "the Fashion-MNIST IDX files (default " IDX_DEFAULT_DIR ")", NULL},
        {"--epochs", CLI_INT, &epochs, 1, 1000, "N", "training epochs; the last one at a tenth of the rate (default 8)", NULL},
        {"--batch", CLI_INT, &B, 1, 4096, "B", "training batch size (default 128)", NULL},
        {"--lr", CLI_NUM, &lr, 1e-9, 0.999999, "LR", "Adam's learning rate, in (0, 1) (default 0.001)", NULL},
        {"--seed", CLI_U64, &seed, 0, 2147483647.0, "S", "seed of the weights, dropout and data order (default 1)", NULL},
        {"--device", CLI_STR, &device, 0, 0, NULL, "where to train; auto takes a GPU when there is one (default auto)", "cpu|cuda|auto"},
        {"--precision", CLI_STR, &precision, 0, 0, NULL, "of convolutions and dense layers: bf16 multiplies bf16-rounded operands, sums in fp32 (tf32: CUDA only; default fp32)", "fp32|bf16|tf32"},
        {"--limit", CLI_INT, &limit, 1, 1000000, "N", "train on the first N training images only (default all 60000)", NULL},
        {"--test-limit", CLI_INT, &test_limit, 1, 1000000, "N", "evaluate on the first N test images only (default all 10000)", NULL},
        {"--save", CLI_STR, &save, 0, 0, "FILE", "write the trained model there (safetensors; checked before training)", NULL},
        {"--export-onnx", CLI_STR, &onnx, 0, 0, "FILE", "write the trained model as ONNX: input pixels [batch,1,28,28] in [0,1], output logits [batch,10]", NULL},
        {"--onnx-sample", CLI_STR, &onnx_sample, 0, 0, "FILE", "with --export-onnx: 4 test images and this library's logits for them (safetensors), to check a runtime against", NULL},
        {"--bench", CLI_INT, &bench, 1, 100000, "N", "time N training steps on real batches after 3 warm-up steps and print the median step instead of training (make bench-classifier)", NULL},
    };
    const cli_cmd cmd = {"fashion", NULL,
                         "Trains a small CNN on Fashion-MNIST (conv, BatchNorm, ReLU, max-pool, dropout, dense;\n"
                         "Adam) and prints the test accuracy after every epoch.",
                         OPTS, CLI_N(OPTS), NULL};
    cli_parse(&cmd, argc, argv, 1);
    if (save) cli_out_file("fashion", "--save", save);
    if (onnx) cli_out_file("fashion", "--export-onnx", onnx);
    if (onnx_sample && !onnx) cli_refuse(&cmd, "--onnx-sample needs --export-onnx");
    if (onnx_sample) cli_out_file("fashion", "--onnx-sample", onnx_sample);
    if (bench && (save || onnx)) cli_refuse(&cmd, "--bench trains nothing to save or export");
    tg_device dev = !strcmp(device, "cpu") ? TG_CPU : !strcmp(device, "cuda") ? TG_CUDA
                    : (tg_cuda_device_count() > 0 ? TG_CUDA : TG_CPU);
    double t0 = now();
    idx_split train = idx_load(dir, "train", limit), test = idx_load(dir, "t10k", test_limit);
    /* the training set's pixel mean and deviation */
    double s = 0, sq = 0;
    for (int64_t i = 0; i < train.n * PIX; i++) s += train.img[i] / 255.0, sq += (train.img[i] / 255.0) * (train.img[i] / 255.0);
    const double cnt = (double)train.n * PIX, mean = s / cnt, sd = sqrt(sq / cnt - mean * mean);
    tg_ctx *ctx = tg_ctx_new(dev, seed);
    if (!ctx) die("%s", tg_last_error());
    set_precision(ctx, precision);
    printf("fashion: %lld training and %lld test images from %s (%.1f s); %s\n", (long long)train.n,
           (long long)test.n, dir, now() - t0, tg_ctx_describe(ctx));
    tg_module *net = network(ctx);
    tg_tensor *params[32];
    int np = tg_module_params(net, params, 32);
    tg_optim *opt = need(tg_adam(ctx, params, np, (float)lr, 0.9f, 0.999f, 1e-8f));
    tg_optim_set_check_finite(opt, true);
    const int64_t EB = 500; /* evaluation batch */
    int64_t xs[4] = {B, 1, SIDE, SIDE}, es[4] = {EB, 1, SIDE, SIDE};
    tg_tensor *x = need(tg_tensor_new(ctx, 4, xs)), *xe = need(tg_tensor_new(ctx, 4, es));
    float *host = need(malloc(sizeof(float) * (size_t)(EB > B ? EB : B) * PIX));
    float *logits = need(malloc(sizeof(float) * (size_t)EB * CLASSES));
    int32_t *y = need(malloc(sizeof(int32_t) * (size_t)(EB > B ? EB : B)));
    /* the shuffled training order, and the evaluation's batch of EB indices (more than a small
     * --test-limit's images: the batch is padded with image 0) */
    const int64_t nperm = train.n > EB ? train.n : EB;
    int64_t *perm = need(malloc(sizeof(int64_t) * (size_t)nperm));
    double train_time = 0, acc = 0;
    if (bench) { /* the step alone: whole batches of epoch 0's order, host preparation included */
        if (train.n < B) die("--bench needs at least one batch of %ld images (--limit)", B);
        shuffle(perm, train.n, seed, 0);
        tg_module_set_training(net, true);
        const int warm = 3;
        double *ms = need(malloc(sizeof(double) * (size_t)bench));
        for (long k = 0; k < warm + bench; k++) {
            const int64_t i = (k % (train.n / B)) * B;
            const double ts = now();
            batch(&train, perm + i, B, (float)mean, (float)(1.0 / sd), host, y, x);
            train_step(ctx, net, opt, x, y);
            TRY(tg_ctx_sync(ctx));
            if (k >= warm) ms[k - warm] = 1e3 * (now() - ts);
        }
        qsort(ms, (size_t)bench, sizeof(double), cmp_double);
        printf("fashion bench: %ld steps of batch %ld after %d warm-up: median %.2f ms/step (min %.2f, max %.2f), "
               "peak RSS %.0f MB\n", bench, B, warm, ms[bench / 2], ms[0], ms[bench - 1], peak_rss_mb());
        free(ms);
        epochs = 0; /* no training epochs, no evaluation */
    }
    for (long ep = 0; ep < epochs; ep++) {
        if (ep == epochs - 1 && epochs > 1) tg_optim_set_lr(opt, (float)lr * 0.1f);
        shuffle(perm, train.n, seed, ep);
        tg_module_set_training(net, true);
        double te = now(), loss_sum = 0;
        int64_t steps = 0;
        char what[48];
        snprintf(what, sizeof what, "fashion: epoch %ld/%ld", ep + 1, epochs);
        cli_progress prog;
        cli_progress_start(&prog, what, "batches", (long)(train.n / B));
        for (int64_t i = 0; i + B <= train.n; i += B, steps++) { /* whole batches only */
            cli_progress_step(&prog, (long)steps);
            batch(&train, perm + i, B, (float)mean, (float)(1.0 / sd), host, y, x);
            loss_sum += train_step(ctx, net, opt, x, y);
        }
        cli_progress_end(&prog);
        TRY(tg_ctx_sync(ctx));
        train_time += now() - te;
        /* test accuracy in evaluation mode (running statistics, no dropout) */
        tg_module_set_training(net, false);
        bool old = tg_ctx_set_grad_enabled(ctx, false);
        int64_t right = 0, per_class[CLASSES] = {0}, seen[CLASSES] = {0};
        for (int64_t i = 0; i < test.n; i += EB) {
            const int64_t nb = test.n - i < EB ? test.n - i : EB;
            for (int64_t k = 0; k < EB; k++) perm[k] = i + (k < nb ? k : 0);
            batch(&test, perm, EB, (float)mean, (float)(1.0 / sd), host, y, xe);
            TRY(tg_tensor_read(need(tg_module_forward(net, xe)), logits, EB * CLASSES));
            for (int64_t k = 0; k < nb; k++) {
                int best = 0;
                for (int c = 1; c < CLASSES; c++)
                    if (logits[k * CLASSES + c] > logits[k * CLASSES + best]) best = c;
                right += best == y[k], per_class[y[k]] += best == y[k], seen[y[k]]++;
            }
            tg_ctx_clear_tape(ctx);
        }
        tg_ctx_set_grad_enabled(ctx, old);
        acc = 100.0 * (double)right / (double)test.n;
        printf("epoch %ld/%ld  loss %.4f  test accuracy %.2f%%  (%.1f s training)\n", ep + 1, epochs,
               loss_sum / (double)(steps ? steps : 1), acc, now() - te);
        fflush(stdout);
        if (ep == epochs - 1) {
            printf("per class:");
            for (int c = 0; c < CLASSES; c++) printf(" %s %.1f%%%s", IDX_NAMES[c], seen[c] ? 100.0 * per_class[c] / seen[c] : 0.0, c < CLASSES - 1 ? "," : "\n");
        }
    }
    if (!bench)
        printf("fashion: test accuracy %.2f%% after %ld epochs; %.1f s of training, %.1f s in all\n", acc, epochs,
               train_time, now() - t0);
    if (save) {
        TRY(tg_module_save(net, save));
        printf("fashion: model saved to %s\n", save);
    }
    if (onnx) { /* the network behind the standardisation, as one module of its own */
        int64_t one = 1;
        norm nm = {need(tg_tensor_new(ctx, 1, &one)), (float)(1.0 / sd)};
        TRY(tg_tensor_fill(nm.shift, (float)-mean));
        tg_module *pix = need(tg_module_new(ctx, classify_pixels, &nm));
        TRY(tg_module_add(pix, "net", net));
        net = pix; /* freed below with its child */
        tg_onnx_input in = {"pixels", 4, {1, 1, SIDE, SIDE}, NULL};
        TRY(tg_module_export_onnx(pix, &in, 1, "logits", onnx));
        printf("fashion: model written as ONNX to %s\n", onnx);
        if (onnx_sample) {
            int64_t ps[4] = {4, 1, SIDE, SIDE}, ls[2] = {4, CLASSES};
            tg_tensor *px = need(tg_tensor_new(ctx, 4, ps)), *lg = need(tg_tensor_new(ctx, 2, ls));
            for (int64_t k = 0; k < 4 * PIX; k++) host[k] = (float)test.img[k] / 255.0f;
            TRY(tg_tensor_write(px, host, 4 * PIX));
            tg_module_set_training(pix, false);
            TRY(tg_tensor_copy(lg, need(tg_module_forward(pix, px))));
            tg_state *st = need(tg_state_new());
            TRY(tg_state_add(st, "in.pixels", px));
            TRY(tg_state_add(st, "out", lg));
            TRY(tg_state_save(st, onnx_sample));
            tg_state_free(st);
            tg_tensor_free(px), tg_tensor_free(lg);
            tg_ctx_clear_tape(ctx);
            printf("fashion: 4 test images and their logits written to %s\n", onnx_sample);
        }
        tg_tensor_free(nm.shift);
    }
    free(host), free(logits), free(y), free(perm);
    idx_free(&train), idx_free(&test);
    tg_tensor_free(x), tg_tensor_free(xe);
    tg_optim_free(opt);
    tg_module_free(net);
    tg_ctx_free(ctx);
    return 0;
}
