/* fuzz_checkpoint.c -- libFuzzer target for the checkpoint reader of doc/31-checkpoint.nw.
 *
 * The first byte chooses how the rest is read by dim_checkpoint_parse:
 *   bit 0 set: the header's payload length and CRC-32 are first rewritten to match the bytes
 *              that follow (when there is a whole header), so that mutations of the payload
 *              reach the parser instead of all stopping at the CRC;
 *   bit 1 set: the trainer is made and restored too (as `dim train --resume` does), not only
 *              the model (as `dim eval` does).
 * A parse that fails must leave nothing allocated (LeakSanitizer checks) and say why in one
 * line naming the input; one that succeeds is freed. ag_fatal, an abort or a huge allocation
 * inside the parser is a finding. */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <zlib.h>

#include "../../src/dim/dim.h"

enum { HEADER = 28, LENGTH_AT = 16, CRC_AT = 24 };

static void put_le(unsigned char *p, uint64_t v, int bytes)
{
    for (int k = 0; k < bytes; k++) p[k] = (unsigned char)(v >> (8 * k));
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0) return 0;
    int fix = data[0] & 1, with_trainer = (data[0] >> 1) & 1;
    size_t n = size - 1;
    unsigned char *bytes = malloc(n ? n : 1);
    if (bytes == NULL) abort();
    memcpy(bytes, data + 1, n);
    if (fix && n >= HEADER) {
        size_t length = n - HEADER;
        put_le(bytes + LENGTH_AT, length, 8);
        uLong crc = crc32(0L, Z_NULL, 0);
        crc = crc32(crc, bytes + HEADER, (uInt)length);
        put_le(bytes + CRC_AT, crc, 4);
    }
    dim_model m;
    dim_trainer tr;
    ag_rng data_rng;
    dim_run_info info;
    char error[4096];
    error[0] = '\0';
    int rc = dim_checkpoint_parse(bytes, n, "input.ckpt", &m, with_trainer ? &tr : NULL,
                                  &data_rng, &info, error, sizeof error);
    if (rc != 0) {
        if (rc != DIM_DATA_BAD_FILE || strstr(error, "input.ckpt") == NULL
            || strchr(error, '\n') != NULL)
            abort();
    } else {
        if (memchr(info.data_spec, '\0', sizeof info.data_spec) == NULL
            || memchr(info.preset, '\0', sizeof info.preset) == NULL
            || memchr(info.bound, '\0', sizeof info.bound) == NULL)
            abort();
        if (with_trainer) dim_trainer_free(&tr);
        dim_model_free(&m);
    }
    free(bytes);
    return 0;
}
