/* Denormal floats are flushed to zero while caffegrid computes (the CPU's FTZ and
 * DAZ modes, as TensorFlow does): a net whose gradients drift into the denormal
 * range otherwise slows down severalfold (CIFAR-10 quick from DummyData: 68 ms per
 * iteration at first, 284 ms after 60 iterations). Only values below 1.2e-38
 * change. cg_runtime_flush_denormals(false) (the CLI's CAFFEGRID_DENORMALS=keep) keeps
 * IEEE's gradual underflow, as Caffe has it. */
#ifndef CG_MATH_FPMODE_H
#define CG_MATH_FPMODE_H

/* Sets FTZ/DAZ on the calling thread (unless kept) and returns the previous mode
 * for cg_fp_leave, so a caller's own floating point (Python, numpy) is untouched. */
unsigned cg_fp_enter(void);
void cg_fp_leave(unsigned saved);
/* Sets the same mode on every thread of the calling thread's OpenMP pool of n
 * threads (once per n): those threads run oneDNN's kernels and our loops. */
void cg_fp_workers(int n);

#endif
