/*
 * error.c — the thread-local error message, status names, and the warning log callback.
 */
#include "internal.h"

#include <stdio.h>
#include <string.h>
#include <time.h>

static _Thread_local char tg_err_buf[1024];
/* set by every failure, cleared by every op that produces a result: a NULL op input while it is
 * set came from the failure whose message we keep */
static _Thread_local int tg_err_pending;
static tg_log_fn tg_log_cb;
static void *tg_log_user;

tg_status tg_fail(tg_status code, const char *func, const char *fmt, ...) {
    int n = snprintf(tg_err_buf, sizeof tg_err_buf, "%s: ", func);
    if (n < 0 || (size_t)n >= sizeof tg_err_buf) n = 0;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(tg_err_buf + n, sizeof tg_err_buf - (size_t)n, fmt, ap);
    va_end(ap);
    tg_err_pending = 1;
    return code;
}

int tg_error_pending(void) { return tg_err_pending; }
void tg_error_settle(void) { tg_err_pending = 0; }

const char *tg_last_error(void) { return tg_err_buf; }

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
    if (out) *out = tg_lim;
}

void tg_set_limits(const tg_limits *in) {
    if (!in) return;
    if (in->max_file_bytes) tg_lim.max_file_bytes = in->max_file_bytes;
    if (in->max_header_bytes) tg_lim.max_header_bytes = in->max_header_bytes;
    if (in->max_image_pixels) tg_lim.max_image_pixels = in->max_image_pixels;
}

const tg_limits *tg_limits_now(void) { return &tg_lim; }

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
