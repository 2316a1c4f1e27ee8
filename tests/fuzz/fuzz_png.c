/* fuzz_png.c — PNG decoding (tg_image_load through libpng) and the crop + resize after it. The
 * input gets the PNG signature if it lacks one, so every run reaches libpng. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    fuzz_limits();
    const char *path = fuzz_path(".png");
    if (size >= 8 && !memcmp(data, sig, 8)) {
        fuzz_write(path, data, size);
    } else {
        uint8_t *buf = malloc(size + 8);
        memcpy(buf, sig, 8);
        if (size) memcpy(buf + 8, data, size);
        fuzz_write(path, buf, size + 8);
        free(buf);
    }
    uint8_t *rgb = NULL, out[8 * 8 * 3];
    int w = 0, h = 0;
    tg_status st = tg_image_load(path, &rgb, &w, &h);
    fuzz_expect_message(st);
    if (st == TG_OK) {
        if (!rgb || w < 1 || h < 1) abort();
        if (tg_image_resize_square(rgb, w, h, out, 8) != TG_OK && !tg_last_error()[0]) abort();
    }
    free(rgb);
    return 0;
}
