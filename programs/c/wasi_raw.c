// WASI test: every preview 1 call made directly (wasi/api.h and raw imports), with the error
// paths libc cannot reach: rights, preopens, capabilities (`..`, absolute paths and symlinks
// leaving a directory fd), mounts (EXDEV, EROFS, EBUSY), bad pointers (EFAULT), readdir
// buffers and cookies, renumber, poll_oneoff, sockets, proc_raise, proc_exit.
//
// Expects: argv = [wasi_raw, one, "two words"], env HOME=/ and TESTVAR=value, stdin "abc",
// preopens "/" (fd 3, with empty directories tmp and ro), "/ro" (read-only, holding
// "readme" = "read me"), "/tmp". Ends with proc_exit(7).
#include "wtest.h"
#include <poll.h>
#include <time.h>
#include <stdint.h>
#include <stdlib.h>
#include <unistd.h>
#include <wasi/api.h>

#pragma clang diagnostic ignored "-Wunused-result" /* results not needed are not checked */

#define IMPORT(name) __attribute__((import_module("wasi_snapshot_preview1"), import_name(#name)))
int32_t raw_path_open(int32_t fd, int32_t dirflags, int32_t path, int32_t path_len, int32_t oflags,
                      int64_t base, int64_t inheriting, int32_t fdflags, int32_t fd_out) IMPORT(path_open);
int32_t raw_fd_write(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t nwritten) IMPORT(fd_write);
int32_t raw_fd_read(int32_t fd, int32_t iovs, int32_t iovs_len, int32_t nread) IMPORT(fd_read);
int32_t raw_fd_fdstat_get(int32_t fd, int32_t out) IMPORT(fd_fdstat_get);
int32_t raw_fd_readdir(int32_t fd, int32_t buf, int32_t len, int64_t cookie, int32_t used) IMPORT(fd_readdir);
int32_t raw_path_readlink(int32_t fd, int32_t path, int32_t len, int32_t buf, int32_t buf_len, int32_t used) IMPORT(path_readlink);
int32_t raw_poll_oneoff(int32_t in, int32_t out, int32_t n, int32_t nevents) IMPORT(poll_oneoff);
int32_t raw_args_get(int32_t argv, int32_t buf) IMPORT(args_get);
int32_t raw_clock_time_get(int32_t id, int64_t precision, int32_t out) IMPORT(clock_time_get);
int32_t raw_random_get(int32_t buf, int32_t len) IMPORT(random_get);
int32_t raw_proc_raise(int32_t sig) IMPORT(proc_raise);

#define R(label, expr) printf("%s: %s\n", (label), errname((int)(expr)))
#define BAD ((int32_t)0xFFFFFFF0u)
#define PTR(p) ((int32_t)(uintptr_t)(p))
#define S(str) PTR(str), (int32_t)strlen(str)

static const __wasi_rights_t FILE_RW =
    __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE | __WASI_RIGHTS_FD_SEEK | __WASI_RIGHTS_FD_TELL |
    __WASI_RIGHTS_FD_FILESTAT_GET | __WASI_RIGHTS_FD_FILESTAT_SET_SIZE | __WASI_RIGHTS_FD_FILESTAT_SET_TIMES |
    __WASI_RIGHTS_FD_ADVISE | __WASI_RIGHTS_FD_ALLOCATE | __WASI_RIGHTS_FD_SYNC | __WASI_RIGHTS_FD_DATASYNC |
    __WASI_RIGHTS_FD_FDSTAT_SET_FLAGS | __WASI_RIGHTS_POLL_FD_READWRITE;

static int root = 3, ro_fd = -1, tmp_fd = -1;

static __wasi_fd_t open_at(int dir, const char *path, __wasi_oflags_t oflags, __wasi_rights_t base,
                           __wasi_rights_t inheriting, __wasi_errno_t *err) {
  __wasi_fd_t fd = (__wasi_fd_t)-1;
  *err = __wasi_path_open((__wasi_fd_t)dir, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, path, oflags, base, inheriting, 0, &fd);
  return fd;
}

static __wasi_fd_t open_rw(int dir, const char *path, __wasi_oflags_t oflags) {
  __wasi_errno_t err;
  __wasi_fd_t fd = open_at(dir, path, oflags, FILE_RW, 0, &err);
  if (err) printf("open_rw %s: %s\n", path, errname(err));
  return fd;
}

static void put(__wasi_fd_t fd, const char *s) {
  __wasi_ciovec_t iov = {(const uint8_t *)s, strlen(s)};
  __wasi_size_t n;
  __wasi_errno_t err = __wasi_fd_write(fd, &iov, 1, &n);
  if (err) printf("put: %s\n", errname(err));
}

static void show(const char *label, __wasi_fd_t fd) {
  char buf[64] = {0};
  __wasi_iovec_t iov = {(uint8_t *)buf, sizeof buf - 1};
  __wasi_size_t n = 0;
  __wasi_errno_t err = __wasi_fd_pread(fd, &iov, 1, 0, &n);
  if (err) printf("%s: %s\n", label, errname(err));
  else printf("%s: \"%s\"\n", label, buf);
}

static uint64_t now(void) {
  __wasi_timestamp_t t = 0;
  __wasi_clock_time_get(__WASI_CLOCKID_MONOTONIC, 1, &t);
  return t;
}

static void args_env(void) {
  __wasi_size_t argc, size;
  R("args_sizes_get", __wasi_args_sizes_get(&argc, &size));
  printf("argc: %u, argv bytes: %u\n", (unsigned)argc, (unsigned)size);
  char **argv = malloc(argc * sizeof *argv);
  char *buf = malloc(size);
  R("args_get", __wasi_args_get((uint8_t **)argv, (uint8_t *)buf));
  for (__wasi_size_t i = 0; i < argc; i++) printf("argv[%u] = \"%s\"\n", (unsigned)i, argv[i]);
  R("args_get bad pointer", raw_args_get(BAD, PTR(buf)));
  R("args_sizes_get bad pointer", __wasi_args_sizes_get((__wasi_size_t *)BAD, &size));
  R("environ_sizes_get", __wasi_environ_sizes_get(&argc, &size));
  printf("envc: %u, environ bytes: %u\n", (unsigned)argc, (unsigned)size);
  printf("getenv TESTVAR: %s\n", getenv("TESTVAR"));
  free(argv);
  free(buf);
}

static void clocks_random(void) {
  __wasi_timestamp_t t = 0, res = 0;
  R("clock_res_get realtime", __wasi_clock_res_get(__WASI_CLOCKID_REALTIME, &res));
  CHECK("resolution > 0", res > 0);
  R("clock_time_get realtime", __wasi_clock_time_get(__WASI_CLOCKID_REALTIME, 1, &t));
  CHECK("realtime after 2020", t > 1577836800ull * 1000000000ull);
  uint64_t a = now(), b = now();
  CHECK("monotonic does not go back", b >= a);
  R("clock_time_get process cputime", __wasi_clock_time_get(__WASI_CLOCKID_PROCESS_CPUTIME_ID, 1, &t));
  R("clock_time_get bad clock", __wasi_clock_time_get(99, 1, &t));
  R("clock_res_get bad clock", __wasi_clock_res_get(99, &res));
  R("clock_time_get bad pointer", raw_clock_time_get(0, 1, BAD));
  uint8_t rnd[32] = {0};
  R("random_get", __wasi_random_get(rnd, sizeof rnd));
  int nonzero = 0;
  for (int i = 0; i < 32; i++) nonzero |= rnd[i];
  CHECK("random bytes not all zero", nonzero);
  R("random_get empty", __wasi_random_get(rnd, 0));
  R("random_get bad pointer", raw_random_get(BAD, 16));
}

static void preopens(void) {
  for (int fd = 3; fd < 10; fd++) {
    __wasi_prestat_t ps;
    if (__wasi_fd_prestat_get((__wasi_fd_t)fd, &ps) != 0) continue;
    char name[64] = {0};
    R("fd_prestat_dir_name", __wasi_fd_prestat_dir_name((__wasi_fd_t)fd, (uint8_t *)name, ps.u.dir.pr_name_len));
    printf("preopen fd %d: tag %d \"%s\" (%u bytes)\n", fd, ps.tag, name, (unsigned)ps.u.dir.pr_name_len);
    if (strcmp(name, "/ro") == 0) ro_fd = fd;
    if (strcmp(name, "/tmp") == 0) tmp_fd = fd;
  }
  __wasi_prestat_t ps;
  R("fd_prestat_get stdout", __wasi_fd_prestat_get(1, &ps));
  R("fd_prestat_get closed fd", __wasi_fd_prestat_get(100, &ps));
  R("fd_prestat_get bad pointer", __wasi_fd_prestat_get(3, (__wasi_prestat_t *)BAD));
  char name[2];
  R("fd_prestat_dir_name short buffer", __wasi_fd_prestat_dir_name((__wasi_fd_t)tmp_fd, (uint8_t *)name, 2));
}

static void fdstat(void) {
  __wasi_fdstat_t st;
  R("fd_fdstat_get stdout", __wasi_fd_fdstat_get(1, &st));
  printf("stdout: filetype %d, write %d, seek %d\n", st.fs_filetype, !!(st.fs_rights_base & __WASI_RIGHTS_FD_WRITE),
         !!(st.fs_rights_base & __WASI_RIGHTS_FD_SEEK));
  CHECK("isatty(1)", isatty(1));
  R("fd_fdstat_get stdin", __wasi_fd_fdstat_get(0, &st));
  printf("stdin: filetype %d, read %d\n", st.fs_filetype, !!(st.fs_rights_base & __WASI_RIGHTS_FD_READ));
  R("fd_fdstat_get root", __wasi_fd_fdstat_get(3, &st));
  printf("root: filetype %d, path_open %d, inherits write %d\n", st.fs_filetype,
         !!(st.fs_rights_base & __WASI_RIGHTS_PATH_OPEN), !!(st.fs_rights_inheriting & __WASI_RIGHTS_FD_WRITE));
  R("fd_fdstat_get closed fd", __wasi_fd_fdstat_get(100, &st));
  R("fd_fdstat_get bad pointer", raw_fd_fdstat_get(1, BAD));
  __wasi_filestat_t fs;
  R("fd_filestat_get stdout", __wasi_fd_filestat_get(1, &fs));
  printf("stdout filestat: filetype %d\n", fs.filetype);
  R("fd_filestat_get bad pointer", __wasi_fd_filestat_get(1, (__wasi_filestat_t *)BAD));
}

static void files(void) {
  __wasi_fd_t fd = open_rw(root, "raw.txt", __WASI_OFLAGS_CREAT | __WASI_OFLAGS_TRUNC);
  put(fd, "0123456789");
  __wasi_filesize_t pos = 0;
  R("fd_tell", __wasi_fd_tell(fd, &pos));
  printf("tell: %llu\n", (unsigned long long)pos);
  R("fd_seek end -3", __wasi_fd_seek(fd, -3, __WASI_WHENCE_END, &pos));
  printf("seek: %llu\n", (unsigned long long)pos);
  R("fd_seek bad whence", __wasi_fd_seek(fd, 0, 3, &pos));
  R("fd_seek negative", __wasi_fd_seek(fd, -100, __WASI_WHENCE_CUR, &pos));
  R("fd_seek stdout", __wasi_fd_seek(1, 0, __WASI_WHENCE_CUR, &pos));
  R("fd_tell stdout", __wasi_fd_tell(1, &pos));
  R("fd_tell bad pointer", __wasi_fd_tell(fd, (__wasi_filesize_t *)BAD));
  char b[4];
  __wasi_iovec_t iov = {(uint8_t *)b, 4};
  __wasi_size_t n;
  R("fd_pread stdout", __wasi_fd_pread(1, &iov, 1, 0, &n));
  R("fd_pread bad iovec", __wasi_fd_pread(fd, (__wasi_iovec_t *)BAD, 1, 0, &n));

  R("fd_advise", __wasi_fd_advise(fd, 0, 10, __WASI_ADVICE_WILLNEED));
  R("fd_advise bad advice", __wasi_fd_advise(fd, 0, 10, 9));
  R("fd_advise stdout", __wasi_fd_advise(1, 0, 10, __WASI_ADVICE_NORMAL));
  R("fd_allocate zero length", __wasi_fd_allocate(fd, 0, 0));
  R("fd_allocate", __wasi_fd_allocate(fd, 10, 40));
  __wasi_filestat_t fs;
  __wasi_fd_filestat_get(fd, &fs);
  printf("size after allocate: %llu\n", (unsigned long long)fs.size);
  R("fd_filestat_set_size", __wasi_fd_filestat_set_size(fd, 10));
  R("fd_sync", __wasi_fd_sync(fd));
  R("fd_datasync", __wasi_fd_datasync(fd));
  R("fd_sync stdout", __wasi_fd_sync(1));

  /* flags */
  R("fd_fdstat_set_flags append", __wasi_fd_fdstat_set_flags(fd, __WASI_FDFLAGS_APPEND));
  __wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos);
  put(fd, "AB");
  show("after append", fd);
  R("fd_fdstat_set_flags bad", __wasi_fd_fdstat_set_flags(fd, 0x40));
  __wasi_fdstat_t st;
  __wasi_fd_fdstat_get(fd, &st);
  printf("flags: %d\n", st.fs_flags);

  /* times */
  R("fd_filestat_set_times both atim flags", __wasi_fd_filestat_set_times(fd, 1, 2, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_ATIM_NOW));
  R("fd_filestat_set_times mtim", __wasi_fd_filestat_set_times(fd, 0, 123456789, __WASI_FSTFLAGS_MTIM));
  __wasi_fd_filestat_get(fd, &fs);
  printf("mtim: %llu\n", (unsigned long long)fs.mtim);
  R("path_symlink", __wasi_path_symlink("raw.txt", 3, "raw.lnk"));
  R("path_filestat_set_times nofollow", __wasi_path_filestat_set_times(3, 0, "raw.lnk", 5, 5, __WASI_FSTFLAGS_ATIM | __WASI_FSTFLAGS_MTIM));
  R("path_filestat_get nofollow", __wasi_path_filestat_get(3, 0, "raw.lnk", &fs));
  printf("link: filetype %d mtim %llu size %llu\n", fs.filetype, (unsigned long long)fs.mtim, (unsigned long long)fs.size);
  R("path_filestat_get follow", __wasi_path_filestat_get(3, __WASI_LOOKUPFLAGS_SYMLINK_FOLLOW, "raw.lnk", &fs));
  printf("target: filetype %d mtim %llu size %llu\n", fs.filetype, (unsigned long long)fs.mtim, (unsigned long long)fs.size);
  R("path_filestat_get missing", __wasi_path_filestat_get(3, 0, "nope", &fs));

  /* rights: dropping is allowed, gaining is not */
  R("fd_fdstat_set_rights drop read", __wasi_fd_fdstat_set_rights(fd, FILE_RW & ~__WASI_RIGHTS_FD_READ, 0));
  R("fd_read without right", __wasi_fd_read(fd, &iov, 1, &n));
  R("fd_fdstat_set_rights gain read", __wasi_fd_fdstat_set_rights(fd, FILE_RW, 0));
  R("fd_fdstat_set_rights drop seek", __wasi_fd_fdstat_set_rights(fd, FILE_RW & ~(__WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK), 0));
  R("fd_seek without right", __wasi_fd_seek(fd, 1, __WASI_WHENCE_SET, &pos));
  R("fd_seek cur 0 with tell right", __wasi_fd_seek(fd, 0, __WASI_WHENCE_CUR, &pos));
  R("fd_close", __wasi_fd_close(fd));
  R("fd_close again", __wasi_fd_close(fd));
}

static void opening(void) {
  __wasi_errno_t err;
  __wasi_fd_t fd;
  open_at(root, "raw.txt", 0x10, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open bad oflags", err);
  R("path_open bad fdflags", __wasi_path_open(3, 1, "raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, 0x20, &fd));
  open_at(root, "raw.txt", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open file as directory", err);
  open_at(root, "x", __WASI_OFLAGS_DIRECTORY | __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open create directory", err);
  open_at(root, "missing", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open missing", err);
  open_at(root, "", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open empty path", err);
  open_at(1, "raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open from stdout", err);
  open_at(100, "raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open from closed fd", err);
  fd = open_at(root, "/raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open absolute inside root", err);
  __wasi_fd_close(fd);
  open_at(root, "../raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open .. above root", err);
  open_at(tmp_fd, "/raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open absolute outside /tmp", err);
  R("path_open invalid utf-8", raw_path_open(3, 1, PTR("\xff\xfe"), 2, 0, __WASI_RIGHTS_FD_READ, 0, 0, PTR(&fd)));
  R("path_open bad path pointer", raw_path_open(3, 1, BAD, 4, 0, __WASI_RIGHTS_FD_READ, 0, 0, PTR(&fd)));
  R("path_open bad fd pointer", raw_path_open(3, 1, S("created-or-not"), __WASI_OFLAGS_CREAT, FILE_RW, 0, 0, BAD));
  __wasi_filestat_t fs;
  R("nothing created on EFAULT", __wasi_path_filestat_get(3, 0, "created-or-not", &fs));

  /* A directory fd is a capability: nothing above it, nothing more than it inherits. */
  R("path_create_directory sub", __wasi_path_create_directory(3, "sub"));
  R("path_create_directory again", __wasi_path_create_directory(3, "sub"));
  __wasi_rights_t dir_rights = __WASI_RIGHTS_PATH_OPEN | __WASI_RIGHTS_FD_READDIR | __WASI_RIGHTS_PATH_SYMLINK |
                               __WASI_RIGHTS_PATH_FILESTAT_GET | __WASI_RIGHTS_PATH_CREATE_FILE;
  __wasi_fd_t sub = open_at(root, "sub", __WASI_OFLAGS_DIRECTORY, dir_rights,
                            __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_SEEK, &err);
  R("open sub with few rights", err);
  open_at(sub, "new.txt", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_WRITE, 0, &err);
  R("path_open more rights than inherited", err);
  fd = open_at(sub, "new.txt", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open inherited rights", err);
  __wasi_fd_close(fd);
  R("path_create_directory without right", __wasi_path_create_directory(sub, "deeper"));
  open_at(sub, "../raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open .. above sub", err);
  __wasi_path_create_directory(3, "sub/a");
  open_at(sub, "a/../../raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("path_open nested .. above sub", err);
  R("symlink leaving sub", __wasi_path_symlink("../raw.txt", sub, "esc"));
  open_at(sub, "esc", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open it from sub", err);
  fd = open_at(root, "sub/esc", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open it from root", err);
  __wasi_fd_close(fd);
  R("absolute symlink", __wasi_path_symlink("/raw.txt", sub, "abs"));
  open_at(sub, "abs", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open it from sub", err);
  fd = open_at(root, "sub/abs", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open it from root", err);
  __wasi_fd_close(fd);
  R("absolute symlink inside sub", __wasi_path_symlink("/sub/new.txt", sub, "abs2"));
  fd = open_at(sub, "abs2", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open it from sub", err);
  __wasi_fd_close(fd);
  R("path_symlink over existing", __wasi_path_symlink("x", sub, "abs2"));
  char buf[32] = {0};
  __wasi_size_t used = 0;
  R("path_readlink", __wasi_path_readlink(3, "sub/esc", (uint8_t *)buf, sizeof buf, &used));
  printf("readlink: %u \"%s\"\n", (unsigned)used, buf);
  R("path_readlink without right", __wasi_path_readlink(sub, "esc", (uint8_t *)buf, 4, &used));
  R("path_readlink bad buffer", raw_path_readlink(3, S("sub/esc"), BAD, 8, PTR(&used)));
  R("path_readlink not a link", __wasi_path_readlink(3, "raw.txt", (uint8_t *)buf, sizeof buf, &used));
  __wasi_fd_close(sub);
}

static void mounts(void) {
  __wasi_errno_t err;
  __wasi_fd_t fd = open_rw(tmp_fd, "t.txt", __WASI_OFLAGS_CREAT);
  put(fd, "in tmp");
  __wasi_fd_close(fd);
  fd = open_at(root, "tmp/t.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open across mount", err);
  show("content across mount", fd);
  __wasi_fd_close(fd);
  fd = open_at(root, "tmp/../raw.txt", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open tmp/../raw.txt", err);
  __wasi_fd_close(fd);
  R("rename across mounts", __wasi_path_rename(3, "raw.txt", tmp_fd, "raw.txt"));
  R("link across mounts", __wasi_path_link(3, 0, "raw.txt", tmp_fd, "raw.txt"));
  R("rmdir a mount point", __wasi_path_remove_directory(3, "tmp"));
  R("rename a mount point", __wasi_path_rename(3, "tmp", 3, "tmp2"));
  __wasi_filestat_t a, b;
  __wasi_path_filestat_get(3, 0, "raw.txt", &a);
  __wasi_path_filestat_get(tmp_fd, 0, "t.txt", &b);
  CHECK("mounts have different devices", a.dev != b.dev);

  fd = open_at(ro_fd, "readme", 0, __WASI_RIGHTS_FD_READ, 0, &err);
  R("open read-only mount for reading", err);
  show("readme", fd);
  __wasi_fd_close(fd);
  open_at(ro_fd, "readme", 0, __WASI_RIGHTS_FD_READ | __WASI_RIGHTS_FD_WRITE, 0, &err);
  R("open read-only mount for writing", err);
  open_at(ro_fd, "new", __WASI_OFLAGS_CREAT, __WASI_RIGHTS_FD_READ, 0, &err);
  R("create on read-only mount", err);
  open_at(ro_fd, "readme", __WASI_OFLAGS_TRUNC, __WASI_RIGHTS_FD_READ, 0, &err);
  R("truncate on read-only mount", err);
  R("mkdir on read-only mount", __wasi_path_create_directory(ro_fd, "d"));
  R("unlink on read-only mount", __wasi_path_unlink_file(ro_fd, "readme"));
  R("symlink on read-only mount", __wasi_path_symlink("x", ro_fd, "l"));
  R("set times on read-only mount", __wasi_path_filestat_set_times(ro_fd, 0, "readme", 1, 1, __WASI_FSTFLAGS_MTIM));
}

static void readdir_raw(void) {
  __wasi_path_create_directory(3, "rd");
  const char *names[] = {"rd/a", "rd/bb", "rd/ccc"};
  for (int i = 0; i < 3; i++) __wasi_fd_close(open_rw(3, names[i], __WASI_OFLAGS_CREAT));
  __wasi_errno_t err;
  __wasi_fd_t d = open_at(root, "rd", __WASI_OFLAGS_DIRECTORY, __WASI_RIGHTS_FD_READDIR, 0, &err);
  R("open rd", err);
  uint8_t buf[512];
  __wasi_size_t used = 0;
  R("fd_readdir", __wasi_fd_readdir(d, buf, sizeof buf, 0, &used));
  printf("bufused: %u\n", (unsigned)used);
  __wasi_dircookie_t after_a = 0, after_dotdot = 0;
  for (size_t at = 0; at + sizeof(__wasi_dirent_t) <= used;) {
    __wasi_dirent_t e;
    memcpy(&e, buf + at, sizeof e);
    const char *name = (char *)buf + at + sizeof e;
    printf("  %.*s type %d next %llu\n", (int)e.d_namlen, name, e.d_type, (unsigned long long)e.d_next);
    if (e.d_namlen == 1 && name[0] == 'a') after_a = e.d_next;
    if (e.d_namlen == 2 && name[0] == '.') after_dotdot = e.d_next;
    at += sizeof e + e.d_namlen;
  }
  R("fd_readdir small buffer", __wasi_fd_readdir(d, buf, 30, 0, &used));
  printf("bufused: %u (full: %s)\n", (unsigned)used, used == 30 ? "yes" : "no");
  R("fd_readdir from cookie after a", __wasi_fd_readdir(d, buf, sizeof buf, after_a, &used));
  __wasi_dirent_t e;
  memcpy(&e, buf, sizeof e);
  printf("first after cookie: %.*s\n", (int)e.d_namlen, (char *)buf + sizeof e);
  R("fd_readdir past the end", __wasi_fd_readdir(d, buf, sizeof buf, 1000, &used));
  printf("bufused: %u\n", (unsigned)used);
  R("fd_readdir bad buffer", raw_fd_readdir(d, BAD, 100, 0, PTR(&used)));
  __wasi_fd_t f = open_rw(3, "rd/a", 0);
  R("fd_readdir on a file", __wasi_fd_readdir(f, buf, sizeof buf, 0, &used));
  __wasi_fd_close(f);
  R("path_unlink_file", __wasi_path_unlink_file(3, "rd/a"));
  R("fd_readdir after unlinking a, from after a", __wasi_fd_readdir(d, buf, sizeof buf, after_a, &used));
  memcpy(&e, buf, sizeof e);
  printf("first after cookie: %.*s\n", (int)e.d_namlen, (char *)buf + sizeof e);
  R("fd_readdir after unlinking a, from after ..", __wasi_fd_readdir(d, buf, sizeof buf, after_dotdot, &used));
  memcpy(&e, buf, sizeof e);
  printf("first after cookie: %.*s\n", (int)e.d_namlen, (char *)buf + sizeof e);
  R("path_remove_directory non-empty", __wasi_path_remove_directory(3, "rd"));
  R("path_unlink_file a directory", __wasi_path_unlink_file(3, "rd"));
  R("path_remove_directory a file", __wasi_path_remove_directory(3, "rd/bb"));
  __wasi_fd_close(d);
}

static void renumber(void) {
  __wasi_fd_t a = open_rw(3, "ren-a", __WASI_OFLAGS_CREAT);
  put(a, "file a");
  __wasi_fd_t b = open_rw(3, "ren-b", __WASI_OFLAGS_CREAT);
  put(b, "file b");
  R("fd_renumber", __wasi_fd_renumber(a, b));
  show("b now reads", b);
  R("old fd closed", __wasi_fd_close(a));
  R("fd_renumber to closed fd", __wasi_fd_renumber(b, 200));
  R("fd_renumber from closed fd", __wasi_fd_renumber(77, b));
  R("fd_renumber to itself", __wasi_fd_renumber(b, b));
  __wasi_fd_close(b);
  R("path_link", __wasi_path_link(3, 0, "ren-a", 3, "ren-c"));
  R("path_rename", __wasi_path_rename(3, "ren-c", 3, "ren-d"));
  __wasi_filestat_t fs;
  __wasi_path_filestat_get(3, 0, "ren-d", &fs);
  printf("nlink: %llu\n", (unsigned long long)fs.nlink);
}

static void faults(void) {
  __wasi_fd_t fd = open_rw(3, "fault.txt", __WASI_OFLAGS_CREAT);
  __wasi_size_t n;
  __wasi_ciovec_t bad_buf = {(const uint8_t *)BAD, 8};
  R("fd_write bad buffer", __wasi_fd_write(fd, &bad_buf, 1, &n));
  R("fd_write bad iovec array", raw_fd_write(fd, BAD, 1, PTR(&n)));
  __wasi_ciovec_t ok = {(const uint8_t *)"data", 4};
  R("fd_write bad result pointer", raw_fd_write(fd, PTR(&ok), 1, BAD));
  __wasi_filestat_t fs;
  __wasi_fd_filestat_get(fd, &fs);
  printf("size after failed writes: %llu\n", (unsigned long long)fs.size);
  uint32_t end = (uint32_t)__builtin_wasm_memory_size(0) * 65536u;
  R("fd_write result straddling the end", raw_fd_write(fd, PTR(&ok), 1, (int32_t)(end - 2)));
  R("fd_write result at the end", raw_fd_write(fd, PTR(&ok), 1, (int32_t)end));
  put(fd, "data");
  __wasi_filesize_t pos;
  __wasi_fd_seek(fd, 0, __WASI_WHENCE_SET, &pos);
  char b[8];
  __wasi_iovec_t iov = {(uint8_t *)b, 8};
  R("fd_read bad result pointer", raw_fd_read(fd, PTR(&iov), 1, BAD));
  __wasi_fd_tell(fd, &pos);
  printf("offset after failed read: %llu\n", (unsigned long long)pos);
  __wasi_fd_close(fd);
}

static void polling(void) {
  __wasi_subscription_t subs[4];
  __wasi_event_t events[4];
  __wasi_size_t n = 0;
  memset(subs, 0, sizeof subs);
  R("poll_oneoff nothing", __wasi_poll_oneoff(subs, events, 0, &n));

  subs[0].userdata = 42;
  subs[0].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[0].u.u.clock.id = __WASI_CLOCKID_MONOTONIC;
  subs[0].u.u.clock.timeout = 5000000;
  uint64_t t0 = now();
  R("poll_oneoff 5ms", __wasi_poll_oneoff(subs, events, 1, &n));
  uint64_t t1 = now();
  printf("events: %u, userdata %llu, type %d, error %d\n", (unsigned)n, (unsigned long long)events[0].userdata, events[0].type,
         events[0].error);
  CHECK("slept at least 5ms", t1 - t0 >= 5000000);

  subs[0].u.u.clock.timeout = 1000000000;
  subs[1] = subs[0];
  subs[1].userdata = 43;
  subs[1].u.u.clock.timeout = 10000000;
  R("poll_oneoff two clocks", __wasi_poll_oneoff(subs, events, 2, &n));
  printf("events: %u, first userdata %llu\n", (unsigned)n, (unsigned long long)events[0].userdata);

  subs[0].u.u.clock.flags = __WASI_SUBCLOCKFLAGS_SUBSCRIPTION_CLOCK_ABSTIME;
  subs[0].u.u.clock.timeout = 1;
  R("poll_oneoff deadline passed", __wasi_poll_oneoff(subs, events, 1, &n));
  printf("events: %u, userdata %llu\n", (unsigned)n, (unsigned long long)events[0].userdata);

  subs[0].u.u.clock.flags = 0;
  subs[0].u.u.clock.timeout = 1000000000;
  subs[1].userdata = 7;
  subs[1].u.tag = __WASI_EVENTTYPE_FD_WRITE;
  subs[1].u.u.fd_write.file_descriptor = 1;
  subs[2].userdata = 8;
  subs[2].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[2].u.u.fd_read.file_descriptor = 99;
  subs[3].userdata = 9;
  subs[3].u.tag = __WASI_EVENTTYPE_CLOCK;
  subs[3].u.u.clock.id = 17;
  t0 = now();
  R("poll_oneoff fds and a bad clock", __wasi_poll_oneoff(subs, events, 4, &n));
  CHECK("did not sleep", now() - t0 < 1000000000);
  for (__wasi_size_t i = 0; i < n; i++)
    printf("  userdata %llu type %d error %s\n", (unsigned long long)events[i].userdata, events[i].type,
           errname(events[i].error));

  __wasi_fd_t fd = open_rw(3, "poll.txt", __WASI_OFLAGS_CREAT);
  put(fd, "0123456789");
  __wasi_filesize_t pos;
  __wasi_fd_seek(fd, 4, __WASI_WHENCE_SET, &pos);
  subs[0].userdata = 1;
  subs[0].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[0].u.u.fd_read.file_descriptor = fd;
  subs[1].userdata = 2;
  subs[1].u.tag = __WASI_EVENTTYPE_FD_READ;
  subs[1].u.u.fd_read.file_descriptor = 0;
  R("poll_oneoff file and stdin", __wasi_poll_oneoff(subs, events, 2, &n));
  for (__wasi_size_t i = 0; i < n; i++)
    printf("  userdata %llu nbytes %llu\n", (unsigned long long)events[i].userdata,
           (unsigned long long)events[i].fd_readwrite.nbytes);
  __wasi_fd_close(fd);
  R("poll_oneoff bad output", raw_poll_oneoff(PTR(subs), BAD, 1, PTR(&n)));
  subs[0].u.tag = 9;
  R("poll_oneoff bad tag", __wasi_poll_oneoff(subs, events, 1, &n));

  struct pollfd pfd = {.fd = 1, .events = POLLOUT};
  V("libc poll stdout", poll(&pfd, 1, 100));
  struct timespec ts = {0, 2000000};
  T("nanosleep", nanosleep(&ts, NULL));
}

static void stdin_and_misc(void) {
  char b[8] = {0};
  __wasi_iovec_t iov = {(uint8_t *)b, 7};
  __wasi_size_t n = 0;
  R("fd_read stdin", __wasi_fd_read(0, &iov, 1, &n));
  printf("stdin: %u \"%s\"\n", (unsigned)n, b);
  R("fd_read stdin at end", __wasi_fd_read(0, &iov, 1, &n));
  printf("stdin: %u\n", (unsigned)n);
  R("fd_write stdin", __wasi_fd_write(0, (__wasi_ciovec_t *)&iov, 1, &n));
  R("fd_read stdout", __wasi_fd_read(1, &iov, 1, &n));

  __wasi_fd_t fd;
  R("sock_accept", __wasi_sock_accept(3, 0, &fd));
  __wasi_size_t got;
  __wasi_roflags_t roflags;
  R("sock_recv closed fd", __wasi_sock_recv(99, &iov, 1, 0, &got, &roflags));
  R("sock_send stdout", __wasi_sock_send(1, (__wasi_ciovec_t *)&iov, 1, 0, &got));
  R("sock_shutdown stdout", __wasi_sock_shutdown(1, __WASI_SDFLAGS_RD | __WASI_SDFLAGS_WR));
  R("proc_raise", raw_proc_raise(2));
  R("sched_yield", __wasi_sched_yield());

  R("close a preopen", __wasi_fd_close((__wasi_fd_t)tmp_fd));
  __wasi_prestat_t ps;
  R("prestat of closed preopen", __wasi_fd_prestat_get((__wasi_fd_t)tmp_fd, &ps));
}

int main(void) {
  args_env();
  clocks_random();
  preopens();
  fdstat();
  files();
  opening();
  mounts();
  readdir_raw();
  renumber();
  faults();
  polling();
  stdin_and_misc();
  printf("exiting with 7\n");
  fflush(stdout);
  __wasi_proc_exit(7);
  printf("not reached\n");
  return 0;
}
