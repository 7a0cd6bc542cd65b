/* Feeding a MemoryData layer from the host program (C API, later Python/Spark). */
#ifndef CG_MEMORY_DATA_H
#define CG_MEMORY_DATA_H

#include "core/layer.h"

/* Hands the layer n samples (n a multiple of batch_size): data is n*C*H*W floats,
 * labels n floats. Borrowed: must stay valid while the layer reads them. */
int cg_memory_data_feed(cg_layer *l, const float *data, const float *labels, int n);

#endif
