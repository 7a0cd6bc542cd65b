/* CaffeOnSpark's nets say where their data are: memory_data_param.source, with the
 * layer's source_class naming the reader. The CLI feeds such layers from there
 * (cg_net_feed_own_sources in caffegrid/feed.h), so a CaffeOnSpark net runs under
 * caffegrid train/test/features and mpirun as it is. */
#include <string.h>

#include "caffegrid/data.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"
#include "caffegrid/local_path.h"
#include "core/net_impl.h"

/* The reader a source_class names ("lmdb", "seqfile"), NULL to find it from the
 * file; an error for the classes only Spark reads. */
static int type_of_class(const char *source_class, const char **type) {
  *type = NULL;
  if (!source_class || !source_class[0]) return CG_OK;
  const char *dot = strrchr(source_class, '.'), *name = dot ? dot + 1 : source_class;
  if (strcmp(name, "LMDB") == 0) return *type = "lmdb", CG_OK;
  if (strcmp(name, "SeqImageDataSource") == 0) return *type = "seqfile", CG_OK;
  if (strcmp(name, "ImageDataFrame") == 0)
    return cg_error(CG_ERR_UNSUPPORTED, "source_class '%s' is a Spark DataFrame: run the net with caffegrid.spark "
                    "(spark_submit.py), or convert the data to an LMDB", source_class);
  return cg_error(CG_ERR_UNSUPPORTED, "source_class '%s' is not one caffegrid reads (LMDB, SeqImageDataSource, "
                  "ImageDataFrame)", source_class);
}

static int feed_layer(cg_net *net, int i) {
  const cg_layer *l = &net->layers[i].layer;
  const char *source, *type;
  int rc = type_of_class(l->param->source_class, &type);
  if (!rc) rc = cg_local_path(l->param->memory_data_param->source, "source", &source);
  if (rc) return rc;
  if (!type) {
    cg_data_kind kind;
    rc = cg_data_kind_of(source, &kind);
    if (rc) return rc;
    type = cg_data_source_type(kind);
    if (!type) return cg_error(CG_ERR_UNSUPPORTED, "source '%s' is no data source caffegrid reads", source);
  }
  return cg_net_feed_source(net, l->name, type, source, NULL);
}

int cg_net_feed_own_sources(cg_net *net, int *fed) {
  if (fed) *fed = 0;
  for (int i = 0; i < net->num_layers; i++) {
    const cg_layer *l = &net->layers[i].layer;
    if (strcmp(l->ops->type, "MemoryData") != 0 || !l->param->memory_data_param) continue;
    const char *source = l->param->memory_data_param->source;
    if (!source || !source[0]) continue;
    int rc = feed_layer(net, i);
    if (rc)
      return cg_error_wrap(rc, "%s: layer '%s' (MemoryData): ", net->opt.source_name ? net->opt.source_name : "net",
                           l->name);
    if (fed) (*fed)++;
  }
  return CG_OK;
}
