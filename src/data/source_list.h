/* The one list of data-source types: each entry names the cg_source_ops table a
 * source file defines (its .name is what cg_source_open takes). */
#ifndef CG_DATA_SOURCE_LIST_H
#define CG_DATA_SOURCE_LIST_H

#define CG_SOURCE_LIST(X) \
  X(cg_source_lmdb)       \
  X(cg_source_image_list) \
  X(cg_source_seqfile)    \
  X(cg_source_hdf5)       \
  X(cg_source_records)

#endif
