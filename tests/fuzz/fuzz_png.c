/* fuzz_png.c — PNG decoding (tg_image_load through libpng) and the crop + resize after it
 * (fuzz_image in fuzz.h). */
#include "fuzz.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static const uint8_t sig[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    return fuzz_image(data, size, sig, sizeof sig, ".png");
}
