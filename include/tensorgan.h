/**
 * @file tensorgan.h
 * tensorgan.h — the one public header of libtensorgan.
 *
 * libtensorgan is a small deep-learning library in C: float32 tensors on the CPU or a CUDA GPU,
 * eager autograd on a tape, convolutional layers, BatchNorm, Adam/SGD with per-module freeze
 * flags, and safetensors checkpoints. This header is the manual: every declaration says what it
 * takes, who owns the result and what happens on failure.
 *
 * Conventions
 *   - Functions return tg_status (TG_OK == 0) or a pointer that is NULL on failure; either way
 *     tg_last_error() then holds a message that starts with the function called and names the
 *     argument and the shapes or values involved, and tg_last_status() the status. Getters and
 *     setters given NULL return their documented value and leave a message. No argument makes a
 *     call crash or hang.
 *   - Ops (tg_conv2d, tg_add, ...) given a NULL input return NULL. When that NULL came from an op
 *     that failed (no op has succeeded since), its message is kept, so a forward pass can be
 *     chained and checked once at the end; otherwise the message names the NULL input.
 *   - Leaf tensors (tg_tensor_new) belong to the caller. Op results, and the gradients of op
 *     results, belong to the context's tape and stay valid until tg_ctx_clear_tape().
 *   - Free functions accept NULL. The library never prints and never exits on a caller's mistake.
 *   - Layouts are PyTorch's: images NCHW, Conv2D weight [Cout,Cin,kh,kw], ConvTranspose2D weight
 *     [Cin,Cout,kh,kw], Dense weight [out,in].
 *   - Limits (a call over them fails with a message; sizes are checked in 64 bits, never wrap):
 *     a tensor has 1-4 dims, each >= 1, and fewer than 2^40 elements (on the CPU also at most the
 *     machine's physical memory: TG_ERR_NOMEM); image ops (convolution, pooling, upsampling,
 *     augmentation) take sides, channels, kernels, strides and paddings whose padded input and
 *     output fit in 2^31 - 1 per side (pooling: per plane). docs/api.md, "Limits", has the rest.
 *   - Any free order is safe: what holds a tensor (a module, an optimizer, a state, a gradient
 *     averager) keeps it alive until released, and a context outlives its last leaf tensor.
 */
#ifndef TENSORGAN_H
#define TENSORGAN_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#if defined(_WIN32)
#define TG_API
#elif defined(__GNUC__)
#define TG_API __attribute__((visibility("default")))
#else
#define TG_API
#endif

#define TG_VERSION_MAJOR 0
#define TG_VERSION_MINOR 1
#define TG_VERSION_PATCH 0
#define TG_MAX_DIMS 4

/* ---------------------------------------------------------------------------------------------
 * Status, errors, logging
 * ------------------------------------------------------------------------------------------- */
typedef enum {
    TG_OK = 0,
    TG_ERR_INVALID = 1,    /**< an argument is invalid (NULL, out of range, wrong mode) */
    TG_ERR_SHAPE = 2,      /**< tensor shapes do not fit the operation */
    TG_ERR_NOMEM = 3,      /**< host or device allocation failed */
    TG_ERR_DEVICE = 4,     /**< CUDA/cuBLAS failure, no GPU, or tensors on different contexts */
    TG_ERR_IO = 5,         /**< a file could not be opened, read or written */
    TG_ERR_FORMAT = 6,     /**< a file is malformed, truncated, or does not match what is expected */
    TG_ERR_UNSUPPORTED = 7, /**< the library was built without the requested feature */
    TG_ERR_NUMERIC = 8      /**< a NaN or an infinity where finite values are required */
} tg_status;

typedef enum { TG_CPU = 0, TG_CUDA = 1 } tg_device;

typedef struct tg_ctx tg_ctx;
typedef struct tg_tensor tg_tensor;
typedef struct tg_module tg_module;
typedef struct tg_optim tg_optim;
typedef struct tg_state tg_state;

/** Message for the last failure on this thread ("" if none). Valid until the next failure. It
 * starts with the public function that failed ("tg_conv2d: ..."), and names the argument and
 * the shapes or values that were wrong. */
TG_API const char *tg_last_error(void);
/** Status of the last failure on this thread (TG_OK if none since tg_clear_error): how a function
 * that returns a pointer or a value says which kind of failure it was. */
TG_API tg_status tg_last_status(void);
/** Forgets the last failure (message "", status TG_OK), like setting errno to 0. */
TG_API void tg_clear_error(void);
/** Short name of a status code, e.g. "TG_ERR_SHAPE". */
TG_API const char *tg_status_str(tg_status s);
/** Library version as "MAJOR.MINOR.PATCH". */
TG_API const char *tg_version(void);

typedef enum { TG_LOG_INFO = 0, TG_LOG_WARN = 1 } tg_log_level;
/** Receives warnings (e.g. "no fast BLAS found"). NULL (the default) drops them. Process-wide. */
typedef void (*tg_log_fn)(tg_log_level level, const char *msg, void *user);
TG_API void tg_set_log_callback(tg_log_fn fn, void *user);

/** Loader limits: what a file from a stranger may make the library allocate. Every loader checks
 * what a file declares against these before allocating for it and refuses with TG_ERR_FORMAT and
 * a message naming the limit. Process-wide; set them before loading (not while another thread
 * loads). A field set to 0 in tg_set_limits keeps its current value. Memory bounds that follow:
 *   safetensors / checkpoints / packed datasets: the file's size, plus (xz) the decompressed
 *     size declared in the xz index (<= max_file_bytes) before decoding starts, plus a table of
 *     O(header bytes); a packed dataset then holds one copy of its pixels.
 *   PNG / JPEG: the decoded RGB image (3 bytes x width x height <= 3 x max_image_pixels) plus
 *     the decoder's own working memory, which libjpeg is told to keep under 8 bytes x pixels. */
typedef struct {
    uint64_t max_file_bytes;   /**< a safetensors file after decompression (default 4 GiB) */
    uint64_t max_header_bytes; /**< its JSON header (default 100 MiB) */
    uint64_t max_image_pixels; /**< width x height of one decoded image (default 64 Mpx) */
} tg_limits;
TG_API void tg_get_limits(tg_limits *out);
TG_API void tg_set_limits(const tg_limits *in);

/* ---------------------------------------------------------------------------------------------
 * Context: one device, one tape, one arena, one RNG stream. Contexts are independent; a CPU and a
 * CUDA context can live in one process. A context is not thread-safe: use one per thread.
 * ------------------------------------------------------------------------------------------- */

/** NULL + message on failure (no GPU, built without CUDA, no memory). */
TG_API tg_ctx *tg_ctx_new(tg_device device, uint64_t seed);
/** Frees the tape and the arena (every op result is gone). Free leaf tensors, modules and
 * optimizers first; those still alive keep the context's memory and backend alive, and the last
 * of them to be freed frees it. After this call ctx may only be given to nothing else (a freed
 * context's functions refuse it with a message until it is gone). NULL-safe. */
TG_API void tg_ctx_free(tg_ctx *ctx);
TG_API tg_device tg_ctx_device(const tg_ctx *ctx);
/** One line saying where ctx runs and how it multiplies: "CPU: MODEL, N threads; precision
 * fp32: convolutions on ISA kernels; BLAS (dense layers): " and tg_blas_info()'s text (in bf16:
 * the kernels and how they form the products), or "CUDA device 0: NAME (sm_90, 80 GiB, 132
 * SMs); precision ...". Written anew at each call; owned by ctx. */
TG_API const char *tg_ctx_describe(tg_ctx *ctx);
/** Frees every op result and op-result gradient; rewinds the arena (keeps its memory for reuse). */
TG_API void tg_ctx_clear_tape(tg_ctx *ctx);
/** Grad mode (on by default). Off: ops record nothing (sampling, evaluation). Returns old mode. */
TG_API bool tg_ctx_set_grad_enabled(tg_ctx *ctx, bool enabled);
TG_API bool tg_ctx_grad_enabled(const tg_ctx *ctx);
/** Blocks until all queued device work is done (no-op on the CPU). */
TG_API tg_status tg_ctx_sync(tg_ctx *ctx);
/** The RNG: counter-based (Philox4x32-10) keyed by (seed, stream), drawing at an offset that every
 * random fill advances. The same seed/stream/offset draws the same numbers on CPU and CUDA. */
TG_API void tg_ctx_rng_get(const tg_ctx *ctx, uint64_t *seed, uint64_t *offset);
TG_API void tg_ctx_rng_set(tg_ctx *ctx, uint64_t seed, uint64_t offset);
/** Allow TF32 tensor cores for CUDA GEMMs (off by default; ignored on the CPU). On a CUDA
 * context the same as tg_ctx_set_precision(ctx, allow ? TG_PRECISION_TF32 : TG_PRECISION_FP32). */
TG_API void tg_ctx_set_tf32(tg_ctx *ctx, bool allow);

/** The precision of the multiplications in convolutions and dense layers (tg_conv2d,
 * tg_conv_transpose2d, tg_linear and the layers built on them), for ops run after the call; an
 * op's backward runs in the precision of its forward.
 *   TG_PRECISION_FP32  float32 throughout (the default).
 *   TG_PRECISION_BF16  each pass rounds the two tensors it multiplies to bfloat16 (round to
 *                      nearest, ties to even) and accumulates in float32: the forward rounds x and
 *                      w, the data gradient dy and w, the weight gradient x and dy. Everything else
 *                      stays float32: these ops' results and biases, every other op, gradients,
 *                      the parameters (the optimizer's master weights), Adam's moments, BatchNorm's
 *                      statistics, losses, and files (a checkpoint loads and trains in any
 *                      precision). On the CPU the products use AVX512-BF16 (vdpbf16ps) where the
 *                      CPU has it; elsewhere the same bf16 operands are multiplied with float32
 *                      instructions in the same order: the same results, slower (except for
 *                      subnormal bf16 values, which AVX512-BF16 treats as zero). Results do not
 *                      depend on the thread count. tg_ctx_describe names the kernel.
 *   TG_PRECISION_TF32  CUDA only: cuBLAS may use TF32 tensor cores. TG_ERR_UNSUPPORTED on the CPU.
 * TG_ERR_INVALID for an unknown value. */
typedef enum { TG_PRECISION_FP32 = 0, TG_PRECISION_BF16 = 1, TG_PRECISION_TF32 = 2 } tg_precision;
TG_API tg_status tg_ctx_set_precision(tg_ctx *ctx, tg_precision precision);
/** The context's precision (TG_PRECISION_FP32 for a NULL or freed context, with a message). */
TG_API tg_precision tg_ctx_precision(const tg_ctx *ctx);
/** "fp32", "bf16", "tf32" (NULL for an unknown value) and back (-1 for an unknown name): for
 * command lines and files. */
TG_API const char *tg_precision_name(tg_precision precision);
TG_API int tg_precision_parse(const char *name);

typedef struct {
    size_t arena_bytes;      /**< device (or host, on the CPU) memory held by the op-result arena */
    size_t arena_peak_bytes; /**< most of it ever in use at once */
    size_t workspace_bytes;  /**< scratch buffer for im2col and friends */
    size_t arena_chunk_allocs; /**< how many times the arena asked the system for memory */
    size_t tape_nodes;       /**< nodes currently on the tape */
} tg_ctx_stats;
TG_API void tg_ctx_stats_get(const tg_ctx *ctx, tg_ctx_stats *out);

/** Which GEMM library the CPU backend uses and which kernel it selected, e.g.
 * "OpenBLAS 0.3.21 (core SkylakeX, chosen by libtensorgan)". Loads the BLAS if needed. A slow
 * choice says "SLOW: ..." in the text and is sent to the log callback as a warning: the built-in
 * fallback GEMM, a reference BLAS, or an OpenBLAS kernel slower than the CPU supports (e.g. a
 * system-wide OPENBLAS_CORETYPE=Haswell on an AVX-512 CPU; the user's setting is still used).
 * TG_BLAS=builtin forces the built-in GEMM, TG_BLAS=/path/to/a/libcblas.so loads that CBLAS. */
TG_API const char *tg_blas_info(void);
/** Number of CUDA devices visible (0 without a GPU or in a build without CUDA). */
TG_API int tg_cuda_device_count(void);
/** true when this build contains the CUDA backend. */
TG_API bool tg_built_with_cuda(void);

/* ---------------------------------------------------------------------------------------------
 * Tensors: float32, contiguous, row-major, 1 to 4 dimensions.
 * ------------------------------------------------------------------------------------------- */

/** A zeroed leaf tensor on ctx's device. The caller owns it (tg_tensor_free). NULL on failure. */
TG_API tg_tensor *tg_tensor_new(tg_ctx *ctx, int ndim, const int64_t *shape);
/** Convenience: 1-4 dims given as arguments; pass 0 for unused trailing dims (a 0 before a
 * positive dim, or a negative dim, is refused: TG_ERR_SHAPE). */
TG_API tg_tensor *tg_tensor_new4(tg_ctx *ctx, int64_t d0, int64_t d1, int64_t d2, int64_t d3);
/** Frees a leaf and its gradient. NULL-safe. Op results are freed by tg_ctx_clear_tape (a call
 * here on an op result is ignored). A tensor a module or an optimizer owns (its parameters,
 * buffers, moments) is refused with a message and stays: they free it. */
TG_API void tg_tensor_free(tg_tensor *t);
TG_API tg_ctx *tg_tensor_ctx(const tg_tensor *t);
TG_API int tg_tensor_ndim(const tg_tensor *t);
/** Size of axis (negative counts from the end); -1 for a bad axis. */
TG_API int64_t tg_tensor_dim(const tg_tensor *t, int axis);
TG_API int64_t tg_tensor_numel(const tg_tensor *t);
/** Copies n floats from host memory into t; n must equal numel. */
TG_API tg_status tg_tensor_write(tg_tensor *t, const float *src, int64_t n);
/** Copies t into host memory; n must equal numel. Waits for pending device work. */
TG_API tg_status tg_tensor_read(const tg_tensor *t, float *dst, int64_t n);
/** Copies src's values into dst (same numel, same context). */
TG_API tg_status tg_tensor_copy(tg_tensor *dst, const tg_tensor *src);
TG_API tg_status tg_tensor_fill(tg_tensor *t, float value);
/** Draws from the context's RNG (advances its offset by numel). */
TG_API tg_status tg_tensor_fill_normal(tg_tensor *t, float mean, float std);
TG_API tg_status tg_tensor_fill_uniform(tg_tensor *t, float lo, float hi);
/** TG_OK when every element of t is finite; TG_ERR_NUMERIC (message: how many NaN/Inf, the first
 * index) otherwise. One pass over t (on CUDA, through a host copy). */
TG_API tg_status tg_tensor_check_finite(const tg_tensor *t);
/** Reads the single element of a one-element tensor (e.g. a loss). NAN + message on failure. */
TG_API float tg_tensor_item(const tg_tensor *t);
/** Whether backward computes a gradient for the leaf t. An op result is refused
 * (TG_ERR_INVALID): whether it needs one follows from its inputs. */
TG_API tg_status tg_tensor_set_requires_grad(tg_tensor *t, bool on);
TG_API bool tg_tensor_requires_grad(const tg_tensor *t);
/** t's gradient, or NULL until a backward pass reached t (and again after tg_optim_zero_grad /
 * tg_tensor_zero_grad, which, like PyTorch's set_to_none, drop it). Owned by t (leaves) or by
 * the tape (op results). */
TG_API const tg_tensor *tg_tensor_grad(const tg_tensor *t);
TG_API void tg_tensor_zero_grad(tg_tensor *t);

/* ---------------------------------------------------------------------------------------------
 * Ops. The result is owned by the tape. NULL input -> NULL output, first message kept.
 * Each matches the torch.nn.functional function of the same name.
 * ------------------------------------------------------------------------------------------- */

/** x [N,Cin,H,W], w [Cout,Cin,kh,kw], b [Cout] or NULL -> [N,Cout,Ho,Wo],
 * Ho = (H + 2*pad - kh)/stride + 1. */
TG_API tg_tensor *tg_conv2d(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b, int stride,
                            int pad);
/** x [N,Cin,H,W], w [Cin,Cout,kh,kw], b [Cout] or NULL -> [N,Cout,Ho,Wo],
 * Ho = (H-1)*stride - 2*pad + kh (output_padding 0). */
TG_API tg_tensor *tg_conv_transpose2d(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b,
                                      int stride, int pad);
/** x [N,in], w [out,in], b [out] or NULL -> [N,out]. */
TG_API tg_tensor *tg_linear(tg_ctx *ctx, tg_tensor *x, tg_tensor *w, tg_tensor *b);
/** x [N,C] or [N,C,H,W]. training: normalize with the batch's biased variance and, when
 * running_mean/var are given, update them (running_var with the unbiased variance; momentum is
 * the weight of the new value). Not training: normalize with the running statistics (required).
 * gamma/beta [C] may be NULL (no affine). */
TG_API tg_tensor *tg_batch_norm(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                                tg_tensor *running_mean, tg_tensor *running_var, bool training,
                                float momentum, float eps);
/** tg_batch_norm followed by y > 0 ? y : slope * y (slope 0: ReLU) as one op: the normalised
 * values are never stored (the backward recomputes them from x), one tensor less in the arena and
 * one pass less over memory each way. slope < 0 runs the two ops. The same values as the two. */
TG_API tg_tensor *tg_batch_norm_act(tg_ctx *ctx, tg_tensor *x, tg_tensor *gamma, tg_tensor *beta,
                                    tg_tensor *running_mean, tg_tensor *running_var, bool training,
                                    float momentum, float eps, float slope);
TG_API tg_tensor *tg_leaky_relu(tg_ctx *ctx, tg_tensor *x, float slope);
TG_API tg_tensor *tg_relu(tg_ctx *ctx, tg_tensor *x);
TG_API tg_tensor *tg_tanh(tg_ctx *ctx, tg_tensor *x);
TG_API tg_tensor *tg_sigmoid(tg_ctx *ctx, tg_tensor *x);
/** Elementwise, same shapes. */
TG_API tg_tensor *tg_add(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_sub(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_mul(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);
TG_API tg_tensor *tg_scale(tg_ctx *ctx, tg_tensor *x, float s);
/** Sum / mean of all elements -> shape [1]. */
TG_API tg_tensor *tg_sum(tg_ctx *ctx, tg_tensor *x);
TG_API tg_tensor *tg_mean(tg_ctx *ctx, tg_tensor *x);
/** Same data, new shape (same numel; one dim may be -1). No copy. */
TG_API tg_tensor *tg_reshape(tg_ctx *ctx, tg_tensor *x, int ndim, const int64_t *shape);
/** [N, ...] -> [N, rest]. */
TG_API tg_tensor *tg_flatten(tg_ctx *ctx, tg_tensor *x);
/** Same data, cut from the tape: no gradient flows back through the result (torch's detach). */
TG_API tg_tensor *tg_detach(tg_ctx *ctx, tg_tensor *x);
/** mean(max(x,0) - x*t + log(1+exp(-|x|))): stable for any logit. Same shapes; result [1]. */
TG_API tg_tensor *tg_bce_with_logits(tg_ctx *ctx, tg_tensor *logits, tg_tensor *targets);
/** Pooling over [N,C,H,W] (PyTorch semantics, floor mode): square windows, equal strides and
 * padding (at most half the kernel); max pooling pads with -infinity, average pooling counts the
 * padding (count_include_pad=True). Global average pooling gives [N,C,1,1]. */
TG_API tg_tensor *tg_max_pool2d(tg_ctx *ctx, tg_tensor *x, int kernel, int stride, int pad);
TG_API tg_tensor *tg_avg_pool2d(tg_ctx *ctx, tg_tensor *x, int kernel, int stride, int pad);
TG_API tg_tensor *tg_global_avg_pool2d(tg_ctx *ctx, tg_tensor *x);
/** Dropout: in training each element is zeroed with probability p (mask from the context's RNG,
 * the same on CPU and CUDA) and the rest scaled by 1/(1-p); otherwise x itself is returned. */
TG_API tg_tensor *tg_dropout(tg_ctx *ctx, tg_tensor *x, float p, bool training);
/** Softmax and log-softmax over dimension 1 of [N,C] or [N,C,H,W]. */
TG_API tg_tensor *tg_softmax(tg_ctx *ctx, tg_tensor *x);
TG_API tg_tensor *tg_log_softmax(tg_ctx *ctx, tg_tensor *x);
/** Mean cross-entropy of logits [N,C] or [N,C,H,W] (other ranks are refused: the label count
 * follows from the shape) against class indices labels[N] or labels[N*H*W] (host memory, row
 * n*H*W + h*W + w, each in [0, C)), with label smoothing in [0, 1] (PyTorch's
 * F.cross_entropy(logits, labels, label_smoothing=...)). -> [1] */
TG_API tg_tensor *tg_cross_entropy(tg_ctx *ctx, tg_tensor *logits, const int32_t *labels,
                                   float label_smoothing);
/** Concatenation of up to 5 tensors along dimension 1 (equal elsewhere), and channels
 * start..start+count-1 of x: torch.cat(xs, 1) and x[:, start:start+count]. */
TG_API tg_tensor *tg_cat_channels(tg_ctx *ctx, tg_tensor *const *xs, int n);
TG_API tg_tensor *tg_slice_channels(tg_ctx *ctx, tg_tensor *x, int start, int count);
/** x [N,C,...] plus / times b broadcast over the other dimensions: b is [C] or [1,C,1,...] (one
 * value per channel) or [N,C] or [N,C,1,...] (per sample and channel), as PyTorch broadcasts
 * them. Same-shape terms (residual connections) are tg_add / tg_mul. */
TG_API tg_tensor *tg_add_channels(tg_ctx *ctx, tg_tensor *x, tg_tensor *b);
TG_API tg_tensor *tg_mul_channels(tg_ctx *ctx, tg_tensor *x, tg_tensor *b);
/** Upsampling by 2 of [N,C,H,W]: nearest, or bilinear with align_corners=False
 * (nn.Upsample(scale_factor=2, mode=...)). */
TG_API tg_tensor *tg_upsample2(tg_ctx *ctx, tg_tensor *x, bool bilinear);
/** Rows idx[0..n) (host memory, each in [0, V)) of table [V,D] -> [n,D] (F.embedding). */
TG_API tg_tensor *tg_embedding(tg_ctx *ctx, tg_tensor *table, const int32_t *idx, int64_t n);
/** Differentiable augmentation (DiffAugment, Zhao et al. 2020) of x [N,C,H,W], per sample with
 * parameters drawn from the context's RNG: TG_AUG_COLOR (brightness +-0.5, saturation x[0,2]
 * about the pixel's channel mean, contrast x[0.5,1.5] about the sample mean), TG_AUG_TRANSLATION
 * (a shift of up to 1/8 of each side, zeros shifted in) and TG_AUG_CUTOUT (a zeroed square of
 * half the size, centred anywhere, clipped), in that order. Gradients flow to x. Apply it to
 * real and generated batches alike before a discriminator. */
enum { TG_AUG_COLOR = 1, TG_AUG_TRANSLATION = 2, TG_AUG_CUTOUT = 4 };
TG_API tg_tensor *tg_diff_augment(tg_ctx *ctx, tg_tensor *x, unsigned policy);
/** Spectral normalisation (Miyato et al. 2018; torch.nn.utils.spectral_norm): w / sigma, where
 * sigma estimates w's largest singular value with w seen as [shape[0], rest]. power_iters > 0
 * (training) first runs that many power iterations, updating u [shape[0]] and v [rest] in place
 * (keep them between calls; start from random unit vectors); 0 uses them as they are
 * (evaluation). Gradients reach w through sigma with u and v held fixed. */
TG_API tg_tensor *tg_spectral_norm(tg_ctx *ctx, tg_tensor *w, tg_tensor *u, tg_tensor *v,
                                   int power_iters, float eps);
/** mean((a-b)^2), result [1]. */
TG_API tg_tensor *tg_mse_loss(tg_ctx *ctx, tg_tensor *a, tg_tensor *b);

/** Seeds d(loss)=1 and runs the tape backwards; gradients accumulate (+=) into every tensor that
 * requires one. loss must have exactly one element. */
TG_API tg_status tg_backward(tg_ctx *ctx, tg_tensor *loss);
/** Same, seeding d(y) = dy (same shape as y), like torch.autograd.backward(y, dy). */
TG_API tg_status tg_backward_with(tg_ctx *ctx, tg_tensor *y, const tg_tensor *dy);

/* ---------------------------------------------------------------------------------------------
 * Modules. A module owns its parameters and buffers. Parameter order and names are fixed and
 * PyTorch-like: conv/dense "weight", "bias"; batch norm "weight", "bias" (+ buffers
 * "running_mean", "running_var"); a child's name prefixes its own ("0.weight" in a sequential,
 * "enc1.conv.weight" in a module of your own), children in the order they were added.
 * ------------------------------------------------------------------------------------------- */
/** Weights start with PyTorch's default init (kaiming-uniform(a=sqrt 5), bias U(+-1/sqrt(fan_in)))
 * drawn from the context's RNG. */
TG_API tg_module *tg_layer_conv2d(tg_ctx *ctx, int in_ch, int out_ch, int kernel, int stride,
                                  int pad, bool bias);
TG_API tg_module *tg_layer_conv_transpose2d(tg_ctx *ctx, int in_ch, int out_ch, int kernel,
                                            int stride, int pad, bool bias);
TG_API tg_module *tg_layer_dense(tg_ctx *ctx, int in_features, int out_features, bool bias);
/** gamma 1, beta 0, running mean 0, running var 1. momentum: weight of the new value (PyTorch
 * 0.1; Keras' momentum m corresponds to 1-m here). */
TG_API tg_module *tg_layer_batch_norm(tg_ctx *ctx, int channels, float momentum, float eps);
TG_API tg_module *tg_layer_leaky_relu(tg_ctx *ctx, float slope);
TG_API tg_module *tg_layer_relu(tg_ctx *ctx);
TG_API tg_module *tg_layer_tanh(tg_ctx *ctx);
TG_API tg_module *tg_layer_sigmoid(tg_ctx *ctx);
TG_API tg_module *tg_layer_flatten(tg_ctx *ctx);
/** [N, numel/N] -> [N, c, h, w] (e.g. noise vector to a 1x1 map). */
TG_API tg_module *tg_layer_reshape(tg_ctx *ctx, int c, int h, int w);
/** Parameter-free layers over the ops of the same names; dropout is on in training mode only. */
TG_API tg_module *tg_layer_max_pool2d(tg_ctx *ctx, int kernel, int stride, int pad);
TG_API tg_module *tg_layer_avg_pool2d(tg_ctx *ctx, int kernel, int stride, int pad);
TG_API tg_module *tg_layer_global_avg_pool2d(tg_ctx *ctx);
TG_API tg_module *tg_layer_dropout(tg_ctx *ctx, float p);
TG_API tg_module *tg_layer_upsample2(tg_ctx *ctx, bool bilinear);
/** An embedding table: parameter `weight` [num, dim], N(0, 1) as PyTorch. It takes indices, not a
 * tensor: tg_module_embed(m, idx, n) -> [n, dim] (tg_module_forward refuses it). */
TG_API tg_module *tg_layer_embedding(tg_ctx *ctx, int num, int dim);
TG_API tg_tensor *tg_module_embed(tg_module *m, const int32_t *idx, int64_t n);
TG_API tg_module *tg_sequential(tg_ctx *ctx);
/** seq owns layer from now on, as the child named by its index ("0", "1", ...); on failure layer is freed, except when it
 * belongs to another module already (a module has one owner) or is seq or one of its ancestors
 * (a cycle), which are refused and left as they were. */
TG_API tg_status tg_sequential_add(tg_module *seq, tg_module *layer);
TG_API int tg_sequential_len(const tg_module *seq);
/** The i-th child of a sequential (NULL when out of range); owned by seq. */
TG_API tg_module *tg_sequential_get(tg_module *seq, int i);
/** Runs m on x: a layer, a sequential (its children in order; a BatchNorm followed by a ReLU or
 * a LeakyReLU with slope >= 0 runs as tg_batch_norm_act, and an activation right after a conv,
 * conv-transpose or dense layer overwrites that layer's output in place, as
 * tg_module_forward_act below), or a module of your own with one input. A failure inside names
 * the module's path ("tg_module_forward: layer enc1.0 (conv2d): tg_conv2d: ..."). */
TG_API tg_tensor *tg_module_forward(tg_module *m, tg_tensor *x);

/* ---- Networks that are not a chain (docs/api.md) ----
 * A module of your own: its children have names ("enc1", "up2"; no '.', at most 63 characters,
 * unique among siblings) and nest freely, and your forward function computes its output from
 * its n_in inputs with them and any ops — skip connections, several inputs, a shared encoder.
 * Parameters, state names ("enc1.conv1.weight", as PyTorch's state_dict names them), freezing,
 * training mode, initialisation, EMA, spectral normalisation, tg_state and save/load all walk
 * the tree. A sequential is a module whose children are named "0", "1", ... */
typedef tg_tensor *(*tg_forward_fn)(tg_module *self, tg_tensor *const *in, int n_in, void *user);
/** A module with no children yet; forward(self, in, n_in, user) runs it. */
TG_API tg_module *tg_module_new(tg_ctx *ctx, tg_forward_fn forward, void *user);
/** parent (from tg_module_new) owns child from now on, under name. Refused: a NULL or bad name
 * (empty, too long, with '.', already taken), a parent that is a layer or a sequential (use
 * tg_sequential_add), a child of another context — child is freed then — and a child that
 * already has a parent or is parent or one of its ancestors (a cycle) — left as it was. */
TG_API tg_status tg_module_add(tg_module *parent, const char *name, tg_module *child);
/** The child named name (NULL and a message listing the children when there is none). */
TG_API tg_module *tg_module_child(tg_module *m, const char *name);
/** The children of a module of your own or a sequential, in the order they were added: their count
 * (-1 for a layer or NULL), the i-th, its name. Owned by m. */
TG_API int tg_module_child_count(const tg_module *m);
TG_API tg_module *tg_module_child_at(tg_module *m, int i);
TG_API const char *tg_module_child_name(const tg_module *m, int i);
/** Runs m on n_in inputs (a layer or a sequential takes exactly one). A forward function that
 * returns NULL without a failed library call behind it is reported as such. */
TG_API tg_tensor *tg_module_call(tg_module *m, tg_tensor *const *in, int n_in);
/** layer's forward, then the activation layer act's, fused as a sequential fuses them: a
 * BatchNorm with a ReLU or a LeakyReLU of slope >= 0 as tg_batch_norm_act; a conv, conv-
 * transpose or dense layer with a ReLU, LeakyReLU (slope >= 0), tanh or sigmoid in place (the
 * layer's output, which nothing else may use, becomes the activation's). Otherwise the two in
 * turn. In a forward function of your own, this is how `F.relu(self.bn1(x))` keeps the memory
 * and speed of the same layers in a sequential. */
TG_API tg_tensor *tg_module_forward_act(tg_module *layer, tg_tensor *x, tg_module *act);
/** Writes up to max trainable tensors into out (may be NULL when max is 0), in the fixed order;
 * returns the total count (-1 for a NULL module, a negative max, or a NULL out with max > 0).
 * Tensors stay owned by the module. */
TG_API int tg_module_params(tg_module *m, tg_tensor **out, int max);
/** Named state: parameters and buffers ("running_mean", "running_var"), in order. names[i] point
 * into the module and live as long as it does. Returns the total count (-1 as tg_module_params). */
TG_API int tg_module_state(tg_module *m, const char **names, tg_tensor **out, int max);
/** The running mean and variance of every BatchNorm layer in m (mean then variance, layer by
 * layer in the order of tg_module_state): what data-parallel training averages over the ranks
 * after a step. Writes up to max into out; returns the total count (-1 as tg_module_params). */
TG_API int tg_module_batch_norm_stats(tg_module *m, tg_tensor **out, int max);
/** Frozen: parameters stop requiring gradients (no weight gradients, optimizers skip them with no
 * state change) and BatchNorm running statistics stop moving; gradients still flow through to
 * the module's input. Recursive for a sequential. */
TG_API void tg_module_set_frozen(tg_module *m, bool frozen);
TG_API bool tg_module_frozen(const tg_module *m);
/** Training (default) vs evaluation mode: BatchNorm uses batch vs running statistics. Recursive. */
TG_API void tg_module_set_training(tg_module *m, bool training);
/** Frees m and its children. A module that belongs to another (a sequential or a module of your
 * own) is refused with a message: its owner frees it. */
TG_API void tg_module_free(tg_module *m);
/** Exponential moving average of parameters: each parameter of avg becomes
 * decay * avg + (1 - decay) * src (same module structure, same context). BatchNorm running
 * buffers are not touched: re-estimate them for the averaged weights (a forward pass in training
 * mode) or copy them. */
TG_API tg_status tg_module_ema(tg_module *avg, tg_module *src, float decay);
/** Spectrally normalises a conv2d or dense layer's weight (every such layer of a sequential,
 * recursively): its forward uses tg_spectral_norm, with power_iters iterations per forward in
 * training mode (PyTorch's default: 1, eps 1e-12) and none in evaluation mode. The state names
 * become PyTorch's: weight_orig (the parameter), weight_u and weight_v (buffers). */
TG_API tg_status tg_module_spectral_norm(tg_module *m, int power_iters, float eps);

/** Initializers (draw from the tensor's context RNG). fan_in/fan_out follow PyTorch's
 * _calculate_fan_in_and_fan_out (dim 1 * receptive field, dim 0 * receptive field). */
TG_API tg_status tg_init_normal(tg_tensor *t, float mean, float std);
TG_API tg_status tg_init_glorot_uniform(tg_tensor *t);
/** Keras' Glorot for a ConvTranspose2D weight [Cin,Cout,kh,kw] uses fan_in=Cout*k*k, fan_out=Cin*k*k
 * — the same pair as PyTorch's, so tg_init_glorot_uniform covers it. */
TG_API tg_status tg_init_zeros(tg_tensor *t);
/** Applies an init to every layer of a module: conv/dense weights with `weights`, biases zero,
 * batch norm gamma normal(1, bn_std) (bn_std 0 -> ones) and beta zero. */
typedef enum { TG_INIT_DEFAULT = 0, TG_INIT_GLOROT_UNIFORM = 1, TG_INIT_NORMAL = 2 } tg_init_kind;
TG_API tg_status tg_module_init(tg_module *m, tg_init_kind weights, float std, float bn_std);

/* ---------------------------------------------------------------------------------------------
 * Optimizers. They hold a reference to each parameter tensor: freeing the module (or the tensor)
 * before the optimizer is safe, and the tensor goes when its last holder does.
 * A parameter that does not require a gradient (frozen) or has none since the last zero_grad is
 * skipped with no state change (its own step count included).
 * ------------------------------------------------------------------------------------------- */
/** torch.optim.Adam: p -= lr * mhat / (sqrt(vhat) + eps), per-parameter step counts. */
TG_API tg_optim *tg_adam(tg_ctx *ctx, tg_tensor **params, int n, float lr, float beta1,
                         float beta2, float eps);
typedef enum {
    TG_ADAM_EPS_PYTORCH = 0, /**< eps added to sqrt(v_hat)   (torch.optim.Adam) */
    TG_ADAM_EPS_KERAS = 1    /**< eps added to sqrt(v)       (Keras 2.x Adam: lr_t*m/(sqrt(v)+eps)) */
} tg_adam_eps_mode;
TG_API tg_status tg_adam_set_eps_mode(tg_optim *opt, tg_adam_eps_mode mode);
/** torch.optim.SGD with momentum (dampening 0, no nesterov). momentum 0 = plain SGD. */
TG_API tg_optim *tg_sgd(tg_ctx *ctx, tg_tensor **params, int n, float lr, float momentum);
/** Applies one update. With finite checking on, every gradient about to be applied is checked
 * first; a NaN or infinity makes the step change nothing and return TG_ERR_NUMERIC naming the
 * parameter. */
TG_API tg_status tg_optim_step(tg_optim *opt);
/** Finite checking of gradients in tg_optim_step (off by default; one pass over the gradients). */
TG_API void tg_optim_set_check_finite(tg_optim *opt, bool on);
/** Drops every parameter's gradient (see tg_tensor_grad). */
TG_API void tg_optim_zero_grad(tg_optim *opt);
/** lr must be finite and >= 0 (TG_ERR_INVALID otherwise, and the rate stays). */
TG_API tg_status tg_optim_set_lr(tg_optim *opt, float lr);
TG_API float tg_optim_lr(const tg_optim *opt);
TG_API void tg_optim_free(tg_optim *opt);

/* ---------------------------------------------------------------------------------------------
 * Checkpoints: safetensors files (https://huggingface.co/docs/safetensors). A tg_state is a list
 * of named leaf tensors (it holds a reference to each, and to each registered optimizer, so they
 * stay valid while it lives whatever is freed first) plus string metadata. Saving writes a temporary file,
 * flushes it and renames it over the target, so a crash never leaves a half-written file.
 * Loading checks every name, dtype, shape and offset and fails with a clear message, leaving the
 * tensors untouched, if anything is missing, extra-but-required or malformed.
 * ------------------------------------------------------------------------------------------- */
TG_API tg_state *tg_state_new(void);
TG_API void tg_state_free(tg_state *s);
/** Registers the leaf t under name (copied). A name is 1-255 bytes of UTF-8 without control
 * characters, unique in s, and not "__metadata__"; an op result is refused (it lives only until
 * tg_ctx_clear_tape: copy it into a leaf). */
TG_API tg_status tg_state_add(tg_state *s, const char *name, tg_tensor *t);
/** Registers a module's named state under prefix ("" or e.g. "main."). On failure (a name taken,
 * too long) nothing is registered. */
TG_API tg_status tg_state_add_module(tg_state *s, const char *prefix, tg_module *m);
/** Registers an optimizer's moments (prefix + "N.exp_avg", ...) and its step counts (metadata,
 * prefix + "steps"); each optimizer once, each prefix once. */
TG_API tg_status tg_state_add_optim(tg_state *s, const char *prefix, tg_optim *opt);
/** key: 1-255 bytes of UTF-8; value: UTF-8 of any length. */
TG_API tg_status tg_state_set_meta(tg_state *s, const char *key, const char *value);
/** NULL when absent. After a load, holds the file's metadata. */
TG_API const char *tg_state_get_meta(const tg_state *s, const char *key);
TG_API tg_status tg_state_save(tg_state *s, const char *path);
/** Fills every registered tensor from the file. A tensor in the file but not registered is
 * ignored unless strict. Nothing is modified unless the whole file checks out. */
TG_API tg_status tg_state_load(tg_state *s, const char *path, bool strict);

/** Shorthands for one module under an empty prefix. */
TG_API tg_status tg_module_save(tg_module *m, const char *path);
TG_API tg_status tg_module_load(tg_module *m, const char *path);

/* ---- Deploying: ONNX (docs/api.md, "Deploying: ONNX") ----
 * A trained module as an ONNX model (opset 17, IR version 8) that ONNX Runtime, TensorRT,
 * OpenVINO and other runtimes load. */
/** One input of an exported graph. */
typedef struct {
    const char *name;           /**< its name in the graph ("z", "image"): 1-128 of a-z A-Z 0-9 _ . - : */
    int ndim;                   /**< a float input: its dims (1-4), batch first */
    int64_t shape[TG_MAX_DIMS]; /**< its shape in the example call; shape[0] (the batch) becomes the
                                     symbolic dimension "batch" and must be the same for every input */
    tg_module *embedding;       /**< NULL: a float32 input. An embedding layer (tg_layer_embedding): the
                                     input is int64 labels [batch], looked up in this layer's table
                                     (ONNX Gather), and m receives the rows; only shape[0] is read. */
} tg_onnx_input;
/** Writes m, in evaluation mode, as an ONNX model to path (atomically: a temporary file renamed).
 * m runs once on example inputs (zeros; label 0) with every op recorded, and the ops of that call
 * become the graph: Conv, ConvTranspose, Gemm (dense), BatchNormalization (running statistics)
 * followed by Relu/LeakyRelu when fused, LeakyRelu, Relu, Tanh, Sigmoid, MaxPool, AveragePool,
 * GlobalAveragePool, Resize (nearest: asymmetric/floor; bilinear: pytorch_half_pixel), Reshape,
 * Concat, Slice, Softmax, LogSoftmax, Add, Sub, Mul (and per-channel ones), Gather. m's parameters
 * and buffers are initializers under their state names ("net.0.weight"); what does not depend on
 * the inputs (spectral normalisation's W / sigma, constants) is folded into initializers with
 * the values this library computes. Dropout is the identity. The inputs are named and shaped as
 * given, the output output_name, with the batch dimension symbolic. Every module's training flag
 * is restored afterwards, and the tape is as before (the call's results stay in the arena until
 * tg_ctx_clear_tape). Refused, with a message naming the op: losses, sum/mean, DiffAugment,
 * BatchNorm or dropout forced into training mode inside a forward; a forward that returns an
 * input. The graph computes in float32 whatever the context's precision, and the call that is
 * traced (and so every folded constant) runs in float32 too. */
TG_API tg_status tg_module_export_onnx(tg_module *m, const tg_onnx_input *inputs, int n_inputs,
                                       const char *output_name, const char *path);

/* ---------------------------------------------------------------------------------------------
 * Images and datasets (libpng, libjpeg-turbo, liblzma). Pixels are RGB, 8 bits, row-major
 * height x width x 3. The WebAssembly build (make wasm) has none of the three libraries: there
 * tg_image_load, tg_image_save_png and every xz-compressed file (reading or writing, datasets and
 * states alike) fail with TG_ERR_UNSUPPORTED; pixels come in and go out as bytes
 * (tg_dataset_from_memory, tg_tensor_to_rgb).
 * ------------------------------------------------------------------------------------------- */
/** Decodes a PNG or JPEG (by content, not name): grayscale, palette and 16-bit are converted,
 * alpha is composited over white. *rgb is malloc'd (free() it). A corrupt or truncated file is
 * TG_ERR_FORMAT with a message. */
TG_API tg_status tg_image_load(const char *path, uint8_t **rgb, int *w, int *h);
TG_API tg_status tg_image_save_png(const char *path, const uint8_t *rgb, int w, int h);
/** Center-crops src to a square and resizes it to size x size into dst: area averaging when
 * shrinking, bilinear when growing. */
TG_API tg_status tg_image_resize_square(const uint8_t *src, int w, int h, uint8_t *dst, int size);
/** t [N,3,H,W] with values in [-1,1] -> out N*H*W*3 bytes (clamped, rounded). */
TG_API tg_status tg_tensor_to_rgb(const tg_tensor *t, uint8_t *out);

typedef struct tg_dataset tg_dataset;
/** Loads images of size x size. path is a directory (searched recursively for .png/.jpg/.jpeg;
 * each image center-cropped and resized once) or a packed file written by tg_dataset_save
 * (.safetensors, or .xz-compressed). Unreadable images are skipped and counted in *skipped (may
 * be NULL). No usable image is an error naming the path. */
TG_API tg_dataset *tg_dataset_load(const char *path, int size, int *skipped);
/** A dataset over n images already in memory (copied). */
TG_API tg_dataset *tg_dataset_from_memory(const uint8_t *rgb, int64_t n, int size);
/** Packed file: a safetensors file with one U8 tensor "images" [N,size,size,3]; a path ending
 * in ".xz" is xz-compressed. Written atomically. */
TG_API tg_status tg_dataset_save(const tg_dataset *ds, const char *path);
TG_API int64_t tg_dataset_count(const tg_dataset *ds);
TG_API int tg_dataset_size(const tg_dataset *ds);
TG_API const uint8_t *tg_dataset_image(const tg_dataset *ds, int64_t i);
/** Fills out [B,3,size,size] with images idx[0..B) scaled to [-1,1]; flip (may be NULL) mirrors
 * image b horizontally when flip[b] is non-zero. */
TG_API tg_status tg_dataset_batch(const tg_dataset *ds, tg_tensor *out, const int64_t *idx,
                                  const uint8_t *flip);
TG_API void tg_dataset_free(tg_dataset *ds);

/* ---------------------------------------------------------------------------------------------
 * Image-set metrics (host memory, any context).
 * ------------------------------------------------------------------------------------------- */
/** The sliced Wasserstein distance of Karras et al. 2018 (ProGAN, section 5): Laplacian pyramids
 * from size x size down to min_size, nhood x nhood x 3 neighbourhoods sampled per image and
 * level, each set's descriptors normalised per colour channel, dir_repeats x dirs_per_repeat
 * random projections, sorted, mean absolute difference. Smaller is closer; near 0 (not exactly:
 * each set draws its own neighbourhood positions from seed) for a set against itself. */
typedef struct {
    int nhood;            /**< 7 */
    int nhoods_per_image; /**< 128 */
    int dir_repeats;      /**< 4 */
    int dirs_per_repeat;  /**< 128 */
    int min_size;         /**< 16: the coarsest level */
    uint64_t seed;        /**< 0 */
} tg_swd_options;
TG_API void tg_swd_defaults(tg_swd_options *o);
/** a and b: n uint8 RGB images of size x size each (row-major, HWC), the same count in both; size
 * a power of two >= min_size. Writes the distance x 1e3 of each level (finest first) into
 * per_level[0..max_levels) (may be NULL), the number of levels into *nlevels (may be NULL), and
 * their mean into *mean. opt NULL: the defaults. Memory: about 2.2 KB per sampled neighbourhood
 * (n x nhoods_per_image of them; 0.6 GB for 2048 images); threads: the library's OpenMP threads. */
TG_API tg_status tg_swd(const uint8_t *a, int64_t na, const uint8_t *b, int64_t nb, int size,
                        const tg_swd_options *opt, double *per_level, int max_levels,
                        int *nlevels, double *mean);

/* ---------------------------------------------------------------------------------------------
 * Data-parallel training over several processes (lib/dist.c; docs/scaling.md). Launch the
 * program with MPI (`mpirun -np N prog ...`): every rank builds the same model, tg_dist_broadcast
 * copies rank 0's parameters and buffers to the others, each rank runs forward and backward on
 * its share of the global batch, and tg_dist_grads_sync averages the gradients over the ranks
 * before the optimizer step, which then does the same thing on every rank.
 * Gradients of CPU contexts travel over MPI; those of CUDA contexts over NCCL when the library
 * was built with it (else through host memory over MPI). Every collective call must be made by
 * every rank, in the same order. A rank that waits longer than TG_DIST_TIMEOUT seconds
 * (default 600) for the others exits with a message instead of hanging (and mpirun then ends
 * the job).
 * ------------------------------------------------------------------------------------------- */
typedef struct tg_dist tg_dist;
typedef struct tg_dist_grads tg_dist_grads;

/** What this build can do, e.g. "MPI (Open MPI v4.1.4), NCCL 2.27.7" or "unavailable: built
 * without MPI". */
TG_API const char *tg_dist_info(void);
/** Joins the job: under an MPI launcher (mpirun/srun), initialises MPI (argc/argv may be NULL);
 * otherwise a world of one rank that needs no MPI. Refuses (NULL, TG_ERR_UNSUPPORTED) when
 * launched as one of several ranks by a build without MPI. A CUDA context created after this
 * uses GPU (local rank mod the number of GPUs). One per process. */
TG_API tg_dist *tg_dist_init(int *argc, char ***argv);
/** Leaves the job (finalises MPI when tg_dist_init initialised it: MPI cannot start again in this
 * process, so a later tg_dist_init under a launcher is refused); NULL is a no-op. */
TG_API void tg_dist_free(tg_dist *d);
TG_API int tg_dist_rank(const tg_dist *d);       /**< 0 .. world-1 */
TG_API int tg_dist_world(const tg_dist *d);      /**< number of ranks */
TG_API int tg_dist_local_rank(const tg_dist *d); /**< rank among those on this machine */
/** Copies the values of t[0..n) on rank root into the same tensors on every other rank. */
TG_API tg_status tg_dist_broadcast(tg_dist *d, tg_tensor *const *t, int n, int root);
/** Replaces the values of t[0..n) on every rank by their mean over the ranks (e.g. BatchNorm's
 * running statistics). */
TG_API tg_status tg_dist_average(tg_dist *d, tg_tensor *const *t, int n);
/** Sums v[0..n) (host memory) over the ranks, in place, the same result on every rank. */
TG_API tg_status tg_dist_sum_host(tg_dist *d, double *v, int n);
TG_API tg_status tg_dist_barrier(tg_dist *d);

/** A gradient averager for the parameters p[0..n) (all on one context), in buckets of about
 * bucket_bytes (0: 4 MiB) filled from the last parameter to the first, the order in which a
 * backward pass finishes them. */
TG_API tg_dist_grads *tg_dist_grads_new(tg_dist *d, tg_tensor *const *p, int n, size_t bucket_bytes);
/** Overlap: during the next tg_backward on the parameters' context, each bucket is handed to the
 * reduction as soon as the backward pass has finished every gradient in it, while the pass goes
 * on (NCCL runs them beside the pass; MPI runs one at a time and moves only inside MPI calls, so
 * on the CPU little overlaps: docs/scaling.md). Arm only before the last backward pass that adds
 * to these gradients. */
TG_API tg_status tg_dist_grads_arm(tg_dist_grads *g);
/** Replaces each parameter's gradient by its mean over the ranks (completing what arm started).
 * A parameter without a gradient on this rank counts as a zero gradient and gets one. The
 * result is the same, bit for bit, on every rank (NCCL; MPI for two ranks, and beyond as far as
 * the MPI library sums symmetrically, as Open MPI does: docs/scaling.md). */
TG_API tg_status tg_dist_grads_sync(tg_dist_grads *g);
TG_API void tg_dist_grads_free(tg_dist_grads *g);

#ifdef __cplusplus
}
#endif
#endif /* TENSORGAN_H */
