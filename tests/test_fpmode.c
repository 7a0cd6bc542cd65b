/* Denormals are flushed while a net computes (math/fpmode.h) and the caller's
 * floating-point mode is left as it was; CAFFEGRID_DENORMALS=keep keeps them. */
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>
#include <xmmintrin.h>

#include "caffegrid/net.h"
#include "core/net_proto.h"
#include "proto/caffe.pb-c.h"
#include "caffegrid/environment.h"
#include "caffegrid/runtime.h"
#include "check.h"
#include "proto/text_format.h"

static const char net_text[] =
    "layer { name: 'd' type: 'DummyData' top: 'x' dummy_data_param { shape { dim: 2 dim: 3 } "
    "data_filler { type: 'constant' value: 1e-39 } } }\n"
    "layer { name: 'r' type: 'ReLU' bottom: 'x' top: 'y' }\n";

/* y = ReLU(1e-39): 0 when denormals are flushed, 1e-39 when kept */
static float relu_of_denormal(void) {
  ProtobufCMessage *msg = NULL;
  cg_net *net = NULL;
  float y = -1;
  cg_net_options o = {.phase = 1, .world_size = 1, .seed = 1};
  if (cg_text_parse(&caffe__net_parameter__descriptor, net_text, strlen(net_text), "fpmode", &msg) == 0 &&
      cg_net_create((Caffe__NetParameter *)msg, &o, &net) == 0 && cg_net_forward(net, NULL) == 0)
    y = cg_net_blob(net, "y")->data[0];
  cg_net_free(net);
  if (msg) protobuf_c_message_free_unpacked(msg, NULL);
  return y;
}

int main(void) {
  pid_t child = fork();
  if (child == 0) { /* kept: IEEE gradual underflow, as Caffe computes; the variable as the CLI reads it */
    setenv("CAFFEGRID_DENORMALS", "keep", 1);
    cg_env_configure_runtime();
    _exit(relu_of_denormal() == 1e-39f ? 0 : 1);
  }
  int status = 0;
  CHECK(child > 0 && waitpid(child, &status, 0) == child);
  CHECK_MSG(WIFEXITED(status) && WEXITSTATUS(status) == 0, "CAFFEGRID_DENORMALS=keep did not keep a denormal");
  cg_runtime_flush_denormals(false); /* the library's own switch, both ways */
  CHECK_MSG(relu_of_denormal() == 1e-39f, "cg_runtime_flush_denormals(false) did not keep a denormal");
  cg_runtime_flush_denormals(true);
  /* the library reads no environment variable: only a host program's call turns it into a choice */
  setenv("CAFFEGRID_DENORMALS", "keep", 1);
  unsigned modes = ~0x3fu; /* MXCSR's control bits; bits 0-5 are sticky exception flags */
  unsigned before = _mm_getcsr() & modes;
  float y = relu_of_denormal();
  CHECK_MSG(y == 0.0f, "ReLU(1e-39) gave %g; denormals should be flushed to zero (the variable alone is not read)", y);
  CHECK_MSG((_mm_getcsr() & modes) == before, "the caller's MXCSR modes changed from %#x to %#x", before,
            _mm_getcsr() & modes);
  return CHECK_REPORT();
}
