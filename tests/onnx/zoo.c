/*
 * tests/onnx/zoo.c — models that between them use every op tg_module_export_onnx writes, each
 * exported and run here on random inputs, for tests/onnx/check.sh to compare with ONNX Runtime:
 *   onnx_zoo OUTDIR   writes OUTDIR/<model>.onnx and OUTDIR/<model>.sample.safetensors (the
 *                     inputs as "in.<name>", labels as "in_i64.<name>" holding integer values,
 *                     and this library's output as "out", evaluation mode, batch 3).
 * Public API only, as a user's program. BatchNorm statistics and affine parameters are random,
 * so the exported running statistics matter.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <tensorgan.h>

#define CHECK(x)                                                                                     \
    do {                                                                                             \
        if (!(x)) {                                                                                  \
            fprintf(stderr, "onnx_zoo: %s:%d: %s failed: %s\n", __FILE__, __LINE__, #x, tg_last_error()); \
            exit(1);                                                                                 \
        }                                                                                            \
    } while (0)

static tg_ctx *ctx;
static const char *outdir;

/* random BatchNorm statistics and affine parameters (the rest keeps its initialisation) */
static void randomize_bn(tg_module *m) {
    const int n = tg_module_state(m, NULL, NULL, 0);
    const char **names = malloc(sizeof(char *) * (size_t)n);
    tg_tensor **t = malloc(sizeof(tg_tensor *) * (size_t)n);
    CHECK(tg_module_state(m, names, t, n) == n);
    for (int i = 0; i < n; i++) {
        const char *s = strrchr(names[i], '.') ? strrchr(names[i], '.') + 1 : names[i];
        if (!strcmp(s, "running_mean")) CHECK(tg_tensor_fill_uniform(t[i], -0.5f, 0.5f) == TG_OK);
        if (!strcmp(s, "running_var")) CHECK(tg_tensor_fill_uniform(t[i], 0.5f, 2.0f) == TG_OK);
        if (tg_tensor_ndim(t[i]) == 1 && !strcmp(s, "weight")) CHECK(tg_tensor_fill_uniform(t[i], 0.5f, 1.5f) == TG_OK);
    }
    free(names), free(t);
}

static tg_module *add(tg_module *seq, tg_module *layer) {
    CHECK(layer);
    CHECK(tg_sequential_add(seq, layer) == TG_OK);
    return layer;
}

/* runs m on random inputs in evaluation mode, exports it, writes the sample */
static void emit(const char *name, tg_module *m, tg_onnx_input *in, int n) {
    tg_module_set_training(m, false);
    tg_tensor *x[8];
    tg_state *s = tg_state_new();
    CHECK(s);
    for (int i = 0; i < n; i++) {
        char key[96];
        if (in[i].embedding) {
            const int64_t B = in[i].shape[0];
            int32_t idx[64];
            tg_tensor *lab = tg_tensor_new(ctx, 1, &B);
            CHECK(lab);
            float v[64];
            for (int64_t b = 0; b < B; b++) idx[b] = (int32_t)((b * 7 + 3) % 10), v[b] = (float)idx[b];
            CHECK(tg_tensor_write(lab, v, B) == TG_OK);
            x[i] = tg_module_embed(in[i].embedding, idx, B);
            snprintf(key, sizeof key, "in_i64.%s", in[i].name);
            CHECK(tg_state_add(s, key, lab) == TG_OK);
            tg_tensor_free(lab);
        } else {
            tg_tensor *t = tg_tensor_new(ctx, in[i].ndim, in[i].shape);
            CHECK(t && tg_tensor_fill_normal(t, 0.0f, 1.0f) == TG_OK);
            x[i] = t;
            snprintf(key, sizeof key, "in.%s", in[i].name);
            CHECK(tg_state_add(s, key, t) == TG_OK);
        }
        CHECK(x[i]);
    }
    tg_tensor *y = tg_module_call(m, x, n);
    CHECK(y);
    int64_t ys[4];
    for (int d = 0; d < tg_tensor_ndim(y); d++) ys[d] = tg_tensor_dim(y, d);
    tg_tensor *yc = tg_tensor_new(ctx, tg_tensor_ndim(y), ys);
    CHECK(yc && tg_tensor_copy(yc, y) == TG_OK);
    CHECK(tg_state_add(s, "out", yc) == TG_OK);
    char path[512];
    snprintf(path, sizeof path, "%s/%s.onnx", outdir, name);
    CHECK(tg_module_export_onnx(m, in, n, "out", path) == TG_OK);
    snprintf(path, sizeof path, "%s/%s.sample.safetensors", outdir, name);
    CHECK(tg_state_save(s, path) == TG_OK);
    printf("onnx_zoo: %s written\n", name);
    for (int i = 0; i < n; i++)
        if (!in[i].embedding) tg_tensor_free(x[i]);
    tg_tensor_free(yc);
    tg_state_free(s);
    tg_ctx_clear_tape(ctx);
}

/* 1. a classifier: conv, BN + ReLU (fused), max-pool, conv, BN, LeakyReLU (slope < 0: not
 * fused), average pool with padding, dropout, flatten, dense, sigmoid */
static void classifier(void) {
    tg_module *s = tg_sequential(ctx);
    add(s, tg_layer_conv2d(ctx, 1, 8, 3, 1, 1, true));
    add(s, tg_layer_batch_norm(ctx, 8, 0.1f, 1e-5f));
    add(s, tg_layer_relu(ctx));
    add(s, tg_layer_max_pool2d(ctx, 2, 2, 0));
    add(s, tg_layer_conv2d(ctx, 8, 6, 3, 1, 0, false));
    add(s, tg_layer_batch_norm(ctx, 6, 0.1f, 1e-3f));
    add(s, tg_layer_leaky_relu(ctx, -0.1f));
    add(s, tg_layer_avg_pool2d(ctx, 3, 2, 1));
    add(s, tg_layer_dropout(ctx, 0.5f));
    add(s, tg_layer_flatten(ctx));
    add(s, tg_layer_dense(ctx, 6 * 2 * 2, 10, true));
    add(s, tg_layer_sigmoid(ctx));
    randomize_bn(s);
    tg_onnx_input in = {"image", 4, {3, 1, 12, 12}, NULL};
    emit("classifier", s, &in, 1);
    tg_module_free(s);
}

/* 2. a generator: reshape, conv-transpose + BN + LeakyReLU (fused), conv-transpose, BN + ReLU,
 * nearest upsampling, a spectral-normalised conv, tanh in place */
static void generator(void) {
    tg_module *s = tg_sequential(ctx);
    add(s, tg_layer_reshape(ctx, 16, 1, 1));
    add(s, tg_layer_conv_transpose2d(ctx, 16, 12, 4, 1, 0, false));
    add(s, tg_layer_batch_norm(ctx, 12, 0.1f, 1e-5f));
    add(s, tg_layer_leaky_relu(ctx, 0.2f));
    add(s, tg_layer_conv_transpose2d(ctx, 12, 8, 4, 2, 1, true));
    add(s, tg_layer_batch_norm(ctx, 8, 0.1f, 1e-5f));
    add(s, tg_layer_relu(ctx));
    add(s, tg_layer_upsample2(ctx, false));
    tg_module *c = add(s, tg_layer_conv2d(ctx, 8, 3, 3, 1, 1, true));
    CHECK(tg_module_spectral_norm(c, 1, 1e-12f) == TG_OK);
    add(s, tg_layer_tanh(ctx));
    randomize_bn(s);
    tg_onnx_input in = {"z", 2, {3, 16}, NULL};
    emit("generator", s, &in, 1);
    tg_module_free(s);
}

/* 3. a module of its own with a skip connection and the remaining ops: bilinear upsampling,
 * concatenation, channel slices, per-channel and per-sample broadcasting, global average
 * pooling, sub, mul, scale, softmax and log-softmax */
static tg_tensor *skip_forward(tg_module *self, tg_tensor *const *in, int n, void *user) {
    (void)n, (void)user;
    tg_tensor *x = in[0];
    tg_tensor *a = tg_module_forward(tg_module_child(self, "enc"), x);        /* [N,6,8,8] */
    tg_tensor *b = tg_module_forward(tg_module_child(self, "down"), tg_max_pool2d(ctx, a, 2, 2, 0)); /* [N,6,4,4] */
    tg_tensor *u = tg_upsample2(ctx, b, true);                                 /* [N,6,8,8] */
    tg_tensor *cat[2] = {a, u};
    tg_tensor *c = tg_cat_channels(ctx, cat, 2);                               /* [N,12,8,8] */
    tg_tensor *lo = tg_slice_channels(ctx, c, 0, 6), *hi = tg_slice_channels(ctx, c, 6, 6);
    tg_tensor *g = tg_reshape(ctx, tg_global_avg_pool2d(ctx, x), 2, (int64_t[]){tg_tensor_dim(x, 0), 6}); /* [N,6] */
    tg_tensor *d = tg_mul_channels(ctx, tg_sub(ctx, lo, hi), tg_sigmoid(ctx, g));
    tg_tensor *e = tg_add(ctx, tg_scale(ctx, d, 0.5f), tg_mul(ctx, lo, hi));
    tg_tensor *h = tg_module_forward(tg_module_child(self, "head"), e);       /* [N,4,8,8] */
    tg_tensor *p = tg_softmax(ctx, h), *q = tg_log_softmax(ctx, h);
    return tg_add(ctx, p, q);
}
static void skip(void) {
    tg_module *m = tg_module_new(ctx, skip_forward, NULL);
    CHECK(m);
    tg_module *enc = tg_sequential(ctx);
    add(enc, tg_layer_conv2d(ctx, 6, 6, 3, 1, 1, true));
    add(enc, tg_layer_batch_norm(ctx, 6, 0.1f, 1e-5f));
    add(enc, tg_layer_relu(ctx));
    CHECK(tg_module_add(m, "enc", enc) == TG_OK);
    CHECK(tg_module_add(m, "down", tg_layer_conv2d(ctx, 6, 6, 1, 1, 0, true)) == TG_OK);
    CHECK(tg_module_add(m, "head", tg_layer_conv2d(ctx, 6, 4, 3, 1, 1, true)) == TG_OK);
    randomize_bn(m);
    tg_onnx_input in = {"x", 4, {3, 6, 8, 8}, NULL};
    emit("skip", m, &in, 1);
    tg_module_free(m);
}

/* 4. a conditional generator as cgan's: inputs noise and a label through an embedding (int64
 * labels in the graph, Gather), joined as channels */
static tg_tensor *cond_forward(tg_module *self, tg_tensor *const *in, int n, void *user) {
    (void)n, (void)user;
    const int64_t B = tg_tensor_dim(in[0], 0);
    tg_tensor *zc[2] = {tg_reshape(ctx, in[0], 4, (int64_t[]){B, 8, 1, 1}),
                        tg_reshape(ctx, in[1], 4, (int64_t[]){B, 5, 1, 1})};
    return tg_module_forward(tg_module_child(self, "net"), tg_cat_channels(ctx, zc, 2));
}
static void conditional(void) {
    tg_module *m = tg_module_new(ctx, cond_forward, NULL), *emb = tg_layer_embedding(ctx, 10, 5);
    CHECK(m && emb);
    CHECK(tg_module_add(m, "emb", emb) == TG_OK);
    tg_module *net = tg_sequential(ctx);
    add(net, tg_layer_conv_transpose2d(ctx, 13, 8, 4, 1, 0, false));
    add(net, tg_layer_batch_norm(ctx, 8, 0.1f, 1e-5f));
    add(net, tg_layer_relu(ctx));
    add(net, tg_layer_conv_transpose2d(ctx, 8, 1, 4, 2, 1, true));
    add(net, tg_layer_tanh(ctx));
    CHECK(tg_module_add(m, "net", net) == TG_OK);
    randomize_bn(m);
    tg_onnx_input in[2] = {{"z", 2, {3, 8}, NULL}, {"label", 1, {3}, emb}};
    emit("conditional", m, in, 2);
    tg_module_free(m);
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: onnx_zoo OUTDIR\n");
        return 2;
    }
    outdir = argv[1];
    ctx = tg_ctx_new(TG_CPU, 7);
    CHECK(ctx);
    classifier();
    generator();
    skip();
    conditional();
    tg_ctx_free(ctx);
    return 0;
}
