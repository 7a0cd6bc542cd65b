/* caffegrid's public API in one include: nets, blobs, feeding MemoryData layers,
 * solvers, communicators, run-time kernel choices, errors and logging
 * (caffegrid/environment.h, which reads the CAFFEGRID_* variables, is separate). Link with
 * `pkg-config --cflags --libs caffegrid` (lib/pkgconfig/caffegrid.pc, made by
 * `make install`). */
#ifndef CAFFEGRID_CAFFEGRID_H
#define CAFFEGRID_CAFFEGRID_H

#include "caffegrid/blob.h"
#include "caffegrid/comm.h"
#include "caffegrid/error.h"
#include "caffegrid/feed.h"
#include "caffegrid/log.h"
#include "caffegrid/net.h"
#include "caffegrid/runtime.h"
#include "caffegrid/solver.h"

#endif
