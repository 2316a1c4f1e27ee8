/*
 * no_codecs.c — what the WebAssembly build leaves out refuses plainly (make test-wasm, under Node
 * with the host's files): PNG/JPEG loading and saving and xz files, read or written, fail with
 * TG_ERR_UNSUPPORTED and a message starting with the function's name; a plain safetensors file
 * still saves and loads, bit for bit, and RGB bytes still come out of a tensor.
 */
#include <cmocka.h>
#include <tensorgan.h>

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static char dir[64];

static void path(char *out, size_t n, const char *name) { snprintf(out, n, "%s/%s", dir, name); }

static void refused(tg_status st, const char *fn) {
    assert_int_equal(st, TG_ERR_UNSUPPORTED);
    if (strncmp(tg_last_error(), fn, strlen(fn)) || !strstr(tg_last_error(), "WebAssembly"))
        fail_msg("the message should start with %s and name the build: \"%s\"", fn, tg_last_error());
}

static void test_images_refused(void **state) {
    (void)state;
    char p[128];
    path(p, sizeof p, "x.png");
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    static const unsigned char png_magic[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};
    assert_int_equal(fwrite(png_magic, 1, 8, f), 8);
    fclose(f);
    uint8_t *rgb = (uint8_t *)1;
    int w, h;
    refused(tg_image_load(p, &rgb, &w, &h), "tg_image_load");
    assert_null(rgb);
    uint8_t px[12] = {0};
    path(p, sizeof p, "out.png");
    refused(tg_image_save_png(p, px, 2, 2), "tg_image_save_png");
    assert_null(fopen(p, "rb")); /* nothing written */
}

static void test_xz_refused_plain_kept(void **state) {
    (void)state;
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 3);
    assert_non_null(ctx);
    int64_t shape[2] = {2, 3};
    tg_tensor *t = tg_tensor_new(ctx, 2, shape), *u = tg_tensor_new(ctx, 2, shape);
    assert_int_equal(tg_tensor_fill_normal(t, 0.0f, 1.0f), TG_OK);
    tg_state *s = tg_state_new();
    assert_int_equal(tg_state_add(s, "t", t), TG_OK);
    char p[128];
    path(p, sizeof p, "s.safetensors.xz");
    refused(tg_state_save(s, p), "tg_state_save");
    /* an xz file (its magic bytes) is refused on reading, before anything is decoded */
    FILE *f = fopen(p, "wb");
    assert_non_null(f);
    static const unsigned char xz_magic[12] = {0xFD, '7', 'z', 'X', 'Z', 0, 0, 4, 0xE6, 0xD6, 0xB4, 0x46};
    assert_int_equal(fwrite(xz_magic, 1, sizeof xz_magic, f), sizeof xz_magic);
    fclose(f);
    refused(tg_state_load(s, p, false), "tg_state_load");
    /* a plain file round-trips */
    path(p, sizeof p, "s.safetensors");
    assert_int_equal(tg_state_save(s, p), TG_OK);
    tg_state *r = tg_state_new();
    assert_int_equal(tg_state_add(r, "t", u), TG_OK);
    assert_int_equal(tg_state_load(r, p, false), TG_OK);
    float a[6], b[6];
    assert_int_equal(tg_tensor_read(t, a, 6), TG_OK);
    assert_int_equal(tg_tensor_read(u, b, 6), TG_OK);
    assert_memory_equal(a, b, sizeof a);
    /* and bytes out of a tensor: [-1, 1] -> 0..255 */
    int64_t is[4] = {1, 3, 1, 2};
    tg_tensor *img = tg_tensor_new(ctx, 4, is);
    const float v[6] = {-1.0f, 1.0f, 0.0f, 1.0f, -1.0f, 1.0f}; /* R plane, G plane, B plane */
    assert_int_equal(tg_tensor_write(img, v, 6), TG_OK);
    uint8_t rgb[6];
    assert_int_equal(tg_tensor_to_rgb(img, rgb), TG_OK);
    assert_int_equal(rgb[0], 0);   /* pixel 0 R */
    assert_int_equal(rgb[3], 255); /* pixel 1 R */
    assert_int_equal(rgb[5], 255); /* pixel 1 B */
    tg_state_free(s), tg_state_free(r);
    tg_tensor_free(t), tg_tensor_free(u), tg_tensor_free(img);
    tg_ctx_free(ctx);
}

int main(int argc, char **argv) {
    snprintf(dir, sizeof dir, "%s", argc > 1 ? argv[1] : "/tmp");
    const struct CMUnitTest tests[] = {cmocka_unit_test(test_images_refused), cmocka_unit_test(test_xz_refused_plain_kept)};
    return cmocka_run_group_tests_name("no codecs", tests, NULL, NULL);
}
