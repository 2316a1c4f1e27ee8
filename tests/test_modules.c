/*
 * test_modules.c — networks that are not a chain: modules of the user's own with named, nested
 * children (a residual skip, two inputs, a sequential inside), and every module operation over
 * such a tree: parameters and dotted state names, freezing a subtree, training mode, init, EMA,
 * spectral normalisation, save and load; the fusion reachable from a forward function of one's
 * own (tg_module_forward_act, tg_batch_norm_act) with the arena peak and the values of the same
 * layers in a sequential; and every bad use with its message.
 */
#include "testutil.h"

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static tg_ctx *ctx;

static int setup(void **state) {
    (void)state;
    ctx = tg_ctx_new(TG_CPU, 11);
    return ctx ? 0 : -1;
}
static int teardown(void **state) {
    (void)state;
    tg_ctx_free(ctx);
    return 0;
}

static void add(tg_module *parent, const char *name, tg_module *child) {
    if (tg_module_add(parent, name, child) != TG_OK) fail_msg("tg_module_add(%s): %s", name, tg_last_error());
}

#define CHILD(m, name) tg_module_child((m), (name))

/* enc: relu(bn(conv(x))) through the fused pair */
static tg_tensor *enc_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in, (void)user;
    tg_tensor *h = tg_module_forward(CHILD(self, "conv"), in[0]);
    return tg_module_forward_act(CHILD(self, "bn"), h, CHILD(self, "act"));
}

/* net(x, y): head(mid(e) + e) with e = enc(x), plus the second input y */
static tg_tensor *net_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)user;
    tg_ctx *c = *(tg_ctx **)user;
    tg_tensor *e = tg_module_forward(CHILD(self, "enc"), in[0]);
    tg_tensor *h = tg_add(c, tg_module_forward(CHILD(self, "mid"), e), e); /* the residual skip */
    tg_tensor *o = tg_module_forward(CHILD(self, "head"), h);
    return n_in > 1 ? tg_add(c, o, in[1]) : o;
}

static tg_module *make_enc(void) {
    tg_module *enc = tg_module_new(ctx, enc_forward, NULL);
    assert_non_null(enc);
    add(enc, "conv", tg_layer_conv2d(ctx, 2, 4, 3, 1, 1, true));
    add(enc, "bn", tg_layer_batch_norm(ctx, 4, 0.1f, 1e-5f));
    add(enc, "act", tg_layer_relu(ctx));
    return enc;
}

static tg_module *make_net(void) {
    static tg_ctx *cp;
    cp = ctx;
    tg_module *net = tg_module_new(ctx, net_forward, &cp);
    add(net, "enc", make_enc());
    tg_module *mid = tg_sequential(ctx);
    assert_int_equal(tg_sequential_add(mid, tg_layer_conv2d(ctx, 4, 4, 3, 1, 1, false)), TG_OK);
    assert_int_equal(tg_sequential_add(mid, tg_layer_batch_norm(ctx, 4, 0.1f, 1e-5f)), TG_OK);
    assert_int_equal(tg_sequential_add(mid, tg_layer_leaky_relu(ctx, 0.2f)), TG_OK);
    add(net, "mid", mid);
    add(net, "head", tg_layer_conv2d(ctx, 4, 1, 1, 1, 0, true));
    return net;
}

static tg_tensor *input(int64_t n, int64_t c, uint64_t seed) {
    int64_t s[4] = {n, c, 6, 6};
    float *v = malloc(sizeof(float) * (size_t)(n * c * 36));
    tu_seed(seed);
    tu_fill(v, n * c * 36, -1, 1);
    tg_tensor *t = tu_tensor(ctx, 4, s, v, 0);
    free(v);
    return t;
}

/* the tree's state names, in order, as PyTorch's state_dict of its twin lists them */
static void test_names_and_params(void **state) {
    (void)state;
    tg_module *net = make_net();
    static const char *want[] = {
        "enc.conv.weight", "enc.conv.bias", "enc.bn.weight", "enc.bn.bias", "enc.bn.running_mean",
        "enc.bn.running_var", "mid.0.weight", "mid.1.weight", "mid.1.bias", "mid.1.running_mean",
        "mid.1.running_var", "head.weight", "head.bias"};
    const int nw = (int)(sizeof want / sizeof want[0]);
    const char *names[32];
    tg_tensor *t[32];
    assert_int_equal(tg_module_state(net, names, t, 32), nw);
    for (int i = 0; i < nw; i++)
        if (strcmp(names[i], want[i])) fail_msg("state %d is '%s', want '%s'", i, names[i], want[i]);
    assert_int_equal(tg_module_params(net, NULL, 0), 9);
    assert_int_equal(tg_module_batch_norm_stats(net, t, 32), 4);
    /* children by name and position */
    assert_int_equal(tg_module_child_count(net), 3);
    assert_string_equal(tg_module_child_name(net, 1), "mid");
    assert_ptr_equal(tg_module_child_at(net, 2), CHILD(net, "head"));
    assert_int_equal(tg_module_child_count(CHILD(net, "mid")), 3);
    assert_string_equal(tg_module_child_name(CHILD(net, "mid"), 2), "2");
    tg_module_free(net);
}

/* two inputs, the skip, the fused pair inside: forward and backward run and every parameter gets
 * a gradient; a frozen subtree gets none and keeps its BatchNorm statistics */
static void test_forward_backward_freeze(void **state) {
    (void)state;
    tg_module *net = make_net();
    tg_tensor *x = input(3, 2, 1), *y = input(3, 1, 2);
    tg_tensor *in[2] = {x, y};
    tg_tensor *out = tg_module_call(net, in, 2);
    if (!out) fail_msg("%s", tg_last_error());
    assert_int_equal(tg_tensor_dim(out, 1), 1);
    assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_mul(ctx, out, out))), TG_OK);
    tg_tensor *p[16];
    const int np = tg_module_params(net, p, 16);
    for (int i = 0; i < np; i++) assert_non_null(tg_tensor_grad(p[i]));
    tg_ctx_clear_tape(ctx);
    for (int i = 0; i < np; i++) tg_tensor_zero_grad(p[i]);

    tg_module *enc = CHILD(net, "enc");
    tg_module_set_frozen(enc, true);
    assert_true(tg_module_frozen(CHILD(enc, "conv")));
    assert_false(tg_module_frozen(CHILD(net, "head")));
    tg_tensor *st[8];
    assert_int_equal(tg_module_batch_norm_stats(enc, st, 8), 2);
    tg_tensor *rm = st[0];
    float *before = tu_read(rm);
    out = tg_module_call(net, in, 2);
    assert_non_null(out);
    assert_int_equal(tg_backward(ctx, tg_mean(ctx, tg_mul(ctx, out, out))), TG_OK);
    tg_tensor *params[16];
    tg_module_params(net, params, 16);
    /* enc's four parameters have no gradient; mid's and head's do */
    for (int i = 0; i < 4; i++)
        if (tg_tensor_grad(params[i])) {
            const float *g = tu_read(tg_tensor_grad(params[i]));
            float s = 0;
            for (int64_t k = 0; k < tg_tensor_numel(params[i]); k++) s += fabsf(g[k]);
            free((void *)g);
            if (s != 0.0f) fail_msg("frozen enc's parameter %d got a gradient", i);
        }
    assert_non_null(tg_tensor_grad(params[8]));
    float *after = tu_read(rm);
    assert_memory_equal(before, after, sizeof(float) * 4);
    free(before), free(after);
    tg_module_set_frozen(enc, false);
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x), tg_tensor_free(y);
    tg_module_free(net);
}

/* training mode, init, EMA and spectral normalisation walk the tree */
static void test_tree_operations(void **state) {
    (void)state;
    tg_module *a = make_net(), *b = make_net();
    tg_tensor *x = input(2, 2, 3);
    /* evaluation mode reaches the BatchNorm two levels down: outputs change */
    tg_tensor *t1 = tg_module_forward(a, x);
    float *train_out = tu_read(t1);
    tg_module_set_training(a, false);
    float *eval_out = tu_read(tg_module_forward(a, x));
    assert_true(memcmp(train_out, eval_out, sizeof(float) * 72) != 0);
    tg_module_set_training(a, true);
    free(train_out), free(eval_out);
    tg_ctx_clear_tape(ctx);
    /* init reaches every layer: every BatchNorm gamma becomes 1 exactly with bn_std 0 */
    assert_int_equal(tg_module_init(a, TG_INIT_NORMAL, 0.02f, 0.0f), TG_OK);
    tg_tensor *p[16];
    tg_module_params(a, p, 16);
    float *gamma = tu_read(p[2]); /* enc.bn.weight */
    for (int i = 0; i < 4; i++) assert_true(gamma[i] == 1.0f);
    free(gamma);
    /* EMA with decay 0 copies a into b, every parameter of the tree */
    assert_int_equal(tg_module_ema(b, a, 0.0f), TG_OK);
    tg_tensor *q[16];
    const int n = tg_module_params(b, q, 16);
    for (int i = 0; i < n; i++) {
        float *u = tu_read(p[i]), *v = tu_read(q[i]);
        assert_memory_equal(u, v, sizeof(float) * (size_t)tg_tensor_numel(p[i]));
        free(u), free(v);
    }
    /* spectral normalisation: every conv of the tree, PyTorch's names */
    assert_int_equal(tg_module_spectral_norm(a, 1, 1e-12f), TG_OK);
    const char *names[32];
    const int ns = tg_module_state(a, names, NULL, 32);
    int orig = 0;
    for (int i = 0; i < ns; i++) orig += strstr(names[i], "weight_orig") != NULL;
    assert_int_equal(orig, 3); /* enc.conv, mid.0, head */
    assert_non_null(tg_module_forward(a, x));
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x);
    tg_module_free(a), tg_module_free(b);
}

/* save, load into a fresh tree of the same shape: the same outputs */
static void test_save_load(void **state) {
    (void)state;
    char path[] = "/tmp/tg_modules_XXXXXX";
    int fd = mkstemp(path);
    assert_true(fd >= 0);
    close(fd);
    tg_module *a = make_net(), *b = make_net();
    tg_tensor *x = input(2, 2, 4);
    tg_module_set_training(a, false), tg_module_set_training(b, false);
    assert_int_equal(tg_module_save(a, path), TG_OK);
    assert_int_equal(tg_module_load(b, path), TG_OK);
    float *u = tu_read(tg_module_forward(a, x)), *v = tu_read(tg_module_forward(b, x));
    assert_memory_equal(u, v, sizeof(float) * 72);
    free(u), free(v);
    tg_ctx_clear_tape(ctx);
    unlink(path);
    tg_tensor_free(x);
    tg_module_free(a), tg_module_free(b);
}

/* A hand-wired conv -> BatchNorm -> ReLU -> conv -> ReLU: with tg_module_forward_act, the same
 * values and the same arena peak as the same layers in a sequential; layer by layer, a larger
 * peak (the BatchNorm's output and the conv's pre-activation are stored). */
typedef struct {
    int mode; /* 0: forward_act, 1: each layer on its own */
} wire;

static tg_tensor *wired_forward(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in;
    const wire *w = user;
    tg_tensor *h = tg_module_forward(tg_module_child_at(self, 0), in[0]);
    if (w->mode == 0) {
        h = tg_module_forward_act(tg_module_child_at(self, 1), h, tg_module_child_at(self, 2));
        return tg_module_forward_act(tg_module_child_at(self, 3), h, tg_module_child_at(self, 4));
    }
    for (int i = 1; i < 5; i++) h = tg_module_forward(tg_module_child_at(self, i), h);
    return h;
}

static tg_module *layers(tg_module *into, int seq) {
    tg_module *l[5] = {tg_layer_conv2d(ctx, 3, 16, 3, 1, 1, false), tg_layer_batch_norm(ctx, 16, 0.1f, 1e-5f),
                       tg_layer_relu(ctx), tg_layer_conv2d(ctx, 16, 8, 3, 1, 1, true), tg_layer_relu(ctx)};
    for (int i = 0; i < 5; i++) {
        char name[8];
        snprintf(name, sizeof name, "%d", i);
        if (seq) assert_int_equal(tg_sequential_add(into, l[i]), TG_OK);
        else add(into, name, l[i]);
    }
    return into;
}

static size_t step_peak(tg_ctx *c, tg_module *m, float **out) {
    int64_t s[4] = {8, 3, 16, 16};
    float *v = malloc(sizeof(float) * 8 * 3 * 256);
    tu_seed(5);
    tu_fill(v, 8 * 3 * 256, -1, 1);
    tg_tensor *x = tu_tensor(c, 4, s, v, 0);
    free(v);
    tg_ctx_clear_tape(c);
    tg_ctx_stats st0;
    tg_ctx_stats_get(c, &st0);
    tg_tensor *y = tg_module_forward(m, x);
    assert_non_null(y);
    assert_int_equal(tg_backward(c, tg_mean(c, y)), TG_OK);
    *out = tu_read(y);
    tg_ctx_stats st;
    tg_ctx_stats_get(c, &st);
    tg_ctx_clear_tape(c);
    tg_tensor_free(x);
    return st.arena_peak_bytes;
}

static void test_fusion_anywhere(void **state) {
    (void)state;
    size_t peak[3];
    float *out[3];
    static wire w0 = {0}, w1 = {1};
    for (int k = 0; k < 3; k++) {
        tg_ctx *c = tg_ctx_new(TG_CPU, 99); /* a fresh arena each, the same weights each */
        tg_ctx *keep = ctx;
        ctx = c;
        tg_module *m = k == 0 ? layers(tg_sequential(c), 1) : layers(tg_module_new(c, wired_forward, k == 1 ? &w0 : &w1), 0);
        peak[k] = step_peak(c, m, &out[k]);
        tg_module_free(m);
        ctx = keep;
        tg_ctx_free(c);
    }
    print_message("arena peak: sequential %zu, forward_act %zu, layer by layer %zu bytes\n", peak[0], peak[1], peak[2]);
    assert_memory_equal(out[0], out[1], sizeof(float) * 8 * 8 * 256);
    assert_memory_equal(out[0], out[2], sizeof(float) * 8 * 8 * 256);
    assert_true(peak[1] == peak[0]);
    assert_true(peak[2] > peak[0]); /* what the docs warn about */
    for (int k = 0; k < 3; k++) free(out[k]);
    /* the public fused op alone: the values of the two ops */
    int64_t s[4] = {4, 3, 5, 5}, cs[1] = {3};
    float v[300], g[3] = {1.5f, 0.5f, 1.0f}, b[3] = {0.1f, -0.2f, 0.0f};
    tu_seed(6);
    tu_fill(v, 300, -2, 2);
    tg_tensor *x = tu_tensor(ctx, 4, s, v, 0), *gt = tu_tensor(ctx, 1, cs, g, 0), *bt = tu_tensor(ctx, 1, cs, b, 0);
    float *f = tu_read(tg_batch_norm_act(ctx, x, gt, bt, NULL, NULL, true, 0.1f, 1e-5f, 0.2f));
    float *two = tu_read(tg_leaky_relu(ctx, tg_batch_norm(ctx, x, gt, bt, NULL, NULL, true, 0.1f, 1e-5f), 0.2f));
    assert_memory_equal(f, two, sizeof(float) * 300);
    free(f), free(two);
    assert_null(tg_batch_norm_act(ctx, x, gt, bt, NULL, NULL, true, 0.1f, 1e-5f, NAN));
    assert_non_null(strstr(tg_last_error(), "tg_batch_norm_act: slope nan is not finite"));
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x), tg_tensor_free(gt), tg_tensor_free(bt);
}

static tg_tensor *returns_null(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)self, (void)in, (void)n_in, (void)user;
    return NULL;
}
static tg_tensor *calls_missing(tg_module *self, tg_tensor *const *in, int n_in, void *user) {
    (void)n_in, (void)user;
    return tg_module_forward(tg_module_child(self, "nope"), in[0]);
}

#define REFUSED(call, fragment)                                                                 \
    do {                                                                                        \
        tg_clear_error();                                                                       \
        (void)(call);                                                                           \
        if (!strstr(tg_last_error(), fragment))                                                 \
            fail_msg("%s: message '%s' lacks '%s'", #call, tg_last_error(), fragment);          \
    } while (0)

/* every bad use gets its message, naming the call */
static void test_bad_uses(void **state) {
    (void)state;
    tg_module *net = make_net(), *enc = CHILD(net, "enc");
    REFUSED(tg_module_add(enc, "net", net), "tg_module_add: adding the module to one of its own descendants would make a cycle");
    REFUSED(tg_module_add(net, "self", net), "would make a cycle");
    REFUSED(tg_module_add(net, "again", enc), "tg_module_add: the module already belongs to a module (as 'enc'): a module has one owner");
    tg_module *other = tg_module_new(ctx, returns_null, NULL);
    REFUSED(tg_module_add(other, "stolen", CHILD(enc, "conv")), "already belongs to a module (as 'conv')");
    REFUSED(tg_module_add(net, "enc", tg_layer_relu(ctx)), "tg_module_add: the name 'enc' is taken by another child");
    REFUSED(tg_module_add(net, "", tg_layer_relu(ctx)), "the name '' is empty");
    REFUSED(tg_module_add(net, "a.b", tg_layer_relu(ctx)), "contains '.'");
    REFUSED(tg_module_add(net, NULL, tg_layer_relu(ctx)), "is NULL");
    char longname[80];
    memset(longname, 'x', sizeof longname - 1);
    longname[sizeof longname - 1] = 0;
    REFUSED(tg_module_add(net, longname, tg_layer_relu(ctx)), "is longer than 63 characters");
    REFUSED(tg_module_add(net, "x", NULL), "the child is NULL");
    REFUSED(tg_module_add(CHILD(net, "mid"), "x", tg_layer_relu(ctx)), "use tg_sequential_add");
    REFUSED(tg_module_add(CHILD(net, "head"), "x", tg_layer_relu(ctx)), "a layer, which has no children");
    REFUSED(tg_module_child(net, "decoder"), "tg_module_child: no child named 'decoder' (the module has 'enc', 'mid', 'head')");
    REFUSED(tg_module_child(CHILD(net, "head"), "x"), "conv2d layer, which has no children");
    REFUSED(tg_module_child_at(net, 3), "index 3 is outside the module's 3 children");
    REFUSED(tg_module_new(ctx, NULL, NULL), "tg_module_new: forward is NULL");
    REFUSED(tg_module_free(enc), "tg_module_free: the module (module 'enc') belongs to a module, which frees it");
    tg_tensor *x = input(1, 2, 7);
    REFUSED(tg_module_call(CHILD(net, "head"), (tg_tensor *[]){x, x}, 2), "tg_module_call: a conv2d takes 1 input, not 2");
    REFUSED(tg_module_call(net, NULL, 1), "tg_module_call: in is NULL");
    REFUSED(tg_module_call(net, (tg_tensor *[]){NULL}, 1), "in[0]");
    REFUSED(tg_module_forward(other, x), "tg_module_forward: the module's forward function returned NULL without a failure");
    /* a failure inside a child names its path */
    tg_tensor *bad = input(1, 5, 8); /* 5 channels where enc.conv wants 2 */
    REFUSED(tg_module_forward(net, bad), "tg_module_forward: layer enc.conv (conv2d): tg_conv2d: x [1,5,6,6] has 5 channels");
    tg_module *miss = tg_module_new(ctx, calls_missing, NULL);
    REFUSED(tg_module_forward(miss, x), "tg_module_forward: tg_module_child: no child named 'nope'");
    REFUSED(tg_module_forward_act(CHILD(enc, "bn"), x, CHILD(enc, "conv")), "tg_module_forward_act: act is a conv2d, not an activation layer");
    /* names past 255 characters are refused, not cut */
    tg_module *deep = tg_module_new(ctx, returns_null, NULL), *at = deep;
    char n62[63];
    memset(n62, 'n', 62);
    n62[62] = 0;
    for (int i = 0; i < 4; i++) {
        tg_module *c = tg_module_new(ctx, returns_null, NULL);
        add(at, n62, c);
        at = c;
    }
    add(at, "conv", tg_layer_conv2d(ctx, 1, 1, 1, 1, 0, false));
    REFUSED(tg_module_state(deep, (const char *[4]){0}, NULL, 4), "a state name would be longer than 255 characters");
    tg_ctx_clear_tape(ctx);
    tg_tensor_free(x), tg_tensor_free(bad);
    tg_module_free(deep), tg_module_free(miss), tg_module_free(other), tg_module_free(net);
}

int main(void) {
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_names_and_params),
        cmocka_unit_test(test_forward_backward_freeze),
        cmocka_unit_test(test_tree_operations),
        cmocka_unit_test(test_save_load),
        cmocka_unit_test(test_fusion_anywhere),
        cmocka_unit_test(test_bad_uses),
    };
    return cmocka_run_group_tests_name("modules", tests, setup, teardown);
}
