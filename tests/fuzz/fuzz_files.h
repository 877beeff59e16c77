/* fuzz_files.h -- the fuzz targets' temporary directory: made once, emptied before each input,
 * removed at exit. Static functions: each target is its own program. */
#ifndef FUZZ_FILES_H
#define FUZZ_FILES_H

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

enum { FUZZ_PATH_SIZE = 1024 };

static const char *fuzz_dir_;
static const char *const *fuzz_names_;
static size_t fuzz_nnames_;

/* Removes the files the target writes, in dir. */
static void fuzz_clear_dir(const char *dir, const char *const *names, size_t n)
{
    char path[2 * FUZZ_PATH_SIZE];
    for (size_t i = 0; i < n; i++) {
        snprintf(path, sizeof path, "%s/%s", dir, names[i]);
        unlink(path);
    }
}

static void fuzz_remove_dir(void)
{
    fuzz_clear_dir(fuzz_dir_, fuzz_names_, fuzz_nnames_);
    rmdir(fuzz_dir_);
}

/* Makes a temporary directory for the files named by names, removed at exit. */
static void fuzz_make_dir(char *dir, const char *what, const char *const *names, size_t n)
{
    const char *base = getenv("TMPDIR");
    snprintf(dir, FUZZ_PATH_SIZE, "%s/dim-fuzz-%s-XXXXXX", base && *base ? base : "/tmp", what);
    if (mkdtemp(dir) == NULL) {
        perror(dir);
        exit(1);
    }
    fuzz_dir_ = dir;
    fuzz_names_ = names;
    fuzz_nnames_ = n;
    atexit(fuzz_remove_dir);
}

/* Writes n bytes to dir/name. */
static void fuzz_write(const char *dir, const char *name, const unsigned char *bytes, size_t n)
{
    char path[2 * FUZZ_PATH_SIZE];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(bytes, 1, n, f) != n || fclose(f) != 0) {
        perror(path);
        abort();
    }
}

#endif
