/* The "hdf5" data source's table, for the source list (its functions and options
 * are public: caffegrid/hdf5.h). */
#ifndef CG_HDF5_SOURCE_H
#define CG_HDF5_SOURCE_H

#include "caffegrid/hdf5.h"

extern const cg_source_ops cg_source_hdf5;

#endif
