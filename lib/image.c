/*
 * image.c — PNG and JPEG decoding (libpng's simplified API, libjpeg-turbo), PNG writing,
 * center-crop + resize, and tensor -> RGB bytes. Used by datasets (dataset.c) and by programs
 * that write sample grids.
 *
 * Built with TG_NO_CODECS (the WebAssembly build, make wasm: no libpng or libjpeg there), loading
 * and saving refuse with TG_ERR_UNSUPPORTED; resizing and tensor -> RGB stay.
 */
#include "core.h"
#include "io.h"

#include <math.h>
#include <setjmp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#ifndef TG_NO_CODECS
#include <jpeglib.h> /* needs stdio.h first */
#include <png.h>

static tg_status load_png(FILE *f, const char *path, uint8_t **rgb, int *w, int *h) {
    static const char *fn = "tg_image_load";
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    if (!png_image_begin_read_from_stdio(&img, f))
        return tg_fail(TG_ERR_FORMAT, fn, "%s: %s", path, img.message);
    const uint64_t max_px = tg_limits_now()->max_image_pixels;
    if (img.width == 0 || img.height == 0 || (uint64_t)img.width * img.height > max_px) {
        png_image_free(&img);
        return tg_fail(TG_ERR_FORMAT, fn,
                       "%s: a PNG of %ux%u pixels is refused (limit %llu pixels, tg_set_limits)",
                       path, img.width, img.height, (unsigned long long)max_px);
    }
    img.format = PNG_FORMAT_RGB; /* alpha is composited over the background below */
    size_t n = PNG_IMAGE_SIZE(img);
    uint8_t *buf = malloc(n);
    if (!buf) {
        png_image_free(&img);
        return tg_fail(TG_ERR_NOMEM, fn, "out of memory for %s", path);
    }
    png_color white = {255, 255, 255};
    if (!png_image_finish_read(&img, &white, buf, 0, NULL)) {
        free(buf);
        return tg_fail(TG_ERR_FORMAT, fn, "%s: %s", path, img.message);
    }
    *rgb = buf;
    *w = (int)img.width;
    *h = (int)img.height;
    return TG_OK;
}

typedef struct {
    struct jpeg_error_mgr mgr;
    jmp_buf jb;
    char msg[JMSG_LENGTH_MAX];
} jerr;

static void jpeg_fail(j_common_ptr c) {
    jerr *e = (jerr *)c->err;
    c->err->format_message(c, e->msg);
    longjmp(e->jb, 1);
}

static void jpeg_quiet(j_common_ptr c, int level) {
    if (level < 0) c->err->num_warnings++; /* corrupt data: counted, checked after decoding */
}

static tg_status load_jpeg(FILE *f, const char *path, uint8_t **rgb, int *w, int *h) {
    static const char *fn = "tg_image_load";
    struct jpeg_decompress_struct c;
    jerr e;
    uint8_t *volatile buf = NULL;
    c.err = jpeg_std_error(&e.mgr);
    e.mgr.error_exit = jpeg_fail;
    e.mgr.emit_message = jpeg_quiet;
    if (setjmp(e.jb)) {
        jpeg_destroy_decompress(&c);
        free(buf);
        return tg_fail(TG_ERR_FORMAT, fn, "%s: %s", path, e.msg);
    }
    jpeg_create_decompress(&c);
    jpeg_stdio_src(&c, f);
    jpeg_read_header(&c, TRUE);
    /* a bomb (a tiny progressive file claiming 65000x65000) is refused here, before
     * jpeg_start_decompress allocates for the whole image; libjpeg's own working memory is
     * capped too (it fails rather than exceed it) */
    const uint64_t max_px = tg_limits_now()->max_image_pixels;
    const uint64_t px = (uint64_t)c.image_width * c.image_height;
    if (px == 0 || px > max_px) {
        snprintf(e.msg, sizeof e.msg, "a JPEG of %ux%u pixels is refused (limit %llu pixels, tg_set_limits)",
                 c.image_width, c.image_height, (unsigned long long)max_px);
        longjmp(e.jb, 1);
    }
    c.mem->max_memory_to_use = (long)(8 * px + ((uint64_t)16 << 20));
    c.out_color_space = JCS_RGB;
    jpeg_start_decompress(&c);
    if (c.output_components != 3) {
        snprintf(e.msg, sizeof e.msg, "unsupported JPEG (%d components, %ux%u)",
                 c.output_components, c.output_width, c.output_height);
        longjmp(e.jb, 1);
    }
    size_t stride = (size_t)c.output_width * 3;
    buf = malloc(stride * c.output_height);
    if (!buf) {
        snprintf(e.msg, sizeof e.msg, "out of memory");
        longjmp(e.jb, 1);
    }
    while (c.output_scanline < c.output_height) {
        JSAMPROW row = buf + stride * c.output_scanline;
        jpeg_read_scanlines(&c, &row, 1);
    }
    jpeg_finish_decompress(&c);
    long warnings = e.mgr.num_warnings;
    *w = (int)c.output_width;
    *h = (int)c.output_height;
    jpeg_destroy_decompress(&c);
    if (warnings) { /* truncated or corrupt entropy data: libjpeg filled in gray */
        free(buf);
        return tg_fail(TG_ERR_FORMAT, fn, "%s: corrupt or truncated JPEG data", path);
    }
    *rgb = buf;
    return TG_OK;
}

#else
static tg_status no_codecs(const char *fn, const char *path) {
    return tg_fail(TG_ERR_UNSUPPORTED, fn, "%s: this build of libtensorgan has no PNG or JPEG codecs "
                   "(the WebAssembly build); images come in and go out as RGB bytes", path);
}
#endif

/* The file is opened once (a regular file only: lib/file.c) and handed to the decoder. */
tg_status tg_image_load(const char *path, uint8_t **rgb, int *w, int *h) {
    static const char *fn = "tg_image_load";
    if (!path || !rgb || !w || !h)
        return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !path ? "path" : !rgb ? "rgb" : !w ? "w" : "h");
    *rgb = NULL;
#ifdef TG_NO_CODECS
    return no_codecs(fn, path);
#else
    tg_status st;
    FILE *f = tg_open_regular(path, fn, &st);
    if (!f) return st;
    unsigned char magic[8] = {0};
    size_t n = fread(magic, 1, sizeof magic, f);
    rewind(f);
    if (n >= 8 && png_sig_cmp(magic, 0, 8) == 0) st = load_png(f, path, rgb, w, h);
    else if (n >= 3 && magic[0] == 0xFF && magic[1] == 0xD8 && magic[2] == 0xFF) st = load_jpeg(f, path, rgb, w, h);
    else st = tg_fail(TG_ERR_FORMAT, fn, "%s is not an image: neither PNG nor JPEG data", path);
    fclose(f);
    return st;
#endif
}

tg_status tg_image_save_png(const char *path, const uint8_t *rgb, int w, int h) {
    static const char *fn = "tg_image_save_png";
    if (!path || !rgb) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !path ? "path" : "rgb");
    if (!path[0]) return tg_fail(TG_ERR_INVALID, fn, "path is empty");
    const uint64_t max_px = tg_limits_now()->max_image_pixels;
    if (w < 1 || h < 1 || (uint64_t)w * (uint64_t)h > max_px)
        return tg_fail(TG_ERR_INVALID, fn, "a %dx%d image: sides must be >= 1 and the pixels at most %llu "
                       "(the limit images are loaded with, tg_set_limits)", w, h, (unsigned long long)max_px);
#ifdef TG_NO_CODECS
    return no_codecs(fn, path);
#else
    png_image img;
    memset(&img, 0, sizeof img);
    img.version = PNG_IMAGE_VERSION;
    img.width = (png_uint_32)w;
    img.height = (png_uint_32)h;
    img.format = PNG_FORMAT_RGB;
    if (!png_image_write_to_file(&img, path, 0, rgb, 0, NULL))
        return tg_fail(TG_ERR_IO, fn, "%s: %s", path, img.message);
    return TG_OK;
#endif
}

/* Resampling weights for one axis: out pixel o covers source [o*scale, (o+1)*scale). Shrinking:
 * each source pixel weighs its overlap (area averaging). Growing: bilinear between centres. */
typedef struct {
    int first, count;
    float w[64];
} taps;

static void axis_taps(int src, int dst, taps *t) {
    const double scale = (double)src / dst;
    for (int o = 0; o < dst; o++) {
        taps *k = &t[o];
        k->count = 0;
        if (scale >= 1.0) {
            double a = o * scale, b = a + scale;
            int i0 = (int)a, i1 = (int)ceil(b);
            if (i1 > src) i1 = src;
            k->first = i0;
            for (int i = i0; i < i1 && k->count < 64; i++) {
                double lo = i > a ? i : a, hi = i + 1 < b ? i + 1 : b;
                k->w[k->count++] = (float)((hi - lo) / scale);
            }
        } else {
            double c = (o + 0.5) * scale - 0.5;
            if (c < 0) c = 0;
            if (c > src - 1) c = src - 1; /* past the last centre: the edge pixel, full weight */
            int i0 = (int)c;
            double f = c - i0;
            k->first = i0;
            k->w[k->count++] = (float)(1.0 - f);
            if (i0 + 1 < src) k->w[k->count++] = (float)f;
        }
    }
}

tg_status tg_image_resize_square(const uint8_t *src, int w, int h, uint8_t *dst, int size) {
    static const char *fn = "tg_image_resize_square";
    if (!src || !dst) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !src ? "src" : "dst");
    if (w < 1 || h < 1 || size < 1 || size > 65536)
        return tg_fail(TG_ERR_INVALID, fn, "%dx%d -> %d: sides must be >= 1 and size at most 65536", w, h, size);
    const int side = w < h ? w : h, x0 = (w - side) / 2, y0 = (h - side) / 2;
    if ((double)side / size > 64.0)
        return tg_fail(TG_ERR_INVALID, fn, "%dx%d is more than 64x larger than %d", w, h, size);
    int64_t nrows;
    size_t rbytes;
    if (!tg_mul_ok(side, size, &nrows) || !tg_mul_ok(nrows, 3, &nrows) || !tg_bytes_ok(nrows, sizeof(float), &rbytes))
        return tg_fail(TG_ERR_INVALID, fn, "%dx%d -> %d is too large", w, h, size);
    taps *t = malloc(sizeof *t * (size_t)size);
    float *rows = malloc(rbytes); /* [side][size][3] */
    if (!t || !rows) {
        free(t), free(rows);
        return tg_fail(TG_ERR_NOMEM, fn, "out of memory");
    }
    axis_taps(side, size, t);
    for (int y = 0; y < side; y++) { /* horizontal pass */
        const uint8_t *s = src + ((size_t)(y0 + y) * w + x0) * 3;
        for (int o = 0; o < size; o++) {
            float acc[3] = {0, 0, 0};
            for (int k = 0; k < t[o].count; k++)
                for (int c = 0; c < 3; c++) acc[c] += t[o].w[k] * s[(t[o].first + k) * 3 + c];
            for (int c = 0; c < 3; c++) rows[((size_t)y * size + o) * 3 + c] = acc[c];
        }
    }
    for (int o = 0; o < size; o++) /* vertical pass */
        for (int x = 0; x < size; x++)
            for (int c = 0; c < 3; c++) {
                float acc = 0;
                for (int k = 0; k < t[o].count; k++)
                    acc += t[o].w[k] * rows[((size_t)(t[o].first + k) * size + x) * 3 + c];
                int v = (int)lrintf(acc);
                dst[((size_t)o * size + x) * 3 + c] = (uint8_t)(v < 0 ? 0 : v > 255 ? 255 : v);
            }
    free(t);
    free(rows);
    return TG_OK;
}

tg_status tg_tensor_to_rgb(const tg_tensor *t, uint8_t *out) {
    static const char *fn = "tg_tensor_to_rgb";
    TG_API_SCOPE(fn);
    if (!t || !out) return tg_fail(TG_ERR_INVALID, fn, "%s is NULL", !t ? "tensor" : "out");
    if (t->ndim != 4 || t->shape[1] != 3) {
        char b[64];
        return tg_fail(TG_ERR_SHAPE, fn, "tensor %s must be [N,3,H,W]", tg_shape_str(t, b, sizeof b));
    }
    float *h = malloc(sizeof(float) * (size_t)t->numel);
    if (!h) return tg_fail(TG_ERR_NOMEM, fn, "out of memory");
    tg_status s = tg_tensor_read(t, h, t->numel);
    const int64_t N = t->shape[0], P = t->shape[2] * t->shape[3];
    for (int64_t n = 0; n < N && !s; n++)
        for (int64_t p = 0; p < P; p++)
            for (int c = 0; c < 3; c++) {
                float v = (h[(n * 3 + c) * P + p] + 1.0f) * 127.5f;
                v = v < 0 ? 0 : v > 255 ? 255 : v;
                out[(n * P + p) * 3 + c] = (uint8_t)lrintf(v);
            }
    free(h);
    return s;
}
