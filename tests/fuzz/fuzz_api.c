/*
 * fuzz_api.c — the public API fuzzed as sqlite fuzzes its own: each input is a program, a
 * sequence of public calls with arbitrary arguments, run against a small world (two CPU
 * contexts, slots of tensors, modules, optimizers, states and a dataset). Every byte picks
 * something: the next call, a slot, or an argument from a table of hostile values (0, -1,
 * INT_MAX, INT64_MIN, NaN, inf, 2^40, a product that wraps...). Besides crashes, hangs, leaks
 * and sanitizer reports, the harness aborts (a finding) when a call fails without a status and
 * a message that starts with the called function's name.
 *
 * What the harness keeps small so that a finding is the library's and not an allocation the
 * program asked for: leaf tensors it creates (at most 4096 elements; a raw shape is passed only
 * when the library must refuse it) and op inputs (ops are not called on tensors over 2^18
 * elements, and growth-prone parameters come from small values or ones the library refuses).
 */
#include "fuzz.h"

#include <float.h>
#include <limits.h>
#include <math.h>

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* ---- reading the program ----------------------------------------------------------------- */
typedef struct {
    const uint8_t *p, *end;
} rd;
static unsigned u8(rd *r) { return r->p < r->end ? *r->p++ : 0; }
static int more(const rd *r) { return r->p < r->end; }

static const int64_t I64[] = {0, 1, 2, 3, 4, 5, 8, -1, -2, 16, 64, INT32_MAX, INT32_MIN, INT64_MAX, INT64_MIN,
                              (int64_t)1 << 40, ((int64_t)1 << 40) - 1, 65537, 1 << 20, 4611686018427388000LL, 7, 6};
static const int I32[] = {0, 1, 2, 3, -1, INT_MAX, INT_MIN, 65537, 1 << 30, 4, 5, 8, INT_MAX / 2, 16, -7, 2};
static const float F32[] = {0.0f, 1.0f, -1.0f, 0.5f, NAN, INFINITY, -INFINITY, 1e-30f, 1e30f, 0.2f, 0.999f,
                            2.0f, -0.5f, FLT_MAX, 1e-8f, 0.1f};
#define N_OF(a) (sizeof(a) / sizeof((a)[0]))
static int64_t i64(rd *r) { unsigned b = u8(r); return b < 200 ? (int64_t)(b % 9) : I64[b % N_OF(I64)]; }
static int i32(rd *r) { unsigned b = u8(r); return b < 180 ? (int)(b % 6) : I32[b % N_OF(I32)]; }
static int small(rd *r) { return (int)(u8(r) % 5) + 1; }
static float f32(rd *r) { return F32[u8(r) % N_OF(F32)]; }

/* the product of v[0..n) (non-positive entries count as 1), saturated at 2^41 */
static int64_t prod_sat(const int64_t *v, int n) {
    int64_t p = 1;
    for (int i = 0; i < n; i++) {
        const int64_t d = v[i] > 0 ? v[i] : 1;
        p = d > ((int64_t)1 << 41) / p ? (int64_t)1 << 41 : p * d;
    }
    return p;
}

/* ---- the world ------------------------------------------------------------------------------ */
#define NT 12 /* tensor slots */
#define NM 6  /* top-level module slots */
#define NB 8  /* borrowed: children and parameters of the modules */
typedef struct {
    tg_ctx *ctx, *ctx2;
    tg_tensor *t[NT];
    int leaf[NT];          /* the harness owns it (tg_tensor_free at the end) */
    tg_tensor *other;      /* a leaf on ctx2 */
    tg_module *m[NM];      /* top-level modules (no parent) */
    tg_module *bm[NB];     /* borrowed children */
    int bm_root[NB];
    tg_tensor *bt[NB];     /* borrowed parameters */
    int bt_root[NB];
    tg_optim *o[3];
    tg_state *s[2];
    tg_dataset *ds;
    tg_dist *dist;
    float buf[4096];
    int32_t lab[4096];
    int64_t idx[64];
    uint8_t rgb[4 * 32 * 32 * 3];
} world;

static tg_tensor *tens(world *w, rd *r) { /* any tensor, or NULL */
    unsigned b = u8(r);
    if (b % 16 == 15) return NULL;
    if (b % 16 == 14) return w->other;
    if (b % 16 >= NT) {
        unsigned k = (b >> 4) % NB;
        return w->bt[k];
    }
    return w->t[b % 16];
}
static tg_module *mod(world *w, rd *r) {
    unsigned b = u8(r);
    if (b % 8 == 7) return NULL;
    if (b % 8 == 6) return w->bm[(b >> 3) % NB];
    return w->m[b % NM];
}
static int put(world *w, rd *r, tg_tensor *t, int leaf) { /* into a slot; a leaf there is freed */
    int k = (int)(u8(r) % NT);
    for (int j = 0; j < NT; j++) /* an op may return its input (dropout in evaluation, an empty sequential) */
        if (t && w->t[j] == t) return j;
    for (int j = 0; j < NB; j++)
        if (t && w->bt[j] == t) return -1;
    if (t && t == w->other) return -1;
    if (w->leaf[k]) tg_tensor_free(w->t[k]);
    w->t[k] = t;
    w->leaf[k] = leaf && t;
    return k;
}
static void drop_results(world *w) { /* after tg_ctx_clear_tape: op results are gone */
    for (int k = 0; k < NT; k++)
        if (!w->leaf[k]) w->t[k] = NULL;
}
static void drop_borrowed(world *w, int root) {
    for (int k = 0; k < NB; k++) {
        if (w->bm_root[k] == root) w->bm[k] = NULL;
        if (w->bt_root[k] == root) w->bt[k] = NULL;
    }
}
static int slot_of(world *w, const tg_module *m) {
    for (int k = 0; k < NM; k++)
        if (m && w->m[k] == m) return k;
    return -1;
}
static int root_of(world *w, const tg_module *m) { /* the top-level slot m is in, or -1 */
    int k = slot_of(w, m);
    if (k >= 0) return k;
    for (int b = 0; b < NB; b++)
        if (m && w->bm[b] == m) return w->bm_root[b];
    return -1;
}

/* ---- the checks ------------------------------------------------------------------------------ */
/* a failure must come with its status and a message that starts with the function's name */
static void failed_ok(const char *fn) {
    const char *m = tg_last_error();
    const size_t n = strlen(fn);
    if (tg_last_status() == TG_OK || strncmp(m, fn, n) != 0 || m[n] != ':') {
        fprintf(stderr, "fuzz_api: %s failed with status %s and message \"%s\"\n", fn, tg_status_str(tg_last_status()), m);
        abort();
    }
}
#define CALL_P(fn, expr) ({ tg_clear_error(); __typeof__(expr) r_ = (expr); if (!r_) failed_ok(#fn); r_; })
#define CALL_S(fn, expr) ({ tg_clear_error(); tg_status s_ = (expr); if (s_) { if (s_ != tg_last_status()) abort(); failed_ok(#fn); } s_; })

/* the elements a convolution's output would have (< 0: the library refuses the call anyway) */
static int64_t conv_out(const tg_tensor *x, const tg_tensor *k, int st, int pd, int transposed) {
    if (!x || !k || tg_tensor_ndim(x) != 4 || tg_tensor_ndim(k) != 4 || st < 1 || pd < 0) return -1;
    const int64_t H = tg_tensor_dim(x, 2), W = tg_tensor_dim(x, 3), kh = tg_tensor_dim(k, 2), kw = tg_tensor_dim(k, 3);
    const int64_t C = transposed ? tg_tensor_dim(k, 1) : tg_tensor_dim(k, 0);
    const int64_t Ho = transposed ? (H - 1) * st - 2 * (int64_t)pd + kh : (H + 2 * (int64_t)pd - kh) / st + 1;
    const int64_t Wo = transposed ? (W - 1) * st - 2 * (int64_t)pd + kw : (W + 2 * (int64_t)pd - kw) / st + 1;
    if (Ho < 1 || Wo < 1 || Ho > INT32_MAX || Wo > INT32_MAX) return -1;
    const int64_t v[4] = {tg_tensor_dim(x, 0), C, Ho, Wo};
    const int64_t n = prod_sat(v, 4);
    return n > ((int64_t)1 << 40) ? -1 : n;
}

/* an op's inputs small enough to run it (its growth is bounded by the parameters used) */
static int op_ok(const tg_tensor *a, const tg_tensor *b) {
    return (!a || tg_tensor_numel(a) <= (1 << 18)) && (!b || tg_tensor_numel(b) <= (1 << 18));
}

/* a module of the user's own: its children in order on in[0], plus in[1] when there is one */
static tg_tensor *fuzz_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)user;
    tg_tensor *h = in[0];
    for (int i = 0; i < tg_module_child_count(self) && h; i++) h = tg_module_forward(tg_module_child_at(self, i), h);
    return h && n_in > 1 ? tg_add(tg_tensor_ctx(h), h, in[1]) : h;
}

/* ---- one call ------------------------------------------------------------------------------- */
static void step(world *w, rd *r) {
    const unsigned op = u8(r) % 64;
    tg_ctx *ctx = u8(r) % 8 == 0 ? (u8(r) & 1 ? NULL : w->ctx2) : w->ctx;
    switch (op) {
    case 0: { /* a leaf of a small shape, or a raw shape that must be refused */
        int nd = (int)(u8(r) % 6);
        int64_t s[4];
        for (int i = 0; i < 4; i++) s[i] = u8(r) & 1 ? (int64_t)small(r) : i64(r);
        int bad = nd < 1 || nd > 4;
        for (int i = 0; i < nd && i < 4; i++) bad |= s[i] <= 0;
        const int64_t prod = prod_sat(s, nd < 4 ? nd : 4);
        if (!bad && prod > 4096 && prod < ((int64_t)1 << 40)) break; /* allowed but big: not ours to ask */
        tg_tensor *t = CALL_P(tg_tensor_new, tg_tensor_new(ctx, nd, s));
        if (t) {
            tg_tensor_fill_normal(t, 0.0f, 1.0f);
            tg_tensor_set_requires_grad(t, u8(r) & 1);
            put(w, r, t, 1);
        }
        break;
    }
    case 1: {
        int64_t d[4] = {i64(r), i64(r), i64(r), i64(r)};
        const int64_t prod = prod_sat(d, 4);
        if (prod > 4096 && prod < ((int64_t)1 << 40)) break;
        tg_tensor *t = CALL_P(tg_tensor_new4, tg_tensor_new4(ctx, d[0], d[1], d[2], d[3]));
        if (t) put(w, r, t, 1);
        break;
    }
    case 2: { /* free a slot's leaf (an op result is ignored) */
        int k = (int)(u8(r) % NT);
        tg_tensor_free(w->t[k]);
        if (w->leaf[k]) w->t[k] = NULL, w->leaf[k] = 0;
        break;
    }
    case 3: {
        tg_tensor *t = tens(w, r);
        int64_t n = u8(r) & 1 ? i64(r) : (t ? tg_tensor_numel(t) : 0);
        if (n > 4096) break; /* the buffer holds 4096 */
        if (u8(r) & 1) CALL_S(tg_tensor_write, tg_tensor_write(t, u8(r) & 7 ? w->buf : NULL, n));
        else CALL_S(tg_tensor_read, tg_tensor_read(t, u8(r) & 7 ? w->buf : NULL, n));
        break;
    }
    case 4: CALL_S(tg_tensor_copy, tg_tensor_copy(tens(w, r), tens(w, r))); break;
    case 5: CALL_S(tg_tensor_fill_uniform, tg_tensor_fill_uniform(tens(w, r), f32(r), f32(r))); break;
    case 6: CALL_S(tg_tensor_fill_normal, tg_tensor_fill_normal(tens(w, r), f32(r), f32(r))); break;
    case 7: { tg_tensor *t = tens(w, r); tg_tensor_check_finite(t); (void)tg_tensor_item(t); (void)tg_tensor_dim(t, i32(r)); break; }
    case 8: CALL_S(tg_tensor_set_requires_grad, tg_tensor_set_requires_grad(tens(w, r), u8(r) & 1)); break;
    case 9: {
        tg_tensor *x = tens(w, r), *k = tens(w, r), *b = u8(r) & 1 ? tens(w, r) : NULL;
        if (!op_ok(x, k)) break;
        int st = i32(r), pd = i32(r);
        const int tr = u8(r) & 1;
        const int64_t out = conv_out(x, k, st, pd, tr);
        if (out > (1 << 20)) break; /* a valid call with a big output: not asked */
        /* nor one with more than 2^24 multiply-adds (each output element's C*kh*kw): a valid
         * ConvTranspose2D of a 64x64 kernel over a 100x100 image is minutes under ASan */
        const int64_t per_out = tg_tensor_numel(k) / (tr ? tg_tensor_dim(k, 1) : tg_tensor_dim(k, 0));
        if (out > 0 && per_out > 0 && out > ((int64_t)1 << 24) / per_out) break;
        tg_tensor *y = !tr ? CALL_P(tg_conv2d, tg_conv2d(ctx, x, k, b, st, pd))
                           : CALL_P(tg_conv_transpose2d, tg_conv_transpose2d(ctx, x, k, b, st, pd));
        if (y) put(w, r, y, 0);
        break;
    }
    case 10: { tg_tensor *x = tens(w, r), *k = tens(w, r); if (!op_ok(x, k)) break;
        tg_tensor *y = CALL_P(tg_linear, tg_linear(ctx, x, k, u8(r) & 1 ? tens(w, r) : NULL)); if (y) put(w, r, y, 0); break; }
    case 11: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        tg_tensor *y = CALL_P(tg_batch_norm, tg_batch_norm(ctx, x, u8(r) & 1 ? tens(w, r) : NULL, u8(r) & 1 ? tens(w, r) : NULL,
                                                           u8(r) & 1 ? tens(w, r) : NULL, u8(r) & 1 ? tens(w, r) : NULL, u8(r) & 1, f32(r), f32(r)));
        if (y) put(w, r, y, 0); break; }
    case 12: { tg_tensor *x = tens(w, r), *y = NULL; if (!op_ok(x, NULL)) break;
        switch (u8(r) % 8) {
        case 0: y = CALL_P(tg_leaky_relu, tg_leaky_relu(ctx, x, f32(r))); break;
        case 1: y = CALL_P(tg_relu, tg_relu(ctx, x)); break;
        case 2: y = CALL_P(tg_tanh, tg_tanh(ctx, x)); break;
        case 3: y = CALL_P(tg_sigmoid, tg_sigmoid(ctx, x)); break;
        case 4: y = CALL_P(tg_scale, tg_scale(ctx, x, f32(r))); break;
        case 5: y = CALL_P(tg_sum, tg_sum(ctx, x)); break;
        case 6: y = CALL_P(tg_mean, tg_mean(ctx, x)); break;
        default: y = CALL_P(tg_detach, tg_detach(ctx, x)); break;
        }
        if (y) put(w, r, y, 0); break; }
    case 13: { tg_tensor *a = tens(w, r), *b = tens(w, r), *y = NULL; if (!op_ok(a, b)) break;
        switch (u8(r) % 7) {
        case 0: y = CALL_P(tg_add, tg_add(ctx, a, b)); break;
        case 1: y = CALL_P(tg_sub, tg_sub(ctx, a, b)); break;
        case 2: y = CALL_P(tg_mul, tg_mul(ctx, a, b)); break;
        case 3: y = CALL_P(tg_bce_with_logits, tg_bce_with_logits(ctx, a, b)); break;
        case 4: y = CALL_P(tg_mse_loss, tg_mse_loss(ctx, a, b)); break;
        case 5: y = CALL_P(tg_add_channels, tg_add_channels(ctx, a, b)); break;
        default: y = CALL_P(tg_mul_channels, tg_mul_channels(ctx, a, b)); break;
        }
        if (y) put(w, r, y, 0); break; }
    case 14: { tg_tensor *x = tens(w, r); int64_t s[4] = {i64(r), i64(r), i64(r), i64(r)};
        tg_tensor *y = u8(r) & 1 ? CALL_P(tg_reshape, tg_reshape(ctx, x, (int)(u8(r) % 6), u8(r) & 7 ? s : NULL))
                                 : CALL_P(tg_flatten, tg_flatten(ctx, x));
        if (y) put(w, r, y, 0); break; }
    case 15: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        int k = i32(r), st = i32(r), pd = i32(r), kind = (int)(u8(r) % 3);
        if (k > 8 && k != INT_MAX && k != 65537 && k != (1 << 30) && k != INT_MAX / 2) k = 8;
        tg_tensor *y = kind == 0 ? CALL_P(tg_max_pool2d, tg_max_pool2d(ctx, x, k, st, pd))
                     : kind == 1 ? CALL_P(tg_avg_pool2d, tg_avg_pool2d(ctx, x, k, st, pd))
                                 : CALL_P(tg_global_avg_pool2d, tg_global_avg_pool2d(ctx, x));
        if (y) put(w, r, y, 0); break; }
    case 16: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        tg_tensor *y = CALL_P(tg_dropout, tg_dropout(ctx, x, f32(r), u8(r) & 1)); if (y) put(w, r, y, 0); break; }
    case 17: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        tg_tensor *y = u8(r) & 1 ? CALL_P(tg_softmax, tg_softmax(ctx, x)) : CALL_P(tg_log_softmax, tg_log_softmax(ctx, x));
        if (y) put(w, r, y, 0); break; }
    case 18: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        /* labels for up to 4096 rows; a larger [N,C,H,W] would read past them: skipped */
        if (x && tg_tensor_ndim(x) >= 2 && tg_tensor_numel(x) / tg_tensor_dim(x, 1) > 4096) break;
        for (int i = 0; i < 4096; i++) w->lab[i] = (int32_t)(u8(r) % 4) - (u8(r) == 255);
        tg_tensor *y = CALL_P(tg_cross_entropy, tg_cross_entropy(ctx, x, u8(r) & 15 ? w->lab : NULL, f32(r)));
        if (y) put(w, r, y, 0); break; }
    case 19: { tg_tensor *xs[6]; int n = i32(r); for (int i = 0; i < 6; i++) xs[i] = tens(w, r);
        for (int i = 0; i < 6; i++) if (!op_ok(xs[i], NULL)) return;
        tg_tensor *y = CALL_P(tg_cat_channels, tg_cat_channels(ctx, u8(r) & 15 ? xs : NULL, n)); if (y) put(w, r, y, 0); break; }
    case 20: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        tg_tensor *y = CALL_P(tg_slice_channels, tg_slice_channels(ctx, x, i32(r), i32(r))); if (y) put(w, r, y, 0); break; }
    case 21: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL) || (x && tg_tensor_numel(x) > (1 << 14))) break;
        tg_tensor *y = CALL_P(tg_upsample2, tg_upsample2(ctx, x, u8(r) & 1)); if (y) put(w, r, y, 0); break; }
    case 22: { tg_tensor *t = tens(w, r); int64_t n = i64(r); if (n > 4096) n = 4096;
        for (int i = 0; i < 4096; i++) w->lab[i] = (int32_t)(u8(r) % 4) - (u8(r) == 255);
        tg_tensor *y = CALL_P(tg_embedding, tg_embedding(ctx, t, u8(r) & 15 ? w->lab : NULL, n)); if (y) put(w, r, y, 0); break; }
    case 23: { tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        tg_tensor *y = CALL_P(tg_diff_augment, tg_diff_augment(ctx, x, u8(r) & 15)); if (y) put(w, r, y, 0); break; }
    case 24: { tg_tensor *a = tens(w, r), *u = tens(w, r), *v = tens(w, r); if (!op_ok(a, NULL)) break;
        int it = i32(r); if (it > 3) it = 3; /* INT_MAX iterations would be the caller's hours */
        tg_tensor *y = CALL_P(tg_spectral_norm, tg_spectral_norm(ctx, a, u, v, it, f32(r))); if (y) put(w, r, y, 0); break; }
    case 25: CALL_S(tg_backward, tg_backward(ctx, tens(w, r))); break;
    case 26: CALL_S(tg_backward_with, tg_backward_with(ctx, tens(w, r), tens(w, r))); break;
    case 27: tg_ctx_clear_tape(w->ctx); tg_ctx_clear_tape(w->ctx2); drop_results(w); break;
    case 28: tg_ctx_set_grad_enabled(w->ctx, u8(r) & 1); break;
    case 29: { /* a layer into a free module slot */
        int k = (int)(u8(r) % NM);
        if (w->m[k]) break;
        int a = small(r), b = small(r), kk = i32(r), s = i32(r), p = i32(r);
        if (kk > 5 && kk != INT_MAX) kk = 5; /* INT_MAX: refused (weight over 2^40) */
        if (s > 3 && s != INT_MAX) s = 3;    /* a forward's output grows with the stride */
        tg_module *m = NULL;
        switch (u8(r) % 16) {
        case 0: m = CALL_P(tg_layer_conv2d, tg_layer_conv2d(ctx, a, b, kk, s, p, u8(r) & 1)); break;
        case 1: m = CALL_P(tg_layer_conv_transpose2d, tg_layer_conv_transpose2d(ctx, a, b, kk, s, p, u8(r) & 1)); break;
        case 2: { const int big = i32(r) > 5; /* both INT_MAX: over 2^40, refused; one alone is a big layer */
            m = CALL_P(tg_layer_dense, tg_layer_dense(ctx, big ? INT_MAX : a, big ? INT_MAX : b, u8(r) & 1)); break; }
        case 3: m = CALL_P(tg_layer_batch_norm, tg_layer_batch_norm(ctx, a, f32(r), f32(r))); break;
        case 4: m = CALL_P(tg_layer_leaky_relu, tg_layer_leaky_relu(ctx, f32(r))); break;
        case 5: m = CALL_P(tg_layer_relu, tg_layer_relu(ctx)); break;
        case 6: m = CALL_P(tg_layer_tanh, tg_layer_tanh(ctx)); break;
        case 7: m = CALL_P(tg_layer_flatten, tg_layer_flatten(ctx)); break;
        case 8: m = CALL_P(tg_layer_reshape, tg_layer_reshape(ctx, i32(r), i32(r), i32(r))); break;
        case 9: m = CALL_P(tg_layer_max_pool2d, tg_layer_max_pool2d(ctx, kk, s, p)); break;
        case 10: m = CALL_P(tg_layer_avg_pool2d, tg_layer_avg_pool2d(ctx, kk, s, p)); break;
        case 11: m = CALL_P(tg_layer_dropout, tg_layer_dropout(ctx, f32(r))); break;
        case 12: m = CALL_P(tg_layer_upsample2, tg_layer_upsample2(ctx, u8(r) & 1)); break;
        case 13: m = CALL_P(tg_layer_embedding, tg_layer_embedding(ctx, kk == INT_MAX ? INT_MAX : a, kk == INT_MAX ? INT_MAX : b)); break;
        case 14: m = CALL_P(tg_layer_global_avg_pool2d, tg_layer_global_avg_pool2d(ctx)); break;
        default: m = CALL_P(tg_sequential, tg_sequential(ctx)); break;
        }
        w->m[k] = m;
        break;
    }
    case 30: { /* layer into sequential: a top-level layer is consumed unless the call refuses it
                * as the sequential itself or the root of the sequential's tree */
        tg_module *seq = mod(w, r);
        int j = (int)(u8(r) % NM);
        tg_module *layer = u8(r) % 8 ? w->m[j] : (u8(r) & 1 ? NULL : seq);
        const int self_or_root = layer && (layer == seq || root_of(w, seq) == slot_of(w, layer));
        CALL_S(tg_sequential_add, tg_sequential_add(seq, layer));
        if (layer && layer == w->m[j] && !self_or_root) {
            drop_borrowed(w, j);
            w->m[j] = NULL; /* freed, or owned by seq now (its root keeps the slot) */
        }
        break;
    }
    case 31: { tg_module *m = mod(w, r); int i = i32(r); int root = root_of(w, m);
        tg_module *c = CALL_P(tg_sequential_get, tg_sequential_get(m, i));
        if (c && root >= 0) { int b = (int)(u8(r) % NB); w->bm[b] = c; w->bm_root[b] = root; }
        (void)tg_sequential_len(m);
        break; }
    case 32: { tg_module *m = mod(w, r); tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        if (x && tg_tensor_numel(x) > (1 << 12)) break; /* a chain of upsampling layers grows 4x each */
        tg_tensor *y = CALL_P(tg_module_forward, tg_module_forward(m, x)); if (y) put(w, r, y, 0); break; }
    case 33: { tg_module *m = mod(w, r); int root = root_of(w, m); tg_tensor *ps[16]; int max = i32(r); if (max > 16) max = 16;
        int n = tg_module_params(m, u8(r) & 7 ? ps : NULL, max);
        if (n < 0) failed_ok("tg_module_params");
        for (int i = 0; i < n && i < max && root >= 0; i++) { int b = (int)(u8(r) % NB); w->bt[b] = ps[i]; w->bt_root[b] = root; }
        const char *names[16]; tg_tensor *ts[16];
        if (tg_module_state(m, u8(r) & 1 ? names : NULL, u8(r) & 1 ? ts : NULL, max) < 0) failed_ok("tg_module_state");
        break; }
    case 34: { tg_module *m = mod(w, r); tg_module_set_frozen(m, u8(r) & 1); tg_module_set_training(m, u8(r) & 1); (void)tg_module_frozen(m); break; }
    case 35: { int k = (int)(u8(r) % NM); if (u8(r) & 1) { tg_module_free(w->bm[k % NB]); break; } /* a child: refused */
        tg_module_free(w->m[k]); drop_borrowed(w, k); w->m[k] = NULL; break; }
    case 36: CALL_S(tg_module_ema, tg_module_ema(mod(w, r), mod(w, r), f32(r))); break;
    case 37: CALL_S(tg_module_spectral_norm, tg_module_spectral_norm(mod(w, r), i32(r) > 3 ? 3 : i32(r), f32(r))); break;
    case 38: CALL_S(tg_module_init, tg_module_init(mod(w, r), (tg_init_kind)(i32(r) % 4), f32(r), f32(r))); break;
    case 39: { tg_module *m = mod(w, r); int64_t n = i64(r); if (n > 4096) n = 4096;
        for (int i = 0; i < 4096; i++) w->lab[i] = (int32_t)(u8(r) % 6) - 1;
        tg_tensor *y = CALL_P(tg_module_embed, tg_module_embed(m, u8(r) & 15 ? w->lab : NULL, n)); if (y) put(w, r, y, 0); break; }
    case 40: { int k = (int)(u8(r) % 3); if (w->o[k]) break;
        tg_tensor *ps[4]; int n = i32(r); if (n > 4) n = 4;
        for (int i = 0; i < 4; i++) ps[i] = tens(w, r);
        w->o[k] = u8(r) & 1 ? CALL_P(tg_adam, tg_adam(ctx, u8(r) & 7 ? ps : NULL, n, f32(r), f32(r), f32(r), f32(r)))
                            : CALL_P(tg_sgd, tg_sgd(ctx, u8(r) & 7 ? ps : NULL, n, f32(r), f32(r)));
        break; }
    case 41: { tg_optim *o = w->o[u8(r) % 3];
        switch (u8(r) % 5) {
        case 0: CALL_S(tg_optim_step, tg_optim_step(o)); break;
        case 1: CALL_S(tg_optim_set_lr, tg_optim_set_lr(o, f32(r))); break;
        case 2: tg_optim_zero_grad(o); tg_optim_set_check_finite(o, u8(r) & 1); break;
        case 3: CALL_S(tg_adam_set_eps_mode, tg_adam_set_eps_mode(o, (tg_adam_eps_mode)i32(r))); break;
        default: { int k = (int)(u8(r) % 3); tg_optim_free(w->o[k]); w->o[k] = NULL; break; }
        }
        break; }
    case 42: { int k = (int)(u8(r) % 2); if (!w->s[k]) w->s[k] = tg_state_new();
        static const char *names[] = {"a", "b", "w.weight", "", "\xff\xfe", "__metadata__", "x\ny", "a.b.c"};
        const char *nm = names[u8(r) % 8];
        switch (u8(r) % 4) {
        case 0: CALL_S(tg_state_add, tg_state_add(w->s[k], nm, tens(w, r))); break;
        case 1: CALL_S(tg_state_add_module, tg_state_add_module(w->s[k], nm, mod(w, r))); break;
        case 2: CALL_S(tg_state_add_optim, tg_state_add_optim(w->s[k], nm, w->o[u8(r) % 3])); break;
        default: CALL_S(tg_state_set_meta, tg_state_set_meta(w->s[k], nm, names[u8(r) % 8])); break;
        }
        break; }
    case 43: { tg_state *s = w->s[u8(r) % 2]; const char *path = fuzz_path(".safetensors");
        if (u8(r) & 1) CALL_S(tg_state_save, tg_state_save(s, u8(r) & 7 ? path : ""));
        else CALL_S(tg_state_load, tg_state_load(s, path, u8(r) & 1));
        break; }
    case 44: { int k = (int)(u8(r) % 2); tg_state_free(w->s[k]); w->s[k] = NULL; break; }
    case 45: { tg_module *m = mod(w, r); const char *path = fuzz_path(".module.safetensors");
        if (u8(r) & 1) CALL_S(tg_module_save, tg_module_save(m, path));
        else CALL_S(tg_module_load, tg_module_load(m, path));
        break; }
    case 46: { int64_t n = i64(r); int s = i32(r);
        if (n > 4 && n < ((int64_t)1 << 40)) n = 4; /* the buffer holds 4 images of 16x16 */
        if (s > 16 && s <= 4096) s = 16;
        tg_dataset *d = CALL_P(tg_dataset_from_memory, tg_dataset_from_memory(u8(r) & 7 ? w->rgb : NULL, n, s));
        if (d) { tg_dataset_free(w->ds); w->ds = d; }
        break; }
    case 47: { tg_tensor *t = tens(w, r); for (int i = 0; i < 64; i++) w->idx[i] = i64(r) % 8;
        if (t && tg_tensor_ndim(t) >= 1 && tg_tensor_dim(t, 0) > 64) break;
        CALL_S(tg_dataset_batch, tg_dataset_batch(w->ds, t, u8(r) & 7 ? w->idx : NULL, NULL));
        (void)tg_dataset_image(w->ds, i64(r)); (void)tg_dataset_count(w->ds); (void)tg_dataset_size(w->ds);
        break; }
    case 48: { double mean, lv[4]; tg_swd_options o; tg_swd_defaults(&o);
        o.nhood = i32(r) % 8; o.nhoods_per_image = i32(r); o.dir_repeats = i32(r); o.dirs_per_repeat = i32(r);
        o.min_size = i32(r) % 32;
        if (o.nhoods_per_image > 8 && o.nhoods_per_image < 65537) o.nhoods_per_image = 8; /* small work only */
        if (o.dir_repeats > 2 && o.dir_repeats < 1025) o.dir_repeats = 2;
        if (o.dirs_per_repeat > 8 && o.dirs_per_repeat < 65537) o.dirs_per_repeat = 8;
        int64_t n = i64(r) % 5;
        CALL_S(tg_swd, tg_swd(w->rgb, n, w->rgb, n, i32(r) % 17 + (u8(r) & 16), u8(r) & 1 ? &o : NULL, lv, i32(r) % 5, NULL, &mean));
        break; }
    case 49: { uint8_t out[16 * 16 * 3]; int sz = i32(r), iw = i32(r), ih = i32(r);
        if (sz > 16 && sz <= 65536) sz = 16; /* out holds 16 x 16 */
        if (iw > 64 || ih > 64) break;       /* rgb holds 64 x 64 */
        CALL_S(tg_image_resize_square, tg_image_resize_square(w->rgb, iw, ih, u8(r) & 7 ? out : NULL, sz));
        break; }
    case 50: { tg_tensor *t = tens(w, r); if (t && tg_tensor_numel(t) > (int64_t)sizeof w->rgb) break;
        CALL_S(tg_tensor_to_rgb, tg_tensor_to_rgb(t, w->rgb)); break; }
    case 51: { tg_tensor *ts[3] = {tens(w, r), tens(w, r), tens(w, r)};
        if (u8(r) & 1) CALL_S(tg_dist_broadcast, tg_dist_broadcast(w->dist, ts, i32(r) % 4, i32(r)));
        else CALL_S(tg_dist_average, tg_dist_average(u8(r) & 7 ? w->dist : NULL, ts, i32(r) % 4));
        break; }
    case 52: { tg_tensor *ts[3] = {tens(w, r), tens(w, r), tens(w, r)};
        tg_dist_grads *g = CALL_P(tg_dist_grads_new, tg_dist_grads_new(w->dist, ts, i32(r) % 4, (size_t)i64(r)));
        if (g) { CALL_S(tg_dist_grads_arm, tg_dist_grads_arm(g)); if (u8(r) & 1) CALL_S(tg_dist_grads_sync, tg_dist_grads_sync(g)); tg_dist_grads_free(g); }
        break; }
    case 53: { uint64_t s, o; tg_ctx_rng_get(w->ctx, &s, &o); tg_ctx_rng_set(w->ctx, (uint64_t)i64(r), (uint64_t)i64(r)); break; }
    case 54: { tg_tensor *t = tens(w, r); (void)tg_tensor_grad(t); tg_tensor_zero_grad(t); (void)tg_tensor_requires_grad(t); break; }
    case 56: { int k = (int)(u8(r) % NM); if (w->m[k]) break;
        w->m[k] = CALL_P(tg_module_new, tg_module_new(ctx, u8(r) % 8 ? fuzz_forward : NULL, NULL)); break; }
    case 57: { /* a child into a module of one's own, under a name from a hostile list: consumed as in
                * tg_sequential_add unless refused as the parent itself or its tree's root */
        static const char *const NAMES[] = {"a", "b", "enc", "", "x.y", NULL, "0",
                                            "a-very-long-name-that-goes-on-past-the-sixty-three-characters-limit"};
        tg_module *parent = mod(w, r);
        int j = (int)(u8(r) % NM);
        tg_module *child = u8(r) % 8 ? w->m[j] : (u8(r) & 1 ? NULL : parent);
        const int self_or_root = child && (child == parent || root_of(w, parent) == slot_of(w, child));
        CALL_S(tg_module_add, tg_module_add(parent, NAMES[u8(r) % 8], child));
        if (child && child == w->m[j] && !self_or_root) {
            drop_borrowed(w, j);
            w->m[j] = NULL;
        }
        break; }
    case 58: { tg_module *m = mod(w, r); int root = root_of(w, m); int i = i32(r);
        tg_module *c = u8(r) & 1 ? CALL_P(tg_module_child_at, tg_module_child_at(m, i))
                                 : CALL_P(tg_module_child, tg_module_child(m, u8(r) & 1 ? "a" : "0"));
        if (c && root >= 0) { int b = (int)(u8(r) % NB); w->bm[b] = c; w->bm_root[b] = root; }
        (void)tg_module_child_count(m);
        (void)tg_module_child_name(m, i);
        break; }
    case 59: { tg_module *m = mod(w, r); tg_tensor *x = tens(w, r), *y = tens(w, r); if (!op_ok(x, y)) break;
        if (x && tg_tensor_numel(x) > (1 << 12)) break;
        tg_tensor *in[2] = {x, y};
        int n = i32(r);
        if (n > 2) n = 2;
        tg_tensor *o = CALL_P(tg_module_call, tg_module_call(m, in, n)); if (o) put(w, r, o, 0);
        break; }
    case 60: { tg_module *a = mod(w, r), *b = mod(w, r); tg_tensor *x = tens(w, r); if (!op_ok(x, NULL)) break;
        if (x && tg_tensor_numel(x) > (1 << 12)) break;
        /* both calls before either result goes into a slot: put() may free the leaf x was */
        tg_tensor *o = CALL_P(tg_module_forward_act, tg_module_forward_act(a, x, b));
        tg_tensor *o2 = CALL_P(tg_batch_norm_act, tg_batch_norm_act(ctx, x, u8(r) & 1 ? tens(w, r) : NULL, u8(r) & 1 ? tens(w, r) : NULL,
                                                                    NULL, NULL, u8(r) & 1, f32(r), f32(r), f32(r)));
        if (o) put(w, r, o, 0);
        if (o2) put(w, r, o2, 0);
        break; }
    case 61: { /* ONNX export of any module, one or two inputs (one maybe through an embedding),
                * hostile names and shapes: on success or failure the caller's tape and gradient
                * flag are as before */
        static const char *const NAMES[] = {"x", "z", "label", "", "a b", NULL, "out", "y.1"};
        tg_module *m = mod(w, r);
        const int n = u8(r) % 4 ? 1 : (int)(u8(r) % 3) * 2 - 1; /* 1 mostly; -1, 1, 3 */
        tg_onnx_input in[3]; /* as many as n can ask for: the array is the caller's to size */
        int64_t total = 0;
        for (int i = 0; i < 3; i++) {
            in[i].name = u8(r) % 4 ? (i == 0 ? "x" : i == 1 ? "z" : "w") : NAMES[u8(r) % 8];
            tg_tensor *like = u8(r) & 1 ? tens(w, r) : NULL; /* a shape the module may take */
            in[i].ndim = like ? tg_tensor_ndim(like) : (int)(u8(r) % 6);
            for (int d = 0; d < 4; d++)
                in[i].shape[d] = like && d < in[i].ndim ? tg_tensor_dim(like, d) : u8(r) % 8 ? small(r) : i64(r);
            in[i].embedding = u8(r) % 4 ? NULL : mod(w, r);
            const int64_t p = prod_sat(in[i].shape, in[i].ndim >= 1 && in[i].ndim <= 4 ? in[i].ndim : 4);
            total += p > 0 ? p : 0;
        }
        if (total > 4096) break; /* a big valid forward: not ours to ask */
        tg_ctx_stats before, after;
        tg_ctx_stats_get(w->ctx, &before);
        const bool grad = tg_ctx_grad_enabled(w->ctx);
        const char *path = u8(r) % 8 ? fuzz_path(".onnx") : "";
        CALL_S(tg_module_export_onnx, tg_module_export_onnx(m, u8(r) % 8 ? in : NULL, n, u8(r) % 4 ? "y" : NAMES[u8(r) % 8], path));
        tg_ctx_stats_get(w->ctx, &after);
        if (after.tape_nodes != before.tape_nodes || tg_ctx_grad_enabled(w->ctx) != grad) abort();
        break; }
    case 55: /* the precision of the convolutions and dense layers that follow, or a refusal */
        CALL_S(tg_ctx_set_precision, tg_ctx_set_precision(ctx, (tg_precision)(i32(r) % 5)));
        (void)tg_ctx_precision(ctx);
        (void)tg_precision_name((tg_precision)i32(r));
        break;
    default: break; /* the rest of the byte range: no call, so programs stay short */
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static tg_dist *dist;
    fuzz_limits();
    if (!dist) dist = tg_dist_init(NULL, NULL); /* a world of one, one per process */
    world *w = calloc(1, sizeof *w);
    w->dist = dist;
    w->ctx = tg_ctx_new(TG_CPU, 1);
    w->ctx2 = tg_ctx_new(TG_CPU, 2);
    w->other = tg_tensor_new4(w->ctx2, 2, 3, 4, 4);
    for (int i = 0; i < NB; i++) w->bm_root[i] = w->bt_root[i] = -1;
    for (size_t i = 0; i < sizeof w->rgb; i++) w->rgb[i] = (uint8_t)(i * 31);
    for (int i = 0; i < 4096; i++) w->buf[i] = (float)(i % 7) - 3.0f;
    rd r = {data, data + size};
    int calls = 0;
    while (more(&r) && calls++ < 256) step(w, &r);
    /* teardown in an order the fuzzer did not choose: states, optimizers, modules, leaves, contexts
     * (the library keeps whatever is still referenced alive until its last holder goes) */
    for (int k = 0; k < 2; k++) tg_state_free(w->s[k]);
    for (int k = 0; k < 3; k++) tg_optim_free(w->o[k]);
    for (int k = 0; k < NM; k++) tg_module_free(w->m[k]);
    for (int k = 0; k < NT; k++)
        if (w->leaf[k]) tg_tensor_free(w->t[k]);
    tg_tensor_free(w->other);
    tg_dataset_free(w->ds);
    tg_ctx_free(w->ctx);
    tg_ctx_free(w->ctx2);
    free(w);
    return 0;
}
