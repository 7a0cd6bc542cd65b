/* The commands' shared set-up (cli_context.h). */
#include "cli_context.h"

#include <stdio.h>

#include "caffegrid/environment.h"
#include "caffegrid/error.h"
#include "caffegrid/log.h"

static bool fail(const char *command, const char *message) {
  fprintf(stderr, "caffegrid %s: %s\n", command, message);
  return false;
}

bool cg_cli_begin(const cg_flag *flags, const char *command, int default_phase, bool join_job, cg_cli_context *ctx) {
  *ctx = (cg_cli_context){.command = command, .net = {.world_size = 1}};
  if (cg_flag_refuses_gpu(flags, command)) return false;
  long devices;
  if (!cg_flag_int(flags, "devices", 1, &devices)) return false;
  if (devices != 1) {
    fprintf(stderr, "caffegrid %s: -devices %ld: this CPU build runs one device per process; start more ranks instead\n",
            command, devices);
    return false;
  }
  if (!cg_flag_phase(flags, default_phase, command, &ctx->net.phase)) return false;
  if (cg_env_data_options(&ctx->net.data_threads, &ctx->net.skip_bad_records, &ctx->net.max_bad_fraction)) return fail(command, cg_error_message());
  if (!join_job) return true;
  cg_comm_options comm;
  if (cg_env_comm_options(NULL, NULL, &comm)) return fail(command, cg_error_message());
  if (cg_flag_get(flags, "peer_timeout")) { /* the flag wins over CAFFEGRID_PEER_TIMEOUT */
    long seconds;
    if (!cg_flag_int(flags, "peer_timeout", 0, &seconds)) return false;
    if (seconds <= 0) return fail(command, "-peer_timeout must be a positive number of seconds");
    comm.timeout_s = (double)seconds;
  }
  if (cg_comm_create(&comm, &ctx->comm)) return fail(command, cg_error_message());
  ctx->net.rank = cg_comm_rank(ctx->comm), ctx->net.world_size = cg_comm_size(ctx->comm);
  if (ctx->net.rank != 0) cg_log_set_quiet(1); /* rank 0 speaks for the job */
  return true;
}

void cg_cli_end(cg_cli_context *ctx) {
  cg_comm_free(ctx->comm);
  ctx->comm = NULL;
}
