/*
 * file.c — opening a file a caller names, for reading: only a regular file is opened, checked
 * before anything could block on it (a FIFO with no writer, a terminal, a device such as
 * /dev/zero that never ends), so every loader fails at once with a message instead of hanging.
 */
#define _GNU_SOURCE
#include "io.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

FILE *tg_open_regular(const char *path, const char *fn, tg_status *st) {
    if (!path) {
        *st = tg_fail(TG_ERR_INVALID, fn, "path is NULL");
        return NULL;
    }
    if (!path[0]) {
        *st = tg_fail(TG_ERR_INVALID, fn, "path is empty");
        return NULL;
    }
    /* O_NONBLOCK: opening a FIFO does not wait for a writer; the descriptor goes back to blocking
     * reads once it is known to be a regular file */
    const int fd = open(path, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        *st = tg_fail(TG_ERR_IO, fn, "cannot open %s: %s", path, strerror(errno));
        return NULL;
    }
    struct stat sb;
    if (fstat(fd, &sb) != 0 || !S_ISREG(sb.st_mode)) {
        const int dir = fstat(fd, &sb) == 0 && S_ISDIR(sb.st_mode);
        close(fd);
        *st = tg_fail(TG_ERR_IO, fn, "%s is not a regular file (%s)", path,
                      dir ? "a directory" : "a FIFO, socket or device");
        return NULL;
    }
    const int flags = fcntl(fd, F_GETFL);
    FILE *f = flags >= 0 && fcntl(fd, F_SETFL, flags & ~O_NONBLOCK) == 0 ? fdopen(fd, "rb") : NULL;
    if (!f) {
        *st = tg_fail(TG_ERR_IO, fn, "cannot read %s: %s", path, strerror(errno));
        close(fd);
        return NULL;
    }
    *st = TG_OK;
    return f;
}
