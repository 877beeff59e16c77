/* files.c -- helpers for the unit tests that make files (see files.h). */
#include "files.h"

#include <check.h>
#include <dirent.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <unistd.h>
#include <zlib.h>

static char scratch[TEST_PATH_SIZE], saved_tmpdir[TEST_PATH_SIZE];
static int had_tmpdir;

void test_scratch_begin(const char *what)
{
    const char *tmpdir = getenv("TMPDIR");
    had_tmpdir = tmpdir != NULL;
    if (had_tmpdir) snprintf(saved_tmpdir, sizeof saved_tmpdir, "%s", tmpdir);
    test_make_temp_dir(scratch, what);
    setenv("TMPDIR", scratch, 1);
}

void test_scratch_end(void)
{
    if (had_tmpdir) setenv("TMPDIR", saved_tmpdir, 1);
    else unsetenv("TMPDIR");
    if (scratch[0] != '\0') test_remove_tree(scratch);
    scratch[0] = '\0';
}

void test_make_temp_dir(char *dir, const char *what)
{
    const char *base = getenv("TMPDIR");
    int n = snprintf(dir, TEST_PATH_SIZE, "%s/dim-test-%s-XXXXXX", base && *base ? base : "/tmp",
                     what);
    ck_assert_int_lt(n, TEST_PATH_SIZE);
    ck_assert_msg(mkdtemp(dir) != NULL, "cannot make a temporary directory from %s", dir);
}

void test_remove_tree(const char *path)
{
    struct stat st;
    if (lstat(path, &st) != 0) return;
    if (S_ISDIR(st.st_mode)) {
        DIR *d = opendir(path);
        if (d != NULL) {
            struct dirent *e;
            while ((e = readdir(d)) != NULL) {
                if (strcmp(e->d_name, ".") == 0 || strcmp(e->d_name, "..") == 0) continue;
                char child[TEST_PATH_SIZE];
                if (snprintf(child, sizeof child, "%s/%s", path, e->d_name) < TEST_PATH_SIZE)
                    test_remove_tree(child);
            }
            closedir(d);
        }
        rmdir(path);
    } else {
        unlink(path);
    }
}

void test_join(char *path, const char *dir, const char *name)
{
    ck_assert_int_lt(snprintf(path, TEST_PATH_SIZE, "%s/%s", dir, name), TEST_PATH_SIZE);
}

void test_write_file(const char *dir, const char *name, const unsigned char *bytes, size_t n,
                     int gz)
{
    char path[TEST_PATH_SIZE];
    test_join(path, dir, name);
    if (gz) {
        gzFile f = gzopen(path, "wb1");
        ck_assert_msg(f != NULL, "cannot write %s", path);
        size_t done = 0;
        while (done < n) {
            unsigned chunk = n - done > (1u << 20) ? 1u << 20 : (unsigned)(n - done);
            ck_assert_int_eq(gzwrite(f, bytes + done, chunk), (int)chunk);
            done += chunk;
        }
        ck_assert_int_eq(gzclose(f), Z_OK);
    } else {
        FILE *f = fopen(path, "wb");
        ck_assert_msg(f != NULL, "cannot write %s", path);
        ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
        ck_assert_int_eq(fclose(f), 0);
    }
}

unsigned char *test_read_file(const char *path, size_t *n)
{
    FILE *f = fopen(path, "rb");
    if (f == NULL) return NULL;
    size_t size = 0, capacity = 1 << 16;
    unsigned char *bytes = malloc(capacity + 1);
    size_t got;
    while ((got = fread(bytes + size, 1, capacity - size, f)) > 0) {
        size += got;
        if (size == capacity) bytes = realloc(bytes, (capacity *= 2) + 1);
    }
    fclose(f);
    bytes[size] = '\0';
    *n = size;
    return bytes;
}

int test_same_file(const char *a, const char *b)
{
    size_t na = 0, nb = 0;
    unsigned char *x = test_read_file(a, &na), *y = test_read_file(b, &nb);
    int same = (x == NULL && y == NULL) ||
               (x != NULL && y != NULL && na == nb && memcmp(x, y, na) == 0);
    free(x);
    free(y);
    return same;
}

void test_copy_file(const char *from, const char *to)
{
    size_t n;
    unsigned char *bytes = test_read_file(from, &n);
    ck_assert_msg(bytes != NULL, "cannot read %s", from);
    FILE *f = fopen(to, "wb");
    ck_assert_msg(f != NULL, "cannot write %s", to);
    ck_assert_uint_eq(fwrite(bytes, 1, n, f), n);
    ck_assert_int_eq(fclose(f), 0);
    free(bytes);
}

unsigned char test_pixel(long i, long k) { return (unsigned char)((i * 7 + k * 13) & 0xff); }
unsigned char test_label(long i) { return (unsigned char)(i % 10); }

void test_put_big_endian32(unsigned char *p, unsigned long v)
{
    p[0] = (unsigned char)(v >> 24);
    p[1] = (unsigned char)(v >> 16);
    p[2] = (unsigned char)(v >> 8);
    p[3] = (unsigned char)v;
}

unsigned char *test_idx_images(unsigned long count, unsigned long rows, unsigned long cols,
                               size_t *n)
{
    *n = 16 + count * rows * cols;
    unsigned char *b = malloc(*n);
    b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = 3;
    test_put_big_endian32(b + 4, count);
    test_put_big_endian32(b + 8, rows);
    test_put_big_endian32(b + 12, cols);
    for (unsigned long i = 0; i < count; i++)
        for (unsigned long k = 0; k < rows * cols; k++)
            b[16 + i * rows * cols + k] = test_pixel((long)i, (long)k);
    return b;
}

unsigned char *test_idx_labels(unsigned long count, size_t *n)
{
    *n = 8 + count;
    unsigned char *b = malloc(*n);
    b[0] = 0, b[1] = 0, b[2] = 0x08, b[3] = 1;
    test_put_big_endian32(b + 4, count);
    for (unsigned long i = 0; i < count; i++) b[8 + i] = test_label((long)i);
    return b;
}

void test_write_mnist(const char *dir, const char *prefix, unsigned long count,
                      unsigned long side, int gz)
{
    char name[64];
    size_t ni, nl;
    unsigned char *images = test_idx_images(count, side, side, &ni);
    unsigned char *labels = test_idx_labels(count, &nl);
    snprintf(name, sizeof name, "%s-images-idx3-ubyte%s", prefix, gz ? ".gz" : "");
    test_write_file(dir, name, images, ni, gz);
    snprintf(name, sizeof name, "%s-labels-idx1-ubyte%s", prefix, gz ? ".gz" : "");
    test_write_file(dir, name, labels, nl, gz);
    free(images);
    free(labels);
}
