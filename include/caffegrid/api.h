/* What libcaffegrid.so exports: the library is compiled with -fvisibility=hidden,
 * and each public header declares its functions between CG_API_BEGIN and CG_API_END,
 * so those (and nothing else: not the internal functions, not protobuf-c's generated
 * caffe__* symbols) are visible to programs and libraries that load it. */
#ifndef CAFFEGRID_API_H
#define CAFFEGRID_API_H

#if defined(__GNUC__) || defined(__clang__)
#define CG_API_BEGIN _Pragma("GCC visibility push(default)")
#define CG_API_END _Pragma("GCC visibility pop")
#else
#define CG_API_BEGIN
#define CG_API_END
#endif

#endif
