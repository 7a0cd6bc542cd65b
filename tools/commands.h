/* The caffegrid commands, each in its own file: cmd_<name>.c. argv starts after the command name. */
#ifndef CG_TOOLS_COMMANDS_H
#define CG_TOOLS_COMMANDS_H

int cmd_compute_mean(int argc, char **argv);
int cmd_convert(int argc, char **argv);
int cmd_convert_imageset(int argc, char **argv); /* "convert imageset", dispatched by cmd_convert */
int cmd_convert_seqfile(int argc, char **argv);  /* "convert seqfile", dispatched by cmd_convert */
int cmd_convert_cifar(int argc, char **argv);    /* "convert cifar", dispatched by cmd_convert */
int cmd_inspect(int argc, char **argv);
int cmd_test(int argc, char **argv);
int cmd_time(int argc, char **argv);
int cmd_train(int argc, char **argv);
int cmd_features(int argc, char **argv);
int cmd_plot(int argc, char **argv);
int cmd_export(int argc, char **argv);

#endif
