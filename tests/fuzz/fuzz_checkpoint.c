/* fuzz_checkpoint.c — a checkpoint as mangagan reads it: a module, an Adam optimizer (moments and
 * the per-parameter step counts in the metadata) and a fixed-noise tensor registered under
 * mangagan's names, loaded strictly; then the metadata parsed as numbers, as mangagan does. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_ctx *ctx;
    static tg_module *g;
    static tg_optim *opt;
    static tg_tensor *noise;
    fuzz_limits();
    if (!ctx) {
        ctx = tg_ctx_new(TG_CPU, 1);
        g = tg_sequential(ctx);
        tg_sequential_add(g, tg_layer_conv_transpose2d(ctx, 4, 2, 4, 1, 0, true));
        tg_sequential_add(g, tg_layer_batch_norm(ctx, 2, 0.5f, 1e-3f));
        tg_tensor *p[8];
        int n = tg_module_params(g, p, 8);
        opt = tg_adam(ctx, p, n, 1e-3f, 0.5f, 0.999f, 1e-7f);
        noise = tg_tensor_new4(ctx, 2, 4, 1, 1);
    }
    const char *path = fuzz_path(".safetensors");
    fuzz_write(path, data, size);
    tg_state *s = tg_state_new();
    tg_state_add_module(s, "G.main.", g);
    tg_state_add_optim(s, "optG.", opt);
    tg_state_add(s, "fixed_noise", noise);
    tg_status st = tg_state_load(s, path, true);
    fuzz_expect_message(st);
    if (st == TG_OK) {
        static const char *keys[] = {"step", "epoch", "pos", "data_seed", "rng_seed", "rng_offset",
                                     "width", "batch", "image_size", "seconds", "recipe"};
        for (size_t i = 0; i < sizeof keys / sizeof keys[0]; i++) {
            const char *v = tg_state_get_meta(s, keys[i]);
            if (v) (void)strtoull(v, NULL, 10), (void)strtod(v, NULL);
        }
    }
    tg_state_free(s);
    return 0;
}
