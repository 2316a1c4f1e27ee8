/*
 * make_corpus.c — writes the seed corpora of the fuzz harnesses into tests/fuzz/corpus/<name>/:
 * small valid files of every kind each harness reads (made with the library itself and with
 * libjpeg for progressive JPEGs), plus the hostile inputs of tests/test_hostile.c as regression
 * seeds. Run once by hand when the formats change (tests/fuzz/run.sh does not need it):
 *   cc -Iinclude tests/fuzz/make_corpus.c build/libtensorgan.a $(libs) -o mc && ./mc tests/fuzz/corpus
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include <jpeglib.h>
#include <tensorgan.h>

static char root[512];

static void path(char *out, const char *h, const char *name) {
    snprintf(out, 700, "%s/%s", root, h);
    mkdir(out, 0755);
    snprintf(out, 700, "%s/%s/%s", root, h, name);
}

static void raw(const char *h, const char *name, const void *p, size_t n) {
    char f[700];
    path(f, h, name);
    FILE *fp = fopen(f, "wb");
    fwrite(p, 1, n, fp);
    fclose(fp);
}

static void st_raw(const char *h, const char *name, const char *json, size_t data) {
    uint64_t hl = strlen(json);
    uint8_t *b = calloc(1, 8 + hl + data);
    memcpy(b, &hl, 8);
    memcpy(b + 8, json, hl);
    raw(h, name, b, 8 + hl + data);
    free(b);
}

static void jpeg(const char *h, const char *name, int w, int hh, int progressive) {
    char f[700];
    path(f, h, name);
    FILE *fp = fopen(f, "wb");
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)hh;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    if (progressive) jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[3 * 64];
    for (int x = 0; x < 3 * 64; x++) row[x] = (uint8_t)(x * 7);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(fp);
}

int main(int argc, char **argv) {
    snprintf(root, sizeof root, "%s", argc > 1 ? argv[1] : "tests/fuzz/corpus");
    mkdir(root, 0755);
    tg_ctx *ctx = tg_ctx_new(TG_CPU, 1);
    char f[700];
    /* state: the tensors fuzz_state registers, with metadata */
    tg_tensor *w = tg_tensor_new4(ctx, 2, 3, 0, 0), *b = tg_tensor_new4(ctx, 4, 0, 0, 0);
    tg_tensor_fill_normal(w, 0, 1);
    tg_state *s = tg_state_new();
    tg_state_add(s, "w", w);
    tg_state_add(s, "main.1.bias", b);
    tg_state_set_meta(s, "step", "12");
    path(f, "state", "valid.safetensors");
    tg_state_save(s, f);
    path(f, "state", "valid.safetensors.xz");
    tg_state_save(s, f);
    tg_state_free(s);
    st_raw("state", "overlap.safetensors",
           "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
           "\"main.1.bias\":{\"dtype\":\"F32\",\"shape\":[4],\"data_offsets\":[8,24]}}", 24);
    st_raw("state", "overflow.safetensors",
           "{\"w\":{\"dtype\":\"U8\",\"shape\":[1099511627776,4096,4096,3],\"data_offsets\":[0,0]}}", 1);
    /* checkpoint: what fuzz_checkpoint registers (module, Adam, noise) */
    tg_module *g = tg_sequential(ctx);
    tg_sequential_add(g, tg_layer_conv_transpose2d(ctx, 4, 2, 4, 1, 0, true));
    tg_sequential_add(g, tg_layer_batch_norm(ctx, 2, 0.5f, 1e-3f));
    tg_tensor *p[8];
    int n = tg_module_params(g, p, 8);
    tg_optim *opt = tg_adam(ctx, p, n, 1e-3f, 0.5f, 0.999f, 1e-7f);
    tg_tensor *noise = tg_tensor_new4(ctx, 2, 4, 1, 1);
    s = tg_state_new();
    tg_state_add_module(s, "G.main.", g);
    tg_state_add_optim(s, "optG.", opt);
    tg_state_add(s, "fixed_noise", noise);
    tg_state_set_meta(s, "format", "mangagan-v1");
    tg_state_set_meta(s, "step", "500");
    tg_state_set_meta(s, "seconds", "12.5");
    path(f, "checkpoint", "valid.safetensors");
    tg_state_save(s, f);
    tg_state_free(s);
    /* dataset: packed 8x8 images, plain and xz; the overflow and a bomb-shaped header */
    uint8_t px[5 * 8 * 8 * 3];
    for (size_t i = 0; i < sizeof px; i++) px[i] = (uint8_t)(i * 31);
    tg_dataset *ds = tg_dataset_from_memory(px, 5, 8);
    path(f, "dataset", "five.safetensors");
    tg_dataset_save(ds, f);
    path(f, "dataset", "five.safetensors.xz");
    tg_dataset_save(ds, f);
    tg_dataset_free(ds);
    st_raw("dataset", "overflow.safetensors",
           "{\"images\":{\"dtype\":\"U8\",\"shape\":[1099511627776,4096,4096,3],\"data_offsets\":[0,0]}}", 1);
    /* images */
    uint8_t img[16 * 12 * 3];
    for (size_t i = 0; i < sizeof img; i++) img[i] = (uint8_t)(i * 13);
    path(f, "png", "rgb.png");
    tg_image_save_png(f, img, 16, 12);
    jpeg("jpeg", "baseline.jpg", 16, 12, 0);
    jpeg("jpeg", "progressive.jpg", 16, 12, 1);
    /* imagedir: first byte picks the file count; here one PNG and one JPEG */
    FILE *a = fopen(f, "rb");
    uint8_t pbuf[4096], jbuf[4096], cat[8192];
    size_t pn = fread(pbuf, 1, sizeof pbuf, a);
    fclose(a);
    path(f, "jpeg", "baseline.jpg");
    a = fopen(f, "rb");
    size_t jn = fread(jbuf, 1, sizeof jbuf, a);
    fclose(a);
    size_t half = pn > jn ? pn : jn;
    memset(cat, 0, sizeof cat);
    cat[0] = 1; /* two files */
    memcpy(cat + 1, pbuf, pn);
    memcpy(cat + 1 + half, jbuf, jn);
    raw("imagedir", "png-and-jpeg", cat, 1 + 2 * half);
    raw("png", "rgb-copy.png", pbuf, pn);
    tg_optim_free(opt);
    tg_module_free(g);
    tg_tensor_free(w), tg_tensor_free(b), tg_tensor_free(noise);
    tg_ctx_free(ctx);
    printf("make_corpus: seeds written under %s\n", root);
    return 0;
}
