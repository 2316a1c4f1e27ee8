/*
 * faultio.c — an LD_PRELOAD shim that makes checkpoint writing fail the way disks do, for
 * tests/test_mangagan.c. TG_FAULT_IO names the fault:
 *   enospc  fwrite to a checkpoint's temporary file writes nothing (disk full)
 *   eio     fsync of a regular file fails (I/O error)
 *   erofs   rename fails (read-only file system)
 * and TG_FAULT_SKIP=k lets the first k saves through (a save counts when its file is synced), so
 * a run has a good checkpoint before the fault. Every other call passes through untouched.
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static int saves_done;

static int armed(const char *kind) {
    const char *f = getenv("TG_FAULT_IO"), *k = getenv("TG_FAULT_SKIP");
    return f && !strcmp(f, kind) && saves_done >= (k ? atoi(k) : 0);
}

/* whether fd is a checkpoint being written: an O_TMPFILE file or a "*.tmp.*" one */
static int is_temp(int fd) {
    char link[64], path[4096];
    snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
    ssize_t n = readlink(link, path, sizeof path - 1);
    if (n <= 0) return 0;
    path[n] = 0;
    return strstr(path, "(deleted)") || strstr(path, ".tmp.");
}

size_t fwrite(const void *p, size_t size, size_t n, FILE *f) {
    static size_t (*real)(const void *, size_t, size_t, FILE *);
    if (!real) real = (size_t (*)(const void *, size_t, size_t, FILE *))dlsym(RTLD_NEXT, "fwrite");
    if (armed("enospc") && is_temp(fileno(f))) {
        errno = ENOSPC;
        return 0;
    }
    return real(p, size, n, f);
}

int fsync(int fd) {
    static int (*real)(int);
    if (!real) real = (int (*)(int))dlsym(RTLD_NEXT, "fsync");
    struct stat sb;
    const int regular = fstat(fd, &sb) == 0 && S_ISREG(sb.st_mode);
    if (regular && armed("eio")) {
        errno = EIO;
        return -1;
    }
    const int r = real(fd);
    if (regular && r == 0) saves_done++;
    return r;
}

int rename(const char *a, const char *b) {
    static int (*real)(const char *, const char *);
    if (!real) real = (int (*)(const char *, const char *))dlsym(RTLD_NEXT, "rename");
    if (armed("erofs")) {
        errno = EROFS;
        return -1;
    }
    return real(a, b);
}
