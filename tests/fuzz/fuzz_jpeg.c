/* fuzz_jpeg.c — JPEG decoding (tg_image_load through libjpeg-turbo) and the crop + resize after it. The
 * input gets the JPEG start-of-image marker if it lacks one, so every run reaches libjpeg. */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t sig[3] = {0xFF, 0xD8, 0xFF};
    fuzz_limits();
    const char *path = fuzz_path(".jpg");
    if (size >= 3 && !memcmp(data, sig, 3)) {
        fuzz_write(path, data, size);
    } else {
        uint8_t *buf = malloc(size + 3);
        memcpy(buf, sig, 3);
        if (size) memcpy(buf + 3, data, size);
        fuzz_write(path, buf, size + 3);
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
