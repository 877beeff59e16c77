/* optable.c -- the table of every operation.
 * Tangled from the doc/ chapters: edit the book, not this file. */
#include "ag.h"

const ag_op *const ag_op_table[] = {

};

const int ag_op_count = (int)(sizeof ag_op_table / sizeof ag_op_table[0]);
