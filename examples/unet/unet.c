/*
 * unet — a U-Net that removes noise from Fashion-MNIST images, written against <tensorgan.h>
 * only: a network that is not a chain, built from modules of its own (docs/api.md, "Networks
 * that are not a chain"): skip connections across the U, a residual block at the bottom, the
 * BatchNorm + ReLU pairs fused through tg_module_forward_act.
 *
 *   unet [--data DIR] [--steps N] [--batch B] [--lr LR] [--sigma S] [--width W] [--seed S]
 *        [--test-n N] [--out DIR] [--save FILE] [--check FILE] [--device D] [--precision P]
 *        (unet --help: each option)
 *
 * The images (28x28, padded to 32x32 with their background) get Gaussian noise of deviation
 * --sigma (0.2 of the pixel range by default); the network predicts the noise and the output is
 * the noisy image minus it (a residual denoiser), trained with Adam on the mean squared error.
 * Held-out PSNR (the first --test-n test images, each with its own fixed noise) is printed for
 * the noisy images and for the network's output before and after training, and --out gets
 * denoise.png: rows of noisy / denoised / clean test images.
 *
 *   enc1 = block(1, W)       32x32   block: conv1 3x3 -> bn1 -> act1 (ReLU) -> conv2 3x3 -> bn2 -> act2
 *   enc2 = block(W, 2W)      16x16   (after a 2x2 max-pool)
 *   mid  = block(2W, 4W)      8x8    (after a 2x2 max-pool), then
 *   res  = relu(x + bn2(conv2(relu(bn1(conv1(x))))))
 *   up2  = conv 1x1 (4W -> 2W) after a 2x upsampling; dec2 = block(4W, 2W) on [up2, enc2]
 *   up1  = conv 1x1 (2W -> W) after a 2x upsampling;  dec1 = block(2W, W) on [up1, enc1]
 *   head = conv 1x1 (W -> 1): the predicted noise
 * The state names are those of bench/unet_torch.py's torch.nn.Module (enc1.conv1.weight, ...),
 * so --save's file loads there with load_state_dict(strict=True); --check writes 8 held-out
 * noisy images and the trained network's outputs for them (evaluation mode), which
 * bench/unet_torch.py recomputes in PyTorch from the saved weights.
 */
#define _GNU_SOURCE
#define EXAMPLE_NAME "unet"
#include "../example.h"
#include "../cli.h"

#include <errno.h>
#include <math.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "../fashion/idx.h"

#define S 32 /* the padded side */

/* ---- the network: modules of its own ---------------------------------------------------------- */
static tg_module *child(tg_module *m, const char *name) { return tg_module_child(m, name); }
static void add(tg_module *m, const char *name, tg_module *c) { TRY(tg_module_add(m, name, need(c))); }

/* conv1 -> bn1 -> ReLU -> conv2 -> bn2 -> ReLU, each BatchNorm fused with its ReLU */
static tg_tensor *block_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in, (void)user;
    tg_tensor *h = tg_module_forward(child(self, "conv1"), in[0]);
    h = tg_module_forward_act(child(self, "bn1"), h, child(self, "act1"));
    h = tg_module_forward(child(self, "conv2"), h);
    return tg_module_forward_act(child(self, "bn2"), h, child(self, "act2"));
}

static tg_module *block(tg_ctx *ctx, int cin, int cout) {
    tg_module *b = need(tg_module_new(ctx, block_forward, NULL));
    add(b, "conv1", tg_layer_conv2d(ctx, cin, cout, 3, 1, 1, false));
    add(b, "bn1", tg_layer_batch_norm(ctx, cout, 0.1f, 1e-5f));
    add(b, "act1", tg_layer_relu(ctx));
    add(b, "conv2", tg_layer_conv2d(ctx, cout, cout, 3, 1, 1, false));
    add(b, "bn2", tg_layer_batch_norm(ctx, cout, 0.1f, 1e-5f));
    add(b, "act2", tg_layer_relu(ctx));
    return b;
}

/* a residual block: relu(x + bn2(conv2(relu(bn1(conv1(x)))))) */
static tg_tensor *res_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in;
    tg_ctx *ctx = user;
    tg_tensor *h = tg_module_forward(child(self, "conv1"), in[0]);
    h = tg_module_forward_act(child(self, "bn1"), h, child(self, "act1"));
    h = tg_module_forward(child(self, "bn2"), tg_module_forward(child(self, "conv2"), h));
    return tg_relu(ctx, tg_add(ctx, in[0], h));
}

static tg_module *residual(tg_ctx *ctx, int c) {
    tg_module *r = need(tg_module_new(ctx, res_forward, ctx));
    add(r, "conv1", tg_layer_conv2d(ctx, c, c, 3, 1, 1, false));
    add(r, "bn1", tg_layer_batch_norm(ctx, c, 0.1f, 1e-5f));
    add(r, "act1", tg_layer_relu(ctx));
    add(r, "conv2", tg_layer_conv2d(ctx, c, c, 3, 1, 1, false));
    add(r, "bn2", tg_layer_batch_norm(ctx, c, 0.1f, 1e-5f));
    return r;
}

/* the noisy image minus the predicted noise */
static tg_tensor *unet_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in;
    tg_ctx *ctx = user;
    tg_tensor *x = in[0];
    tg_tensor *e1 = tg_module_forward(child(self, "enc1"), x);
    tg_tensor *e2 = tg_module_forward(child(self, "enc2"), tg_max_pool2d(ctx, e1, 2, 2, 0));
    tg_tensor *m = tg_module_forward(child(self, "mid"), tg_max_pool2d(ctx, e2, 2, 2, 0));
    m = tg_module_forward(child(self, "res"), m);
    tg_tensor *u2 = tg_module_forward(child(self, "up2"), tg_upsample2(ctx, m, false));
    tg_tensor *d2 = tg_module_forward(child(self, "dec2"), tg_cat_channels(ctx, (tg_tensor *[]){u2, e2}, 2));
    tg_tensor *u1 = tg_module_forward(child(self, "up1"), tg_upsample2(ctx, d2, false));
    tg_tensor *d1 = tg_module_forward(child(self, "dec1"), tg_cat_channels(ctx, (tg_tensor *[]){u1, e1}, 2));
    return tg_sub(ctx, x, tg_module_forward(child(self, "head"), d1));
}

static tg_module *unet(tg_ctx *ctx, int w) {
    tg_module *n = need(tg_module_new(ctx, unet_forward, ctx));
    add(n, "enc1", block(ctx, 1, w));
    add(n, "enc2", block(ctx, w, 2 * w));
    add(n, "mid", block(ctx, 2 * w, 4 * w));
    add(n, "res", residual(ctx, 4 * w));
    add(n, "up2", tg_layer_conv2d(ctx, 4 * w, 2 * w, 1, 1, 0, true));
    add(n, "dec2", block(ctx, 4 * w, 2 * w));
    add(n, "up1", tg_layer_conv2d(ctx, 2 * w, w, 1, 1, 0, true));
    add(n, "dec1", block(ctx, 2 * w, w));
    add(n, "head", tg_layer_conv2d(ctx, w, 1, 1, 1, 0, true));
    return n;
}

/* ---- data -------------------------------------------------------------------------------------- */
static double gauss(uint64_t *s) { /* Box-Muller on splitmix64 */
    *s = mix64(*s);
    const double u1 = ((double)(*s >> 11) + 1.0) / 9007199254740993.0;
    *s = mix64(*s);
    const double u2 = (double)(*s >> 11) / 9007199254740992.0;
    return sqrt(-2.0 * log(u1)) * cos(6.283185307179586 * u2);
}

/* image i of s, padded to 32x32, in [-1, 1] (clean), and with noise of deviation sigma (in the
 * [0, 1] pixel range, so 2 sigma here) drawn from noise_seed (noisy) */
static void example(const idx_split *s, int64_t i, double sigma, uint64_t noise_seed, float *clean, float *noisy) {
    uint64_t r = mix64(noise_seed ^ mix64((uint64_t)i));
    for (int y = 0; y < S; y++)
        for (int x = 0; x < S; x++) {
            const int sy = y - 2, sx = x - 2, in = sy >= 0 && sy < IDX_SIDE && sx >= 0 && sx < IDX_SIDE;
            const float c = in ? s->img[i * IDX_PIX + sy * IDX_SIDE + sx] / 127.5f - 1.0f : -1.0f;
            clean[y * S + x] = c;
            noisy[y * S + x] = c + (float)(2.0 * sigma * gauss(&r));
        }
}

/* PSNR in dB of a against b over n pixels, both in [-1, 1] (so the [0, 1] range's peak is 1) */
static double psnr(const float *a, const float *b, int64_t n) {
    double se = 0;
    for (int64_t k = 0; k < n; k++) {
        const double d = 0.5 * ((double)a[k] - (double)b[k]);
        se += d * d;
    }
    return 10.0 * log10((double)n / (se > 0 ? se : 1e-30));
}

typedef struct {
    double noisy, out; /* mean PSNR over the test images */
} scores;

/* the network (evaluation mode) on the first n test images with their fixed noise; out_imgs
 * (when not NULL) gets the first 8 outputs */
static scores evaluate(tg_ctx *ctx, tg_module *net, const idx_split *test, int64_t n, double sigma, float *out_imgs) {
    enum { EB = 100 };
    int64_t xs[4] = {EB, 1, S, S};
    tg_tensor *x = need(tg_tensor_new(ctx, 4, xs));
    float *clean = need(malloc(sizeof(float) * EB * S * S)), *noisy = need(malloc(sizeof(float) * EB * S * S));
    float *den = need(malloc(sizeof(float) * EB * S * S));
    scores sc = {0, 0};
    tg_module_set_training(net, false);
    const bool old = tg_ctx_set_grad_enabled(ctx, false);
    for (int64_t i0 = 0; i0 < n; i0 += EB) {
        const int64_t b = n - i0 < EB ? n - i0 : EB;
        for (int64_t k = 0; k < EB; k++) /* a short last batch repeats its first image */
            example(test, i0 + (k < b ? k : 0), sigma, 0x7e57, clean + k * S * S, noisy + k * S * S);
        TRY(tg_tensor_write(x, noisy, EB * S * S));
        TRY(tg_tensor_read(need(tg_module_forward(net, x)), den, EB * S * S));
        for (int64_t k = 0; k < b; k++) {
            sc.noisy += psnr(noisy + k * S * S, clean + k * S * S, S * S);
            sc.out += psnr(den + k * S * S, clean + k * S * S, S * S);
        }
        if (i0 == 0 && out_imgs)
            for (int64_t k = 0; k < 8; k++) {
                memcpy(out_imgs + (3 * k) * S * S, noisy + k * S * S, sizeof(float) * S * S);
                memcpy(out_imgs + (3 * k + 1) * S * S, den + k * S * S, sizeof(float) * S * S);
                memcpy(out_imgs + (3 * k + 2) * S * S, clean + k * S * S, sizeof(float) * S * S);
            }
        tg_ctx_clear_tape(ctx);
    }
    tg_ctx_set_grad_enabled(ctx, old);
    tg_module_set_training(net, true);
    sc.noisy /= (double)n, sc.out /= (double)n;
    free(clean), free(noisy), free(den);
    tg_tensor_free(x);
    return sc;
}

/* three rows (noisy, denoised, clean) of 8 images, each shown at 2x, with 2-pixel gutters */
static void picture(const char *path, const float *imgs) {
    const int z = 2 * S, pad = 2, W = 8 * z + 9 * pad, H = 3 * z + 4 * pad;
    uint8_t *rgb = need(malloc((size_t)W * H * 3));
    memset(rgb, 255, (size_t)W * H * 3);
    for (int k = 0; k < 8; k++)
        for (int row = 0; row < 3; row++) {
            const float *im = imgs + (3 * k + row) * S * S;
            for (int y = 0; y < z; y++)
                for (int x = 0; x < z; x++) {
                    float v = (im[(y / 2) * S + x / 2] + 1.0f) * 127.5f;
                    const uint8_t g = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v + 0.5f);
                    uint8_t *p = rgb + ((size_t)(pad + row * (z + pad) + y) * W + pad + k * (z + pad) + x) * 3;
                    p[0] = p[1] = p[2] = g;
                }
        }
    TRY(tg_image_save_png(path, rgb, W, H));
    free(rgb);
}

/* one training step on B fresh examples (drawn from *r, the noise of step `step`); the loss */
static float train_step(tg_ctx *ctx, tg_module *net, tg_optim *opt, const idx_split *train, long B, double sigma,
                        uint64_t seed, long step, uint64_t *r, float *clean, float *noisy, tg_tensor *x,
                        tg_tensor *target) {
    for (int64_t b = 0; b < B; b++) {
        *r = mix64(*r);
        example(train, (int64_t)(*r % (uint64_t)train->n), sigma, seed + (uint64_t)step * 7919u, clean + b * S * S,
                noisy + b * S * S);
    }
    TRY(tg_tensor_write(x, noisy, B * S * S));
    TRY(tg_tensor_write(target, clean, B * S * S));
    tg_optim_zero_grad(opt);
    tg_tensor *l = need(tg_mse_loss(ctx, need(tg_module_forward(net, x)), target));
    TRY(tg_backward(ctx, l));
    TRY(tg_optim_step(opt));
    const float loss = tg_tensor_item(l);
    tg_ctx_clear_tape(ctx);
    return loss;
}

int main(int argc, char **argv) {
    const char *dir = IDX_DEFAULT_DIR, *device = "auto", *precision = "fp32", *out = "unet-out", *save = NULL, *onnx = NULL;
    const char *check = NULL;
    long steps = 1500, B = 32, width = 32, test_n = 1000, bench = 0;
    double lr = 2e-3, sigma = 0.2;
    unsigned long long seed = 1;
    const cli_opt OPTS[] = {
        {"--data", CLI_STR, &dir, 0, 0, "DIR", "the Fashion-MNIST IDX files (default " IDX_DEFAULT_DIR ")", NULL},
        {"--steps", CLI_INT, &steps, 1, 10000000, "N", "training steps (default 1500)", NULL},
        {"--batch", CLI_INT, &B, 1, 4096, "B", "images per step (default 32)", NULL},
        {"--lr", CLI_NUM, &lr, 1e-9, 0.999999, "LR", "Adam's learning rate (default 0.002, a tenth for the last fifth)", NULL},
        {"--sigma", CLI_NUM, &sigma, 0.0, 2.0, "S", "noise deviation, in the [0, 1] pixel range (default 0.2)", NULL},
        {"--width", CLI_INT, &width, 1, 512, "W", "channels of the first level: W, 2W, 4W down the U (default 32)", NULL},
        {"--seed", CLI_U64, &seed, 0, 2147483647.0, "S", "seed of the weights, data order and training noise (default 1)", NULL},
        {"--test-n", CLI_INT, &test_n, 8, 10000, "N", "held-out images the PSNR averages over (default 1000)", NULL},
        {"--out", CLI_STR, &out, 0, 0, "DIR", "denoise.png goes there (default unet-out; checked first)", NULL},
        {"--save", CLI_STR, &save, 0, 0, "FILE", "the trained network (safetensors, PyTorch's names)", NULL},
        {"--check", CLI_STR, &check, 0, 0, "FILE", "8 held-out inputs and the network's outputs, for bench/unet_torch.py", NULL},
        {"--export-onnx", CLI_STR, &onnx, 0, 0, "FILE", "the trained network as ONNX (input noisy, output denoised; with --check, FILE.sample.safetensors for tests/onnx/run_ort.mjs)", NULL},
        {"--device", CLI_STR, &device, 0, 0, NULL, "where to train; auto takes a GPU when there is one (default auto)", "cpu|cuda|auto"},
        {"--precision", CLI_STR, &precision, 0, 0, NULL, "of convolutions (default fp32)", "fp32|bf16|tf32"},
        {"--bench", CLI_INT, &bench, 1, 100000, "N", "time N training steps after 3 warm-up steps and print the median step instead of training (bench/compare.sh)", NULL},
    };
    const cli_cmd cmd = {"unet", NULL,
                         "Trains a U-Net to remove Gaussian noise from Fashion-MNIST images and reports the\n"
                         "held-out PSNR before and after; writes denoise.png (noisy / denoised / clean).",
                         OPTS, CLI_N(OPTS), NULL};
    cli_parse(&cmd, argc, argv, 1);
    if (bench && (save || check || onnx)) cli_refuse(&cmd, "--bench trains nothing to save, check or export");
    if (!bench) cli_out_dir("unet", "--out", out);
    if (save) cli_out_file("unet", "--save", save);
    if (check) cli_out_file("unet", "--check", check);
    if (onnx) cli_out_file("unet", "--export-onnx", onnx);
    const tg_device dev = !strcmp(device, "cpu") ? TG_CPU : !strcmp(device, "cuda") ? TG_CUDA
                          : (tg_cuda_device_count() > 0 ? TG_CUDA : TG_CPU);
    idx_split train = idx_load(dir, "train", 0), test = idx_load(dir, "t10k", test_n);
    if (test.n < test_n) test_n = test.n;
    tg_ctx *ctx = tg_ctx_new(dev, seed);
    if (!ctx) die("%s", tg_last_error());
    set_precision(ctx, precision);
    tg_module *net = unet(ctx, (int)width);
    tg_tensor *params[64];
    const int np = tg_module_params(net, params, 64);
    double count = 0;
    for (int i = 0; i < np; i++) count += (double)tg_tensor_numel(params[i]);
    printf("unet: %lld training images from %s; %d parameter tensors, %.2f M values; %s\n", (long long)train.n, dir,
           np, count / 1e6, tg_ctx_describe(ctx));
    float *imgs = need(malloc(sizeof(float) * 24 * S * S));
    if (!bench) {
        scores before = evaluate(ctx, net, &test, test_n, sigma, NULL);
        printf("unet: held-out PSNR (%ld images, sigma %g): noisy %.2f dB, untrained network %.2f dB\n", test_n, sigma,
               before.noisy, before.out);
    }
    tg_optim *opt = need(tg_adam(ctx, params, np, (float)lr, 0.9f, 0.999f, 1e-8f));
    tg_optim_set_check_finite(opt, true);
    int64_t xs[4] = {B, 1, S, S};
    tg_tensor *x = need(tg_tensor_new(ctx, 4, xs)), *target = need(tg_tensor_new(ctx, 4, xs));
    /* a training batch, and at least the 8 images --check writes into clean */
    const size_t nb = (size_t)(B > 8 ? B : 8);
    float *clean = need(malloc(sizeof(float) * nb * S * S)), *noisy = need(malloc(sizeof(float) * nb * S * S));
    uint64_t r = mix64(seed);
    if (bench) { /* the step alone, batch drawing included, after 3 warm-up steps */
        const int warm = 3;
        double *ms = need(malloc(sizeof(double) * (size_t)bench));
        for (long k = 0; k < warm + bench; k++) {
            const double ts = now();
            train_step(ctx, net, opt, &train, B, sigma, seed, k + 1, &r, clean, noisy, x, target);
            TRY(tg_ctx_sync(ctx));
            if (k >= warm) ms[k - warm] = 1e3 * (now() - ts);
        }
        qsort(ms, (size_t)bench, sizeof(double), cmp_double);
        printf("unet bench: %ld steps of batch %ld, width %ld, after %d warm-up: median %.2f ms/step (min %.2f, max "
               "%.2f), peak RSS %.0f MB\n", bench, B, width, warm, ms[bench / 2], ms[0], ms[bench - 1],
               peak_rss_mb());
        free(ms);
        steps = 0;
    }
    cli_progress prog = {0};
    if (!bench) cli_progress_start(&prog, "unet: training", "steps", steps);
    double t0 = now(), loss = 0;
    for (long step = 1; step <= steps; step++) {
        if (step == steps - steps / 5) TRY(tg_optim_set_lr(opt, (float)lr * 0.1f));
        loss = 0.98 * loss + 0.02 * train_step(ctx, net, opt, &train, B, sigma, seed, step, &r, clean, noisy, x, target);
        cli_progress_step(&prog, step);
    }
    if (bench) goto done;
    cli_progress_end(&prog);
    const double train_s = now() - t0;
    scores after = evaluate(ctx, net, &test, test_n, sigma, imgs);
    printf("unet: %ld steps of %ld images in %.1f s (%.1f ms/step), loss %.5f\n", steps, B, train_s,
           1e3 * train_s / (double)steps, loss);
    printf("unet: held-out PSNR (%ld images, sigma %g): noisy %.2f dB, denoised %.2f dB (%+.2f dB)\n", test_n, sigma,
           after.noisy, after.out, after.out - after.noisy);
    char path[4096];
    snprintf(path, sizeof path, "%s/denoise.png", out);
    picture(path, imgs);
    printf("unet: wrote %s (rows: noisy, denoised, clean)\n", path);
    if (save) {
        TRY(tg_module_save(net, save));
        printf("unet: saved the network to %s\n", save);
    }
    if (check) { /* rows 0, 3, 6, ... of imgs are the first 8 noisy test images */
        int64_t cs[4] = {8, 1, S, S};
        tg_tensor *in8 = need(tg_tensor_new(ctx, 4, cs)), *out8 = need(tg_tensor_new(ctx, 4, cs));
        for (int k = 0; k < 8; k++) memcpy(clean + k * S * S, imgs + 3 * k * S * S, sizeof(float) * S * S);
        TRY(tg_tensor_write(in8, clean, 8 * S * S));
        tg_module_set_training(net, false);
        TRY(tg_tensor_copy(out8, need(tg_module_forward(net, in8))));
        tg_state *st = need(tg_state_new());
        TRY(tg_state_add(st, "input", in8));
        TRY(tg_state_add(st, "output", out8));
        TRY(tg_state_save(st, check));
        tg_state_free(st);
        if (onnx) { /* the same 8 images for ONNX Runtime: in.noisy and out */
            char sp[4096];
            snprintf(sp, sizeof sp, "%s.sample.safetensors", onnx);
            st = need(tg_state_new());
            TRY(tg_state_add(st, "in.noisy", in8));
            TRY(tg_state_add(st, "out", out8));
            TRY(tg_state_save(st, sp));
            tg_state_free(st);
        }
        tg_tensor_free(in8), tg_tensor_free(out8);
        tg_ctx_clear_tape(ctx);
        printf("unet: wrote %s (8 inputs and the network's outputs)\n", check);
    }
    if (onnx) {
        tg_onnx_input in = {"noisy", 4, {1, 1, S, S}, NULL};
        TRY(tg_module_export_onnx(net, &in, 1, "denoised", onnx));
        printf("unet: wrote the network as ONNX to %s\n", onnx);
    }
done:
    free(imgs), free(clean), free(noisy);
    tg_tensor_free(x), tg_tensor_free(target);
    tg_optim_free(opt);
    tg_module_free(net);
    tg_ctx_free(ctx);
    idx_free(&train), idx_free(&test);
    return 0;
}
