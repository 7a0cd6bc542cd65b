/* Learning-rate policies, Caffe's names and formulas, from one list. */
#ifndef CG_LR_POLICY_H
#define CG_LR_POLICY_H

#include "proto/caffe.pb-c.h"

#define CG_LR_POLICY_LIST(X) X(fixed) X(step) X(exp) X(inv) X(multistep) X(poly) X(sigmoid)

/* Checks the policy name and the fields it needs; errors name the solver file and field. */
int cg_lr_policy_check(const Caffe__SolverParameter *p, const char *source_name);
/* The rate at `iter`. For multistep, *current_step advances as Caffe's does. */
float cg_lr_policy_rate(const Caffe__SolverParameter *p, int iter, int *current_step);

#endif
