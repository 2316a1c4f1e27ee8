/*
 * test_dataset.c — image loading and datasets. Fixtures are written here with libpng/libjpeg:
 * RGB, grayscale and RGBA PNGs, RGB and grayscale JPEGs, odd sizes, a corrupt file, a truncated
 * PNG and a truncated JPEG, a non-image file, a nested directory. Checks decoding (alpha over
 * white, gray to RGB), crop + area resize, skipping and counting bad files, packed round trips
 * (plain and xz), and batches (scaling to [-1,1], order, flips).
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <png.h>

static char dir[256];

static int setup(void **s) {
    (void)s;
    snprintf(dir, sizeof dir, "/tmp/tg_ds_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **s) {
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}

static void write_png(const char *path, int w, int h, png_uint_32 format, const void *px) {
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = format;
    assert_true(png_image_write_to_file(&img, path, 0, px, 0, NULL));
}

static void write_jpeg(const char *path, int w, int h, int comps, const uint8_t *px) {
    FILE *f = fopen(path, "wb");
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, f);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = comps;
    c.in_color_space = comps == 3 ? JCS_RGB : JCS_GRAYSCALE;
    jpeg_set_defaults(&c);
    jpeg_set_quality(&c, 95, TRUE);
    jpeg_start_compress(&c, TRUE);
    while (c.next_scanline < c.image_height) {
        JSAMPROW row = (JSAMPROW)(px + (size_t)c.next_scanline * w * comps);
        jpeg_write_scanlines(&c, &row, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(f);
}

static void truncate_copy(const char *src, const char *dst, long keep) {
    FILE *a = fopen(src, "rb"), *b = fopen(dst, "wb");
    for (long i = 0; i < keep; i++) {
        int ch = fgetc(a);
        if (ch == EOF) break;
        fputc(ch, b);
    }
    fclose(a), fclose(b);
}

static void p(char *out, const char *name) { snprintf(out, 300, "%s/%s", dir, name); }

static void test_decode(void **state) {
    (void)state;
    char f[300];
    /* RGBA: transparent -> white, half-transparent black -> mid gray, opaque red stays red */
    uint8_t rgba[3 * 4] = {0, 0, 0, 0, 0, 0, 0, 128, 255, 0, 0, 255};
    p(f, "alpha.png");
    write_png(f, 3, 1, PNG_FORMAT_RGBA, rgba);
    uint8_t *rgb;
    int w, h;
    assert_int_equal(tg_image_load(f, &rgb, &w, &h), TG_OK);
    assert_int_equal(w, 3);
    assert_int_equal(h, 1);
    assert_true(rgb[0] == 255 && rgb[1] == 255 && rgb[2] == 255);
    /* libpng composites in linear light: 50% black over white is sRGB ~188, not 128 */
    if (!(rgb[3] > 175 && rgb[3] < 200 && rgb[3] == rgb[4] && rgb[4] == rgb[5]))
        fail_msg("half-transparent black over white gave %d,%d,%d", rgb[3], rgb[4], rgb[5]);
    assert_true(rgb[6] == 255 && rgb[7] == 0 && rgb[8] == 0);
    free(rgb);
    /* grayscale PNG and JPEG come back as R=G=B */
    uint8_t gray[4 * 4];
    for (int i = 0; i < 16; i++) gray[i] = (uint8_t)(i * 16);
    p(f, "gray.png");
    write_png(f, 4, 4, PNG_FORMAT_GRAY, gray);
    assert_int_equal(tg_image_load(f, &rgb, &w, &h), TG_OK);
    for (int i = 0; i < 16; i++) assert_true(rgb[3 * i] == gray[i] && rgb[3 * i + 1] == gray[i] && rgb[3 * i + 2] == gray[i]);
    free(rgb);
    uint8_t flat[16 * 16];
    memset(flat, 90, sizeof flat);
    p(f, "gray.jpg");
    write_jpeg(f, 16, 16, 1, flat);
    assert_int_equal(tg_image_load(f, &rgb, &w, &h), TG_OK);
    assert_true(w == 16 && h == 16 && abs(rgb[0] - 90) <= 2 && rgb[0] == rgb[1]);
    free(rgb);
    /* not an image, and a missing file */
    p(f, "notes.png");
    FILE *fp = fopen(f, "w");
    fputs("this is not a PNG at all", fp);
    fclose(fp);
    assert_int_equal(tg_image_load(f, &rgb, &w, &h), TG_ERR_FORMAT);
    assert_non_null(strstr(tg_last_error(), "notes.png is not an image: neither PNG nor JPEG"));
    /* the same text file as a packed dataset or a checkpoint: what it is not, then the detail */
    assert_null(tg_dataset_load(f, 64, NULL));
    assert_non_null(strstr(tg_last_error(), "notes.png is neither an image directory nor a packed image dataset"));
    assert_non_null(strstr(tg_last_error(), "not a safetensors file"));
    tg_state *st = tg_state_new();
    assert_int_equal(tg_state_load(st, f, false), TG_ERR_FORMAT);
    assert_non_null(strstr(tg_last_error(), "notes.png is not a safetensors file"));
    /* a checkpoint is a safetensors file, but not a dataset */
    tg_ctx *c = tg_ctx_new(TG_CPU, 1);
    tg_tensor *t = tg_tensor_new4(c, 3, 0, 0, 0);
    p(f, "ckpt.safetensors");
    assert_int_equal(tg_state_add(st, "w", t), TG_OK);
    assert_int_equal(tg_state_set_meta(st, "format", "mangagan-v1"), TG_OK);
    assert_int_equal(tg_state_save(st, f), TG_OK);
    assert_null(tg_dataset_load(f, 64, NULL));
    assert_non_null(strstr(tg_last_error(), "is not a packed image dataset: it has no U8 tensor \"images\""));
    assert_non_null(strstr(tg_last_error(), "mangagan-v1"));
    tg_state_free(st);
    tg_tensor_free(t);
    tg_ctx_free(c);
    assert_int_equal(tg_image_load("/nonexistent.png", &rgb, &w, &h), TG_ERR_IO);
}

static void test_resize(void **state) {
    (void)state;
    /* 4x4 checkerboard of 0/200 shrunk to 2x2 by area averaging: every pixel 100 */
    uint8_t src[4 * 4 * 3], dst[64 * 64 * 3];
    for (int y = 0; y < 4; y++)
        for (int x = 0; x < 4; x++)
            for (int c = 0; c < 3; c++) src[(y * 4 + x) * 3 + c] = (x + y) % 2 ? 200 : 0;
    assert_int_equal(tg_image_resize_square(src, 4, 4, dst, 2), TG_OK);
    for (int i = 0; i < 12; i++) assert_int_equal(dst[i], 100);
    /* a wide image is center-cropped: 6x2 with the middle 2x2 white, sides black -> all white */
    uint8_t wide[6 * 2 * 3];
    for (int y = 0; y < 2; y++)
        for (int x = 0; x < 6; x++)
            for (int c = 0; c < 3; c++) wide[(y * 6 + x) * 3 + c] = (x == 2 || x == 3) ? 255 : 0;
    assert_int_equal(tg_image_resize_square(wide, 6, 2, dst, 64), TG_OK);
    for (int i = 0; i < 64 * 64 * 3; i++) assert_int_equal(dst[i], 255);
    /* growing keeps a flat color flat */
    uint8_t one[3] = {10, 20, 30};
    assert_int_equal(tg_image_resize_square(one, 1, 1, dst, 64), TG_OK);
    assert_true(dst[64 * 64 * 3 - 3] == 10 && dst[64 * 64 * 3 - 1] == 30);
    assert_int_equal(tg_image_resize_square(one, 0, 1, dst, 64), TG_ERR_INVALID);
}

/* a directory with good, odd, nested, corrupt and truncated files */
static void test_directory(void **state) {
    (void)state;
    char d[300], sub[320], f[400], g[400];
    p(d, "imgs");
    mkdir(d, 0755);
    snprintf(sub, sizeof sub, "%s/nested", d);
    mkdir(sub, 0755);
    uint8_t *px = malloc(90 * 90 * 3);
    for (int i = 0; i < 90 * 90 * 3; i++) px[i] = (uint8_t)(i * 7);
    snprintf(f, sizeof f, "%s/a.png", d);
    write_png(f, 37, 23, PNG_FORMAT_RGB, px);       /* odd size */
    snprintf(f, sizeof f, "%s/b.JPG", sub);
    write_jpeg(f, 90, 64, 3, px);                   /* nested, upper-case extension */
    snprintf(f, sizeof f, "%s/c.jpeg", d);
    write_jpeg(f, 5, 90, 3, px);                    /* tall and thin */
    snprintf(f, sizeof f, "%s/big.png", d);
    write_png(f, 90, 90, PNG_FORMAT_RGB, px);
    snprintf(g, sizeof g, "%s/trunc.png", d);
    truncate_copy(f, g, 200);                       /* truncated PNG */
    snprintf(f, sizeof f, "%s/nested/b.JPG", d);
    snprintf(g, sizeof g, "%s/trunc.jpg", d);
    truncate_copy(f, g, 400);                       /* truncated JPEG */
    snprintf(f, sizeof f, "%s/corrupt.png", d);
    FILE *fp = fopen(f, "wb");
    for (int i = 0; i < 300; i++) fputc(i * 13, fp);
    fclose(fp);
    snprintf(f, sizeof f, "%s/readme.txt", d);     /* ignored: not an image name */
    fp = fopen(f, "w");
    fputs("hello", fp);
    fclose(fp);
    int skipped = -1;
    tg_dataset *ds = tg_dataset_load(d, 64, &skipped);
    assert_non_null(ds);
    assert_int_equal(tg_dataset_count(ds), 4);
    assert_int_equal(skipped, 3);
    assert_int_equal(tg_dataset_size(ds), 64);
    assert_non_null(tg_dataset_image(ds, 3));
    assert_null(tg_dataset_image(ds, 4));
    tg_dataset_free(ds);
    free(px);
    /* no usable image: an error naming the directory */
    char empty[300];
    p(empty, "empty");
    mkdir(empty, 0755);
    assert_null(tg_dataset_load(empty, 64, NULL));
    assert_non_null(strstr(tg_last_error(), empty));
    assert_null(tg_dataset_load("/nonexistent/dir", 64, NULL));
    assert_non_null(strstr(tg_last_error(), "does not exist"));
}

static void test_pack_and_batch(void **state) {
    (void)state;
    const int S = 8, N = 5;
    uint8_t px[5 * 8 * 8 * 3];
    tu_seed(3);
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)tu_uniform(0, 256);
    tg_dataset *ds = tg_dataset_from_memory(px, N, S);
    assert_non_null(ds);
    const char *names[2] = {"pack.safetensors", "pack.safetensors.xz"};
    for (int k = 0; k < 2; k++) {
        char f[300];
        p(f, names[k]);
        assert_int_equal(tg_dataset_save(ds, f), TG_OK);
        tg_dataset *back = tg_dataset_load(f, S, NULL);
        assert_non_null(back);
        assert_int_equal(tg_dataset_count(back), N);
        assert_memory_equal(tg_dataset_image(back, 0), px, sizeof px);
        tg_dataset_free(back);
        assert_null(tg_dataset_load(f, 16, NULL)); /* other size: refused, with a message */
        assert_non_null(strstr(tg_last_error(), "8x8 images, 16x16 were asked for"));
    }
    /* a corrupt xz file */
    char f[300], g[300];
    p(f, "pack.safetensors.xz");
    p(g, "bad.safetensors.xz");
    truncate_copy(f, g, 100);
    assert_null(tg_dataset_load(g, S, NULL));
    assert_non_null(strstr(tg_last_error(), "xz"));
    /* batches: values scaled to [-1,1], in the order asked, mirrored where asked */
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    tg_tensor *b = tg_tensor_new4(ctx, 2, 3, S, S);
    int64_t idx[2] = {4, 1};
    uint8_t flip[2] = {0, 1};
    assert_int_equal(tg_dataset_batch(ds, b, idx, flip), TG_OK);
    float *v = tu_read(b);
    for (int c = 0; c < 3; c++)
        for (int y = 0; y < S; y++)
            for (int x = 0; x < S; x++) {
                float a = v[(0 * 3 + c) * S * S + y * S + x], m = v[(1 * 3 + c) * S * S + y * S + x];
                float ea = px[((4 * S + y) * S + x) * 3 + c] / 127.5f - 1.0f;
                float em = px[((1 * S + y) * S + (S - 1 - x)) * 3 + c] / 127.5f - 1.0f;
                assert_true(fabsf(a - ea) < 1e-6f && fabsf(m - em) < 1e-6f);
                assert_true(a >= -1.0f && a <= 1.0f);
            }
    free(v);
    int64_t badidx[2] = {0, 5};
    assert_int_equal(tg_dataset_batch(ds, b, badidx, NULL), TG_ERR_INVALID);
    tg_tensor *wrong = tg_tensor_new4(ctx, 2, 3, 4, 4);
    assert_int_equal(tg_dataset_batch(ds, wrong, idx, NULL), TG_ERR_SHAPE);
    tg_tensor_free(b), tg_tensor_free(wrong);
    tg_ctx_free(ctx);
    tg_dataset_free(ds);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_decode),
        cmocka_unit_test(test_resize),
        cmocka_unit_test(test_directory),
        cmocka_unit_test(test_pack_and_batch),
    };
    return cmocka_run_group_tests_name("images and datasets", tests, setup, teardown);
}
