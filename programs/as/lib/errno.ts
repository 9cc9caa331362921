// WASI preview 1 error numbers (what every `wasi_snapshot_preview1` and `lshapes` call returns).

export namespace errno {
  export const SUCCESS: i32 = 0;
  export const BADF: i32 = 8;
  export const CHILD: i32 = 12;
  export const EXIST: i32 = 20;
  export const FAULT: i32 = 21;
  export const HOSTUNREACH: i32 = 23;
  export const INVAL: i32 = 28;
  export const ISDIR: i32 = 31;
  export const MSGSIZE: i32 = 35;
  export const NOBUFS: i32 = 42;
  export const NOENT: i32 = 44;
  export const NOEXEC: i32 = 45;
  export const NOSYS: i32 = 52;
  export const NOTDIR: i32 = 54;
  export const NOTEMPTY: i32 = 55;
  export const SRCH: i32 = 71;
  export const TIMEDOUT: i32 = 73;
  export const NOTCAPABLE: i32 = 76;
}

const NAMES: StaticArray<string> = [
  "ok", "E2BIG", "EACCES", "EADDRINUSE", "EADDRNOTAVAIL", "EAFNOSUPPORT", "EAGAIN", "EALREADY",
  "EBADF", "EBADMSG", "EBUSY", "ECANCELED", "ECHILD", "ECONNABORTED", "ECONNREFUSED", "ECONNRESET",
  "EDEADLK", "EDESTADDRREQ", "EDOM", "EDQUOT", "EEXIST", "EFAULT", "EFBIG", "EHOSTUNREACH", "EIDRM",
  "EILSEQ", "EINPROGRESS", "EINTR", "EINVAL", "EIO", "EISCONN", "EISDIR", "ELOOP", "EMFILE", "EMLINK",
  "EMSGSIZE", "EMULTIHOP", "ENAMETOOLONG", "ENETDOWN", "ENETRESET", "ENETUNREACH", "ENFILE",
  "ENOBUFS", "ENODEV", "ENOENT", "ENOEXEC", "ENOLCK", "ENOLINK", "ENOMEM", "ENOMSG", "ENOPROTOOPT",
  "ENOSPC", "ENOSYS", "ENOTCONN", "ENOTDIR", "ENOTEMPTY", "ENOTRECOVERABLE", "ENOTSOCK", "ENOTSUP",
  "ENOTTY", "ENXIO", "EOVERFLOW", "EOWNERDEAD", "EPERM", "EPIPE", "EPROTO", "EPROTONOSUPPORT",
  "EPROTOTYPE", "ERANGE", "EROFS", "ESPIPE", "ESRCH", "ESTALE", "ETIMEDOUT", "ETXTBSY", "EXDEV",
  "ENOTCAPABLE",
];

/** "ok" for 0, "ENOENT" for 44, "E?123" for a number that is not a WASI errno. */
export function errnoName(e: i32): string {
  if (e >= 0 && e < NAMES.length) return NAMES[e];
  return "E?" + e.toString();
}
