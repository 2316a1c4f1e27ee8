/*
 * error.h — what every file of the library may use to fail, log and time: the thread's message
 * and status, the "which public call is this" scope, warnings, the clock and the host's memory.
 * Implemented in lib/error.c. Included by lib/backend.h (the backends' contract), so kernel files
 * see this and nothing of the tape or the file formats.
 */
#ifndef TG_ERROR_H
#define TG_ERROR_H

#include "tensorgan.h"

#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>

#ifdef __cplusplus
extern "C" {
#endif

#define TG_INTERNAL __attribute__((visibility("hidden")))

/* Sets the thread's message ("func: ...") and status, and returns code. */
TG_INTERNAL tg_status tg_fail(tg_status code, const char *func, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* whether the last failure is still unanswered by a successful op (see tg_check_in) */
TG_INTERNAL int tg_error_pending(void);
TG_INTERNAL void tg_error_settle(void);
/* Every failure names the public function the caller called: a public function that reaches
 * code reporting under other names (another public function, an inner helper) opens its body
 * with TG_API_SCOPE("tg_xxx"). Until the scope ends, messages read "tg_xxx: inner: ..." (the
 * outermost scope wins; nested public calls keep it). Ended by the cleanup attribute on every
 * return path. */
TG_INTERNAL const char *tg_api_enter(const char *name);
TG_INTERNAL void tg_api_restore(const char **prev);
/* the public function being called (the outermost scope), or fallback outside any scope */
TG_INTERNAL const char *tg_api_current(const char *fallback);
#define TG_API_SCOPE(name) \
    __attribute__((cleanup(tg_api_restore), unused)) const char *tg_api_prev_ = tg_api_enter(name)
/* Inside a module tree: messages name the module being run by its path of child names ("layer
 * 2.0 (conv2d)", "layer enc1.conv (conv2d)"); name must live until the matching pop. */
TG_INTERNAL void tg_path_push(const char *name, const char *kind);
TG_INTERNAL void tg_path_pop(void);
TG_INTERNAL void tg_log(tg_log_level level, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));
/* monotonic nanoseconds */
TG_INTERNAL uint64_t tg_now_ns(void);
/* the machine's physical memory in bytes (SIZE_MAX when unknown): one allocation larger than
 * it is refused as TG_ERR_NOMEM before malloc (an overcommitted one would be killed when used) */
TG_INTERNAL size_t tg_host_memory(void);
/* the loader limits in force (tg_set_limits) */
TG_INTERNAL const tg_limits *tg_limits_now(void);
/* "[2,3,4]" into buf */
TG_INTERNAL const char *tg_shape_str(const tg_tensor *t, char *buf, size_t n);
/* the same into a char array b declared at the call site */
#define SHP(t, b) tg_shape_str((t), (b), sizeof(b))

#ifdef __cplusplus
}
#endif
#endif /* TG_ERROR_H */
