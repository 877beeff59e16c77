/* npy.c -- NumPy .npy files (format 1.0), written atomically.
 * Tangled from doc/33-eval.nw: edit the book, not this file. */
#include "dim.h"

#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

size_t dim_npy_header(char buf[DIM_NPY_HEADER_MAX], const char *descr, int ndim,
                      const long *shape)
{
    char dims[64], dict[160];
    if (ndim == 1) snprintf(dims, sizeof dims, "(%ld,)", shape[0]);
    else if (ndim == 2) snprintf(dims, sizeof dims, "(%ld, %ld)", shape[0], shape[1]);
    else ag_fatal("dim_npy_header: %d dimensions; 1 or 2 are written", ndim);
    int length = snprintf(dict, sizeof dict,
                          "{'descr': '%s', 'fortran_order': False, 'shape': %s, }", descr, dims);
    if (length < 0 || (size_t)length >= sizeof dict) ag_fatal("dim_npy_header: descr too long");
    size_t unpadded = 10 + (size_t)length + 1;
    size_t padding = (DIM_NPY_ALIGN - unpadded % DIM_NPY_ALIGN) % DIM_NPY_ALIGN;
    size_t total = unpadded + padding, header_length = total - 10;
    memcpy(buf, "\x93NUMPY", 6);
    buf[6] = 1;                                   /* major version */
    buf[7] = 0;                                   /* minor version */
    buf[8] = (char)(header_length & 0xff);        /* little-endian uint16 */
    buf[9] = (char)(header_length >> 8);
    memcpy(buf + 10, dict, (size_t)length);
    memset(buf + 10 + length, ' ', padding);
    buf[total - 1] = '\n';
    return total;
}
static int little_endian(void)
{
    const uint32_t one = 1;
    return *(const unsigned char *)&one == 1;
}

int dim_npy_write_features(const char *path, const dim_feature_matrix *m, char *error,
                           size_t error_size)
{
    enum { CHUNK = 4096 };
    char header[DIM_NPY_HEADER_MAX];
    long shape[2] = {m->rows, m->cols};
    size_t header_size = dim_npy_header(header, "<f4", 2, shape);
    dim_atomic_file f;
    if (dim_atomic_open(&f, path, error, error_size) != 0) return 1;
    fwrite(header, 1, header_size, f.file);
    size_t total = (size_t)m->rows * m->cols;
    float chunk[CHUNK];
    for (size_t start = 0; start < total; start += CHUNK) {
        size_t n = total - start < CHUNK ? total - start : CHUNK;
        for (size_t i = 0; i < n; i++) chunk[i] = (float)m->values[start + i];
        if (!little_endian())
            for (size_t i = 0; i < n; i++) {
                unsigned char *b = (unsigned char *)&chunk[i], swap;
                swap = b[0], b[0] = b[3], b[3] = swap;
                swap = b[1], b[1] = b[2], b[2] = swap;
            }
        if (fwrite(chunk, sizeof(float), n, f.file) != n) break;  /* ferror: commit fails */
    }
    return dim_atomic_commit(&f, error, error_size);
}

int dim_npy_write_labels(const char *path, const unsigned char *labels, long count,
                         char *error, size_t error_size)
{
    char header[DIM_NPY_HEADER_MAX];
    size_t header_size = dim_npy_header(header, "|u1", 1, &count);
    dim_atomic_file f;
    if (dim_atomic_open(&f, path, error, error_size) != 0) return 1;
    fwrite(header, 1, header_size, f.file);
    fwrite(labels, 1, (size_t)count, f.file);
    return dim_atomic_commit(&f, error, error_size);
}
