// wc: count lines, words and bytes of files (or stdin).
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <unistd.h>

struct counts {
  unsigned long lines, words, bytes;
};

static int count(int fd, const char *name, struct counts *c) {
  static unsigned char buf[65536];
  int in_word = 0;
  for (;;) {
    ssize_t n = read(fd, buf, sizeof buf);
    if (n == 0) return 0;
    if (n < 0) {
      fprintf(stderr, "wc: %s: %s\n", name, strerror(errno));
      return 1;
    }
    c->bytes += (unsigned long)n;
    for (ssize_t i = 0; i < n; i++) {
      if (buf[i] == '\n') c->lines++;
      if (isspace(buf[i])) {
        in_word = 0;
      } else if (!in_word) {
        in_word = 1;
        c->words++;
      }
    }
  }
}

static void print(const struct counts *c, const char *name) {
  printf("%7lu %7lu %7lu", c->lines, c->words, c->bytes);
  if (name) printf(" %s", name);
  printf("\n");
}

int main(int argc, char **argv) {
  struct counts total = {0, 0, 0};
  if (argc < 2) {
    struct counts c = {0, 0, 0};
    int status = count(0, "-", &c);
    print(&c, NULL);
    return status;
  }
  int status = 0;
  for (int i = 1; i < argc; i++) {
    struct counts c = {0, 0, 0};
    int fd = open(argv[i], O_RDONLY);
    if (fd < 0) {
      fprintf(stderr, "wc: %s: %s\n", argv[i], strerror(errno));
      status = 1;
      continue;
    }
    status |= count(fd, argv[i], &c);
    close(fd);
    print(&c, argv[i]);
    total.lines += c.lines;
    total.words += c.words;
    total.bytes += c.bytes;
  }
  if (argc > 2) print(&total, "total");
  return status;
}
