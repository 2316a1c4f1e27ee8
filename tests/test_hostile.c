/*
 * test_hostile.c — files built to hurt a loader, each a regression for something an attacker
 * found, each checked for what it must not cost: a packed dataset whose element count overflows
 * 64 bits, a progressive JPEG and a PNG claiming huge sizes (decompression bombs), an xz stream
 * that expands past the file limit, a safetensors header of many small metadata entries, and a
 * checkpoint writer killed at random moments (no temporary file may stay behind). Memory is
 * measured in a forked child as the growth of its peak RSS across the one call.
 */
#include "testutil.h"

#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/wait.h>
#include <dirent.h>
#include <time.h>
#include <unistd.h>

#include <jpeglib.h>
#include <lzma.h>

/* Under ASan (make test SAN=1) freed memory sits in a quarantine that would count as growth of the
 * peak RSS; this binary measures memory, so it runs without one (overflows are still caught). */
const char *__asan_default_options(void);
__attribute__((visibility("default"), used)) const char *__asan_default_options(void) { return "quarantine_size_mb=0"; }

static char dir[256];
static int setup(void **s) {
    (void)s;
    snprintf(dir, sizeof dir, "/tmp/tg_hostile_XXXXXX");
    return mkdtemp(dir) ? 0 : -1;
}
static int teardown(void **s) {
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    return system(cmd) == 0 ? 0 : -1;
}
static void p(char *out, const char *name) { snprintf(out, 300, "%s/%s", dir, name); }

static void write_file(const char *f, const void *buf, size_t n) {
    FILE *fp = fopen(f, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(buf, 1, n, fp), n);
    fclose(fp);
}

static size_t safetensors_bytes(uint8_t *out, const char *json, size_t data_bytes) {
    uint64_t hl = strlen(json);
    memcpy(out, &hl, 8);
    memcpy(out + 8, json, hl);
    memset(out + 8 + hl, 0, data_bytes);
    return 8 + hl + data_bytes;
}

/* What a loader call did in a child process: its status, message, peak-RSS growth, time. */
typedef struct {
    int status;
    long rss_growth_kb;
    double seconds;
    char msg[1024];
} outcome;

typedef tg_status (*loader_fn)(const char *path);

static long peak_kb(void) {
    struct rusage ru;
    getrusage(RUSAGE_SELF, &ru);
    return ru.ru_maxrss;
}

static outcome in_child(loader_fn f, const char *path) {
    int fd[2];
    assert_int_equal(pipe(fd), 0);
    pid_t pid = fork();
    assert_true(pid >= 0);
    if (pid == 0) {
        close(fd[0]);
        outcome o;
        memset(&o, 0, sizeof o);
        struct timespec a, b;
        const long before = peak_kb();
        clock_gettime(CLOCK_MONOTONIC, &a);
        o.status = (int)f(path);
        clock_gettime(CLOCK_MONOTONIC, &b);
        o.rss_growth_kb = peak_kb() - before;
        o.seconds = (double)(b.tv_sec - a.tv_sec) + 1e-9 * (double)(b.tv_nsec - a.tv_nsec);
        snprintf(o.msg, sizeof o.msg, "%s", tg_last_error());
        if (write(fd[1], &o, sizeof o) != (ssize_t)sizeof o) _exit(3);
        _exit(0);
    }
    close(fd[1]);
    outcome o;
    memset(&o, 0, sizeof o);
    size_t got = 0;
    ssize_t r;
    while (got < sizeof o && (r = read(fd[0], (char *)&o + got, sizeof o - got)) > 0) got += (size_t)r;
    close(fd[0]);
    int st;
    waitpid(pid, &st, 0);
    if (!WIFEXITED(st) || WEXITSTATUS(st) != 0 || got != sizeof o)
        fail_msg("the loader's child process died (status %d)", st);
    return o;
}

static tg_status load_dataset_4096(const char *path) {
    tg_dataset *ds = tg_dataset_load(path, 4096, NULL);
    tg_status st = ds ? TG_OK : TG_ERR_FORMAT;
    tg_dataset_free(ds);
    return st;
}
static tg_status load_dataset_64(const char *path) {
    tg_dataset *ds = tg_dataset_load(path, 64, NULL);
    tg_status st = ds ? TG_OK : TG_ERR_FORMAT;
    tg_dataset_free(ds);
    return st;
}
static tg_status load_image(const char *path) {
    uint8_t *rgb = NULL;
    int w, h;
    tg_status st = tg_image_load(path, &rgb, &w, &h);
    free(rgb);
    return st;
}
static tg_status load_meta(const char *path) {
    tg_state *s = tg_state_new();
    tg_status st = tg_state_load(s, path, false);
    tg_state_free(s);
    return st;
}

#define EXPECT(o, code, needle, max_kb)                                                          \
    do {                                                                                         \
        if ((o).status != (code) || !strstr((o).msg, (needle)))                                  \
            fail_msg("status %d, message \"%s\" (wanted %d and \"%s\")", (o).status, (o).msg,    \
                     (int)(code), (needle));                                                     \
        if ((o).rss_growth_kb > (max_kb))                                                        \
            fail_msg("peak RSS grew by %ld KB (bound %ld KB)", (o).rss_growth_kb, (long)(max_kb)); \
    } while (0)

/* [2^40, 4096, 4096, 3] with data_offsets [0,0]: the byte size wraps to 0 in 64 bits */
static void test_dataset_count_overflow(void **state) {
    (void)state;
    char f[300];
    uint8_t buf[256];
    p(f, "overflow.safetensors");
    size_t n = safetensors_bytes(
        buf, "{\"images\":{\"dtype\":\"U8\",\"shape\":[1099511627776,4096,4096,3],\"data_offsets\":[0,0]}}",
        1);
    write_file(f, buf, n);
    outcome o = in_child(load_dataset_4096, f);
    EXPECT(o, TG_ERR_FORMAT, "does not fit its shape", 8192);
}

static void write_progressive_jpeg(const char *path, int w, int h) {
    FILE *fp = fopen(path, "wb");
    assert_non_null(fp);
    struct jpeg_compress_struct c;
    struct jpeg_error_mgr e;
    c.err = jpeg_std_error(&e);
    jpeg_create_compress(&c);
    jpeg_stdio_dest(&c, fp);
    c.image_width = (JDIMENSION)w;
    c.image_height = (JDIMENSION)h;
    c.input_components = 3;
    c.in_color_space = JCS_RGB;
    jpeg_set_defaults(&c);
    jpeg_simple_progression(&c);
    jpeg_start_compress(&c, TRUE);
    uint8_t row[3 * 64];
    memset(row, 128, sizeof row);
    while (c.next_scanline < c.image_height) {
        JSAMPROW r = row;
        jpeg_write_scanlines(&c, &r, 1);
    }
    jpeg_finish_compress(&c);
    jpeg_destroy_compress(&c);
    fclose(fp);
}

static uint8_t *read_all(const char *f, long *n) {
    FILE *fp = fopen(f, "rb");
    assert_non_null(fp);
    fseek(fp, 0, SEEK_END);
    *n = ftell(fp);
    rewind(fp);
    uint8_t *b = malloc((size_t)*n);
    assert_int_equal(fread(b, 1, (size_t)*n, fp), (size_t)*n);
    fclose(fp);
    return b;
}

/* a few hundred bytes of progressive JPEG claiming 65484x65496: refused before decoding */
static void test_jpeg_bomb(void **state) {
    (void)state;
    char f[300];
    p(f, "bomb.jpg");
    write_progressive_jpeg(f, 16, 16);
    long n;
    uint8_t *b = read_all(f, &n);
    int patched = 0;
    for (long i = 0; i + 9 < n; i++)
        if (b[i] == 0xFF && b[i + 1] == 0xC2) { /* SOF2: length(2) precision(1) height(2) width(2) */
            b[i + 5] = 0xFF, b[i + 6] = 0xD8; /* 65496 */
            b[i + 7] = 0xFF, b[i + 8] = 0xCC; /* 65484 */
            patched = 1;
            break;
        }
    assert_true(patched);
    write_file(f, b, (size_t)n);
    free(b);
    outcome o = in_child(load_image, f);
    EXPECT(o, TG_ERR_FORMAT, "65484x65496 pixels is refused", 16384);
    if (o.seconds > 2.0) fail_msg("refusing the bomb took %.2f s", o.seconds);
}

static uint32_t crc32_of(const uint8_t *p8, size_t n) {
    uint32_t c = 0xFFFFFFFFu;
    for (size_t i = 0; i < n; i++) {
        c ^= p8[i];
        for (int k = 0; k < 8; k++) c = (c >> 1) ^ (0xEDB88320u & (0u - (c & 1u)));
    }
    return c ^ 0xFFFFFFFFu;
}

static void put_be32(uint8_t *b, uint32_t v) {
    b[0] = (uint8_t)(v >> 24), b[1] = (uint8_t)(v >> 16), b[2] = (uint8_t)(v >> 8), b[3] = (uint8_t)v;
}

/* a PNG whose IHDR (with a valid CRC) claims 100000x100000 */
static void test_png_bomb(void **state) {
    (void)state;
    char f[300];
    p(f, "bomb.png");
    uint8_t px[4 * 4 * 3] = {0};
    assert_int_equal(tg_image_save_png(f, px, 4, 4), TG_OK);
    long n;
    uint8_t *b = read_all(f, &n);
    assert_true(n > 33 && !memcmp(b + 12, "IHDR", 4));
    put_be32(b + 16, 100000);
    put_be32(b + 20, 100000);
    put_be32(b + 29, crc32_of(b + 12, 17));
    write_file(f, b, (size_t)n);
    free(b);
    outcome o = in_child(load_image, f);
    EXPECT(o, TG_ERR_FORMAT, "100000x100000 pixels is refused", 16384);
}

/* 24 MB of zeros packed with xz (a few KB): over a 4 MB limit it is refused from the xz index,
 * before decoding, with a message naming the limit */
static void test_xz_bomb(void **state) {
    (void)state;
    char f[300];
    p(f, "bomb.safetensors.xz");
    const size_t data = (size_t)2048 * 64 * 64 * 3; /* 24 MiB of images */
    uint8_t *raw = malloc(data + 256);
    size_t n = safetensors_bytes(
        raw, "{\"images\":{\"dtype\":\"U8\",\"shape\":[2048,64,64,3],\"data_offsets\":[0,25165824]}}", data);
    size_t cap = n / 64 + 65536, out = 0;
    uint8_t *xz = malloc(cap);
    assert_int_equal(lzma_easy_buffer_encode(0, LZMA_CHECK_CRC64, NULL, raw, n, xz, &out, cap), LZMA_OK);
    free(raw);
    write_file(f, xz, out);
    free(xz);
    tg_limits old, lim = {(uint64_t)4 << 20, 0, 0};
    tg_get_limits(&old);
    tg_set_limits(&lim);
    outcome o = in_child(load_dataset_64, f);
    tg_set_limits(&old);
    char needle[160];
    snprintf(needle, sizeof needle, "declares %zu bytes uncompressed, over the 4194304-byte file limit", n);
    EXPECT(o, TG_ERR_FORMAT, needle, 4096);
    /* under the default limit the same file loads */
    o = in_child(load_dataset_64, f);
    if (o.status != TG_OK) fail_msg("%s", o.msg);
}

/* ~1.3 MB of header in 40,000 small metadata entries: memory stays a small multiple of it */
static void test_metadata_header(void **state) {
    (void)state;
    char f[300];
    p(f, "meta.safetensors");
    const int entries = 40000;
    size_t cap = (size_t)entries * 40 + 64;
    char *json = malloc(cap);
    size_t o = (size_t)snprintf(json, cap, "{\"__metadata__\":{");
    for (int i = 0; i < entries; i++)
        o += (size_t)snprintf(json + o, cap - o, "%s\"k%d\":\"v%d\"", i ? "," : "", i, i);
    o += (size_t)snprintf(json + o, cap - o, "}}");
    uint8_t *buf = malloc(o + 16);
    size_t n = safetensors_bytes(buf, json, 0);
    write_file(f, buf, n);
    free(buf);
    free(json);
    outcome out = in_child(load_meta, f);
    EXPECT(out, TG_OK, "", 48 * 1024);
}

/* A saver killed at random moments: the target is always a complete file (or absent) and no
 * temporary file stays behind. */
static void test_killed_writer_leaves_no_temp(void **state) {
    (void)state;
    char f[300];
    p(f, "killed.safetensors");
    tu_seed(5);
    for (int round = 0; round < 20; round++) {
        pid_t pid = fork();
        assert_true(pid >= 0);
        if (pid == 0) {
            tg_ctx *c = tg_ctx_new(TG_CPU, 1);
            tg_tensor *t = tg_tensor_new4(c, 4, 1024, 1024, 0); /* 16 MiB */
            tg_state *s = tg_state_new();
            tg_state_add(s, "t", t);
            for (;;) tg_state_save(s, f);
        }
        struct timespec ts = {0, (long)tu_uniform(1e6, 60e6)};
        nanosleep(&ts, NULL);
        kill(pid, SIGKILL);
        waitpid(pid, NULL, 0);
        if (access(f, F_OK) == 0) {
            tg_ctx *c = tg_ctx_new(TG_CPU, 1);
            tg_tensor *t = tg_tensor_new4(c, 4, 1024, 1024, 0);
            tg_state *s = tg_state_new();
            tg_state_add(s, "t", t);
            if (tg_state_load(s, f, true) != TG_OK) fail_msg("round %d: %s", round, tg_last_error());
            tg_state_free(s);
            tg_tensor_free(t);
            tg_ctx_free(c);
        }
    }
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d)))
        if (strstr(e->d_name, "killed.safetensors.tmp")) fail_msg("left behind: %s", e->d_name);
    closedir(d);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_dataset_count_overflow),
        cmocka_unit_test(test_jpeg_bomb),
        cmocka_unit_test(test_png_bomb),
        cmocka_unit_test(test_xz_bomb),
        cmocka_unit_test(test_metadata_header),
        cmocka_unit_test(test_killed_writer_leaves_no_temp),
    };
    return cmocka_run_group_tests(tests, setup, teardown);
}
