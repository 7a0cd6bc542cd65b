/* caffegrid's public API in one include: nets, blobs, feeding MemoryData layers,
 * solvers, communicators, run-time kernel choices, data sources and their
 * transforms and prefetching, images, Caffe's files (Datums, models, mean files),
 * LMDB/SequenceFile/HDF5 files, atomic writes, errors and logging
 * (caffegrid/environment.h, which reads the CAFFEGRID_* variables, is separate). Link with
 * `pkg-config --cflags --libs caffegrid` (lib/pkgconfig/caffegrid.pc, made by
 * `make install`). */
#ifndef CAFFEGRID_CAFFEGRID_H
#define CAFFEGRID_CAFFEGRID_H

#include "caffegrid/atomic_file.h"
#include "caffegrid/blob.h"
#include "caffegrid/caffe_files.h"
#include "caffegrid/comm.h"
#include "caffegrid/data.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"
#include "caffegrid/hdf5.h"
#include "caffegrid/image.h"
#include "caffegrid/lmdb_writer.h"
#include "caffegrid/local_path.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "caffegrid/onnx.h"
#include "caffegrid/prefetch.h"
#include "caffegrid/records_file.h"
#include "caffegrid/rng.h"
#include "caffegrid/runtime.h"
#include "caffegrid/seqfile.h"
#include "caffegrid/solver.h"
#include "caffegrid/source.h"
#include "caffegrid/transform.h"

#endif
