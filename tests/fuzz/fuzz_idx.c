/* fuzz_idx.c -- libFuzzer target for the IDX reader of doc/30-data.nw.
 *
 * Every input is parsed in memory as an image file and as a label file (dim_idx_parse); an
 * accepted header must describe exactly the bytes given, and every data byte it claims is read,
 * so that AddressSanitizer sees any claim past the end. When bit 0 of the first byte is set, the
 * rest is also split into an image file and a label file (the split point in bytes 1-2), written
 * to a temporary directory (named .gz when bit 1 is set: the reader gunzips what is compressed
 * and reads the rest as it is) and loaded through dim_dataset_load, as `--data mnist:DIR`
 * would: the path that reads files, decompresses, checks the pair and keeps the buffers. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "../../src/dim/dim.h"
#include "fuzz_files.h"

static char dir[FUZZ_PATH_SIZE];
static volatile unsigned sink;  /* what reading the data added up to: keeps the reads */
static const char *const names[] = {
    "train-images-idx3-ubyte", "train-images-idx3-ubyte.gz",
    "train-labels-idx1-ubyte", "train-labels-idx1-ubyte.gz",
};

int LLVMFuzzerInitialize(int *argc, char ***argv)
{
    (void)argc;
    (void)argv;
    fuzz_make_dir(dir, "idx", names, sizeof names / sizeof names[0]);
    return 0;
}

/* An accepted IDX file: header plus the product of the dimensions is the whole size. */
static void check_parse(const uint8_t *data, size_t size, int ndim)
{
    long dims[3] = {0, 0, 0};
    size_t header = 0;
    char error[512];
    if (dim_idx_parse(data, size, ndim, dims, &header, "input", error, sizeof error) != 0) {
        if (memchr(error, '\0', sizeof error) == NULL) abort();
        return;
    }
    size_t expected = header;
    size_t items = 1;
    for (int k = 0; k < ndim; k++) {
        if (dims[k] <= 0) abort();
        items *= (size_t)dims[k];
    }
    expected += items;
    if (expected != size) abort();
    unsigned sum = 0;
    for (size_t i = 0; i < items; i++) sum += data[header + i];
    sink = sum;
}

static void check_load(const uint8_t *data, size_t size)
{
    if (size < 3) return;
    int gz = (data[0] >> 1) & 1;
    size_t split = (size_t)data[1] | (size_t)data[2] << 8;
    data += 3;
    size -= 3;
    if (split > size) split = size;
    fuzz_clear_dir(dir, names, sizeof names / sizeof names[0]);
    fuzz_write(dir, names[gz], data, split);
    fuzz_write(dir, names[2 + gz], data + split, size - split);

    char spec[FUZZ_PATH_SIZE + 16], error[8192];
    snprintf(spec, sizeof spec, "mnist:%s", dir);
    dim_dataset d;
    int rc = dim_dataset_load(&d, spec, DIM_SPLIT_TRAIN, error, sizeof error);
    if (rc != DIM_DATA_OK) {
        if (rc != DIM_DATA_BAD_FILE || strstr(error, dir) == NULL) abort();
        return;
    }
    if (d.count <= 0 || d.channels != 1 || d.height <= 0 || d.width <= 0) abort();
    for (int i = 0; i < d.count; i++)
        if (d.labels[i] >= d.nclasses) abort();
    size_t image = (size_t)d.height * (size_t)d.width;
    unsigned sum = 0;
    for (size_t k = 0; k < (size_t)d.count * image; k++) sum += d.pixels[k];
    sink = sum;
    ag_real *batch = malloc(image * sizeof *batch);
    int index = d.count - 1, label;
    dim_dataset_batch(&d, &index, 1, batch, &label);
    for (size_t k = 0; k < image; k++)
        if (!(batch[k] >= -1 && batch[k] <= 1)) abort();
    free(batch);
    dim_dataset_free(&d);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    check_parse(data, size, 3);
    check_parse(data, size, 1);
    if (size > 0 && (data[0] & 1)) check_load(data, size);
    return 0;
}
