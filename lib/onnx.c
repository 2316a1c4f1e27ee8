/*
 * onnx.c — tg_module_export_onnx: a module in evaluation mode written as an ONNX model.
 *
 * How: the module runs once on example inputs with the context tracing (every op records its
 * tape node, whatever needs a gradient), and the nodes of that call become the graph. Each node
 * knows its op family (tg_node.kind) and settings (tg_node.p), so this file is one switch from
 * node to ONNX operator. The module's parameters and buffers become initializers under their
 * state names; whatever does not depend on the inputs (spectral normalisation's W / sigma, a
 * constant the forward builds) is folded: its value, as this library computed it, is an
 * initializer. An input given through an embedding layer is int64 labels and a Gather.
 *
 * The file is written by the small protobuf writer below (varints and length-delimited fields
 * of onnx.proto's ModelProto, GraphProto, NodeProto, TensorProto, ValueInfoProto, ...): the
 * library only writes ONNX, never reads it, so a generated parser (protobuf-c) would add a
 * dependency and generated code for nothing. docs/api.md, "Deploying: ONNX", says why, which
 * ops map to what, and how the files are checked (onnx.checker, ONNX Runtime: tests/onnx/).
 */
#include "core.h"
#include "module.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define ONNX_OPSET 17
#define ONNX_IR_VERSION 8 /* the IR of opset 17 (ONNX 1.12) */
#define ONNX_MAX_INPUTS 16
enum { ONNX_FLOAT = 1, ONNX_INT64 = 7 };                                       /* TensorProto.DataType */
enum { ATTR_FLOAT = 1, ATTR_INT = 2, ATTR_STRING = 3, ATTR_INTS = 7 };       /* AttributeProto.AttributeType */

static const char *FN = "tg_module_export_onnx";

/* ---- protobuf writer ------------------------------------------------------------------------ */
typedef struct {
    uint8_t *p;
    size_t n, cap;
    bool oom;
} pb;

static void pb_free(pb *b) { free(b->p), b->p = NULL, b->n = b->cap = 0; }

static void pb_raw(pb *b, const void *d, size_t n) {
    if (b->oom || !n) return;
    if (b->n + n > b->cap) {
        size_t cap = b->cap ? b->cap : 256;
        while (cap < b->n + n) {
            if (cap > SIZE_MAX / 2) { b->oom = true; return; }
            cap *= 2;
        }
        uint8_t *p = realloc(b->p, cap);
        if (!p) { b->oom = true; return; }
        b->p = p, b->cap = cap;
    }
    memcpy(b->p + b->n, d, n);
    b->n += n;
}

static void pb_varint(pb *b, uint64_t v) {
    uint8_t t[10];
    int n = 0;
    do {
        t[n] = (uint8_t)(v & 0x7f);
        v >>= 7;
        if (v) t[n] |= 0x80;
        n++;
    } while (v);
    pb_raw(b, t, (size_t)n);
}

static void pb_key(pb *b, int field, int wire) { pb_varint(b, (uint64_t)field << 3 | (uint64_t)wire); }
static void pb_int(pb *b, int field, int64_t v) { pb_key(b, field, 0), pb_varint(b, (uint64_t)v); }
static void pb_bytes(pb *b, int field, const void *d, size_t n) {
    pb_key(b, field, 2), pb_varint(b, n), pb_raw(b, d, n);
}
static void pb_str(pb *b, int field, const char *s) { pb_bytes(b, field, s, strlen(s)); }
static void pb_f32(pb *b, int field, float f) {
    uint32_t u;
    memcpy(&u, &f, 4);
    const uint8_t le[4] = {(uint8_t)u, (uint8_t)(u >> 8), (uint8_t)(u >> 16), (uint8_t)(u >> 24)};
    pb_key(b, field, 5), pb_raw(b, le, 4);
}
/* sub as a length-delimited field of b; sub is freed */
static void pb_msg(pb *b, int field, pb *sub) {
    if (sub->oom) b->oom = true;
    pb_bytes(b, field, sub->p, sub->n);
    pb_free(sub);
}

/* ---- attributes (AttributeProto, NodeProto field 5) ----------------------------------------- */
static void attr_int(pb *a, const char *name, int64_t v) {
    pb s = {0};
    pb_str(&s, 1, name), pb_int(&s, 3, v), pb_int(&s, 20, ATTR_INT);
    pb_msg(a, 5, &s);
}
static void attr_float(pb *a, const char *name, float v) {
    pb s = {0};
    pb_str(&s, 1, name), pb_f32(&s, 2, v), pb_int(&s, 20, ATTR_FLOAT);
    pb_msg(a, 5, &s);
}
static void attr_str(pb *a, const char *name, const char *v) {
    pb s = {0};
    pb_str(&s, 1, name), pb_str(&s, 4, v), pb_int(&s, 20, ATTR_STRING);
    pb_msg(a, 5, &s);
}
static void attr_ints(pb *a, const char *name, const int64_t *v, int n) {
    pb s = {0};
    pb_str(&s, 1, name);
    for (int i = 0; i < n; i++) pb_int(&s, 8, v[i]);
    pb_int(&s, 20, ATTR_INTS);
    pb_msg(a, 5, &s);
}

/* ---- the graph being built -------------------------------------------------------------------- */
typedef struct {
    const tg_tensor *t;
    char *name;
    bool dep;      /* depends on the graph's inputs (else a constant: an initializer) */
    bool emitted;  /* constants: its initializer is written */
} ox_ent;

typedef struct {
    tg_ctx *ctx;
    pb nodes, inits;    /* GraphProto's node (1) and initializer (5) fields */
    ox_ent *e;
    int n, cap;
    int seq;            /* numbers generated names */
    tg_status st;       /* first failure (message set) */
} ox;

static tg_status ox_fail(ox *o, tg_status code, const char *fmt, const char *a, const char *b) {
    if (!o->st) o->st = tg_fail(code, FN, fmt, a, b);
    return o->st;
}

static ox_ent *ox_find(ox *o, const tg_tensor *t) {
    for (int i = 0; i < o->n; i++)
        if (o->e[i].t == t) return &o->e[i];
    return NULL;
}

static ox_ent *ox_add(ox *o, const tg_tensor *t, const char *name, bool dep) {
    if (o->st) return NULL;
    if (o->n == o->cap) {
        int cap = o->cap ? 2 * o->cap : 64;
        ox_ent *e = realloc(o->e, (size_t)cap * sizeof *e);
        if (!e) return ox_fail(o, TG_ERR_NOMEM, "%s%s", "out of memory", ""), NULL;
        o->e = e, o->cap = cap;
    }
    char *s = strdup(name);
    if (!s) return ox_fail(o, TG_ERR_NOMEM, "%s%s", "out of memory", ""), NULL;
    ox_ent *x = &o->e[o->n++];
    *x = (ox_ent){t, s, dep, false};
    return x;
}

/* a fresh name: prefix + number */
static const char *ox_fresh(ox *o, const char *prefix, char *buf, size_t n) {
    snprintf(buf, n, "%s_%d", prefix, o->seq++);
    return buf;
}

/* TensorProto of dtype with dims and little-endian raw data, as an initializer */
static void ox_init_raw(ox *o, const char *name, int dtype, const int64_t *dims, int nd, const void *data,
                        size_t bytes) {
    pb t = {0};
    for (int i = 0; i < nd; i++) pb_int(&t, 1, dims[i]);
    pb_int(&t, 2, dtype);
    pb_str(&t, 8, name);
    pb_bytes(&t, 9, data, bytes);
    pb_msg(&o->inits, 5, &t);
}

/* an int64 vector constant, under a fresh name */
static const char *ox_i64(ox *o, const char *prefix, const int64_t *v, int n, char *buf, size_t bn) {
    ox_fresh(o, prefix, buf, bn);
    int64_t dims[1] = {n};
    ox_init_raw(o, buf, ONNX_INT64, dims, 1, v, sizeof(int64_t) * (size_t)n);
    return buf;
}

/* A constant tensor's values as a float initializer with dims (its own shape unless given). */
static void ox_init_tensor(ox *o, const char *name, const tg_tensor *t, const int64_t *dims, int nd) {
    float *h = malloc(sizeof(float) * (size_t)t->numel);
    if (!h) { ox_fail(o, TG_ERR_NOMEM, "%s%s", "out of memory", ""); return; }
    tg_status st = tg_tensor_read(t, h, t->numel);
    if (st) {
        free(h);
        if (!o->st) o->st = st;
        return;
    }
    ox_init_raw(o, name, ONNX_FLOAT, dims ? dims : t->shape, dims ? nd : t->ndim, h, sizeof(float) * (size_t)t->numel);
    free(h);
}

/* The name of a node input: a known tensor's (a constant's initializer written on first use),
 * or an unknown one — a tensor made before the export (a constant) — registered now. */
static const char *ox_name(ox *o, const tg_tensor *t) {
    if (o->st) return NULL;
    ox_ent *x = ox_find(o, t);
    if (!x) {
        /* an op result made outside this call that shares data with a traced one is a view of
         * it taken without a node (tg_detach): its value depends on the inputs */
        if (!t->is_leaf && !t->owned)
            for (int i = 0; i < o->n; i++)
                if (o->e[i].dep && o->e[i].t->data == t->data) {
                    ox_fail(o, TG_ERR_UNSUPPORTED, "%s%s",
                            "the forward uses a view made without a tape node (tg_detach) of a value that "
                            "depends on the inputs; ONNX export needs every op recorded", "");
                    return NULL;
                }
        char b[32];
        x = ox_add(o, t, ox_fresh(o, "const", b, sizeof b), false);
        if (!x) return NULL;
    }
    if (!x->dep && !x->emitted) {
        x->emitted = true;
        ox_init_tensor(o, x->name, t, NULL, 0);
    }
    return x->name;
}

static bool ox_dep(ox *o, const tg_tensor *t) {
    const ox_ent *x = t ? ox_find(o, t) : NULL;
    return x && x->dep;
}

/* NodeProto: op_type with inputs, one output, attributes (attrs is freed) */
static void ox_node(ox *o, const char *op, const char *const *in, int n_in, const char *out, pb *attrs) {
    pb nd = {0};
    char name[48];
    for (int i = 0; i < n_in; i++) pb_str(&nd, 1, in[i] ? in[i] : "");
    pb_str(&nd, 2, out);
    pb_str(&nd, 3, ox_fresh(o, op, name, sizeof name));
    pb_str(&nd, 4, op);
    if (attrs) {
        pb_raw(&nd, attrs->p, attrs->n);
        if (attrs->oom) nd.oom = true;
        pb_free(attrs);
    }
    pb_msg(&o->nodes, 1, &nd);
}

/* the activation TG_UN_* (a: LeakyReLU's slope) from in to out */
static void ox_act(ox *o, int op, float a, const char *in, const char *out) {
    pb at = {0};
    const char *t = op == TG_UN_RELU ? "Relu" : op == TG_UN_TANH ? "Tanh" : op == TG_UN_SIGMOID ? "Sigmoid" : "LeakyRelu";
    if (op == TG_UN_LEAKY_RELU) attr_float(&at, "alpha", a);
    ox_node(o, t, &in, 1, out, &at);
}

/* the public function behind a node, for messages */
static const char *op_public_name(const tg_node *nd) {
    switch (nd->kind) {
    case TG_OP_REDUCE: return "tg_sum or tg_mean";
    case TG_OP_BCE: return "tg_bce_with_logits";
    case TG_OP_XENT: return "tg_cross_entropy";
    case TG_OP_AUGMENT: return "tg_diff_augment";
    case TG_OP_DROPOUT: return "tg_dropout in training mode";
    case TG_OP_SPECTRAL: return "tg_spectral_norm of a tensor that depends on the inputs";
    case TG_OP_EMBED: return "tg_embedding";
    default: return "an op";
    }
}

/* One traced node that depends on the inputs, as ONNX node(s) writing out_name. */
static void ox_convert(ox *o, const tg_node *nd, const char *out_name) {
    const tg_tensor *x = nd->in[0], *y = nd->out;
    const char *xn = ox_name(o, x);
    if (!xn) return;
    pb at = {0};
    char b1[48], b2[48], b3[48], b4[48], b5[48];
    switch (nd->kind) {
    case TG_OP_CONV:
    case TG_OP_CONV_T: {
        const tg_conv_geom *g = &nd->p.conv;
        const char *in[3] = {xn, ox_name(o, nd->in[1]), nd->in[2] ? ox_name(o, nd->in[2]) : NULL};
        const int64_t ks[2] = {g->kh, g->kw}, st[2] = {g->stride, g->stride},
                      pads[4] = {g->pad, g->pad, g->pad, g->pad};
        attr_ints(&at, "kernel_shape", ks, 2), attr_ints(&at, "strides", st, 2), attr_ints(&at, "pads", pads, 4);
        if (nd->kind == TG_OP_CONV_T) {
            /* the transposed op's output is the geometry's input side (H x W); any rows the
             * plain formula does not reach are ONNX's output_padding */
            const int64_t oph = (int64_t)g->H - ((int64_t)(g->Ho - 1) * g->stride - 2 * g->pad + g->kh);
            const int64_t opw = (int64_t)g->W - ((int64_t)(g->Wo - 1) * g->stride - 2 * g->pad + g->kw);
            if (oph || opw) {
                const int64_t op[2] = {oph, opw};
                attr_ints(&at, "output_padding", op, 2);
            }
        }
        ox_node(o, nd->kind == TG_OP_CONV ? "Conv" : "ConvTranspose", in, nd->in[2] ? 3 : 2, out_name, &at);
        return;
    }
    case TG_OP_LINEAR: {
        const char *in[3] = {xn, ox_name(o, nd->in[1]), nd->in[2] ? ox_name(o, nd->in[2]) : NULL};
        attr_int(&at, "transB", 1);
        ox_node(o, "Gemm", in, nd->in[2] ? 3 : 2, out_name, &at);
        return;
    }
    case TG_OP_UNARY:
        ox_act(o, nd->p.act.op, nd->p.act.a, xn, out_name);
        return;
    case TG_OP_BN: {
        if (nd->p.bn.training || !nd->p.bn.running_mean) {
            ox_fail(o, TG_ERR_UNSUPPORTED, "%s%s", "a BatchNorm runs in training mode inside the forward (called "
                    "with training = true); ONNX export writes the evaluation graph", "");
            return;
        }
        const int64_t C = x->shape[1];
        const char *g = nd->in[1] ? ox_name(o, nd->in[1]) : NULL, *bt = nd->in[2] ? ox_name(o, nd->in[2]) : NULL;
        if (!g || !bt) { /* no affine: gamma 1, beta 0 */
            float *v = malloc(sizeof(float) * (size_t)C);
            if (!v) { ox_fail(o, TG_ERR_NOMEM, "%s%s", "out of memory", ""); return; }
            for (int64_t c = 0; c < C; c++) v[c] = 1.0f;
            if (!g) g = ox_fresh(o, "bn_ones", b1, sizeof b1), ox_init_raw(o, b1, ONNX_FLOAT, &C, 1, v, sizeof(float) * (size_t)C);
            for (int64_t c = 0; c < C; c++) v[c] = 0.0f;
            if (!bt) bt = ox_fresh(o, "bn_zeros", b2, sizeof b2), ox_init_raw(o, b2, ONNX_FLOAT, &C, 1, v, sizeof(float) * (size_t)C);
            free(v);
        }
        const char *in[5] = {xn, g, bt, ox_name(o, nd->p.bn.running_mean), ox_name(o, nd->p.bn.running_var)};
        attr_float(&at, "epsilon", nd->p.bn.eps);
        if (!nd->p.bn.act) {
            ox_node(o, "BatchNormalization", in, 5, out_name, &at);
            return;
        }
        ox_fresh(o, "bn", b3, sizeof b3);
        ox_node(o, "BatchNormalization", in, 5, b3, &at);
        ox_act(o, nd->p.bn.slope == 0.0f ? TG_UN_RELU : TG_UN_LEAKY_RELU, nd->p.bn.slope, b3, out_name);
        return;
    }
    case TG_OP_POOL: {
        const tg_pool_geom *g = &nd->p.pool;
        if (!g->is_max && g->kh == g->H && g->kw == g->W && !g->ph && !g->pw && g->Ho == 1 && g->Wo == 1) {
            ox_node(o, "GlobalAveragePool", &xn, 1, out_name, NULL);
            return;
        }
        const int64_t ks[2] = {g->kh, g->kw}, st[2] = {g->sh, g->sw}, pads[4] = {g->ph, g->pw, g->ph, g->pw};
        attr_ints(&at, "kernel_shape", ks, 2), attr_ints(&at, "strides", st, 2), attr_ints(&at, "pads", pads, 4);
        if (!g->is_max) attr_int(&at, "count_include_pad", 1);
        ox_node(o, g->is_max ? "MaxPool" : "AveragePool", &xn, 1, out_name, &at);
        return;
    }
    case TG_OP_SOFTMAX:
        attr_int(&at, "axis", 1);
        ox_node(o, nd->p.softmax.is_log ? "LogSoftmax" : "Softmax", &xn, 1, out_name, &at);
        return;
    case TG_OP_CAT: {
        const char *in[TG_NODE_MAX_IN];
        int n = 0;
        int64_t C = 0;
        for (; n < TG_NODE_MAX_IN && nd->in[n]; n++) in[n] = ox_name(o, nd->in[n]), C += nd->in[n]->shape[1];
        if (C != y->shape[1]) {
            ox_fail(o, TG_ERR_UNSUPPORTED, "%s%s", "tg_cat_channels of more than 5 tensors: join them in steps "
                    "of at most 5 to export", "");
            return;
        }
        attr_int(&at, "axis", 1);
        ox_node(o, "Concat", in, n, out_name, &at);
        return;
    }
    case TG_OP_SLICE: {
        const int64_t s = nd->p.slice.start, e = s + y->shape[1], ax = 1;
        const char *in[4] = {xn, ox_i64(o, "starts", &s, 1, b1, sizeof b1), ox_i64(o, "ends", &e, 1, b2, sizeof b2),
                             ox_i64(o, "axes", &ax, 1, b3, sizeof b3)};
        ox_node(o, "Slice", in, 4, out_name, NULL);
        return;
    }
    case TG_OP_BCAST: {
        /* b [C] or [N,C] (per sample) as [1 or N, C, 1, ...] against x [N, C, ...] */
        const tg_tensor *bt = nd->in[1];
        int64_t dims[TG_MAX_DIMS] = {nd->p.bcast.per_sample ? x->shape[0] : 1, x->shape[1], 1, 1};
        const char *bn;
        if (!ox_dep(o, bt)) { /* a constant b: an initializer of its own, shaped to broadcast */
            bn = ox_fresh(o, "bcast", b4, sizeof b4);
            ox_init_tensor(o, bn, bt, dims, x->ndim);
        } else {
            if (nd->p.bcast.per_sample) dims[0] = 0; /* copy the batch */
            const char *in[2] = {ox_name(o, bt), ox_i64(o, "shape", dims, x->ndim, b1, sizeof b1)};
            bn = ox_fresh(o, "bcast", b4, sizeof b4);
            ox_node(o, "Reshape", in, 2, b4, NULL);
        }
        const char *in[2] = {xn, bn};
        ox_node(o, nd->p.bcast.op ? "Mul" : "Add", in, 2, out_name, NULL);
        return;
    }
    case TG_OP_UP2: {
        const float sc[4] = {1.0f, 1.0f, 2.0f, 2.0f};
        const int64_t four = 4;
        const char *in[3] = {xn, "", ox_fresh(o, "scales", b5, sizeof b5)};
        ox_init_raw(o, b5, ONNX_FLOAT, &four, 1, sc, sizeof sc);
        if (nd->p.up2.bilinear) {
            attr_str(&at, "mode", "linear");
            attr_str(&at, "coordinate_transformation_mode", "pytorch_half_pixel");
        } else {
            attr_str(&at, "mode", "nearest");
            attr_str(&at, "coordinate_transformation_mode", "asymmetric");
            attr_str(&at, "nearest_mode", "floor");
        }
        ox_node(o, "Resize", in, 3, out_name, &at);
        return;
    }
    case TG_OP_BINARY: {
        const char *in[2] = {xn, ox_name(o, nd->in[1])};
        const int op = nd->p.binary.op;
        ox_node(o, op == 0 ? "Add" : op == 1 ? "Sub" : "Mul", in, 2, out_name, NULL);
        return;
    }
    case TG_OP_SCALE: {
        const char *in[2] = {xn, ox_fresh(o, "scale", b1, sizeof b1)};
        ox_init_raw(o, b1, ONNX_FLOAT, NULL, 0, &nd->p.scale.s, sizeof(float));
        ox_node(o, "Mul", in, 2, out_name, NULL);
        return;
    }
    case TG_OP_RESHAPE: {
        int64_t dims[TG_MAX_DIMS];
        for (int i = 0; i < y->ndim; i++) dims[i] = y->shape[i];
        if (y->shape[0] == x->shape[0]) dims[0] = 0; /* the batch, whatever it is */
        const char *in[2] = {xn, ox_i64(o, "shape", dims, y->ndim, b1, sizeof b1)};
        ox_node(o, "Reshape", in, 2, out_name, NULL);
        return;
    }
    default:
        ox_fail(o, TG_ERR_UNSUPPORTED, "the forward calls %s, which has no ONNX form here (losses, reductions, "
                "DiffAugment and training-mode dropout are training ops)%s", op_public_name(nd), "");
        return;
    }
}

/* ValueInfoProto: name, float or int64, dims with dims[0] the symbolic "batch" when batch_sym */
static void ox_value_info(pb *graph, int field, const char *name, int dtype, const int64_t *dims, int nd,
                          bool batch_sym) {
    pb shape = {0}, tt = {0}, type = {0}, vi = {0};
    for (int i = 0; i < nd; i++) {
        pb d = {0};
        if (i == 0 && batch_sym) pb_str(&d, 2, "batch");
        else pb_int(&d, 1, dims[i]);
        pb_msg(&shape, 1, &d);
    }
    pb_int(&tt, 1, dtype);
    pb_msg(&tt, 2, &shape);
    pb_msg(&type, 1, &tt);
    pb_str(&vi, 1, name);
    pb_msg(&vi, 2, &type);
    pb_msg(graph, field, &vi);
}

/* every module's training flag, depth first, saved and put back (the export runs in evaluation mode) */
static int modes(tg_module *m, bool *flags, int i, bool restore) {
    if (restore) m->training = flags[i];
    else flags[i] = m->training;
    i++;
    for (int c = 0; c < m->n_child; c++) i = modes(m->child[c], flags, i, restore);
    return i;
}
static int count_modules(const tg_module *m) {
    int n = 1;
    for (int c = 0; c < m->n_child; c++) n += count_modules(m->child[c]);
    return n;
}

/* name: what ONNX tools accept without quoting: letters, digits, '_', '.', '-', ':' */
static bool name_ok(const char *s) {
    if (!s || !*s || strlen(s) > 128) return false;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') || *s == '_' ||
              *s == '.' || *s == '-' || *s == ':'))
            return false;
    return true;
}

/* bytes to path through a temporary file in the same directory, renamed over it when complete */
static tg_status write_file(const char *path, const pb *b) {
    const size_t plen = strlen(path);
    char *tmp = malloc(plen + 16);
    if (!tmp) return tg_fail(TG_ERR_NOMEM, FN, "out of memory");
    snprintf(tmp, plen + 16, "%s.tmp.XXXXXX", path);
    const mode_t um = umask(0);
    umask(um);
    int fd = mkstemp(tmp);
    /* mkstemp makes 0600 files; give the result the permissions a plain fopen would */
    if (fd >= 0 && fchmod(fd, 0666 & ~um) != 0) { /* keep 0600: still a valid file */ }
    if (fd < 0) {
        const int e = errno;
        free(tmp);
        return tg_fail(TG_ERR_IO, FN, "%s: cannot create a file beside it: %s", path, strerror(e));
    }
    FILE *f = fdopen(fd, "wb");
    bool ok = f && fwrite(b->p, 1, b->n, f) == b->n && fflush(f) == 0 && fsync(fd) == 0;
    int e = errno;
    if (f) ok = fclose(f) == 0 && ok;
    else close(fd);
    if (ok && rename(tmp, path) != 0) ok = false, e = errno;
    if (!ok) unlink(tmp);
    free(tmp);
    return ok ? TG_OK : tg_fail(TG_ERR_IO, FN, "%s: %s", path, strerror(e));
}

tg_status tg_module_export_onnx(tg_module *m, const tg_onnx_input *inputs, int n_inputs, const char *output_name,
                                const char *path) {
    TG_API_SCOPE(FN);
    if (!m) return tg_fail(TG_ERR_INVALID, FN, "m is NULL");
    if (!inputs || n_inputs < 1 || n_inputs > ONNX_MAX_INPUTS)
        return tg_fail(TG_ERR_INVALID, FN, "%s", !inputs ? "inputs is NULL" : "n_inputs must be in 1..16");
    if (!path || !*path) return tg_fail(TG_ERR_INVALID, FN, "path is %s", path ? "empty" : "NULL");
    if (!name_ok(output_name))
        return tg_fail(TG_ERR_INVALID, FN, "output_name \"%s\" must be 1-128 letters, digits, '_', '.', '-' or ':'",
                       output_name ? output_name : "(NULL)");
    tg_ctx *ctx = m->ctx;
    const int64_t batch = inputs[0].shape[0];
    for (int i = 0; i < n_inputs; i++) {
        const tg_onnx_input *in = &inputs[i];
        if (!name_ok(in->name))
            return tg_fail(TG_ERR_INVALID, FN, "inputs[%d].name \"%s\" must be 1-128 letters, digits, '_', '.', '-' or ':'",
                           i, in->name ? in->name : "(NULL)");
        if (!strcmp(in->name, output_name))
            return tg_fail(TG_ERR_INVALID, FN, "inputs[%d].name \"%s\" is also the output's name", i, in->name);
        for (int j = 0; j < i; j++)
            if (!strcmp(inputs[j].name, in->name))
                return tg_fail(TG_ERR_INVALID, FN, "inputs[%d] and inputs[%d] are both named \"%s\"", j, i, in->name);
        if (in->embedding) {
            if (in->embedding->kind != M_EMBED)
                return tg_fail(TG_ERR_INVALID, FN, "inputs[%d].embedding is a %s layer, not an embedding layer", i,
                               tg_module_kind_name(in->embedding));
            if (in->embedding->ctx != ctx)
                return tg_fail(TG_ERR_DEVICE, FN, "inputs[%d].embedding belongs to another context than m", i);
        } else if (in->ndim < 1 || in->ndim > TG_MAX_DIMS) {
            return tg_fail(TG_ERR_SHAPE, FN, "inputs[%d].ndim %d is outside 1..%d", i, in->ndim, TG_MAX_DIMS);
        }
        if (in->shape[0] < 1 || in->shape[0] > 65536)
            return tg_fail(TG_ERR_SHAPE, FN, "inputs[%d].shape[0] (the example batch) %lld is outside 1..65536", i,
                           (long long)in->shape[0]);
        if (in->shape[0] != batch)
            return tg_fail(TG_ERR_SHAPE, FN, "inputs[%d].shape[0] %lld differs from inputs[0]'s batch %lld", i,
                           (long long)in->shape[0], (long long)batch);
    }

    /* the example inputs: zeros, or label 0 looked up in the embedding */
    tg_tensor *leaf[ONNX_MAX_INPUTS] = {0}, *x[ONNX_MAX_INPUTS] = {0};
    int32_t *labels = calloc((size_t)batch, sizeof *labels);
    const int nmod = count_modules(m);
    bool *flags = malloc(sizeof(bool) * (size_t)nmod);
    ox o = {.ctx = ctx};
    pb graph = {0}, model = {0};
    tg_status st = TG_OK;
    if (!labels || !flags) {
        st = tg_fail(TG_ERR_NOMEM, FN, "out of memory");
        goto done;
    }
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i].embedding) {
            leaf[i] = tg_tensor_new(ctx, inputs[i].ndim, inputs[i].shape); /* zeroed */
            if (!leaf[i]) {
                st = tg_last_status();
                goto done;
            }
        }

    /* the traced call: evaluation mode, every op on the tape; nothing of it stays there */
    modes(m, flags, 0, false);
    tg_module_set_training(m, false);
    const size_t n0 = ctx->n_nodes;
    const tg_precision prec = ctx->precision; /* folded constants in float32, as the graph runs */
    ctx->precision = TG_PRECISION_FP32;
    ctx->tracing = true;
    tg_tensor *y = NULL;
    bool ok = true;
    for (int i = 0; i < n_inputs && ok; i++) {
        x[i] = inputs[i].embedding ? tg_module_embed(inputs[i].embedding, labels, batch) : leaf[i];
        ok = x[i] != NULL;
    }
    if (ok) y = tg_module_call(m, x, n_inputs);
    ctx->tracing = false;
    ctx->precision = prec;
    modes(m, flags, 0, true);
    if (!y) {
        st = tg_last_status() ? tg_last_status() : TG_ERR_INVALID;
        ctx->n_nodes = n0;
        goto done;
    }

    /* the names: inputs, then the module's parameters and buffers by their state names */
    for (int i = 0; i < n_inputs; i++)
        if (!inputs[i].embedding) ox_add(&o, x[i], inputs[i].name, true);
    const int ns = tg_module_state(m, NULL, NULL, 0);
    if (ns > 0) {
        const char **names = malloc(sizeof(char *) * (size_t)ns);
        tg_tensor **ts = malloc(sizeof(tg_tensor *) * (size_t)ns);
        if (names && ts && tg_module_state(m, names, ts, ns) == ns)
            for (int i = 0; i < ns; i++)
                if (!ox_find(&o, ts[i])) ox_add(&o, ts[i], names[i], false);
        if (!names || !ts) ox_fail(&o, TG_ERR_NOMEM, "%s%s", "out of memory", "");
        free(names), free(ts);
    }
    for (int i = 0; i < n_inputs; i++)
        if (inputs[i].embedding && !ox_find(&o, inputs[i].embedding->weight)) {
            char b[160];
            snprintf(b, sizeof b, "%s.embedding.weight", inputs[i].name);
            ox_add(&o, inputs[i].embedding->weight, b, false);
        }

    /* the nodes of the call, in order */
    bool produced = false; /* y is written by a node of the graph */
    for (size_t k = n0; k < ctx->n_nodes && !o.st; k++) {
        const tg_node *nd = &ctx->nodes[k];
        int label_input = -1;
        for (int i = 0; i < n_inputs; i++)
            if (inputs[i].embedding && nd->out == x[i]) label_input = i;
        char nb[48];
        const char *out_name = nd->out == y ? output_name : ox_fresh(&o, "t", nb, sizeof nb);
        if (label_input >= 0) { /* Gather(table, labels) */
            const char *in[2] = {ox_name(&o, nd->in[0]), inputs[label_input].name};
            pb at = {0};
            attr_int(&at, "axis", 0);
            ox_node(&o, "Gather", in, 2, out_name, &at);
            ox_add(&o, nd->out, out_name, true);
            produced = produced || nd->out == y;
            continue;
        }
        bool dep = false;
        for (int i = 0; i < TG_NODE_MAX_IN; i++) dep = dep || ox_dep(&o, nd->in[i]);
        if (!dep) { /* a constant: folded into an initializer with the value computed here */
            char cb[48];
            if (nd->out == y) {
                ox_fail(&o, TG_ERR_INVALID, "%s%s", "the module's output does not depend on its inputs", "");
                break;
            }
            ox_add(&o, nd->out, ox_fresh(&o, nd->kind == TG_OP_SPECTRAL ? "spectral_normed" : "folded", cb, sizeof cb),
                   false);
            continue;
        }
        if (ox_add(&o, nd->out, out_name, true)) ox_convert(&o, nd, out_name);
        produced = produced || nd->out == y;
    }
    ctx->n_nodes = n0;
    if (!o.st && !produced)
        ox_fail(&o, TG_ERR_INVALID, "%s%s", "the module returned one of its inputs or a tensor made outside the "
                "call; there is no graph to export", "");
    if (!o.st && o.nodes.oom) ox_fail(&o, TG_ERR_NOMEM, "%s%s", "out of memory", "");
    if (o.st) {
        st = o.st;
        goto done;
    }

    /* GraphProto: nodes, name, initializers, inputs, output; then the ModelProto around it */
    pb_raw(&graph, o.nodes.p, o.nodes.n);
    pb_str(&graph, 2, "libtensorgan");
    pb_raw(&graph, o.inits.p, o.inits.n);
    for (int i = 0; i < n_inputs; i++) {
        if (inputs[i].embedding) ox_value_info(&graph, 11, inputs[i].name, ONNX_INT64, &batch, 1, true);
        else ox_value_info(&graph, 11, inputs[i].name, ONNX_FLOAT, inputs[i].shape, inputs[i].ndim, true);
    }
    ox_value_info(&graph, 12, output_name, ONNX_FLOAT, y->shape, y->ndim, y->shape[0] == batch);
    pb_int(&model, 1, ONNX_IR_VERSION);
    pb_str(&model, 2, "libtensorgan");
    pb_str(&model, 3, tg_version());
    pb_msg(&model, 7, &graph);
    {
        pb opset = {0};
        pb_str(&opset, 1, "");
        pb_int(&opset, 2, ONNX_OPSET);
        pb_msg(&model, 8, &opset);
    }
    if (model.oom || o.inits.oom) {
        st = tg_fail(TG_ERR_NOMEM, FN, "out of memory");
        goto done;
    }
    st = write_file(path, &model);
done:
    for (int i = 0; i < o.n; i++) free(o.e[i].name);
    free(o.e);
    pb_free(&o.nodes), pb_free(&o.inits), pb_free(&graph), pb_free(&model);
    for (int i = 0; i < n_inputs; i++) tg_tensor_free(leaf[i]);
    free(labels), free(flags);
    return st;
}
