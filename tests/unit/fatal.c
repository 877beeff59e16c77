/* fatal.c -- the handler behind EXPECT_FATAL (fatal.h). */
#include <stdio.h>

#include "fatal.h"

jmp_buf test_fatal_jump;
char test_fatal_message[512];

void test_catch_fatal(const char *message)
{
    snprintf(test_fatal_message, sizeof test_fatal_message, "%s", message);
    longjmp(test_fatal_jump, 1);
}
