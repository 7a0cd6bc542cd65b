/* Update rules: small functions over flat arrays, one file each, listed once in
 * CG_UPDATE_RULE_LIST. Each turns a parameter's (already clipped, normalised and
 * regularised) gradient `diff` into the step that is subtracted from the weights,
 * with Caffe's exact arithmetic. */
#ifndef CG_UPDATE_RULE_H
#define CG_UPDATE_RULE_H

#include <stddef.h>

typedef struct cg_update_args {
  size_t n;
  float *diff;       /* in: gradient; out: the step (weights -= step) */
  float *history;    /* first history slot (momentum, squared gradients, ...) */
  float *history2;   /* second slot, for rules that keep two (AdaDelta, Adam) */
  float local_rate;  /* lr * lr_mult */
  float momentum, momentum2, delta, rms_decay;
  int iter;          /* the iteration being applied (Adam's bias correction uses iter + 1) */
} cg_update_args;

typedef void (*cg_update_fn)(const cg_update_args *a);

/* name in prototxt `type:`, function, number of history slots per parameter */
#define CG_UPDATE_RULE_LIST(X)         \
  X("SGD", cg_update_sgd, 1)           \
  X("Nesterov", cg_update_nesterov, 1) \
  X("AdaGrad", cg_update_adagrad, 1)   \
  X("RMSProp", cg_update_rmsprop, 1)   \
  X("AdaDelta", cg_update_adadelta, 2) \
  X("Adam", cg_update_adam, 2)

#define CG_DECLARE_UPDATE(name, fn, slots) void fn(const cg_update_args *a);
CG_UPDATE_RULE_LIST(CG_DECLARE_UPDATE)
#undef CG_DECLARE_UPDATE

/* Looks a solver type up; NULL when unknown. *history_slots gets the slots it keeps. */
cg_update_fn cg_update_rule_find(const char *type, int *history_slots);

#endif
