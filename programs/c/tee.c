// tee: copy stdin to stdout and to a file (created or truncated). With -s, fsync the file before
// exiting: on /cluster that returns once two peers hold it, and tee says so.
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

static int write_all(int fd, const char *buf, ssize_t n) {
  for (ssize_t off = 0; off < n;) {
    ssize_t w = write(fd, buf + off, (size_t)(n - off));
    if (w < 0) return -1;
    off += w;
  }
  return 0;
}

int main(int argc, char **argv) {
  int sync = argc > 1 && strcmp(argv[1], "-s") == 0;
  if (argc != 2 + sync) {
    fprintf(stderr, "usage: tee [-s] FILE\n");
    return 2;
  }
  const char *path = argv[1 + sync];
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0644);
  if (fd < 0) {
    fprintf(stderr, "tee: %s: %s\n", path, strerror(errno));
    return 1;
  }
  static char buf[65536];
  long long total = 0;
  for (;;) {
    ssize_t n = read(0, buf, sizeof buf);
    if (n == 0) break;
    if (n < 0 || write_all(1, buf, n) < 0 || write_all(fd, buf, n) < 0) {
      fprintf(stderr, "tee: %s\n", strerror(errno));
      return 1;
    }
    total += n;
  }
  if (sync) {
    if (fsync(fd) < 0) {
      fprintf(stderr, "tee: fsync %s: %s\n", path, strerror(errno));
      return 1;
    }
    fprintf(stderr, "tee: %lld bytes synced to %s\n", total, path);
  }
  return close(fd) < 0 ? 1 : 0;
}
