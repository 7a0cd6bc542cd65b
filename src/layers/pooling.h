/* Pooling's test hook: the fast AVE kernel (interior columns vectorised) is tested
 * bit for bit against the one-output-at-a-time reference kept beside it. */
#ifndef CG_LAYERS_POOLING_H
#define CG_LAYERS_POOLING_H

#include <stdbool.h>

/* Pooling layers run the reference kernels while this is on (tests only). */
void cg_pool_use_reference(bool on);

#endif
