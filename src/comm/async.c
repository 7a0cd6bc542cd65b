/* The communication thread: runs queued allreduces one after another, in the
 * order they were started, while the caller goes on computing. */
#include <pthread.h>
#include <stdlib.h>
#include <time.h>

#include "caffegrid/error.h"
#include "comm/comm_impl.h"

enum { QUEUE_CAPACITY = 1024 };

typedef struct job {
  float *data;
  size_t n;
} job;

struct cg_comm_async {
  cg_comm *comm;
  pthread_t thread;
  pthread_mutex_t lock;
  pthread_cond_t changed;
  job queue[QUEUE_CAPACITY];
  size_t started, finished; /* counts; queue slot = count % capacity */
  int error;
  char message[512];
  bool stop;
  double wait_seconds;
};

static void *run(void *arg) {
  cg_comm_async *a = arg;
  pthread_mutex_lock(&a->lock);
  for (;;) {
    while (a->finished == a->started && !a->stop) pthread_cond_wait(&a->changed, &a->lock);
    if (a->finished == a->started && a->stop) break;
    job j = a->queue[a->finished % QUEUE_CAPACITY];
    pthread_mutex_unlock(&a->lock);
    int rc = a->error ? a->error : cg_comm_allreduce_sum(a->comm, j.data, j.n);
    pthread_mutex_lock(&a->lock);
    if (rc && !a->error) {
      a->error = rc;
      snprintf(a->message, sizeof a->message, "%s", cg_error_message());
    }
    a->finished++;
    pthread_cond_broadcast(&a->changed);
  }
  pthread_mutex_unlock(&a->lock);
  return NULL;
}

int cg_comm_async_create(cg_comm *c, cg_comm_async **out) {
  cg_comm_async *a = calloc(1, sizeof *a);
  if (!a) return cg_error(CG_ERR_NOMEM, "out of memory");
  a->comm = c;
  pthread_mutex_init(&a->lock, NULL);
  pthread_cond_init(&a->changed, NULL);
  if (pthread_create(&a->thread, NULL, run, a) != 0) {
    free(a);
    return cg_error(CG_ERR_COMM, "cannot start the communication thread");
  }
  *out = a;
  return CG_OK;
}

void cg_comm_async_free(cg_comm_async *a) {
  if (!a) return;
  pthread_mutex_lock(&a->lock);
  a->stop = true;
  pthread_cond_broadcast(&a->changed);
  pthread_mutex_unlock(&a->lock);
  pthread_join(a->thread, NULL);
  pthread_mutex_destroy(&a->lock);
  pthread_cond_destroy(&a->changed);
  free(a);
}

int cg_comm_async_start(cg_comm_async *a, float *data, size_t n) {
  pthread_mutex_lock(&a->lock);
  while (a->started - a->finished >= QUEUE_CAPACITY) pthread_cond_wait(&a->changed, &a->lock);
  a->queue[a->started % QUEUE_CAPACITY] = (job){data, n};
  a->started++;
  pthread_cond_broadcast(&a->changed);
  pthread_mutex_unlock(&a->lock);
  return CG_OK;
}

int cg_comm_async_wait_all(cg_comm_async *a) {
  struct timespec t0, t1;
  clock_gettime(CLOCK_MONOTONIC, &t0);
  pthread_mutex_lock(&a->lock);
  while (a->finished != a->started) pthread_cond_wait(&a->changed, &a->lock);
  int rc = a->error;
  char message[512];
  snprintf(message, sizeof message, "%s", a->message);
  pthread_mutex_unlock(&a->lock);
  clock_gettime(CLOCK_MONOTONIC, &t1);
  a->wait_seconds += (double)(t1.tv_sec - t0.tv_sec) + (t1.tv_nsec - t0.tv_nsec) / 1e9;
  return rc ? cg_error(rc, "%s", message) : CG_OK;
}

double cg_comm_async_wait_seconds(const cg_comm_async *a) { return a->wait_seconds; }
