/* atomic_file.c -- writing a file so that it appears whole or not at all.
 * Tangled from doc/31-checkpoint.nw: edit the book, not this file. */
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include "dim.h"

/* Best effort: some file systems refuse to sync a directory, and the rename is done. */
static void sync_directory_of(const char *path)
{
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (slash == NULL) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = '\0';
    else *slash = '\0';
    int fd = open(dir, O_RDONLY);
    if (fd >= 0) {
        fsync(fd);
        close(fd);
    }
}
static int atomic_error(char *error, size_t size, const char *format, ...)
{
    va_list args;
    va_start(args, format);
    if (error != NULL && size > 0) vsnprintf(error, size, format, args);
    va_end(args);
    return 1;
}

int dim_atomic_open(dim_atomic_file *f, const char *path, char *error, size_t error_size)
{
    memset(f, 0, sizeof *f);
    int n = snprintf(f->temporary, sizeof f->temporary, "%s.tmp-XXXXXX", path);
    if (n < 0 || (size_t)n >= sizeof f->temporary || strlen(path) >= sizeof f->path)
        return atomic_error(error, error_size, "%s: the file name is too long", path);
    strcpy(f->path, path);
    int fd = mkstemp(f->temporary);
    if (fd < 0)
        return atomic_error(error, error_size, "%s: cannot create a temporary file beside it: %s",
                            path, strerror(errno));
    if (fchmod(fd, 0644) != 0 || (f->file = fdopen(fd, "wb")) == NULL) {
        int saved = errno;
        close(fd);
        unlink(f->temporary);
        return atomic_error(error, error_size, "%s: cannot write: %s", path, strerror(saved));
    }
    return 0;
}

int dim_atomic_commit(dim_atomic_file *f, char *error, size_t error_size)
{
    errno = 0;
    int failed = ferror(f->file) || fflush(f->file) != 0 || fsync(fileno(f->file)) != 0;
    int saved = errno;
    if (fclose(f->file) != 0 && !failed) failed = 1, saved = errno;
    f->file = NULL;
    if (!failed && rename(f->temporary, f->path) != 0) failed = 1, saved = errno;
    if (failed) {
        unlink(f->temporary);
        return atomic_error(error, error_size, "%s: cannot write: %s (the previous file, if any, "
                            "is untouched)", f->path, saved ? strerror(saved) : "a write failed");
    }
    sync_directory_of(f->path);
    return 0;
}

void dim_atomic_abandon(dim_atomic_file *f)
{
    if (f->file) fclose(f->file);
    f->file = NULL;
    unlink(f->temporary);
}
