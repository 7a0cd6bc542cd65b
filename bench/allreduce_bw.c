/* Allreduce bus bandwidth: caffegrid's gradient path (buckets on the
 * communication thread) against a plain MPI_Allreduce of the same sizes, in the
 * same run. Run under mpirun; prints a Markdown table row per size.
 * busbw = 2 (n-1)/n * bytes / time, as nccl-tests define it. */
#include <mpi.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/comm.h"
#include "caffegrid/environment.h"

static double plain(float *buf, size_t n, int reps) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t = MPI_Wtime();
  for (int r = 0; r < reps; r++) MPI_Allreduce(MPI_IN_PLACE, buf, (int)n, MPI_FLOAT, MPI_SUM, MPI_COMM_WORLD);
  return (MPI_Wtime() - t) / reps;
}

static double ours(cg_comm_async *a, float *buf, size_t n, size_t bucket, int reps) {
  MPI_Barrier(MPI_COMM_WORLD);
  double t = MPI_Wtime();
  for (int r = 0; r < reps; r++) {
    for (size_t end = n; end > 0;) { /* reverse order, as backward produces them */
      size_t start = end > bucket ? end - bucket : 0;
      cg_comm_async_start(a, buf + start, end - start);
      end = start;
    }
    cg_comm_async_wait_all(a);
  }
  return (MPI_Wtime() - t) / reps;
}

int main(int argc, char **argv) {
  cg_comm *comm;
  if (cg_env_comm_create(&argc, &argv, &comm)) return 1;
  int rank = cg_comm_rank(comm), size = cg_comm_size(comm);
  cg_comm_async *a;
  cg_comm_async_create(comm, &a);
  /* CIFAR-10 quick's and LeNet's gradients, then CaffeNet-sized buffers */
  const size_t sizes[] = {79510, 431080, 4u << 20, 16u << 20, 61u << 20};
  const size_t bucket = (4u << 20) / sizeof(float);
  if (rank == 0) {
    printf("| floats | MB | plain MPI_Allreduce busbw GB/s | caffegrid bucketed busbw GB/s | ratio |\n");
    printf("|---:|---:|---:|---:|---:|\n");
  }
  for (size_t i = 0; i < sizeof sizes / sizeof sizes[0]; i++) {
    size_t n = sizes[i];
    float *buf = malloc(n * sizeof(float));
    for (size_t k = 0; k < n; k++) buf[k] = 1e-3f;
    int reps = n > (8u << 20) ? 5 : 30;
    plain(buf, n, 2), ours(a, buf, n, bucket, 2); /* warm up buffers and connections */
    double tp = plain(buf, n, reps), to = ours(a, buf, n, bucket, reps);
    double factor = 2.0 * (size - 1) / size * n * sizeof(float) / 1e9;
    if (rank == 0)
      printf("| %zu | %.1f | %.2f | %.2f | %.2f |\n", n, n * 4 / 1e6, factor / tp, factor / to, tp / to);
    free(buf);
  }
  cg_comm_async_free(a);
  cg_comm_free(comm);
  return 0;
}
