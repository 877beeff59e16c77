/* fuzz_cifar.c -- libFuzzer target for the CIFAR-10 reader of doc/30-data.nw.
 *
 * The first byte chooses how the rest is used:
 *   0: parsed in memory as it is (dim_cifar_parse);
 *   1, 3: copied over the start (1) or the end (3) of an otherwise good batch of 10 000
 *      records, then parsed: the input decides the labels there (a real batch is 30 MB, far
 *      beyond what a fuzzer mutates);
 *   2: written as test_batch.bin in a temporary directory and loaded through dim_dataset_load,
 *      as `--data cifar10:DIR` would: gunzipped if it is compressed, read no further than a
 *      batch can be. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "../../src/dim/dim.h"
#include "fuzz_files.h"

enum { RECORD = 1 + 3 * 32 * 32, RECORDS = 10000, BATCH = RECORD * RECORDS };

static char dir[FUZZ_PATH_SIZE];
static const char *const names[] = {"test_batch.bin"};
static unsigned char *batch;  /* [BATCH], good records but where an input is copied */
static unsigned char *good;   /* [BATCH], the good records, to restore batch after each input */

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_make_dir(dir, "cifar", names, 1);
    batch = malloc(BATCH);
    good = malloc(BATCH);
    if (batch == NULL || good == NULL) abort();
    for (size_t k = 0; k < BATCH; k++) good[k] = (unsigned char)(k % RECORD ? k * 13 : k % 10);
    memcpy(batch, good, BATCH);
    return 0;
}

static void check_error(int rc, const char *error, const char *path)
{
    if (rc != DIM_DATA_BAD_FILE || strstr(error, path) == NULL) abort();
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int mode = data[0] % 4;
    data++;
    size--;
    char error[8192];
    if (mode == 0) {
        int rc = dim_cifar_parse(data, size, "input", error, sizeof error);
        if (rc == 0 && size != BATCH) abort();
        if (rc != 0) check_error(rc, error, "input");
    } else if (mode == 1 || mode == 3) {
        size_t n = size < BATCH ? size : BATCH, at = mode == 1 ? 0 : BATCH - n;
        memcpy(batch + at, data, n);
        int rc = dim_cifar_parse(batch, BATCH, "batch", error, sizeof error);
        int labels_ok = 1;
        for (size_t r = at / RECORD; r < RECORDS; r++) labels_ok &= batch[r * RECORD] <= 9;
        if ((rc == 0) != labels_ok) abort();
        if (rc != 0) check_error(rc, error, "batch");
        memcpy(batch + at, good + at, n);
    } else {
        fuzz_write(dir, names[0], data, size);
        char spec[FUZZ_PATH_SIZE + 16];
        snprintf(spec, sizeof spec, "cifar10:%s", dir);
        dim_dataset d;
        int rc = dim_dataset_load(&d, spec, DIM_SPLIT_TEST, error, sizeof error);
        if (rc != 0) {
            check_error(rc, error, dir);
            return 0;
        }
        if (d.count != RECORDS || d.channels != 3 || d.height != 32 || d.width != 32) abort();
        for (int i = 0; i < d.count; i++)
            if (d.labels[i] > 9) abort();
        dim_dataset_free(&d);
    }
    return 0;
}
