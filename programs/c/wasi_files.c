// WASI test: regular files through libc — open flags, read/write, seek/tell, pread/pwrite,
// truncate, append, rights (read-only / write-only fds), times, sync, unlink while open.
// Prints one line per check; the test compares stdout with programs/expected/wasi_files.out.
#include "wtest.h" /* first: it sets _GNU_SOURCE for native builds */
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void show(const char *label, int fd, off_t at, size_t n) {
  char buf[64] = {0};
  ssize_t r = pread(fd, buf, n < sizeof buf - 1 ? n : sizeof buf - 1, at);
  if (r < 0) printf("%s: %s\n", label, errname(errno));
  else printf("%s: %zd \"%s\"\n", label, r, buf);
}

int main(void) {
  int fd, ro, wo;
  char buf[64];
  struct stat st;

  T("open missing", open("missing.txt", O_RDONLY));
  T("open missing dir component", open("nodir/x.txt", O_RDONLY));
  fd = open("a.txt", O_CREAT | O_EXCL | O_RDWR, 0644);
  T("create a.txt", fd);
  T("create again O_EXCL", open("a.txt", O_CREAT | O_EXCL | O_RDWR, 0644));
  V("write", write(fd, "hello world", 11));
  V("tell", lseek(fd, 0, SEEK_CUR));
  V("seek set 6", lseek(fd, 6, SEEK_SET));
  memset(buf, 0, sizeof buf);
  V("read 5", read(fd, buf, 5));
  printf("read got: %s\n", buf);
  V("read at eof", read(fd, buf, 5));
  V("seek end -5", lseek(fd, -5, SEEK_END));
  T("seek before start", lseek(fd, -100, SEEK_CUR));
  V("tell after bad seek", lseek(fd, 0, SEEK_CUR));
  T("seek bad whence", lseek(fd, 0, 42));
  V("seek past end", lseek(fd, 100, SEEK_SET));
  V("read past end", read(fd, buf, 5));
  show("pread 0", fd, 0, 5);
  V("tell after pread", lseek(fd, 0, SEEK_CUR));
  V("pwrite 0", pwrite(fd, "HELLO", 5, 0));
  show("after pwrite", fd, 0, 20);
  T("fstat", fstat(fd, &st));
  V("size", (long)st.st_size);
  CHECK("is regular", S_ISREG(st.st_mode));
  V("nlink", (long)st.st_nlink);

  T("ftruncate 5", ftruncate(fd, 5));
  fstat(fd, &st);
  V("size after truncate", (long)st.st_size);
  T("ftruncate 8", ftruncate(fd, 8));
  fstat(fd, &st);
  V("size after extend", (long)st.st_size);
  memset(buf, 'x', sizeof buf);
  V("pread extended", pread(fd, buf, 8, 0));
  CHECK("extension is zeros", buf[5] == 0 && buf[6] == 0 && buf[7] == 0 && buf[4] == 'O');
  T("ftruncate negative", ftruncate(fd, -1));
  V("pwrite sparse at 20", pwrite(fd, "Z", 1, 20));
  fstat(fd, &st);
  V("size after sparse", (long)st.st_size);
  V("pread hole", pread(fd, buf, 4, 10));
  CHECK("hole is zeros", buf[0] == 0 && buf[1] == 0 && buf[2] == 0 && buf[3] == 0);
  T("fsync", fsync(fd));
  T("fdatasync", fdatasync(fd));
  T("posix_fallocate", -posix_fallocate(fd, 0, 100));
  fstat(fd, &st);
  V("size after fallocate", (long)st.st_size);
  T("posix_fadvise", -posix_fadvise(fd, 0, 10, POSIX_FADV_SEQUENTIAL));
  T("close", close(fd));
  T("close again", close(fd));
  T("read closed", read(fd, buf, 1));

  /* O_TRUNC, O_APPEND */
  fd = open("a.txt", O_WRONLY | O_TRUNC);
  T("open O_TRUNC", fd);
  fstat(fd, &st);
  V("size after O_TRUNC", (long)st.st_size);
  V("write abc", write(fd, "abc", 3));
  close(fd);
  fd = open("a.txt", O_WRONLY | O_APPEND);
  T("open O_APPEND", fd);
  V("append def", write(fd, "def", 3));
  lseek(fd, 0, SEEK_SET);
  V("append after seek 0", write(fd, "gh", 2));
  V("tell after append", lseek(fd, 0, SEEK_CUR));
  V("fcntl getfl has append", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
  T("fcntl clear append", fcntl(fd, F_SETFL, 0));
  V("fcntl getfl has append", (fcntl(fd, F_GETFL) & O_APPEND) != 0);
  lseek(fd, 0, SEEK_SET);
  V("write at 0 without append", write(fd, "A", 1));
  close(fd);
  fd = open("a.txt", O_RDONLY);
  show("content", fd, 0, 20);
  close(fd);

  /* access modes */
  ro = open("a.txt", O_RDONLY);
  T("open O_RDONLY", ro);
  T("write to read-only fd", write(ro, "x", 1));
  T("pwrite to read-only fd", pwrite(ro, "x", 1, 0));
  T("ftruncate read-only fd", ftruncate(ro, 0));
  V("read read-only fd", read(ro, buf, 3));
  close(ro);
  wo = open("a.txt", O_WRONLY);
  T("open O_WRONLY", wo);
  T("read from write-only fd", read(wo, buf, 1));
  T("pread from write-only fd", pread(wo, buf, 1, 0));
  close(wo);

  /* paths that are not files */
  T("mkdir d", mkdir("d", 0755));
  T("open dir O_WRONLY", open("d", O_WRONLY));
  T("open dir O_RDWR", open("d", O_RDWR));
  fd = open("d", O_RDONLY);
  T("open dir O_RDONLY", fd);
  T("read from dir fd", read(fd, buf, 1));
  T("write to dir fd", write(fd, buf, 1));
  fstat(fd, &st);
  CHECK("dir is directory", S_ISDIR(st.st_mode));
  close(fd);
  T("open file as dir", open("a.txt", O_RDONLY | O_DIRECTORY));
  T("open below a file", open("a.txt/x", O_RDONLY));
  T("create below a file", open("a.txt/x", O_CREAT | O_WRONLY, 0644));
  T("open with trailing slash", open("a.txt/", O_RDONLY));
  T("create with trailing slash", open("new/", O_CREAT | O_WRONLY, 0644));
  T("open dir with trailing slash", open("d/", O_RDONLY));
  T("open empty path", open("", O_RDONLY));

  /* times */
  struct timespec times[2] = {{1000, 5000}, {2000, 7000}}; /* whole microseconds: a host mount keeps no more */
  T("utimensat", utimensat(AT_FDCWD, "a.txt", times, 0));
  stat("a.txt", &st);
  printf("atime: %lld.%09ld\n", (long long)st.st_atim.tv_sec, st.st_atim.tv_nsec);
  printf("mtime: %lld.%09ld\n", (long long)st.st_mtim.tv_sec, st.st_mtim.tv_nsec);
  struct timespec omit[2] = {{0, UTIME_OMIT}, {3000, 0}};
  T("utimensat omit atime", utimensat(AT_FDCWD, "a.txt", omit, 0));
  stat("a.txt", &st);
  printf("atime: %lld mtime: %lld\n", (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
  fd = open("a.txt", O_RDWR);
  struct timespec ftimes[2] = {{4000, 0}, {5000, 0}};
  T("futimens", futimens(fd, ftimes));
  fstat(fd, &st);
  printf("atime: %lld mtime: %lld\n", (long long)st.st_atim.tv_sec, (long long)st.st_mtim.tv_sec);
  T("utimensat missing", utimensat(AT_FDCWD, "missing.txt", times, 0));

  /* unlink while open: the data stays reachable through the fd */
  T("unlink open file", unlink("a.txt"));
  T("stat unlinked", stat("a.txt", &st));
  fstat(fd, &st);
  V("nlink after unlink", (long)st.st_nlink);
  show("read unlinked", fd, 0, 20);
  V("write unlinked", pwrite(fd, "!", 1, 0));
  show("read unlinked", fd, 0, 20);
  close(fd);

  /* a larger file, written and read in pieces */
  fd = open("big.bin", O_CREAT | O_TRUNC | O_RDWR, 0644);
  static unsigned char big[300000];
  for (size_t i = 0; i < sizeof big; i++) big[i] = (unsigned char)(i * 7 + 3);
  V("write big", write(fd, big, sizeof big));
  lseek(fd, 0, SEEK_SET);
  static unsigned char back[300000];
  size_t got = 0;
  for (;;) {
    ssize_t n = read(fd, back + got, 4096 < sizeof back - got ? 4096 : sizeof back - got);
    if (n <= 0) break;
    got += (size_t)n;
  }
  V("read big", (long)got);
  CHECK("big matches", memcmp(big, back, sizeof big) == 0);
  close(fd);

  /* stdio */
  fd = open("s.txt", O_CREAT | O_WRONLY | O_TRUNC, 0644);
  FILE *f = fdopen(fd, "w");
  fprintf(f, "line %d\n", 1);
  fprintf(f, "line %d\n", 2);
  fclose(f);
  f = fopen("s.txt", "r");
  char line[32];
  while (fgets(line, sizeof line, f)) printf("fgets: %s", line);
  fclose(f);
  CHECK("fopen missing", fopen("missing.txt", "r") == NULL && errno == ENOENT);
  return 0;
}
