/* Feeding a MemoryData layer from the host program: arrays, or a data source. */
#ifndef CG_MEMORY_DATA_H
#define CG_MEMORY_DATA_H

#include "caffegrid/feed.h"
#include "core/layer.h"

/* Hands the layer n samples (n a multiple of batch_size): data is n*C*H*W floats,
 * labels n floats. Borrowed: must stay valid while the layer reads them. */
int cg_memory_data_feed(cg_layer *l, const float *data, const float *labels, int n);
/* Reads the layer's batches from a data source from now on (see cg_net_feed_source). */
int cg_memory_data_feed_source(cg_layer *l, const char *type, const char *location,
                               const cg_feed_source_options *options);

#endif
