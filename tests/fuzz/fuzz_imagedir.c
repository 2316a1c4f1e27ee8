/* fuzz_imagedir.c — the image-folder loader: the input is cut into up to four files (PNG or
 * JPEG by content, .png/.jpg/.jpeg by name, one in a subfolder) under a fresh directory, which is
 * loaded at 8x8 and served as a batch. Unreadable files must be skipped and counted. */
#include "fuzz.h"

#include <sys/stat.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_ctx *ctx;
    static tg_tensor *batch;
    static char dir[256], sub[300];
    fuzz_limits();
    if (!ctx) {
        ctx = tg_ctx_new(TG_CPU, 1);
        batch = tg_tensor_new4(ctx, 1, 3, 8, 8);
        snprintf(dir, sizeof dir, "%s/tg_fuzz_dir_%d", fuzz_dir(), (int)getpid());
        snprintf(sub, sizeof sub, "%s/nested", dir);
        mkdir(dir, 0700);
        mkdir(sub, 0700);
    }
    static const char *names[4] = {"a.png", "b.jpg", "nested/c.jpeg", "d.PNG"};
    const int files = size ? 1 + data[0] % 4 : 0;
    const uint8_t *p = size ? data + 1 : data;
    const size_t rest = size ? size - 1 : 0, part = files ? rest / (size_t)files : 0;
    char path[400];
    for (int i = 0; i < 4; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        if (i < files) fuzz_write(path, p + (size_t)i * part, i == files - 1 ? rest - (size_t)i * part : part);
        else unlink(path);
    }
    int skipped = -1;
    tg_dataset *ds = tg_dataset_load(dir, 8, &skipped);
    if (skipped < 0 || skipped > files) abort();
    if (ds) {
        if (tg_dataset_count(ds) + skipped != files) abort();
        int64_t idx[1] = {tg_dataset_count(ds) - 1};
        if (tg_dataset_batch(ds, batch, idx, NULL) != TG_OK) abort();
        tg_dataset_free(ds);
    } else {
        fuzz_expect_message(TG_ERR_FORMAT);
    }
    return 0;
}
