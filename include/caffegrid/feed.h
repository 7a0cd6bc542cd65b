/* caffegrid feeding: hand arrays the host program owns (Python, Spark) to a
 * net's MemoryData layers, without copying them. */
#ifndef CAFFEGRID_FEED_H
#define CAFFEGRID_FEED_H

#include <stdbool.h>

#include "caffegrid/net.h"

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* What a MemoryData layer takes: batch_size and the shape of one sample. */
typedef struct cg_feed_shape {
  int batch, channels, height, width;
} cg_feed_shape;

/* The index of the MemoryData layer named `layer` (NULL: the net's first
 * MemoryData layer), or a negative error: CG_ERR_NOT_FOUND when there is no such
 * layer, CG_ERR_INVALID when the named layer is not a MemoryData layer. */
int cg_net_feed_layer(const cg_net *net, const char *layer);
/* The shape of the batches that layer produces (its top: crop_size square when
 * transform_param crops). */
int cg_net_feed_shape(const cg_net *net, const char *layer, cg_feed_shape *shape);
/* Hands the layer n samples: `data` is n*channels*height*width floats in
 * N x C x H x W order, `labels` n floats (NULL: labels read as 0). n must be a
 * positive multiple of batch_size; forward passes cycle through them in order.
 * Both arrays are BORROWED: they must stay valid and unmoved until the next feed
 * of this layer or until the net is freed. */
int cg_net_feed(cg_net *net, const char *layer, const float *data, const float *labels, int n);
/* Reads the layer's batches from a data source instead (caffegrid/source.h: a
 * "records" file of rows a host program was handed, an LMDB, ...), exactly as a
 * Data layer reads its database: the layer's transform_param applied per record
 * in prefetch threads (the net's data_threads), random crops and mirrors drawn per
 * record, and the read position saved in snapshots and restored by resume (a
 * position restored before the source is attached applies to it). The records must
 * come out of the transform in the layer's top shape: memory_data_param's channels x
 * height x width, or crop_size x crop_size when transform_param crops (as
 * CaffeOnSpark's data layers take the records' size from memory_data_param and
 * crop it). options may be NULL.
 * The net's rank and world size share the source as ranks share an LMDB (records
 * r, r+W, ...); with `rank_share` the source already holds only this rank's share
 * in that order (a Spark task's local copy), and is read whole, with the draws rank
 * r would make. An exact-pass net (scoring, features) reads it once. */
/* (see above) */
typedef struct cg_feed_source_options {
  bool rank_share; /* the source holds only this rank's share (see above) */
  bool resize;     /* decoded images resized to memory_data_param's height x width (CaffeOnSpark's -resize) */
} cg_feed_source_options;
int cg_net_feed_source(cg_net *net, const char *layer, const char *source_type, const char *location,
                       const cg_feed_source_options *options);
/* CaffeOnSpark's nets name their data: every MemoryData layer with a
 * memory_data_param.source is fed from it (cg_net_feed_source), the reader chosen
 * by the layer's source_class (com.yahoo.ml.caffe.LMDB, SeqImageDataSource) or, without
 * one, by what the file holds; "file:" prefixes are dropped. A Hadoop URI of another
 * scheme or an ImageDataFrame (a Spark DataFrame) is refused naming the layer. *fed
 * (may be NULL) gets the number of layers fed. */
int cg_net_feed_own_sources(cg_net *net, int *fed);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
