/* Fuzz target: the prototxt parser (cg_text_parse) on NetParameter and
 * SolverParameter text, the upgrade of old nets, and print -> reparse -> print,
 * which must give the same text again. The first byte picks the message type. */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "caffegrid/error.h"
#include "proto/text_format.h"
#include "proto/upgrade.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
  if (size < 1) return 0;
  int solver = data[0] & 1;
  const ProtobufCMessageDescriptor *desc =
      solver ? &caffe__solver_parameter__descriptor : &caffe__net_parameter__descriptor;
  ProtobufCMessage *m = NULL;
  if (cg_text_parse(desc, (const char *)data + 1, size - 1, "fuzz.prototxt", &m)) return 0;
  int upgraded = solver ? cg_upgrade_solver((Caffe__SolverParameter *)m, "fuzz.prototxt")
                        : cg_upgrade_net((Caffe__NetParameter *)m, "fuzz.prototxt");
  (void)upgraded;
  char *text = cg_text_print(m);
  if (text) {
    ProtobufCMessage *again = NULL;
    if (cg_text_parse(desc, text, strlen(text), "printed.prototxt", &again)) {
      fprintf(stderr, "printed text does not parse: %s\n%s\n", cg_error_message(), text);
      abort();
    }
    char *text2 = cg_text_print(again);
    if (!text2 || strcmp(text, text2) != 0) {
      fprintf(stderr, "print(parse(print(x))) != print(x):\n%s\n---\n%s\n", text, text2 ? text2 : "(null)");
      abort();
    }
    free(text2);
    protobuf_c_message_free_unpacked(again, NULL);
    free(text);
  }
  protobuf_c_message_free_unpacked(m, NULL);
  return 0;
}
