/* Numerical gradient checking of one layer, Caffe style: central differences
 * against backward, tolerance scaled by max(|analytic|, |numeric|, 1), inputs
 * near a kink skipped. The objective is sum(w * top) with fixed random w, so
 * one backward pass checks every bottom and parameter element. */
#ifndef CG_TEST_GRADIENT_CHECK_H
#define CG_TEST_GRADIENT_CHECK_H

#include <stdbool.h>

typedef struct grad_case {
  const char *layer;         /* LayerParameter text: "type: 'ReLU' relu_param { negative_slope: 0.1 }" */
  const char *bottoms[4];    /* per bottom: "2 3 4 5" shape, then optional ":fill" — fills:
                                gaussian (default), positive (uniform 0.1..1.1), uniform (-1..1),
                                labels=K (integers 0..K-1), distinct (well-separated values, for max ops) */
  int num_tops;              /* 0 means 1 */
  unsigned skip_bottoms;     /* bit i: do not check bottom i (labels) */
  bool skip_params;          /* do not check parameter gradients */
  float step;                /* 0 means 1e-2 */
  float threshold;           /* 0 means 1e-3 */
  bool check_kink;           /* skip inputs within kink_range of kink */
  float kink, kink_range;
  int phase;                 /* 0 = TRAIN (default), 1 = TEST */
} grad_case;

/* Runs one case; prints failures; returns the number of failed elements (0 = pass),
 * or -1 when the layer could not be built. */
int grad_check_run(const grad_case *c, int *elements_checked);

#endif
