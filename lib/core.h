/*
 * core.h — what the op layer, the tape and the API's objects share (the lib/ files, not the backends):
 * the structs behind tg_tensor and tg_ctx, the arena, the tape's nodes and the op helpers. The
 * backends see lib/backend.h only; files see lib/io.h.
 */
#ifndef TG_CORE_H
#define TG_CORE_H

#include "backend.h"

#ifdef __cplusplus
extern "C" {
#endif

/* ---- memory arena --------------------------------------------------------------------------
 * Bump allocation in big chunks of backend memory; rewinding keeps the chunks, so a repeated
 * training step allocates nothing after the first. */
typedef struct tg_chunk {
    struct tg_chunk *next;
    char *base;
    size_t size, used;
} tg_chunk;

typedef struct {
    tg_chunk *head, *cur;
    size_t total, in_use, peak;
    size_t chunk_allocs;
    int on_device; /* chunks come from the backend (device memory) vs malloc */
} tg_arena;

TG_INTERNAL void *tg_arena_alloc(tg_ctx *ctx, tg_arena *a, size_t bytes);
TG_INTERNAL void tg_arena_rewind(tg_arena *a);
TG_INTERNAL void tg_arena_release(tg_ctx *ctx, tg_arena *a);

/* ---- tensors ------------------------------------------------------------------------------ */
struct tg_tensor {
    tg_ctx *ctx;
    int ndim;
    int64_t shape[TG_MAX_DIMS];
    int64_t numel;
    float *data;       /* host memory on a CPU context, device memory on a CUDA one */
    tg_dtype dtype;    /* TG_F32 for every tensor the caller sees; TG_I32 for an op's saved
                          indices (max-pool's argmax, labels) */
    tg_tensor *grad;   /* gradient (same shape), or NULL */
    bool grad_valid;   /* grad holds values written since the last zero_grad */
    bool requires_grad;
    bool is_leaf;      /* created by tg_tensor_new, owned by the caller */
    bool owned;        /* a leaf a module or an optimizer owns: tg_tensor_free refuses it */
    bool caller_freed; /* tg_tensor_free was called (the caller's reference is gone) */
    int refs;          /* leaves: references (the creator's, and each optimizer, state and
                          gradient averager holding it); freed when the last one goes */
    size_t bw_last;    /* with a grad hook: the tape index after whose backward this leaf's
                          gradient is final (the first node that reads it) */
};

/* the backend's view of a tensor, of its gradient (absent for NULL) */
static inline tg_mem tg_mem_of(const tg_tensor *t) {
    tg_mem m = {t ? (void *)t->data : NULL, t ? t->numel : 0, t ? t->dtype : TG_F32};
    return m;
}

/* ---- tape --------------------------------------------------------------------------------- */
typedef struct tg_node tg_node;
typedef void (*tg_backward_fn)(tg_ctx *ctx, tg_node *node);

#define TG_NODE_MAX_IN 5
/* What a node computes: its op family (one per backward function). The ONNX exporter
 * (lib/onnx.c) reads it with the settings in p; nothing else needs it. */
typedef enum {
    TG_OP_CONV, TG_OP_CONV_T, TG_OP_LINEAR, TG_OP_UNARY, TG_OP_BN, TG_OP_POOL, TG_OP_SOFTMAX,
    TG_OP_XENT, TG_OP_CAT, TG_OP_SLICE, TG_OP_BCAST, TG_OP_UP2, TG_OP_EMBED, TG_OP_BINARY,
    TG_OP_SCALE, TG_OP_REDUCE, TG_OP_RESHAPE, TG_OP_BCE, TG_OP_SPECTRAL, TG_OP_DROPOUT,
    TG_OP_AUGMENT,
} tg_op_kind;

/* A node: its backward, inputs, output, what the forward saved, and the op's settings, one
 * named member per op family. */
struct tg_node {
    tg_backward_fn backward;
    tg_op_kind kind;
    tg_tensor *in[TG_NODE_MAX_IN];
    tg_tensor *out;
    tg_tensor *saved[3];
    union {
        tg_conv_geom conv;                              /* conv2d, conv_transpose2d */
        struct { tg_precision prec; } linear;           /* linear */
        tg_unary act;                                   /* activations */
        struct { int op; } binary;                      /* add, sub, mul (elementwise.c) */
        struct { float s; } scale;                      /* scale, sum, mean */
        struct { float eps, slope; int training, act; tg_tensor *running_mean, *running_var; } bn;
        tg_pool_geom pool;
        struct { int is_log; } softmax;
        struct { float smoothing; } xent;
        struct { int64_t start; } slice;                /* slice_channels */
        tg_bcast bcast;                                 /* add/mul_channels */
        struct { int bilinear; } up2;
        struct { float sigma; } spectral;
    } p;
};

/* ---- context ------------------------------------------------------------------------------ */
struct tg_ctx {
    tg_device device;
    const struct tg_backend_ops *be;
    void *be_state;        /* backend's own (CUDA stream, cuBLAS handle, ...) */
    tg_arena data;         /* op-result values and gradients (backend memory) */
    tg_arena meta;         /* tensor headers of op results (host memory) */
    tg_node *nodes;
    size_t n_nodes, cap_nodes;
    /* leaves the tape reads (nodes' inputs, the bases of views), one reference each, released by
     * tg_ctx_clear_tape and tg_ctx_free: a caller may free a leaf while an op result needs it */
    tg_tensor **held;
    size_t n_held, cap_held;
    float *ws;             /* the backends' scratch (tg_workspace; backend memory) */
    size_t ws_bytes;
    bool grad_enabled;
    bool tracing;          /* every op records a node, whatever needs a gradient (lib/onnx.c) */
    tg_precision precision; /* of convolutions and dense layers (tg_ctx_set_precision) */
    tg_status bw_status;   /* first failure inside the running backward pass */
    uint64_t seed, rng_offset;
    uint32_t rng_stream;
    char desc[384];        /* tg_ctx_describe (the backend's describe slot) */
    /* called by the next backward pass for each leaf whose gradient that pass has finished,
     * as soon as it is final (lib/dist.c overlaps gradient reduction with it); one pass only */
    void (*grad_hook)(void *user, tg_tensor *leaf);
    void *grad_hook_user;
    /* leaf tensors alive on this context; tg_ctx_free with some alive only marks it closing,
     * and the last tg_tensor_free then frees it (so freeing in the wrong order cannot crash) */
    int64_t live_leaves;
    bool closing;
};

/* ---- op helpers (lib/tensor.c, lib/tape.c) ------------------------------------------------ */
/* A leaf tensor owned by a module or optimizer (tg_tensor_free refuses it; they free it with
 * tg_tensor_release). fn names the caller in messages. */
TG_INTERNAL tg_tensor *tg_tensor_owned(tg_ctx *ctx, int ndim, const int64_t *shape, const char *fn);
/* One more reference to a leaf (an optimizer, a state, a gradient averager holding it), and one
 * less: the leaf is freed with its last reference, whatever order its holders are freed in.
 * Both ignore NULL and op results. */
TG_INTERNAL void tg_tensor_retain(tg_tensor *t);
TG_INTERNAL void tg_tensor_release(tg_tensor *t);
/* Frees what tg_ctx_free left for its last leaf (lib/ctx.c). */
TG_INTERNAL void tg_ctx_destroy(tg_ctx *ctx);
/* Validates a shape (1..TG_MAX_DIMS dims, each >= 1, numel <= TG_MAX_NUMEL) into *numel. */
TG_INTERNAL bool tg_shape_ok(int ndim, const int64_t *shape, int64_t *numel, const char *func);
/* An op result on the tape (values uninitialised). */
TG_INTERNAL tg_tensor *tg_result(tg_ctx *ctx, int ndim, const int64_t *shape, const char *func);
/* The same of another element type (TG_I32 indices an op saves for its backward). */
TG_INTERNAL tg_tensor *tg_result_typed(tg_ctx *ctx, int ndim, const int64_t *shape, tg_dtype dt,
                                       const char *func);
/* A tape-owned header over x's data with another shape (same numel): no copy. */
TG_INTERNAL tg_tensor *tg_view(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape,
                               const char *fn);
/* An activation computed in place over x's data, for x that nothing else reads (the output of a
 * layer inside a sequential): the result is a view of x and its backward reads only the output.
 * Valid for tanh, sigmoid and (leaky) ReLU with slope >= 0 (their derivative is a function of
 * the output); lib/activation.c. */
TG_INTERNAL tg_tensor *tg_activation_inplace(tg_ctx *ctx, tg_tensor *x, int op, float a);
/* Validate an op input: non-NULL, belongs to ctx. NULL input keeps the earlier message. */
TG_INTERNAL bool tg_check_in(tg_ctx *ctx, const tg_tensor *t, const char *func, const char *what);
/* tg_check_in for an image batch x that must be [N,C,H,W] */
TG_INTERNAL bool tg_check_nchw(tg_ctx *ctx, const tg_tensor *x, const char *func);
/* Whether an op whose inputs are `in` records a node, and marks out->requires_grad. */
TG_INTERNAL bool tg_needs_grad(tg_ctx *ctx, tg_tensor *const *in, int n);
/* One reference to leaf t for the tape, until the tape is cleared (false + message naming fn on
 * allocation failure; op results and NULL need none: true). */
TG_INTERNAL bool tg_tape_hold(tg_ctx *ctx, tg_tensor *t, const char *fn);
/* Releases what the tape holds (lib/tape.c). */
TG_INTERNAL void tg_tape_release(tg_ctx *ctx);
/* Appends a node (NULL on allocation failure, message set). */
TG_INTERNAL tg_node *tg_record(tg_ctx *ctx, tg_op_kind kind, tg_backward_fn fn, tg_tensor *out,
                               tg_tensor *const *in, int n_in, const char *func);
/* The gradient buffer of t to accumulate into, zeroed on first use; NULL when t needs none. */
TG_INTERNAL float *tg_grad_of(tg_ctx *ctx, tg_tensor *t);
/* Like tg_grad_of, but a gradient that holds nothing yet is not zeroed: *acc is then 0 and the
 * caller must write every element (otherwise *acc is 1: add into it). NULL when t needs none. */
TG_INTERNAL float *tg_grad_write(tg_ctx *ctx, tg_tensor *t, int *acc);
/* tg_tensor_check_finite with the message attributed to fn and naming t as what */
TG_INTERNAL tg_status tg_check_finite_named(const tg_tensor *t, const char *fn, const char *what);
/* Advances the RNG and returns the offset to draw from. */
TG_INTERNAL uint64_t tg_rng_take(tg_ctx *ctx, int64_t n);

/* ---- DiffAugment (lib/augment.c) ---------------------------------------------------------
 * The op with given per-sample parameters (host memory, N x TG_AUG_NPARAM): what
 * tg_diff_augment runs after drawing them, and what the tests call with known ones. */
TG_INTERNAL tg_tensor *tg_diff_augment_with(tg_ctx *ctx, tg_tensor *x, const float *params);

/* ---- metrics (lib/metrics.c) ---------------------------------------------------------------
 * tg_swd's Philox streams: neighbourhood positions (set 0 uses POS, set 1 POS + 1; counter
 * ((image * 16 + level) * per_image + j), words 0 and 1 modulo the span give y and x) and
 * directions (tg_rng_normal1 at index ((level * repeats + repeat) * dirs + d) * dim + k). */
#define TG_SWD_STREAM_POS 0x53574450u
#define TG_SWD_STREAM_DIR 0x53574444u

/* ---- modules, optimizers, the state's registry -------------------------------------------- */
TG_INTERNAL int tg_optim_state(tg_optim *opt, char names[][64], tg_tensor **out, int max,
                               int64_t **steps);
TG_INTERNAL int tg_optim_count(const tg_optim *opt);
/* references to an optimizer (a state that registered it): freed with the last */
TG_INTERNAL void tg_optim_retain(tg_optim *opt);
TG_INTERNAL void tg_optim_release(tg_optim *opt);


#ifdef __cplusplus
}
#endif
#endif /* TG_CORE_H */
