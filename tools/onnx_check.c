/* The parity check of an export (onnx_check.h). The engine's inputs and outputs go
 * to a temporary folder as raw float32 files with a manifest; a small Python
 * program, run with python3, feeds the inputs to onnxruntime and compares. */
#include "onnx_check.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "caffegrid/error.h"
#include "caffegrid/rng.h"

static const char *const compare_program =
    "import sys, os\n"
    "try:\n"
    "    import numpy as np, onnxruntime as ort\n"
    "except ImportError as e:\n"
    "    print(f'caffegrid export: -check needs onnxruntime and numpy in python3 ({e}): pip install onnxruntime')\n"
    "    sys.exit(2)\n"
    "folder, model = sys.argv[1], sys.argv[2]\n"
    "feeds, expected = {}, {}\n"
    "for i, line in enumerate(open(os.path.join(folder, 'manifest'))):\n"
    "    kind, name, *dims = line.split()\n"
    "    value = np.fromfile(os.path.join(folder, str(i)), np.float32).reshape([int(d) for d in dims])\n"
    "    (feeds if kind == 'input' else expected)[name] = value\n"
    "session = ort.InferenceSession(model, providers=['CPUExecutionProvider'])\n"
    "names = [o.name for o in session.get_outputs()]\n"
    "got = dict(zip(names, session.run(names, feeds)))\n"
    "worst = 0.0\n"
    "for name, want in expected.items():\n"
    "    have = got[name].reshape(want.shape)\n"
    "    diff = float(np.max(np.abs(have.astype(np.float64) - want))) if want.size else 0.0\n"
    "    scale = max(1.0, float(np.max(np.abs(want)))) if want.size else 1.0\n"
    "    print(f\"output '{name}' {list(want.shape)}: largest difference {diff:.3g} (largest value {scale:.3g})\")\n"
    "    worst = max(worst, diff / scale)\n"
    "print(f'largest difference, relative to each output\\'s largest value: {worst:.3g} (onnxruntime {ort.__version__})')\n"
    "sys.exit(0 if worst <= 1e-4 else 1)\n";

static int write_blob(const char *folder, int index, const cg_blob *b, FILE *manifest, const char *kind) {
  char path[4200];
  snprintf(path, sizeof path, "%s/%d", folder, index);
  FILE *f = fopen(path, "wb");
  if (!f || fwrite(b->data, sizeof(float), b->count, f) != b->count) {
    if (f) fclose(f);
    return cg_error(CG_ERR_IO, "cannot write '%s'", path);
  }
  fclose(f);
  fprintf(manifest, "%s %s", kind, b->name);
  for (int i = 0; i < b->num_axes; i++) fprintf(manifest, " %d", b->shape[i]);
  fprintf(manifest, "\n");
  return CG_OK;
}

/* The graph's inputs (the exporter's report names them) filled with seeded random
 * values; *first_compute: the first layer past the data layers, where the engine starts. */
static int fill_inputs(cg_net *net, const cg_onnx_report *report, int *first_compute) {
  cg_rng rng;
  cg_rng_seed(&rng, 20261206);
  for (int i = 0; i < report->num_inputs; i++) {
    cg_blob *b = cg_net_blob(net, report->inputs[i]);
    if (!b) return cg_error(CG_ERR_NOT_FOUND, "the graph's input '%s' is no blob of the net", report->inputs[i]);
    cg_rng_uniform_fill(&rng, 0.0f, 1.0f, b->data, b->count);
  }
  *first_compute = 0;
  while (*first_compute < cg_net_num_layers(net) && cg_net_layer_num_bottoms(net, *first_compute) == 0) ++*first_compute;
  return CG_OK;
}

/* Each named blob into the folder, with a manifest line "KIND NAME dims...". */
static int write_blobs(cg_net *net, const char *folder, char *const *names, int count, const char *kind, FILE *manifest,
                       int *index) {
  for (int i = 0; i < count; i++) {
    const cg_blob *b = cg_net_blob(net, names[i]);
    int rc = b ? write_blob(folder, (*index)++, b, manifest, kind)
               : cg_error(CG_ERR_NOT_FOUND, "the graph's %s '%s' is no blob of the net", kind, names[i]);
    if (rc) return rc;
  }
  return CG_OK;
}

int cg_onnx_check(cg_net *net, const char *model_path, const cg_onnx_report *report) {
  int start = 0;
  int rc = fill_inputs(net, report, &start);
  if (!rc) rc = cg_net_forward_range(net, start, cg_net_num_layers(net) - 1, NULL);
  char folder[] = "/tmp/caffegrid-onnx-check-XXXXXX";
  if (!rc && !mkdtemp(folder)) rc = cg_error(CG_ERR_IO, "cannot make a temporary folder for the check");
  if (rc) return rc;
  char path[4200];
  snprintf(path, sizeof path, "%s/manifest", folder);
  FILE *manifest = fopen(path, "w");
  int index = 0;
  if (!manifest) rc = cg_error(CG_ERR_IO, "cannot write '%s'", path);
  if (!rc) rc = write_blobs(net, folder, report->inputs, report->num_inputs, "input", manifest, &index);
  if (!rc) rc = write_blobs(net, folder, report->outputs, report->num_outputs, "output", manifest, &index);
  if (manifest) fclose(manifest);
  char program[4200];
  snprintf(program, sizeof program, "%s/compare.py", folder);
  FILE *p = rc ? NULL : fopen(program, "w");
  if (!rc && (!p || fputs(compare_program, p) < 0)) rc = cg_error(CG_ERR_IO, "cannot write '%s'", program);
  if (p) fclose(p);
  if (!rc) {
    char command[9000];
    snprintf(command, sizeof command, "python3 '%s' '%s' '%s'", program, folder, model_path);
    fflush(stdout);
    int status = system(command);
    if (status != 0)
      rc = cg_error(CG_ERR_INVALID, status == 2 << 8 || status == 127 << 8
                                        ? "the parity check could not run onnxruntime (see above)"
                                        : "the exported model differs from the engine by more than 1e-4 (see above)");
  }
  snprintf(path, sizeof path, "rm -rf '%s'", folder);
  if (system(path) != 0) fprintf(stderr, "caffegrid export: could not remove %s\n", folder);
  return rc;
}
