/*
 * libs.cu — cuBLAS and NCCL, opened with dlopen when the first CUDA context (or NCCL
 * communicator) needs them instead of linked: a program that only ever uses the CPU never maps
 * libcublas and the libcublasLt it pulls in, about 150 MB resident once loaded (their relocated
 * data), which used to be most of a CPU training run's peak RSS. The CUDA runtime stays linked
 * (small, and kernel launches need it at load). Each entry point's type comes from the
 * library's own header (decltype), so a call through the table is checked as a direct call is.
 */
#include "cuda_common.cuh"

#include <dlfcn.h>
#include <pthread.h>
#include <stdio.h>
#include <string.h>

#define TG_STR2(x) #x
#define TG_STR(x) TG_STR2(x)
#ifndef TG_CUDA_LIBDIR
#define TG_CUDA_LIBDIR "/usr/local/cuda/lib64"
#endif

/* dlopen by soname (the calling library's RUNPATH, LD_LIBRARY_PATH, the loader's cache), then
 * from the toolkit this library was built against; err gets dlerror()'s first answer. */
static void *open_lib(const char *soname, char *err, size_t n) {
    void *h = dlopen(soname, RTLD_NOW | RTLD_LOCAL);
    if (h) return h;
    const char *e = dlerror();
    snprintf(err, n, "%s", e ? e : "not found");
    char path[512];
    snprintf(path, sizeof path, "%s/%s", TG_CUDA_LIBDIR, soname);
    return dlopen(path, RTLD_NOW | RTLD_LOCAL);
}

/* One entry point into its slot of the table; on a missing one, e (of size n) names it. */
#define TG_RESOLVE(api, field, sym)                                                             \
    if (ok && !((api).field = (decltype((api).field))dlsym(h, #sym))) {                         \
        snprintf(e, n, "symbol %s missing", #sym);                                              \
        ok = false;                                                                             \
    }

/* One library: whether its table is filled, and if not, why. */
typedef struct {
    const char *soname;
    bool ok;
    char err[256];
} lib_state;

/* Opens L's library and fills its table with fill(handle); the handle stays open for the life of
 * the process, as a linked library would. */
static void load_lib(lib_state *L, bool (*fill)(void *h, char *e, size_t n)) {
    char e[200] = "";
    void *h = open_lib(L->soname, e, sizeof e);
    if (!h) {
        snprintf(L->err, sizeof L->err, "cannot load %s (%s)", L->soname, e);
        return;
    }
    L->ok = fill(h, e, sizeof e);
    if (!L->ok) snprintf(L->err, sizeof L->err, "%s: %s", L->soname, e);
}

/* Whether L loaded; if not and fn is given, the failure is recorded under fn. */
static bool lib_ready(const lib_state *L, const char *fn, const char *what) {
    if (L->ok) return true;
    if (fn) tg_fail(TG_ERR_DEVICE, fn, "%s; install the CUDA toolkit's %s or set LD_LIBRARY_PATH", L->err, what);
    return false;
}

/* ---- cuBLAS ---------------------------------------------------------------------------------- */
static tg_cublas_api cublas_api;
static lib_state cublas_lib = {"libcublas.so." TG_STR(CUBLAS_VER_MAJOR), false, ""};
static pthread_once_t cublas_once = PTHREAD_ONCE_INIT;

static bool cublas_fill(void *h, char *e, size_t n) {
    bool ok = true;
#define TG_CUBLAS_RESOLVE(field, sym) TG_RESOLVE(cublas_api, field, sym)
    TG_CUBLAS_ENTRIES(TG_CUBLAS_RESOLVE)
#undef TG_CUBLAS_RESOLVE
    return ok;
}
static void cublas_load(void) { load_lib(&cublas_lib, cublas_fill); }

const tg_cublas_api *tg_cublas_api_get(const char *fn) {
    pthread_once(&cublas_once, cublas_load);
    return lib_ready(&cublas_lib, fn, "cuBLAS") ? &cublas_api : NULL;
}

/* ---- NCCL ------------------------------------------------------------------------------------ */
#ifdef TG_WITH_NCCL
static tg_nccl_api nccl_api;
static lib_state nccl_lib = {"libnccl.so." TG_STR(NCCL_MAJOR), false, ""};
static pthread_once_t nccl_once = PTHREAD_ONCE_INIT;

static bool nccl_fill(void *h, char *e, size_t n) {
    bool ok = true;
#define TG_NCCL_RESOLVE(field, sym) TG_RESOLVE(nccl_api, field, sym)
    TG_NCCL_ENTRIES(TG_NCCL_RESOLVE)
#undef TG_NCCL_RESOLVE
    return ok;
}
static void nccl_load(void) { load_lib(&nccl_lib, nccl_fill); }

const tg_nccl_api *tg_nccl_api_get(const char *fn) {
    pthread_once(&nccl_once, nccl_load);
    return lib_ready(&nccl_lib, fn, "NCCL") ? &nccl_api : NULL;
}
#endif

/* Test hook (tests/test_cuda.c): loads every library above and resolves every entry point,
 * which needs no GPU; the message names the first that failed. */
extern "C" TG_INTERNAL tg_status tg_cuda_libs_load(void) {
    if (!tg_cublas_api_get("tg_cuda_libs_load")) return TG_ERR_DEVICE;
#ifdef TG_WITH_NCCL
    if (!tg_nccl_api_get("tg_cuda_libs_load")) return TG_ERR_DEVICE;
#endif
    return TG_OK;
}
