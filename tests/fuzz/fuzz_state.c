/* fuzz_state.c — safetensors state loading (tg_state_load), strict and not, into tensors of fixed
 * shapes, plus the metadata that comes back. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_ctx *ctx;
    static tg_tensor *w, *b;
    fuzz_limits();
    if (!ctx) {
        ctx = tg_ctx_new(TG_CPU, 1);
        w = tg_tensor_new4(ctx, 2, 3, 0, 0);
        b = tg_tensor_new4(ctx, 4, 0, 0, 0);
    }
    const char *path = fuzz_path(".safetensors");
    fuzz_write(path, data, size);
    for (int strict = 0; strict < 2; strict++) {
        tg_state *s = tg_state_new();
        tg_state_add(s, "w", w);
        tg_state_add(s, "main.1.bias", b);
        tg_status st = tg_state_load(s, path, strict);
        fuzz_expect_message(st);
        const char *v = tg_state_get_meta(s, "step");
        if (v && strlen(v) > (size_t)size) abort(); /* a value can only come from the file */
        tg_state_free(s);
    }
    return 0;
}
