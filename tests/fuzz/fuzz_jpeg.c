/* fuzz_jpeg.c — JPEG decoding (tg_image_load through libjpeg-turbo) and the crop + resize after
 * it (fuzz_image in fuzz.h). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t sig[3] = {0xFF, 0xD8, 0xFF};
    return fuzz_image(data, size, sig, sizeof sig, ".jpg");
}
