/* fuzz_dataset.c — a packed dataset (safetensors, plain or xz by content) loaded at 8x8, then
 * every image served as a batch: a header that lies about its size must not survive to here. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_ctx *ctx;
    static tg_tensor *batch;
    fuzz_limits();
    if (!ctx) {
        ctx = tg_ctx_new(TG_CPU, 1);
        batch = tg_tensor_new4(ctx, 2, 3, 8, 8);
    }
    const char *path = fuzz_path(".pack");
    fuzz_write(path, data, size);
    int skipped = 0;
    tg_dataset *ds = tg_dataset_load(path, 8, &skipped);
    if (!ds) {
        fuzz_expect_message(TG_ERR_FORMAT);
        return 0;
    }
    const int64_t n = tg_dataset_count(ds);
    for (int64_t i = 0; i < n; i += 2) {
        int64_t idx[2] = {i, i + 1 < n ? i + 1 : 0};
        uint8_t flip[2] = {0, 1};
        if (tg_dataset_batch(ds, batch, idx, flip) != TG_OK) abort();
    }
    tg_dataset_free(ds);
    return 0;
}
