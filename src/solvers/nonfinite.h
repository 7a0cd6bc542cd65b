/* Training that diverged: NaN or infinite loss, gradients or weights. The solver
 * checks the loss and the last layer's gradient every iteration (cheap, and the same
 * answer on every rank after the gradient allreduce), every gradient and weight at
 * each display, and the weights before a snapshot; it then stops, naming the
 * iteration and the first layer whose output or parameters went non-finite. */
#ifndef CG_SOLVERS_NONFINITE_H
#define CG_SOLVERS_NONFINITE_H

#include <stdbool.h>
#include <stddef.h>

#include "caffegrid/net.h"

bool cg_all_finite(const float *x, size_t n);
/* The CG_ERR_NONFINITE error for `net` at `iteration` (what went non-finite: `what`). */
int cg_nonfinite_error(const cg_net *net, const char *source_name, int iteration, const char *what);

#endif
