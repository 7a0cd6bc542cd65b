/* CaffeOnSpark's commands name a solver (-conf) where Caffe's name a net: this
 * finds the net a solver file trains and tests, and its first test_iter. */
#ifndef CG_TOOLS_SOLVER_NET_H
#define CG_TOOLS_SOLVER_NET_H

/* *net_path is malloc'd (tried as written, then beside the solver file);
 * *test_iter is left alone when the solver has none. */
int cg_solver_net_path(const char *solver_path, char **net_path, long *test_iter);

#endif
