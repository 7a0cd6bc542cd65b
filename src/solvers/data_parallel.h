/* Synchronous data parallelism for a solver: rank 0's weights to every rank at
 * the start, then per iteration the gradients summed across ranks in buckets
 * started during backward (reverse layer order) and averaged, so every rank
 * applies the same update to the same weights. */
#ifndef CG_DATA_PARALLEL_H
#define CG_DATA_PARALLEL_H

#include <stddef.h>

#include "caffegrid/comm.h"
#include "caffegrid/net.h"

typedef struct cg_data_parallel cg_data_parallel;

/* bucket_bytes: gradient bytes per allreduce (0: the default, 4 MiB). */
int cg_dp_create(cg_comm *comm, cg_net *net, size_t bucket_bytes, cg_data_parallel **out);
void cg_dp_free(cg_data_parallel *dp);
/* Copies rank 0's weights (and `extra`, e.g. solver history, when not NULL) to every rank. */
int cg_dp_broadcast_weights(cg_data_parallel *dp, float *extra, size_t extra_count);
/* Call before the backward pass whose gradients are final for this iteration:
 * buckets are started from the backward hook as their layers finish. */
void cg_dp_arm(cg_data_parallel *dp);
/* Waits for every bucket and divides the sums by the number of ranks. */
int cg_dp_finish(cg_data_parallel *dp);
/* Mean of a value across ranks (e.g. the loss for display). */
int cg_dp_mean(cg_data_parallel *dp, float *value);
/* Compares a checksum of the weights across ranks; an error names the iteration when they differ. */
int cg_dp_check_consistency(cg_data_parallel *dp, int iter);
int cg_dp_num_buckets(const cg_data_parallel *dp);
double cg_dp_exposed_comm_seconds(const cg_data_parallel *dp);

#endif
