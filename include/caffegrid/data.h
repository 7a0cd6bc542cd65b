/* What kind of data file a path is, decided once for every door (`caffegrid
 * inspect`, the Python module, the Spark helpers): by what the file holds, not by
 * its name. */
#ifndef CAFFEGRID_DATA_H
#define CAFFEGRID_DATA_H

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

typedef enum cg_data_kind {
  CG_DATA_OTHER = 0,    /* none of these (a .caffemodel, a .binaryproto, anything else) */
  CG_DATA_LMDB,         /* a directory holding data.mdb, or data.mdb itself */
  CG_DATA_SEQFILE,      /* a Hadoop SequenceFile ("SEQ" magic) */
  CG_DATA_SEQFILE_DIR,  /* a directory of SequenceFile part files (names starting '.' or '_' passed over) */
  CG_DATA_HDF5,         /* an HDF5 file (its signature) */
  CG_DATA_HDF5_LIST,    /* a text file every word of which names an .h5/.hdf5/.hdf file */
  CG_DATA_IMAGE_LIST,   /* any other text file: Caffe's "path label" lines */
} cg_data_kind;

/* The kind of `path`. Errors (naming the path): it cannot be opened, it is an empty
 * file, or a directory that is neither an LMDB nor a folder of SequenceFiles. */
int cg_data_kind_of(const char *path, cg_data_kind *kind);
/* The data source type that reads that kind ("lmdb", "seqfile", "hdf5",
 * "image_list"), or NULL for CG_DATA_OTHER. */
const char *cg_data_source_type(cg_data_kind kind);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
