/* Paths in Hadoop's spelling: CaffeOnSpark's users write "file:///data/x" and
 * "hdfs://nn/x" wherever a path goes. The library and CLI read and write the local
 * filesystem; caffegrid.spark reaches the cluster's Hadoop filesystems. */
#ifndef CAFFEGRID_LOCAL_PATH_H
#define CAFFEGRID_LOCAL_PATH_H

#include "caffegrid/api.h"

#ifdef __cplusplus
extern "C" {
#endif

CG_API_BEGIN

/* `path` as the local filesystem knows it: "file:///a/b" and "file:a/b" become "/a/b"
 * and "a/b" (*local points into `path`); a path without a scheme is itself. Another
 * scheme ("hdfs://...", "s3a://...") is an error (CG_ERR_UNSUPPORTED) naming it and
 * `what` (the flag or field), so nothing is ever written into a local folder named
 * after a scheme. */
int cg_local_path(const char *path, const char *what, const char **local);

CG_API_END

#ifdef __cplusplus
}
#endif
#endif
