/*
 * error.c — the thread-local error message, status names, and the warning log callback.
 */
#include "core.h"

#include <stdio.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

static _Thread_local char tg_err_buf[1024];
static _Thread_local tg_status tg_err_code;
/* set by every failure, cleared by every op that produces a result: a NULL op input while it is
 * set came from the failure whose message we keep */
static _Thread_local int tg_err_pending;
/* the public function the caller called (tg_api_enter), and the module path being run */
static _Thread_local const char *tg_err_api;
#define TG_PATH_MAX 16
static _Thread_local struct {
    const char *name;
    const char *kind;
} tg_path[TG_PATH_MAX];
static _Thread_local int tg_path_n;
static tg_log_fn tg_log_cb;
static void *tg_log_user;

/* "api: layer 2.0 (conv2d): func: message": the public function first, then where inside a
 * module tree, then the inner function that found the problem (when it is another one). */
tg_status tg_fail(tg_status code, const char *func, const char *fmt, ...) {
    size_t n = 0, cap = sizeof tg_err_buf;
#define TG_PUT(...)                                                                             \
    do {                                                                                        \
        int k_ = snprintf(tg_err_buf + n, cap - n, __VA_ARGS__);                                \
        if (k_ > 0) n = n + (size_t)k_ < cap ? n + (size_t)k_ : cap - 1;                        \
    } while (0)
    const char *api = tg_err_api;
    if (api) TG_PUT("%s: ", api);
    if (api && tg_path_n > 0) {
        TG_PUT("layer ");
        for (int i = 0; i < tg_path_n && i < TG_PATH_MAX; i++) TG_PUT(i ? ".%s" : "%s", tg_path[i].name);
        TG_PUT(" (%s): ", tg_path[tg_path_n <= TG_PATH_MAX ? tg_path_n - 1 : TG_PATH_MAX - 1].kind);
    }
    if (!api || strcmp(api, func) != 0) TG_PUT("%s: ", func);
#undef TG_PUT
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tg_err_buf + n, cap - n, fmt, ap);
    va_end(ap);
    tg_err_pending = 1;
    tg_err_code = code;
    return code;
}

int tg_error_pending(void) { return tg_err_pending; }
void tg_error_settle(void) { tg_err_pending = 0; }

const char *tg_api_enter(const char *name) {
    const char *prev = tg_err_api;
    if (!prev) tg_err_api = name;
    return prev;
}
const char *tg_api_current(const char *fallback) { return tg_err_api ? tg_err_api : fallback; }

void tg_api_restore(const char **prev) {
    if (!*prev) {
        tg_err_api = NULL;
        tg_path_n = 0;
    }
}
void tg_path_push(const char *name, const char *kind) {
    if (tg_path_n < TG_PATH_MAX) tg_path[tg_path_n].name = name, tg_path[tg_path_n].kind = kind;
    tg_path_n++;
}
void tg_path_pop(void) {
    if (tg_path_n > 0) tg_path_n--;
}

const char *tg_last_error(void) { return tg_err_buf; }
tg_status tg_last_status(void) { return tg_err_code; }
void tg_clear_error(void) {
    tg_err_buf[0] = 0;
    tg_err_code = TG_OK;
    tg_err_pending = 0;
}

const char *tg_status_str(tg_status s) {
    switch (s) {
    case TG_OK: return "TG_OK";
    case TG_ERR_INVALID: return "TG_ERR_INVALID";
    case TG_ERR_SHAPE: return "TG_ERR_SHAPE";
    case TG_ERR_NOMEM: return "TG_ERR_NOMEM";
    case TG_ERR_DEVICE: return "TG_ERR_DEVICE";
    case TG_ERR_IO: return "TG_ERR_IO";
    case TG_ERR_FORMAT: return "TG_ERR_FORMAT";
    case TG_ERR_UNSUPPORTED: return "TG_ERR_UNSUPPORTED";
    case TG_ERR_NUMERIC: return "TG_ERR_NUMERIC";
    }
    return "TG_ERR_UNKNOWN";
}

const char *tg_version(void) { return "0.1.0"; }

void tg_set_log_callback(tg_log_fn fn, void *user) {
    tg_log_cb = fn;
    tg_log_user = user;
}

void tg_log(tg_log_level level, const char *fmt, ...) {
    if (!tg_log_cb) return;
    char buf[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(buf, sizeof buf, fmt, ap);
    va_end(ap);
    tg_log_cb(level, buf, tg_log_user);
}

/* ---- loader limits (tensorgan.h: tg_limits) ------------------------------------------------ */
static tg_limits tg_lim = {(uint64_t)4 << 30, (uint64_t)100 << 20, (uint64_t)64 << 20};

void tg_get_limits(tg_limits *out) {
    if (!out) tg_fail(TG_ERR_INVALID, "tg_get_limits", "out is NULL");
    else *out = tg_lim;
}

void tg_set_limits(const tg_limits *in) {
    if (!in) {
        tg_fail(TG_ERR_INVALID, "tg_set_limits", "in is NULL");
        return;
    }
    if (in->max_file_bytes) tg_lim.max_file_bytes = in->max_file_bytes;
    if (in->max_header_bytes) tg_lim.max_header_bytes = in->max_header_bytes;
    if (in->max_image_pixels) tg_lim.max_image_pixels = in->max_image_pixels;
}

const tg_limits *tg_limits_now(void) { return &tg_lim; }

size_t tg_host_memory(void) {
    static _Atomic size_t bytes; /* 0: not read yet (two threads may both read it) */
    size_t b = bytes;
    if (!b) {
        const long pages = sysconf(_SC_PHYS_PAGES), page = sysconf(_SC_PAGESIZE);
        bytes = b = pages > 0 && page > 0 ? (size_t)pages * (size_t)page : SIZE_MAX;
    }
    return b;
}

uint64_t tg_now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (uint64_t)ts.tv_sec * 1000000000u + (uint64_t)ts.tv_nsec;
}

const char *tg_shape_str(const tg_tensor *t, char *buf, size_t n) {
    if (!t) {
        snprintf(buf, n, "(null)");
        return buf;
    }
    size_t off = 0;
    off += (size_t)snprintf(buf + off, n - off, "[");
    for (int i = 0; i < t->ndim && off < n; i++)
        off += (size_t)snprintf(buf + off, n - off, i ? ",%lld" : "%lld", (long long)t->shape[i]);
    if (off < n) snprintf(buf + off, n - off, "]");
    return buf;
}
