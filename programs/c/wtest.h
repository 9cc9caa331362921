// Helpers for the WASI test programs: run a call, print "label: ok" or "label: ENAME".
// The same sources also build natively (cc -o x x.c) to compare with Linux.
#ifndef WTEST_H
#define WTEST_H
#ifndef __wasi__
#define _GNU_SOURCE
#endif
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

#ifdef __wasi__
#define WT_ERRNOS(X)                                                                          \
  X(E2BIG) X(EACCES) X(EADDRINUSE) X(EADDRNOTAVAIL) X(EAFNOSUPPORT) X(EAGAIN) X(EALREADY)      \
  X(EBADF) X(EBADMSG) X(EBUSY) X(ECANCELED) X(ECHILD) X(ECONNABORTED) X(ECONNREFUSED)          \
  X(ECONNRESET) X(EDEADLK) X(EDESTADDRREQ) X(EDOM) X(EDQUOT) X(EEXIST) X(EFAULT) X(EFBIG)      \
  X(EHOSTUNREACH) X(EIDRM) X(EILSEQ) X(EINPROGRESS) X(EINTR) X(EINVAL) X(EIO) X(EISCONN)       \
  X(EISDIR) X(ELOOP) X(EMFILE) X(EMLINK) X(EMSGSIZE) X(EMULTIHOP) X(ENAMETOOLONG)             \
  X(ENETDOWN) X(ENETRESET) X(ENETUNREACH) X(ENFILE) X(ENOBUFS) X(ENODEV) X(ENOENT)            \
  X(ENOEXEC) X(ENOLCK) X(ENOLINK) X(ENOMEM) X(ENOMSG) X(ENOPROTOOPT) X(ENOSPC) X(ENOSYS)      \
  X(ENOTCONN) X(ENOTDIR) X(ENOTEMPTY) X(ENOTRECOVERABLE) X(ENOTSOCK) X(ENOTSUP) X(ENOTTY)     \
  X(ENXIO) X(EOVERFLOW) X(EOWNERDEAD) X(EPERM) X(EPIPE) X(EPROTO) X(EPROTONOSUPPORT)          \
  X(EPROTOTYPE) X(ERANGE) X(EROFS) X(ESPIPE) X(ESRCH) X(ESTALE) X(ETIMEDOUT) X(ETXTBSY)       \
  X(EXDEV) X(ENOTCAPABLE)
static const char *errname(int e) {
  if (e == 0) return "ok";
#define WT_CASE(name) if (e == name) return #name;
  WT_ERRNOS(WT_CASE)
#undef WT_CASE
  return "E?";
}
#else
static const char *errname(int e) {
  if (e == 0) return "ok";
  const char *n = strerrorname_np(e);
  return n ? n : "E?";
}
#endif

/* Run `expr` (a libc call returning < 0 on failure, errno set) and report. */
#define T(label, expr)                                                  \
  do {                                                                  \
    errno = 0;                                                          \
    long wt_r = (long)(expr);                                           \
    printf("%s: %s\n", (label), wt_r < 0 ? errname(errno) : "ok");      \
  } while (0)

/* Like T, but prints the value on success. */
#define V(label, expr)                                                  \
  do {                                                                  \
    errno = 0;                                                          \
    long wt_r = (long)(expr);                                           \
    if (wt_r < 0) printf("%s: %s\n", (label), errname(errno));          \
    else printf("%s: %ld\n", (label), wt_r);                            \
  } while (0)

/* Print up to 63 bytes of a file as "label: \"…\"", or the errno of opening it. */
static inline void cat(const char *label, const char *path) {
  char buf[64] = {0};
  int fd = open(path, O_RDONLY);
  if (fd < 0) {
    printf("%s: %s\n", label, errname(errno));
    return;
  }
  read(fd, buf, sizeof buf - 1);
  close(fd);
  printf("%s: \"%s\"\n", label, buf);
}

/* Print whether a condition holds. */
#define CHECK(label, cond) printf("%s: %s\n", (label), (cond) ? "yes" : "NO")

#endif
