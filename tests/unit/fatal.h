/* fatal.h -- catching ag_fatal in a unit test. A misuse of the engine or of the model stops
 * the program with one message; a test of that misuse installs test_catch_fatal as the error
 * handler, which keeps the message and jumps back into the test, and then checks the text. */
#ifndef TEST_FATAL_H
#define TEST_FATAL_H

#include <setjmp.h>
#include <string.h>

#include <check.h>

#include "../../src/autograd/ag.h"

extern jmp_buf test_fatal_jump;
extern char test_fatal_message[512];

/* The error handler: keeps message in test_fatal_message and jumps to test_fatal_jump. */
void test_catch_fatal(const char *message);

/* Run statement, which must stop with ag_fatal; its message is then in test_fatal_message.
 * The previous handler is back in place afterwards, whichever way the statement ended. */
#define EXPECT_FATAL(statement)                                                        \
    do {                                                                               \
        ag_error_fn previous_handler = ag_set_error_handler(test_catch_fatal);         \
        test_fatal_message[0] = '\0';                                                  \
        if (setjmp(test_fatal_jump) == 0) {                                            \
            statement;                                                                 \
            ag_set_error_handler(previous_handler);                                    \
            ck_abort_msg("expected ag_fatal from %s, but it returned", #statement);    \
        }                                                                              \
        ag_set_error_handler(previous_handler);                                        \
    } while (0)

/* The message of the last EXPECT_FATAL contains needle. */
#define ASSERT_MESSAGE_HAS(needle)                                                     \
    ck_assert_msg(strstr(test_fatal_message, needle) != NULL,                          \
                  "expected the message to contain \"%s\"; it was \"%s\"", needle,     \
                  test_fatal_message)

/* Both at once: statement stops with a message that contains needle. */
#define FAILS_WITH(statement, needle)                                                  \
    do {                                                                               \
        EXPECT_FATAL(statement);                                                       \
        ASSERT_MESSAGE_HAS(needle);                                                    \
    } while (0)

#endif
