/* Learning-rate policies, computed as Caffe's SGDSolver::GetLearningRate does. */
#include "solvers/lr_policy.h"

#include <math.h>
#include <string.h>

#include "caffegrid/error.h"

int cg_lr_policy_check(const Caffe__SolverParameter *p, const char *source_name) {
  const char *policy = p->lr_policy;
  if (!policy) return cg_error(CG_ERR_INVALID, "%s: lr_policy is required (fixed, step, exp, inv, multistep, poly, sigmoid)", source_name);
#define CG_KNOWN_POLICY(name) if (strcmp(policy, #name) == 0) goto known;
  CG_LR_POLICY_LIST(CG_KNOWN_POLICY)
#undef CG_KNOWN_POLICY
  return cg_error(CG_ERR_INVALID, "%s: field 'lr_policy': unknown policy '%s' (known: fixed, step, exp, inv, multistep, poly, sigmoid)",
                  source_name, policy);
known:
  if ((strcmp(policy, "step") == 0 || strcmp(policy, "sigmoid") == 0) && p->stepsize <= 0)
    return cg_error(CG_ERR_INVALID, "%s: lr_policy '%s' needs a positive 'stepsize'", source_name, policy);
  if (strcmp(policy, "multistep") == 0) {
    for (size_t i = 1; i < p->n_stepvalue; i++)
      if (p->stepvalue[i] <= p->stepvalue[i - 1])
        return cg_error(CG_ERR_INVALID, "%s: field 'stepvalue': values must increase (%d follows %d)", source_name,
                        p->stepvalue[i], p->stepvalue[i - 1]);
  }
  if (strcmp(policy, "poly") == 0 && p->max_iter <= 0)
    return cg_error(CG_ERR_INVALID, "%s: lr_policy 'poly' needs a positive 'max_iter'", source_name);
  return CG_OK;
}

float cg_lr_policy_rate(const Caffe__SolverParameter *p, int iter, int *current_step) {
  const char *policy = p->lr_policy;
  float base = p->base_lr;
  if (strcmp(policy, "fixed") == 0) return base;
  if (strcmp(policy, "step") == 0) return base * powf(p->gamma, (float)(iter / p->stepsize));
  if (strcmp(policy, "exp") == 0) return base * powf(p->gamma, (float)iter);
  if (strcmp(policy, "inv") == 0) return base * powf(1.0f + p->gamma * (float)iter, -p->power);
  if (strcmp(policy, "multistep") == 0) {
    while ((size_t)*current_step < p->n_stepvalue && iter >= p->stepvalue[*current_step]) (*current_step)++;
    return base * powf(p->gamma, (float)*current_step);
  }
  if (strcmp(policy, "poly") == 0) return base * powf(1.0f - (float)iter / (float)p->max_iter, p->power);
  if (strcmp(policy, "sigmoid") == 0) return base * (1.0f / (1.0f + expf(-p->gamma * (float)(iter - p->stepsize))));
  return base;
}
