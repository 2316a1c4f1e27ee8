/*
 * test_checkpoint.c — safetensors round trips (module + optimizer + metadata), the file layout
 * as another reader sees it, atomic replacement, and hostile files: truncated, oversized header
 * length, malformed JSON, offsets out of bounds, wrong dtype or shape, missing and unexpected
 * tensors, random byte corruption. A failed load must leave every tensor untouched.
 */
#include "testutil.h"

#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tg_ctx *ctx;
static char dir[256];

static int setup(void **s) {
    (void)s;
    snprintf(dir, sizeof dir, "/tmp/tg_ckpt_XXXXXX");
    if (!mkdtemp(dir)) return -1;
    return (ctx = tg_ctx_new(TG_CPU, 21)) ? 0 : -1;
}
static int teardown(void **s) {
    (void)s;
    char cmd[300];
    snprintf(cmd, sizeof cmd, "rm -rf %s", dir);
    if (system(cmd) != 0) return -1;
    tg_ctx_free(ctx);
    return 0;
}

static tg_module *net(void) {
    tg_module *m = tg_sequential(ctx);
    tg_sequential_add(m, tg_layer_conv2d(ctx, 3, 4, 3, 1, 1, true));
    tg_sequential_add(m, tg_layer_batch_norm(ctx, 4, 0.1f, 1e-5f));
    tg_sequential_add(m, tg_layer_leaky_relu(ctx, 0.2f));
    tg_sequential_add(m, tg_layer_flatten(ctx));
    tg_sequential_add(m, tg_layer_dense(ctx, 4 * 4 * 4, 2, true));
    return m;
}

static void train_step(tg_module *m, tg_optim *o) {
    tg_tensor *x = tg_tensor_new4(ctx, 2, 3, 4, 4);
    tg_tensor_fill_normal(x, 0, 1);
    tg_optim_zero_grad(o);
    assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_module_forward(m, x))), TG_OK);
    assert_int_equal(tg_optim_step(o), TG_OK);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
}

static void assert_same_state(tg_module *a, tg_module *b) {
    tg_tensor *ta[32], *tb[32];
    int n = tg_module_state(a, NULL, ta, 32);
    assert_int_equal(tg_module_state(b, NULL, tb, 32), n);
    for (int i = 0; i < n; i++) {
        float *va = tu_read(ta[i]), *vb = tu_read(tb[i]);
        assert_memory_equal(va, vb, sizeof(float) * (size_t)tg_tensor_numel(ta[i]));
        free(va), free(vb);
    }
}

static void path(char *out, const char *name) { snprintf(out, 300, "%s/%s", dir, name); }

static void test_round_trip(void **state) {
    (void)state;
    char f[300];
    path(f, "ckpt.safetensors");
    tg_module *a = net();
    tg_tensor *pa[16];
    int n = tg_module_params(a, pa, 16);
    tg_optim *oa = tg_adam(ctx, pa, n, 1e-2f, 0.5f, 0.999f, 1e-7f);
    train_step(a, oa);
    train_step(a, oa);
    tg_state *s = tg_state_new();
    assert_int_equal(tg_state_add_module(s, "main.", a), TG_OK);
    assert_int_equal(tg_state_add_optim(s, "opt.", oa), TG_OK);
    assert_int_equal(tg_state_set_meta(s, "step", "2"), TG_OK);
    assert_int_equal(tg_state_set_meta(s, "quote\"and\\slash", "line\nbreak"), TG_OK);
    assert_int_equal(tg_state_save(s, f), TG_OK);
    tg_state_free(s);

    /* a fresh model and optimizer, loaded, continue exactly like the original */
    tg_module *b = net();
    tg_tensor *pb[16];
    tg_module_params(b, pb, 16);
    tg_optim *ob = tg_adam(ctx, pb, n, 1e-2f, 0.5f, 0.999f, 1e-7f);
    s = tg_state_new();
    tg_state_add_module(s, "main.", b);
    tg_state_add_optim(s, "opt.", ob);
    assert_int_equal(tg_state_load(s, f, true), TG_OK);
    assert_string_equal(tg_state_get_meta(s, "step"), "2");
    assert_string_equal(tg_state_get_meta(s, "quote\"and\\slash"), "line\nbreak");
    assert_non_null(tg_state_get_meta(s, "opt.steps"));
    tg_state_free(s);
    assert_same_state(a, b);
    uint64_t seed, off;
    tg_ctx_rng_get(ctx, &seed, &off);
    train_step(a, oa);
    tg_ctx_rng_set(ctx, seed, off);
    train_step(b, ob);
    assert_same_state(a, b); /* includes Adam's moments and step counts having been restored */

    /* no temporary file is left behind */
    DIR *d = opendir(dir);
    struct dirent *e;
    while ((e = readdir(d))) assert_null(strstr(e->d_name, ".tmp."));
    closedir(d);
    tg_optim_free(oa), tg_optim_free(ob);
    tg_module_free(a), tg_module_free(b);
}

/* the layout another reader expects: u64 header length, JSON, data at the stated offsets */
static void test_file_layout(void **state) {
    (void)state;
    char f[300];
    path(f, "layout.safetensors");
    int64_t s2[2] = {2, 3};
    float v[6] = {1, 2, 3, 4, 5, 6};
    tg_tensor *t = tu_tensor(ctx, 2, s2, v, 0);
    tg_state *s = tg_state_new();
    tg_state_add(s, "w", t);
    assert_int_equal(tg_state_save(s, f), TG_OK);
    tg_state_free(s);
    FILE *fp = fopen(f, "rb");
    uint64_t hl;
    assert_int_equal(fread(&hl, 8, 1, fp), 1);
    assert_true(hl % 8 == 0 && hl < 200);
    char hdr[256] = {0};
    assert_int_equal(fread(hdr, 1, hl, fp), hl);
    assert_non_null(strstr(hdr, "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}"));
    float back[6];
    assert_int_equal(fread(back, 4, 6, fp), 6);
    assert_memory_equal(back, v, sizeof v);
    assert_int_equal(fgetc(fp), EOF);
    fclose(fp);
    /* saving into a missing directory fails cleanly */
    s = tg_state_new();
    tg_state_add(s, "w", t);
    assert_int_equal(tg_state_save(s, "/nonexistent-dir/x.safetensors"), TG_ERR_IO);
    assert_non_null(strstr(tg_last_error(), "tg_state_save"));
    tg_state_free(s);
    tg_tensor_free(t);
}

/* writes raw bytes as a file */
static void write_file(const char *f, const void *p, size_t n) {
    FILE *fp = fopen(f, "wb");
    assert_non_null(fp);
    assert_int_equal(fwrite(p, 1, n, fp), n);
    fclose(fp);
}

static void write_st(const char *f, const char *json, const void *data, size_t n) {
    size_t hl = strlen(json);
    char *buf = malloc(8 + hl + n);
    uint64_t h = hl;
    memcpy(buf, &h, 8);
    memcpy(buf + 8, json, hl);
    if (n) memcpy(buf + 8 + hl, data, n);
    write_file(f, buf, 8 + hl + n);
    free(buf);
}

/* expects load to fail with code and a message containing needle, leaving t unchanged */
static void expect_reject(const char *f, tg_tensor *t, tg_status code, const char *needle,
                          bool strict) {
    float *before = tu_read(t);
    tg_state *s = tg_state_new();
    tg_state_add(s, "w", t);
    tg_status st = tg_state_load(s, f, strict);
    if (st != code) fail_msg("expected %d, got %d (%s)", code, st, tg_last_error());
    if (needle && !strstr(tg_last_error(), needle))
        fail_msg("message \"%s\" lacks \"%s\"", tg_last_error(), needle);
    float *after = tu_read(t);
    assert_memory_equal(before, after, sizeof(float) * (size_t)tg_tensor_numel(t));
    free(before), free(after);
    tg_state_free(s);
}

static void test_hostile_files(void **state) {
    (void)state;
    char f[300];
    path(f, "bad.safetensors");
    int64_t s2[2] = {2, 3};
    float v[6] = {9, 9, 9, 9, 9, 9}, d[6] = {1, 2, 3, 4, 5, 6}, d7[7] = {1, 2, 3, 4, 5, 6, 7}, d12[12] = {0};
    tg_tensor *t = tu_tensor(ctx, 2, s2, v, 0);
    const char *good = "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}";

    write_file(f, "", 0);
    expect_reject(f, t, TG_ERR_FORMAT, "is not a safetensors file (only 0 bytes)", false);
    write_file(f, "\x10\x00\x00", 3);
    expect_reject(f, t, TG_ERR_FORMAT, "is not a safetensors file", false);
    /* header length far beyond the file */
    uint64_t huge = (uint64_t)1 << 62;
    char buf[16];
    memcpy(buf, &huge, 8);
    memcpy(buf + 8, "{}      ", 8);
    write_file(f, buf, 16);
    expect_reject(f, t, TG_ERR_FORMAT, "not a safetensors file (its first 8 bytes give a header length", false);
    /* truncated data section */
    write_st(f, good, d, 20);
    expect_reject(f, t, TG_ERR_FORMAT, "does not fit", false);
    /* offsets outside the data, inverted, or disagreeing with the shape */
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[8,32]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "does not fit", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,0]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "does not fit", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[9999999999,3],\"data_offsets\":[0,24]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, NULL, false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,18446744073709551615]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "does not fit", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,99999999999999999999999]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, NULL, false);
    /* malformed JSON */
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "malformed", false);
    write_st(f, "[1,2,3]", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "JSON object", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "bad entry", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}} trailing", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "malformed", false);
    /* deep nesting in an ignored field must not overflow the stack */
    char deep[2200];
    strcpy(deep, "{\"w\":{\"dtype\":\"F32\",\"x\":");
    for (int i = 0; i < 1000; i++) strcat(deep, "[");
    strcat(deep, "}}");
    write_st(f, deep, d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, NULL, false);
    /* wrong dtype / shape: the message names the tensor and both shapes */
    write_st(f, "{\"w\":{\"dtype\":\"F16\",\"shape\":[2,3],\"data_offsets\":[0,12]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "F16 [2,3] in the file, expected F32 [2,3]", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[3,2],\"data_offsets\":[0,24]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "F32 [3,2] in the file, expected F32 [2,3]", false);
    /* missing, and unexpected under strict */
    write_st(f, "{\"v\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]}}", d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "missing tensor \"w\"", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                "\"extra\":{\"dtype\":\"F32\",\"shape\":[1],\"data_offsets\":[24,28]}}", d7, 28);
    expect_reject(f, t, TG_ERR_FORMAT, "unexpected tensor \"extra\"", true);
    /* ... but accepted without strict, and then the data arrives */
    tg_state *s = tg_state_new();
    tg_state_add(s, "w", t);
    assert_int_equal(tg_state_load(s, f, false), TG_OK);
    tg_state_free(s);
    float *got = tu_read(t);
    assert_memory_equal(got, d, sizeof d);
    free(got);
    /* the same name twice, or two byte ranges that overlap: refused even when not strict */
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                "\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[24,48]}}", d12, 48);
    expect_reject(f, t, TG_ERR_FORMAT, "tensor \"w\" appears twice", false);
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                "\"v\":{\"dtype\":\"F32\",\"shape\":[2,2],\"data_offsets\":[12,28]}}", d12, 28);
    expect_reject(f, t, TG_ERR_FORMAT, "overlap", false);
    /* an element count that overflows 64 bits must not wrap around to match a tiny range */
    write_st(f, "{\"w\":{\"dtype\":\"F32\",\"shape\":[2,3],\"data_offsets\":[0,24]},"
                "\"big\":{\"dtype\":\"U8\",\"shape\":[1099511627776,4096,4096,3],\"data_offsets\":[0,0]}}",
             d, 24);
    expect_reject(f, t, TG_ERR_FORMAT, "tensor \"big\": byte range [0, 0) does not fit", false);
    /* a missing file */
    expect_reject("/nonexistent/file.safetensors", t, TG_ERR_IO, "cannot open", false);
    tg_tensor_free(t);
}

/* random corruption of a valid checkpoint never crashes; it loads or fails with a message */
static void test_fuzz(void **state) {
    (void)state;
    char f[300], g[300];
    path(f, "fuzz-src.safetensors");
    path(g, "fuzz.safetensors");
    tg_module *m = net();
    assert_int_equal(tg_module_save(m, f), TG_OK);
    FILE *fp = fopen(f, "rb");
    fseek(fp, 0, SEEK_END);
    long n = ftell(fp);
    rewind(fp);
    unsigned char *orig = malloc((size_t)n), *mut = malloc((size_t)n);
    assert_int_equal(fread(orig, 1, (size_t)n, fp), (size_t)n);
    fclose(fp);
    uint64_t hl;
    memcpy(&hl, orig, 8);
    tu_seed(77);
    int failed = 0;
    for (int it = 0; it < 300; it++) {
        memcpy(mut, orig, (size_t)n);
        int flips = 1 + (int)tu_uniform(0, 4);
        for (int k = 0; k < flips; k++) {
            /* mostly inside the header, where parsing happens */
            long pos = (long)tu_uniform(0, (double)(it % 3 ? 8 + (long)hl : n));
            mut[pos] = (unsigned char)tu_uniform(0, 256);
        }
        long len = it % 7 == 0 ? (long)tu_uniform(0, (double)n) : n;
        write_file(g, mut, (size_t)len);
        tg_status st = tg_module_load(m, g);
        if (st != TG_OK) {
            failed++;
            assert_true(strlen(tg_last_error()) > 0);
        }
    }
    assert_true(failed > 100); /* most mutations are caught */
    free(orig), free(mut);
    tg_module_free(m);
}

/* examples/tg_safetensors.py, the loader that needs only Debian's python3-torch, reads what the
 * library writes: every tensor's name, shape and values (their sum, here) and the metadata, from a
 * plain and an xz-compressed file. Skipped where python3-torch is not installed. */
static void test_python_loader(void **state) {
    (void)state;
    if (system("/usr/bin/python3 -c 'import torch' >/dev/null 2>&1") != 0) {
        print_message("skipped: /usr/bin/python3 has no torch (apt-get install python3-torch)\n");
        skip();
    }
    tg_module *m = tg_sequential(ctx);
    tg_sequential_add(m, tg_layer_conv2d(ctx, 2, 3, 3, 1, 1, true));
    tg_sequential_add(m, tg_layer_batch_norm(ctx, 3, 0.1f, 1e-5f));
    const char *names[8];
    tg_tensor *ts[8];
    const int n = tg_module_state(m, names, ts, 8);
    assert_int_equal(n, 6);
    double sums[8];
    for (int i = 0; i < n; i++) {
        float v[64];
        const int64_t k = tg_tensor_numel(ts[i]);
        for (int64_t j = 0; j < k; j++) v[j] = (float)(0.25 * (double)(j % 7) - 0.5 + i);
        assert_int_equal(tg_tensor_write(ts[i], v, k), TG_OK);
        sums[i] = 0;
        for (int64_t j = 0; j < k; j++) sums[i] += v[j];
    }
    for (int xz = 0; xz < 2; xz++) {
        char path[300], cmd[800], out[4096];
        snprintf(path, sizeof path, "%s/py%s.safetensors%s", dir, xz ? "_xz" : "", xz ? ".xz" : "");
        tg_state *s = tg_state_new();
        assert_int_equal(tg_state_add_module(s, "main.", m), TG_OK);
        assert_int_equal(tg_state_set_meta(s, "width", "64"), TG_OK);
        assert_int_equal(tg_state_save(s, path), TG_OK);
        tg_state_free(s);
        snprintf(cmd, sizeof cmd,
                 "cd examples && /usr/bin/python3 -c \"import tg_safetensors as t; d, m = t.load_file('%s', metadata=True); "
                 "print(m['width']); [print(k, list(v.shape), '%%.6f' %% v.double().sum().item()) for k, v in sorted(d.items())]\" 2>&1",
                 path);
        const int rc = tu_run_capture(cmd, out, sizeof out);
        if (rc) fail_msg("the loader exited %d:\n%s", rc, out);
        if (strncmp(out, "64\n", 3) != 0) fail_msg("metadata \"width\" did not come back:\n%s", out);
        for (int i = 0; i < n; i++) {
            char want[160], shape[64] = "[";
            for (int d = 0; d < tg_tensor_ndim(ts[i]); d++)
                snprintf(shape + strlen(shape), sizeof shape - strlen(shape), d ? ", %lld" : "%lld",
                         (long long)tg_tensor_dim(ts[i], d));
            snprintf(want, sizeof want, "main.%s %s] %.6f\n", names[i], shape, sums[i]);
            if (!strstr(out, want)) fail_msg("the loader's output lacks \"%s\":\n%s", want, out);
        }
    }
    tg_module_free(m);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_round_trip),
        cmocka_unit_test(test_file_layout),
        cmocka_unit_test(test_hostile_files),
        cmocka_unit_test(test_fuzz),
        cmocka_unit_test(test_python_loader),
    };
    return cmocka_run_group_tests_name("checkpoints", tests, setup, teardown);
}
