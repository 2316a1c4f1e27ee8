/*
 * parity.c — writes what tests/parity/parity.py needs to replay, in PyTorch, three GAN training
 * steps of a small seed-recipe-style model run here with libtensorgan: the initial G and D state,
 * every step's inputs (noise, real batch, soft targets), every step's losses (metadata) and the
 * final state. parity.py rebuilds the same torch.nn modules, loads the initial state, runs the
 * same steps and compares. Uses only <tensorgan.h>.
 *
 * Layers that feed a BatchNorm have no bias here: such a bias's gradient is exactly zero in
 * exact arithmetic (BatchNorm subtracts it), so both frameworks hand Adam pure rounding noise,
 * which Adam scales up to lr-sized, framework-dependent moves — noise, not a semantic difference.
 *
 *   parity OUT.safetensors
 */
#include <tensorgan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define B 6
#ifndef STEPS
#define STEPS 3
#endif
#define CHECK(x)                                                                                \
    do {                                                                                        \
        if ((x) != TG_OK) {                                                                     \
            fprintf(stderr, "parity: %s\n", tg_last_error());                                   \
            exit(1);                                                                            \
        }                                                                                       \
    } while (0)

static tg_module *gen(tg_ctx *c) {
    tg_module *g = tg_sequential(c);
    tg_sequential_add(g, tg_layer_conv_transpose2d(c, 8, 16, 4, 1, 0, false));
    tg_sequential_add(g, tg_layer_batch_norm(c, 16, 0.5f, 1e-3f));
    tg_sequential_add(g, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(g, tg_layer_conv_transpose2d(c, 16, 3, 4, 2, 1, true));
    tg_sequential_add(g, tg_layer_tanh(c));
    return g;
}

static tg_module *disc(tg_ctx *c) {
    tg_module *d = tg_sequential(c);
    tg_sequential_add(d, tg_layer_conv2d(c, 3, 8, 4, 2, 1, true));
    tg_sequential_add(d, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(d, tg_layer_conv2d(c, 8, 16, 3, 1, 1, false));
    tg_sequential_add(d, tg_layer_batch_norm(c, 16, 0.1f, 1e-5f));
    tg_sequential_add(d, tg_layer_leaky_relu(c, 0.2f));
    tg_sequential_add(d, tg_layer_flatten(c));
    tg_sequential_add(d, tg_layer_dense(c, 16 * 4 * 4, 1, true));
    return d;
}

/* registers a copy of every state tensor of m under prefix (copies, so later steps don't change it) */
static void snapshot(tg_ctx *c, tg_state *s, const char *prefix, tg_module *m, tg_tensor **keep, int *nk) {
    const char *names[64];
    tg_tensor *ts[64];
    int n = tg_module_state(m, names, ts, 64);
    for (int i = 0; i < n; i++) {
        tg_tensor *copy = tg_tensor_new(c, tg_tensor_ndim(ts[i]), (int64_t[]){tg_tensor_dim(ts[i], 0),
                                        tg_tensor_dim(ts[i], 1), tg_tensor_dim(ts[i], 2), tg_tensor_dim(ts[i], 3)});
        CHECK(tg_tensor_copy(copy, ts[i]));
        char name[128];
        snprintf(name, sizeof name, "%s%s", prefix, names[i]);
        CHECK(tg_state_add(s, name, copy));
        keep[(*nk)++] = copy;
    }
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: parity OUT.safetensors\n");
        return 2;
    }
    tg_ctx *c = tg_ctx_new(TG_CPU, 99);
    tg_module *G = gen(c), *D = disc(c);
    CHECK(tg_module_init(G, TG_INIT_GLOROT_UNIFORM, 0, 0));
    CHECK(tg_module_init(D, TG_INIT_GLOROT_UNIFORM, 0, 0));
    tg_tensor *p[32];
    int n = tg_module_params(G, p, 32);
    tg_optim *og = tg_adam(c, p, n, 1.5e-4f * 50, 0.5f, 0.999f, 1e-7f); /* larger lr: visible moves */
    n = tg_module_params(D, p, 32);
    tg_optim *od = tg_adam(c, p, n, 2e-4f * 50, 0.5f, 0.999f, 1e-7f);
    tg_state *s = tg_state_new();
    tg_tensor *keep[512];
    int nk = 0;
    snapshot(c, s, "G0.", G, keep, &nk);
    snapshot(c, s, "D0.", D, keep, &nk);
    char meta[STEPS][3][32];
    for (int k = 0; k < STEPS; k++) {
        tg_tensor *zf = tg_tensor_new4(c, B, 8, 1, 1), *zg = tg_tensor_new4(c, B, 8, 1, 1);
        tg_tensor *real = tg_tensor_new4(c, B, 3, 8, 8);
        tg_tensor *tr = tg_tensor_new4(c, B, 1, 0, 0), *tf = tg_tensor_new4(c, B, 1, 0, 0);
        CHECK(tg_tensor_fill_normal(zf, 0, 1));
        CHECK(tg_tensor_fill_normal(zg, 0, 1));
        CHECK(tg_tensor_fill_uniform(real, -1, 1));
        CHECK(tg_tensor_fill_uniform(tr, 0.8f, 1.0f));
        CHECK(tg_tensor_fill_uniform(tf, 0.0f, 0.2f));
        const char *nm[5] = {"zf", "zg", "real", "tr", "tf"};
        tg_tensor *in[5] = {zf, zg, real, tr, tf};
        for (int i = 0; i < 5; i++) {
            char name[32];
            snprintf(name, sizeof name, "step%d.%s", k, nm[i]);
            CHECK(tg_state_add(s, name, in[i]));
            keep[nk++] = in[i];
        }
        /* the seed recipe's step */
        tg_ctx_set_grad_enabled(c, false);
        tg_module_set_training(G, false);
        tg_tensor *fake = tg_tensor_new4(c, B, 3, 8, 8);
        CHECK(tg_tensor_copy(fake, tg_module_forward(G, zf)));
        keep[nk++] = fake;
        tg_module_set_training(G, true);
        tg_ctx_set_grad_enabled(c, true);
        tg_ctx_clear_tape(c);
        float l[3];
        tg_tensor *x[2] = {real, fake}, *t[2] = {tr, tf};
        for (int j = 0; j < 2; j++) {
            tg_optim_zero_grad(od);
            tg_tensor *loss = tg_bce_with_logits(c, tg_module_forward(D, x[j]), t[j]);
            CHECK(tg_backward(c, loss));
            CHECK(tg_optim_step(od));
            l[j] = tg_tensor_item(loss);
            tg_ctx_clear_tape(c);
        }
        tg_module_set_frozen(D, true);
        tg_optim_zero_grad(og);
        tg_tensor *loss = tg_bce_with_logits(c, tg_module_forward(D, tg_module_forward(G, zg)), tr);
        CHECK(tg_backward(c, loss));
        CHECK(tg_optim_step(og));
        l[2] = tg_tensor_item(loss);
        tg_module_set_frozen(D, false);
        tg_ctx_clear_tape(c);
        for (int j = 0; j < 3; j++) {
            char key[32];
            snprintf(key, sizeof key, "step%d.loss%d", k, j);
            snprintf(meta[k][j], sizeof meta[k][j], "%.9g", l[j]);
            CHECK(tg_state_set_meta(s, key, meta[k][j]));
        }
    }
    snapshot(c, s, "G1.", G, keep, &nk);
    snapshot(c, s, "D1.", D, keep, &nk);
    CHECK(tg_state_save(s, argv[1]));
    printf("parity: wrote %s (%d tensors)\n", argv[1], nk);
    tg_state_free(s);
    for (int i = 0; i < nk; i++) tg_tensor_free(keep[i]);
    tg_optim_free(og), tg_optim_free(od);
    tg_module_free(G), tg_module_free(D);
    tg_ctx_free(c);
    return 0;
}
