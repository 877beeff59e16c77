/* test_data.c -- the dataset readers (doc/30-data.nw) on files made in a temporary directory:
 * good IDX and CIFAR-10 files, plain and gzip-compressed, load with the right sizes, pixels and
 * labels; every kind of bad file (missing, truncated data or header, wrong magic, absurd sizes,
 * trailing garbage, a corrupt or cut gzip stream, labels out of range, counts that disagree) is
 * refused with DIM_DATA_BAD_FILE and one message naming the file and the problem; bad specs are
 * usage errors; shapes is deterministic and balanced; batches are scaled to [-1, 1]; and the
 * installed Fashion-MNIST, where there is one, loads with its published sizes. */
#include <check.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>
#include <zlib.h>

#include "../../src/dim/dim.h"
#include "files.h"
#include "suites.h"

enum { IMAGES = 20, SIDE = 28, CIFAR_RECORD = 1 + 3 * 32 * 32, CIFAR_BATCH = 10000 };
#define FASHION_DIR "/usr/share/datasets/fashion-mnist"

/* A new temporary directory for one test, in dir[TEST_PATH_SIZE]. */
static void make_temp_dir(char *dir) { test_make_temp_dir(dir, "data"); }

/* A good MNIST-style training split of IMAGES images in dir (gzip-compressed when gz). */
static void write_good_mnist(const char *dir, int gz)
{
    test_write_mnist(dir, "train", IMAGES, SIDE, gz);
}

/* "mnist:DIR" for dir, in spec[TEST_PATH_SIZE]. */
static void mnist_spec(char *spec, const char *dir)
{
    ck_assert_int_lt(snprintf(spec, TEST_PATH_SIZE, "mnist:%s", dir), TEST_PATH_SIZE);
}

/* Loading the given split of spec fails with the given code and an error containing every one
 * of the (NULL-terminated) substrings. */
static void expect_load_error(const char *spec, dim_split split, int code, ...)
{
    dim_dataset d;
    char error[8192] = "";
    int rc = dim_dataset_load(&d, spec, split, error, sizeof error);
    ck_assert_msg(rc == code, "loading '%s': expected status %d, got %d (%s)", spec, code, rc,
                  error);
    ck_assert_msg(strchr(error, '\n') == NULL, "the error is not one line: '%s'", error);
    va_list args;
    va_start(args, code);
    const char *want;
    while ((want = va_arg(args, const char *)) != NULL)
        ck_assert_msg(strstr(error, want) != NULL, "loading '%s': error '%s' does not contain '%s'",
                      spec, error, want);
    va_end(args);
}

/* ------------------------------------------------------------------------------------------ */
/* Good IDX files                                                                             */
/* ------------------------------------------------------------------------------------------ */

static void check_good_mnist(int gz)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], error[8192] = "";
    make_temp_dir(dir);
    write_good_mnist(dir, gz);
    mnist_spec(spec, dir);
    dim_dataset d;
    int rc = dim_dataset_load(&d, spec, DIM_SPLIT_TRAIN, error, sizeof error);
    ck_assert_msg(rc == DIM_DATA_OK, "loading %s failed: %s", spec, error);
    ck_assert_str_eq(d.name, "mnist");
    ck_assert_int_eq(d.count, IMAGES);
    ck_assert_int_eq(d.channels, 1);
    ck_assert_int_eq(d.height, SIDE);
    ck_assert_int_eq(d.width, SIDE);
    ck_assert_int_eq(d.nclasses, 10);
    for (long i = 0; i < IMAGES; i++) {
        ck_assert_int_eq(d.labels[i], test_label(i));
        for (long k = 0; k < SIDE * SIDE; k++)
            ck_assert_msg(d.pixels[i * SIDE * SIDE + k] == test_pixel(i, k),
                          "image %ld pixel %ld: expected %d, got %d", i, k, test_pixel(i, k),
                          d.pixels[i * SIDE * SIDE + k]);
    }
    dim_dataset_free(&d);
    ck_assert_ptr_null(d.pixels);
    test_remove_tree(dir);
}

START_TEST(test_idx_plain_files_load)
{
    check_good_mnist(0);
}
END_TEST

START_TEST(test_idx_gzip_files_load)
{
    check_good_mnist(1);
}
END_TEST

/* Both splits come from their own files: t10k for the test split. */
START_TEST(test_idx_test_split_reads_t10k_files)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], error[8192] = "";
    make_temp_dir(dir);
    size_t ni, nl;
    unsigned char *images = test_idx_images(7, 5, 6, &ni), *labels = test_idx_labels(7, &nl);
    test_write_file(dir, "t10k-images-idx3-ubyte", images, ni, 0);
    test_write_file(dir, "t10k-labels-idx1-ubyte.gz", labels, nl, 1);
    mnist_spec(spec, dir);
    dim_dataset d;
    ck_assert_msg(dim_dataset_load(&d, spec, DIM_SPLIT_TEST, error, sizeof error) == DIM_DATA_OK,
                  "%s", error);
    ck_assert_int_eq(d.count, 7);
    ck_assert_int_eq(d.height, 5);
    ck_assert_int_eq(d.width, 6);
    ck_assert_int_eq(memcmp(d.pixels, images + 16, 7 * 5 * 6), 0);
    ck_assert_int_eq(memcmp(d.labels, labels + 8, 7), 0);
    dim_dataset_free(&d);
    /* The training split is not there. */
    char path[TEST_PATH_SIZE];
    test_join(path, dir, "train-images-idx3-ubyte");
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "cannot open", NULL);
    free(images);
    free(labels);
    test_remove_tree(dir);
}
END_TEST

/* dim_idx_parse on bytes in memory: the dimensions and where the data starts. */
START_TEST(test_idx_parse_in_memory)
{
    size_t n;
    unsigned char *b = test_idx_images(3, 4, 5, &n);
    long dims[3];
    size_t header = 0;
    char error[256] = "";
    ck_assert_int_eq(dim_idx_parse(b, n, 3, dims, &header, "mem", error, sizeof error),
                     DIM_DATA_OK);
    ck_assert_int_eq(dims[0], 3);
    ck_assert_int_eq(dims[1], 4);
    ck_assert_int_eq(dims[2], 5);
    ck_assert_uint_eq(header, 16);
    /* An image file is not a label file. */
    ck_assert_int_eq(dim_idx_parse(b, n, 1, dims, &header, "mem", error, sizeof error),
                     DIM_DATA_BAD_FILE);
    ck_assert_ptr_nonnull(strstr(error, "wrong magic"));
    /* Every prefix shorter than the file is refused as truncated, never read past. */
    for (size_t cut = 0; cut < n; cut++) {
        unsigned char *prefix = malloc(cut ? cut : 1);
        memcpy(prefix, b, cut);
        ck_assert_int_eq(dim_idx_parse(prefix, cut, 3, dims, &header, "mem", error, sizeof error),
                         DIM_DATA_BAD_FILE);
        ck_assert_msg(strstr(error, "truncated") != NULL, "cut at %zu: '%s'", cut, error);
        free(prefix);
    }
    free(b);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Bad IDX files                                                                              */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_idx_missing_files)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    mnist_spec(spec, dir);
    test_join(path, dir, "train-images-idx3-ubyte");
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "cannot open",
                      "No such file", NULL);
    /* Images without labels: the labels' file is named. */
    size_t ni;
    unsigned char *images = test_idx_images(IMAGES, SIDE, SIDE, &ni);
    test_write_file(dir, "train-images-idx3-ubyte", images, ni, 0);
    test_join(path, dir, "train-labels-idx1-ubyte");
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "cannot open", NULL);
    free(images);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_idx_missing_directory)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    char gone[TEST_PATH_SIZE];
    test_join(gone, dir, "no-such-directory");
    mnist_spec(spec, gone);
    test_join(path, gone, "train-images-idx3-ubyte");
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "cannot open", NULL);
    test_remove_tree(dir);
}
END_TEST

/* An image file that is a directory: a read error, not a crash or "corrupt data". */
START_TEST(test_idx_file_that_is_a_directory)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    test_join(path, dir, "train-images-idx3-ubyte");
    ck_assert_int_eq(mkdir(path, 0700), 0);
    mnist_spec(spec, dir);
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, NULL);
    rmdir(path);
    test_remove_tree(dir);
}
END_TEST

/* Writes the good labels and the given image bytes, plain or compressed, and expects the
 * images' file to be refused with the given words in the message. */
static void check_bad_images(const unsigned char *images, size_t n, int gz, const char *words1,
                             const char *words2)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    size_t nl;
    unsigned char *labels = test_idx_labels(IMAGES, &nl);
    test_write_file(dir, "train-labels-idx1-ubyte", labels, nl, 0);
    const char *name = gz ? "train-images-idx3-ubyte.gz" : "train-images-idx3-ubyte";
    test_write_file(dir, name, images, n, gz);
    test_join(path, dir, name);
    mnist_spec(spec, dir);
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, words1, words2, NULL);
    free(labels);
    test_remove_tree(dir);
}

START_TEST(test_idx_truncated_data)
{
    size_t n;
    unsigned char *b = test_idx_images(IMAGES, SIDE, SIDE, &n);
    check_bad_images(b, n - SIDE * SIDE / 2, 0, "truncated", "15680 bytes");
    check_bad_images(b, n - 1, 1, "truncated", NULL);
    check_bad_images(b, 16, 0, "truncated", NULL);  /* a header and no data */
    free(b);
}
END_TEST

START_TEST(test_idx_truncated_header)
{
    size_t n;
    unsigned char *b = test_idx_images(IMAGES, SIDE, SIDE, &n);
    check_bad_images(b, 10, 0, "truncated", "header");
    check_bad_images(b, 3, 0, "truncated", NULL);
    check_bad_images(b, 0, 0, "truncated", NULL);  /* an empty file */
    check_bad_images(b, 10, 1, "truncated", NULL);
    free(b);
}
END_TEST

START_TEST(test_idx_wrong_magic)
{
    size_t n;
    unsigned char *b = test_idx_images(IMAGES, SIDE, SIDE, &n);
    b[3] = 1;  /* a label file's magic on the images */
    check_bad_images(b, n, 0, "wrong magic", "0x00000801");
    b[3] = 3;
    b[2] = 0x0d;  /* floats */
    check_bad_images(b, n, 1, "wrong magic", "0x00000d03");
    /* Bytes that are not an IDX file at all. */
    const char *text = "this is not an IDX file, just some text that is long enough\n";
    check_bad_images((const unsigned char *)text, strlen(text), 0, "wrong magic", NULL);
    free(b);
}
END_TEST

/* A header that claims a billion images is refused from the header alone. */
START_TEST(test_idx_absurd_count)
{
    size_t n;
    unsigned char *b = test_idx_images(2, SIDE, SIDE, &n);
    test_put_big_endian32(b + 4, 1000000000ul);
    check_bad_images(b, n, 0, "dimension 0 is 1000000000", "not a sane IDX header");
    test_put_big_endian32(b + 4, 0);
    check_bad_images(b, n, 0, "dimension 0 is 0", NULL);
    test_put_big_endian32(b + 4, 2);
    test_put_big_endian32(b + 8, 0xffffffff);
    check_bad_images(b, n, 1, "dimension 1 is 4294967295", NULL);
    /* Sides and count each plausible, their product 4 TB. */
    test_put_big_endian32(b + 4, 4000000);
    test_put_big_endian32(b + 8, 1000);
    test_put_big_endian32(b + 12, 1000);
    check_bad_images(b, n, 0, "more than", NULL);
    free(b);
}
END_TEST

/* A header that claims a million 28x28 images (784 MB, within the reader's limits) on a file of
 * a few bytes must cost no more memory than the file: run in a child whose address space is
 * limited to 256 MB more than it has, so a buffer of the claimed size cannot be had. */
START_TEST(test_idx_lying_header_allocates_nothing_large)
{
#if defined(__SANITIZE_ADDRESS__)
    /* AddressSanitizer reserves terabytes of address space: the limit cannot be applied. */
    return;
#else
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    size_t n, nl;
    unsigned char *b = test_idx_images(2, SIDE, SIDE, &n), *labels = test_idx_labels(2, &nl);
    test_put_big_endian32(b + 4, 1000000);
    test_write_file(dir, "train-images-idx3-ubyte", b, n, 0);
    test_write_file(dir, "train-labels-idx1-ubyte", labels, nl, 0);
    test_join(path, dir, "train-images-idx3-ubyte");
    mnist_spec(spec, dir);
    pid_t child = fork();
    ck_assert_int_ge(child, 0);
    if (child == 0) {
        long pages = 0;
        FILE *statm = fopen("/proc/self/statm", "r");
        if (statm == NULL || fscanf(statm, "%ld", &pages) != 1) _exit(3);
        fclose(statm);
        struct rlimit limit;
        limit.rlim_cur = limit.rlim_max =
            (rlim_t)pages * (rlim_t)sysconf(_SC_PAGESIZE) + ((rlim_t)256 << 20);
        if (setrlimit(RLIMIT_AS, &limit) != 0) _exit(3);
        dim_dataset d;
        char error[8192] = "";
        int rc = dim_dataset_load(&d, spec, DIM_SPLIT_TRAIN, error, sizeof error);
        if (rc != DIM_DATA_BAD_FILE) _exit(1);
        if (strstr(error, "truncated") == NULL || strstr(error, path) == NULL) {
            fprintf(stderr, "unexpected error: %s\n", error);
            _exit(2);
        }
        _exit(0);
    }
    int status;
    ck_assert_int_eq(waitpid(child, &status, 0), child);
    ck_assert_msg(WIFEXITED(status) && WEXITSTATUS(status) == 0,
                  "loading a lying header under a 256 MB limit: child status %d (1: not refused "
                  "as a bad file, 2: another message, 3: could not set the limit)",
                  WIFEXITED(status) ? WEXITSTATUS(status) : -WTERMSIG(status));
    free(b);
    free(labels);
    test_remove_tree(dir);
#endif
}
END_TEST

START_TEST(test_idx_trailing_garbage)
{
    size_t n;
    unsigned char *b = test_idx_images(IMAGES, SIDE, SIDE, &n);
    unsigned char *longer = malloc(n + 5);
    memcpy(longer, b, n);
    memcpy(longer + n, "junk!", 5);
    check_bad_images(longer, n + 1, 0, "more data follows", NULL);
    check_bad_images(longer, n + 5, 1, "more data follows", NULL);
    free(longer);
    free(b);
}
END_TEST

/* Compressed files damaged after compression: a flipped byte in the middle of the deflate
 * stream, a wrong CRC in the trailer, a stream cut short in its data and in its trailer. */
START_TEST(test_idx_corrupt_gzip_stream)
{
    char dir[TEST_PATH_SIZE];
    make_temp_dir(dir);
    size_t n, nz;
    unsigned char *b = test_idx_images(IMAGES, SIDE, SIDE, &n);
    test_write_file(dir, "good.gz", b, n, 1);
    char good[TEST_PATH_SIZE];
    test_join(good, dir, "good.gz");
    unsigned char *z = test_read_file(good, &nz);
    ck_assert_ptr_nonnull(z);
    unsigned char *damaged = malloc(nz);

    memcpy(damaged, z, nz);
    damaged[nz / 2] ^= 0x55;
    check_bad_images(damaged, nz, 0, "corrupt compressed data", NULL);

    memcpy(damaged, z, nz);
    damaged[nz - 6] ^= 0xff;  /* the CRC-32 is bytes nz-8 .. nz-5 */
    check_bad_images(damaged, nz, 0, "corrupt compressed data", NULL);

    check_bad_images(z, nz / 2, 0, "truncated", NULL);
    check_bad_images(z, nz - 4, 0, "truncated", "compressed stream ends early");
    check_bad_images(z, nz - 8, 0, "truncated", "compressed stream ends early");
    /* Only the gzip header. */
    check_bad_images(z, 10, 0, "truncated", NULL);
    free(damaged);
    free(z);
    free(b);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_idx_label_out_of_range)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    size_t ni, nl;
    unsigned char *images = test_idx_images(IMAGES, SIDE, SIDE, &ni), *labels = test_idx_labels(IMAGES, &nl);
    labels[8 + 13] = 10;
    test_write_file(dir, "train-images-idx3-ubyte", images, ni, 0);
    test_write_file(dir, "train-labels-idx1-ubyte.gz", labels, nl, 1);
    test_join(path, dir, "train-labels-idx1-ubyte.gz");
    mnist_spec(spec, dir);
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "label 13 is 10",
                      "not a class", NULL);
    free(images);
    free(labels);
    test_remove_tree(dir);
}
END_TEST

START_TEST(test_idx_label_count_mismatch)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    size_t ni, nl;
    unsigned char *images = test_idx_images(IMAGES, SIDE, SIDE, &ni);
    unsigned char *labels = test_idx_labels(IMAGES - 1, &nl);
    test_write_file(dir, "train-images-idx3-ubyte", images, ni, 0);
    test_write_file(dir, "train-labels-idx1-ubyte", labels, nl, 0);
    test_join(path, dir, "train-labels-idx1-ubyte");
    mnist_spec(spec, dir);
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "19 labels for 20 images",
                      NULL);
    free(images);
    free(labels);
    test_remove_tree(dir);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* CIFAR-10                                                                                    */
/* ------------------------------------------------------------------------------------------ */

/* A whole CIFAR-10 batch: record r has label r mod 10 and pixels from test_pixel. */
static unsigned char *cifar_batch(size_t *n)
{
    *n = (size_t)CIFAR_RECORD * CIFAR_BATCH;
    unsigned char *b = malloc(*n);
    for (long r = 0; r < CIFAR_BATCH; r++) {
        b[r * CIFAR_RECORD] = test_label(r);
        for (long k = 0; k < CIFAR_RECORD - 1; k++) b[r * CIFAR_RECORD + 1 + k] = test_pixel(r, k);
    }
    return b;
}

START_TEST(test_cifar_parse_in_memory)
{
    size_t n;
    unsigned char *b = cifar_batch(&n);
    char error[256] = "";
    ck_assert_int_eq(dim_cifar_parse(b, n, "mem", error, sizeof error), DIM_DATA_OK);
    ck_assert_int_eq(dim_cifar_parse(b, n - 1, "mem", error, sizeof error), DIM_DATA_BAD_FILE);
    ck_assert_ptr_nonnull(strstr(error, "truncated"));
    ck_assert_int_eq(dim_cifar_parse(b, 0, "mem", error, sizeof error), DIM_DATA_BAD_FILE);
    ck_assert_ptr_nonnull(strstr(error, "truncated"));
    b[(size_t)9999 * CIFAR_RECORD] = 200;
    ck_assert_int_eq(dim_cifar_parse(b, n, "mem", error, sizeof error), DIM_DATA_BAD_FILE);
    ck_assert_msg(strstr(error, "record 9999 has label 200") != NULL, "'%s'", error);
    free(b);
}
END_TEST

static void check_good_cifar(int gz)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], error[8192] = "";
    make_temp_dir(dir);
    size_t n;
    unsigned char *b = cifar_batch(&n);
    test_write_file(dir, "test_batch.bin", b, n, gz);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "cifar10:%s", dir), (int)sizeof spec);
    dim_dataset d;
    ck_assert_msg(dim_dataset_load(&d, spec, DIM_SPLIT_TEST, error, sizeof error) == DIM_DATA_OK,
                  "%s", error);
    ck_assert_str_eq(d.name, "cifar10");
    ck_assert_int_eq(d.count, CIFAR_BATCH);
    ck_assert_int_eq(d.channels, 3);
    ck_assert_int_eq(d.height, 32);
    ck_assert_int_eq(d.width, 32);
    ck_assert_int_eq(d.nclasses, 10);
    for (long r = 0; r < CIFAR_BATCH; r += 997) {
        ck_assert_int_eq(d.labels[r], test_label(r));
        ck_assert_int_eq(memcmp(d.pixels + r * (CIFAR_RECORD - 1), b + r * CIFAR_RECORD + 1,
                                CIFAR_RECORD - 1), 0);
    }
    dim_dataset_free(&d);
    free(b);
    test_remove_tree(dir);
}

START_TEST(test_cifar_plain_batch_loads)
{
    check_good_cifar(0);
}
END_TEST

START_TEST(test_cifar_gzip_batch_loads)
{
    check_good_cifar(1);
}
END_TEST

/* Writes bytes as dir/name and expects the CIFAR-10 split to be refused naming that file. */
static void check_bad_cifar(const char *name, dim_split split, const unsigned char *bytes,
                            size_t n, int gz, const char *words1, const char *words2)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    test_write_file(dir, name, bytes, n, gz);
    test_join(path, dir, name);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "cifar10:%s", dir), (int)sizeof spec);
    expect_load_error(spec, split, DIM_DATA_BAD_FILE, path, words1, words2, NULL);
    test_remove_tree(dir);
}

START_TEST(test_cifar_bad_batches)
{
    size_t n;
    unsigned char *b = cifar_batch(&n);
    check_bad_cifar("test_batch.bin", DIM_SPLIT_TEST, b, n - CIFAR_RECORD / 2, 0, "truncated",
                    "a CIFAR-10 batch has 30730000");
    check_bad_cifar("test_batch.bin", DIM_SPLIT_TEST, b, 0, 0, "truncated", NULL);
    unsigned char *longer = malloc(n + 1);
    memcpy(longer, b, n);
    longer[n] = 0;
    check_bad_cifar("test_batch.bin", DIM_SPLIT_TEST, longer, n + 1, 0, "corrupt", NULL);
    free(longer);
    b[(size_t)42 * CIFAR_RECORD] = 10;
    check_bad_cifar("test_batch.bin", DIM_SPLIT_TEST, b, n, 1, "record 42 has label 10",
                    "not a class");
    b[(size_t)42 * CIFAR_RECORD] = 2;
    /* The training split's first batch is where the training split fails first. */
    check_bad_cifar("data_batch_1.bin", DIM_SPLIT_TRAIN, b, 100, 0, "truncated", NULL);
    free(b);
}
END_TEST

START_TEST(test_cifar_missing_files)
{
    char dir[TEST_PATH_SIZE], spec[TEST_PATH_SIZE], path[TEST_PATH_SIZE];
    make_temp_dir(dir);
    ck_assert_int_lt(snprintf(spec, sizeof spec, "cifar10:%s", dir), (int)sizeof spec);
    test_join(path, dir, "test_batch.bin");
    expect_load_error(spec, DIM_SPLIT_TEST, DIM_DATA_BAD_FILE, path, "cannot open", NULL);
    test_join(path, dir, "data_batch_1.bin");
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "cannot open", NULL);
    /* With the first batch good, the second is named. */
    size_t n;
    unsigned char *b = cifar_batch(&n);
    test_write_file(dir, "data_batch_1.bin", b, n, 1);
    test_join(path, dir, "data_batch_2.bin");
    expect_load_error(spec, DIM_SPLIT_TRAIN, DIM_DATA_BAD_FILE, path, "cannot open", NULL);
    free(b);
    test_remove_tree(dir);
}
END_TEST

/* A gzip bomb: a small compressed file that inflates far past a batch is refused after
 * reading one byte more than a batch can hold. */
START_TEST(test_cifar_decompression_bomb)
{
    size_t n = (size_t)64 << 20;
    unsigned char *zeros = calloc(n, 1);
    check_bad_cifar("test_batch.bin", DIM_SPLIT_TEST, zeros, n, 1, "corrupt", "30730001 bytes");
    free(zeros);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Specs                                                                                       */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_specs_refused_as_usage_errors)
{
    expect_load_error("imagenet", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "'imagenet'",
                      "unknown dataset", NULL);
    expect_load_error("imagenet:/tmp", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "unknown dataset",
                      NULL);
    expect_load_error("", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "unknown dataset", NULL);
    expect_load_error("mnis", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "unknown dataset", NULL);
    expect_load_error("shapes:/tmp", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "'shapes:/tmp'",
                      "takes no directory", NULL);
    expect_load_error("shapes:", DIM_SPLIT_TEST, DIM_DATA_BAD_SPEC, "takes no directory", NULL);
    expect_load_error("mnist", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "'mnist'",
                      "needs a directory", NULL);
    expect_load_error("mnist:", DIM_SPLIT_TRAIN, DIM_DATA_BAD_SPEC, "needs a directory", NULL);
    expect_load_error("cifar10", DIM_SPLIT_TEST, DIM_DATA_BAD_SPEC, "needs a directory", NULL);
    expect_load_error("fashion-mnist:", DIM_SPLIT_TEST, DIM_DATA_BAD_SPEC, "needs a directory",
                      NULL);
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* Shapes and batches                                                                         */
/* ------------------------------------------------------------------------------------------ */

static void check_shapes_split(dim_split split, int count)
{
    dim_dataset a, b;
    char error[256] = "";
    ck_assert_int_eq(dim_dataset_load(&a, "shapes", split, error, sizeof error), DIM_DATA_OK);
    ck_assert_int_eq(dim_dataset_load(&b, "shapes", split, error, sizeof error), DIM_DATA_OK);
    ck_assert_str_eq(a.name, "shapes");
    ck_assert_int_eq(a.count, count);
    ck_assert_int_eq(a.channels, 1);
    ck_assert_int_eq(a.height, 28);
    ck_assert_int_eq(a.width, 28);
    ck_assert_int_eq(a.nclasses, 10);
    ck_assert_msg(memcmp(a.pixels, b.pixels, (size_t)count * 28 * 28) == 0,
                  "two loads of shapes differ in their pixels");
    ck_assert_msg(memcmp(a.labels, b.labels, (size_t)count) == 0,
                  "two loads of shapes differ in their labels");
    int per_class[10] = {0};
    for (int i = 0; i < count; i++) {
        ck_assert_int_lt(a.labels[i], 10);
        per_class[a.labels[i]]++;
    }
    /* Every class present, none far from a tenth. */
    for (int c = 0; c < 10; c++)
        ck_assert_msg(per_class[c] > count / 20 && per_class[c] < count / 5,
                      "class %d has %d of %d images", c, per_class[c], count);
    /* Not blank: each image has ink well above its background. */
    for (int i = 0; i < count; i++) {
        int brightest = 0;
        for (int k = 0; k < 28 * 28; k++)
            if (a.pixels[(size_t)i * 28 * 28 + k] > brightest)
                brightest = a.pixels[(size_t)i * 28 * 28 + k];
        ck_assert_msg(brightest >= 140, "image %d has no figure (brightest %d)", i, brightest);
    }
    dim_dataset_free(&a);
    dim_dataset_free(&b);
}

START_TEST(test_shapes_deterministic_and_balanced)
{
    check_shapes_split(DIM_SPLIT_TRAIN, 10000);
    check_shapes_split(DIM_SPLIT_TEST, 2000);
}
END_TEST

START_TEST(test_shapes_splits_differ)
{
    dim_dataset train, test;
    char error[256] = "";
    ck_assert_int_eq(dim_dataset_load(&train, "shapes", DIM_SPLIT_TRAIN, error, sizeof error), 0);
    ck_assert_int_eq(dim_dataset_load(&test, "shapes", DIM_SPLIT_TEST, error, sizeof error), 0);
    ck_assert_msg(memcmp(train.pixels, test.pixels, (size_t)test.count * 28 * 28) != 0,
                  "the test split repeats the training split");
    dim_dataset_free(&train);
    dim_dataset_free(&test);
}
END_TEST

/* Pixels p become 2p/255 - 1: 0 -> -1, 255 -> 1, in the order of the indices given. */
START_TEST(test_batch_scales_to_minus_one_one)
{
    unsigned char pixels[3 * 2 * 2] = {0, 255, 51, 204, 128, 1, 2, 3, 255, 255, 0, 0};
    unsigned char labels[3] = {4, 7, 9};
    dim_dataset d = {"hand", 3, 1, 2, 2, 10, pixels, labels};
    int indices[4] = {2, 0, 1, 2};
    ag_real images[4 * 4];
    int got_labels[4];
    dim_dataset_batch(&d, indices, 4, images, got_labels);
    for (int b = 0; b < 4; b++) {
        ck_assert_int_eq(got_labels[b], labels[indices[b]]);
        for (int k = 0; k < 4; k++) {
            double want = 2.0 * pixels[indices[b] * 4 + k] / 255.0 - 1.0;
            ck_assert_msg(fabs((double)images[b * 4 + k] - want) < 1e-6,
                          "batch %d pixel %d: expected %g, got %g", b, k, want,
                          (double)images[b * 4 + k]);
            ck_assert(images[b * 4 + k] >= -1 && images[b * 4 + k] <= 1);
        }
    }
    ck_assert(images[4] == (ag_real)-1);  /* image 0, pixel 0 */
    ck_assert(images[5] == (ag_real)1);   /* image 0, pixel 1 */
    /* Labels are optional. */
    dim_dataset_batch(&d, indices, 1, images, NULL);
    ck_assert(images[0] == (ag_real)(2.0 * 255 / 255.0 - 1.0));
}
END_TEST

/* ------------------------------------------------------------------------------------------ */
/* The installed Fashion-MNIST                                                                */
/* ------------------------------------------------------------------------------------------ */

START_TEST(test_fashion_mnist_installed)
{
    struct stat st;
    if (stat(FASHION_DIR, &st) != 0) {
        fprintf(stderr, "data: %s is not installed: the Fashion-MNIST test is skipped\n",
                FASHION_DIR);
        return;
    }
    const char *specs[2] = {"fashion-mnist", "fashion-mnist:" FASHION_DIR};
    for (int s = 0; s < 2; s++)
        for (int split = 0; split < 2; split++) {
            dim_dataset d;
            char error[8192] = "";
            int rc = dim_dataset_load(&d, specs[s], split ? DIM_SPLIT_TEST : DIM_SPLIT_TRAIN,
                                      error, sizeof error);
            ck_assert_msg(rc == DIM_DATA_OK, "%s: %s", specs[s], error);
            ck_assert_str_eq(d.name, "fashion-mnist");
            ck_assert_int_eq(d.count, split ? 10000 : 60000);
            ck_assert_int_eq(d.channels, 1);
            ck_assert_int_eq(d.height, 28);
            ck_assert_int_eq(d.width, 28);
            int per_class[10] = {0};
            for (int i = 0; i < d.count; i++) per_class[d.labels[i]]++;
            for (int c = 0; c < 10; c++)  /* Fashion-MNIST is exactly balanced */
                ck_assert_int_eq(per_class[c], d.count / 10);
            dim_dataset_free(&d);
            if (s == 1) break;  /* the explicit directory: the training split is enough */
        }
}
END_TEST

static void begin_scratch(void) { test_scratch_begin("data"); }

Suite *data_suite(void)
{
    Suite *s = suite_create("data");
    TCase *idx = tcase_create("idx");
    tcase_add_test(idx, test_idx_plain_files_load);
    tcase_add_test(idx, test_idx_gzip_files_load);
    tcase_add_test(idx, test_idx_test_split_reads_t10k_files);
    tcase_add_test(idx, test_idx_parse_in_memory);
    tcase_add_test(idx, test_idx_missing_files);
    tcase_add_test(idx, test_idx_missing_directory);
    tcase_add_test(idx, test_idx_file_that_is_a_directory);
    tcase_add_test(idx, test_idx_truncated_data);
    tcase_add_test(idx, test_idx_truncated_header);
    tcase_add_test(idx, test_idx_wrong_magic);
    tcase_add_test(idx, test_idx_absurd_count);
    tcase_add_test(idx, test_idx_lying_header_allocates_nothing_large);
    tcase_add_test(idx, test_idx_trailing_garbage);
    tcase_add_test(idx, test_idx_corrupt_gzip_stream);
    tcase_add_test(idx, test_idx_label_out_of_range);
    tcase_add_test(idx, test_idx_label_count_mismatch);
    tcase_set_timeout(idx, 30);
    tcase_add_unchecked_fixture(idx, begin_scratch, test_scratch_end);
    suite_add_tcase(s, idx);

    TCase *cifar = tcase_create("cifar10");
    tcase_add_test(cifar, test_cifar_parse_in_memory);
    tcase_add_test(cifar, test_cifar_plain_batch_loads);
    tcase_add_test(cifar, test_cifar_gzip_batch_loads);
    tcase_add_test(cifar, test_cifar_bad_batches);
    tcase_add_test(cifar, test_cifar_missing_files);
    tcase_add_test(cifar, test_cifar_decompression_bomb);
    tcase_set_timeout(cifar, 120);
    tcase_add_unchecked_fixture(cifar, begin_scratch, test_scratch_end);
    suite_add_tcase(s, cifar);

    TCase *specs = tcase_create("specs");
    tcase_add_test(specs, test_specs_refused_as_usage_errors);
    tcase_add_test(specs, test_shapes_deterministic_and_balanced);
    tcase_add_test(specs, test_shapes_splits_differ);
    tcase_add_test(specs, test_batch_scales_to_minus_one_one);
    tcase_add_test(specs, test_fashion_mnist_installed);
    tcase_set_timeout(specs, 120);
    tcase_add_unchecked_fixture(specs, begin_scratch, test_scratch_end);
    suite_add_tcase(s, specs);
    return s;
}
