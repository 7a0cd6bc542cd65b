/* A program outside the tree, built only from the installed caffegrid (pkg-config):
 * builds a deploy net from its prototxt, loads weights, puts one 28x28 grey image
 * (raw bytes, scaled by 1/256 as LeNet was trained) into the input blob, runs
 * forward, and prints the class with the highest output.
 *   classify NET.prototxt WEIGHTS.caffemodel IMAGE.raw */
#include <caffegrid/caffegrid.h>
#include <stdio.h>

int main(int argc, char **argv) {
  if (argc != 4) {
    fprintf(stderr, "usage: classify NET WEIGHTS IMAGE\n");
    return 2;
  }
  cg_net_options options = {.phase = 1, .world_size = 1};
  cg_net *net = NULL;
  if (cg_net_create_from_file(argv[1], &options, &net) || cg_net_load_weights(net, argv[2])) {
    fprintf(stderr, "classify: %s\n", cg_error_message());
    cg_net_free(net);
    return 1;
  }
  cg_blob *data = cg_net_blob(net, "data");
  unsigned char pixels[28 * 28];
  FILE *f = fopen(argv[3], "rb");
  size_t got = f ? fread(pixels, 1, sizeof pixels, f) : 0;
  if (f) fclose(f);
  if (!data || data->count < sizeof pixels || got != sizeof pixels) {
    fprintf(stderr, "classify: need a 'data' blob of at least 784 values and a 784-byte image\n");
    cg_net_free(net);
    return 1;
  }
  for (size_t i = 0; i < data->count; i++) data->data[i] = pixels[i % sizeof pixels] * 0.00390625f;
  int rc = cg_net_forward(net, NULL);
  cg_blob *out = rc ? NULL : cg_net_output(net, 0);
  if (!out) {
    fprintf(stderr, "classify: %s\n", cg_error_message());
    cg_net_free(net);
    return 1;
  }
  size_t classes = out->count / (size_t)out->shape[0], best = 0;
  for (size_t c = 1; c < classes; c++)
    if (out->data[c] > out->data[best]) best = c;
  printf("class %zu\n", best);
  cg_net_free(net);
  return 0;
}
