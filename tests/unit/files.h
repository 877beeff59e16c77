/* files.h -- helpers for the unit tests that make files: a temporary directory, files written
 * plain or gzip-compressed, and small IDX files (test_data.c, test_cli.c). Each helper fails the
 * running test (ck_assert) when the file system refuses. */
#ifndef TEST_FILES_H
#define TEST_FILES_H

#include <stddef.h>

enum { TEST_PATH_SIZE = 4096 };

/* For an unchecked fixture: a scratch directory under TMPDIR (or /tmp) that becomes TMPDIR
 * until test_scratch_end removes it with everything in it and restores TMPDIR. A test that
 * fails half-way (its process ends at the failed check) leaves its files in the scratch
 * directory, and they go with it. */
void test_scratch_begin(const char *what);
void test_scratch_end(void);
/* A new empty directory under TMPDIR (or /tmp), written into dir[TEST_PATH_SIZE]. */
void test_make_temp_dir(char *dir, const char *what);
/* Removes path and everything under it. */
void test_remove_tree(const char *path);
/* dir/name in path[TEST_PATH_SIZE]. */
void test_join(char *path, const char *dir, const char *name);
/* Writes n bytes to dir/name, gzip-compressed (with zlib's gzopen) when gz is set. */
void test_write_file(const char *dir, const char *name, const unsigned char *bytes, size_t n,
                     int gz);
/* The whole of path in a new buffer (NUL-terminated, for text); sets *n. NULL if unreadable. */
unsigned char *test_read_file(const char *path, size_t *n);
/* 1 if the files at a and b have the same bytes (both missing counts as the same). */
int test_same_file(const char *a, const char *b);
/* Copies the file at from to to. */
void test_copy_file(const char *from, const char *to);

/* The pixel and label the test files give image i: label i mod 10, so every class is present. */
unsigned char test_pixel(long i, long k);
unsigned char test_label(long i);
void test_put_big_endian32(unsigned char *p, unsigned long v);
/* An IDX file of count images rows x cols, header and data, in a new buffer; sets *n. */
unsigned char *test_idx_images(unsigned long count, unsigned long rows, unsigned long cols,
                               size_t *n);
/* An IDX file of count labels in a new buffer; sets *n. */
unsigned char *test_idx_labels(unsigned long count, size_t *n);
/* A good MNIST-style split ("train" or "t10k") of count images side x side in dir. */
void test_write_mnist(const char *dir, const char *prefix, unsigned long count,
                      unsigned long side, int gz);

#endif
