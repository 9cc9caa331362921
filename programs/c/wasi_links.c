// WASI test: symbolic and hard links through libc — symlink/readlink, following and not
// following, dangling links, loops, O_NOFOLLOW, link counts, unlink of either name.
#include "wtest.h" /* first: it sets _GNU_SOURCE for native builds */
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

static void touch(const char *path, const char *content) {
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (content) write(fd, content, strlen(content));
  close(fd);
}

static void rl(const char *label, const char *path) {
  char buf[64] = {0};
  ssize_t n = readlink(path, buf, sizeof buf - 1);
  if (n < 0) printf("%s: %s\n", label, errname(errno));
  else printf("%s: %zd \"%s\"\n", label, n, buf);
}

int main(void) {
  struct stat st, st2;
  touch("target.txt", "the target");
  mkdir("dir", 0755);
  touch("dir/inner.txt", "inner");

  T("symlink", symlink("target.txt", "l1"));
  rl("readlink l1", "l1");
  cat("read through l1", "l1");
  T("lstat l1", lstat("l1", &st));
  CHECK("lstat says symlink", S_ISLNK(st.st_mode));
  V("lstat size", (long)st.st_size);
  T("stat l1", stat("l1", &st));
  CHECK("stat says regular", S_ISREG(st.st_mode));
  stat("target.txt", &st2);
  CHECK("stat l1 is the target", st.st_ino == st2.st_ino);
  T("symlink over existing", symlink("whatever", "l1"));
  T("symlink over file", symlink("whatever", "target.txt"));
  rl("readlink regular file", "target.txt");
  rl("readlink missing", "missing");
  char small[4] = {0};
  V("readlink into small buffer", readlink("l1", small, 3));
  printf("truncated: \"%s\"\n", small);

  T("dangling symlink", symlink("nowhere.txt", "dangling"));
  T("stat dangling", stat("dangling", &st));
  T("lstat dangling", lstat("dangling", &st));
  cat("open dangling", "dangling");

  symlink("loop2", "loop1");
  symlink("loop1", "loop2");
  cat("open loop", "loop1");
  T("stat loop", stat("loop1", &st));
  T("open O_NOFOLLOW symlink", open("l1", O_RDONLY | O_NOFOLLOW));
  T("open O_NOFOLLOW file", open("target.txt", O_RDONLY | O_NOFOLLOW));

  T("symlink to dir", symlink("dir", "ldir"));
  cat("through dir link", "ldir/inner.txt");
  T("symlink with ..", symlink("../target.txt", "dir/up"));
  cat("through ../ link", "dir/up");
  T("chain", symlink("l1", "l2"));
  cat("through chain", "l2");
  T("symlink to absolute path", symlink("/target.txt", "abs"));
  rl("readlink abs", "abs");

  T("unlink symlink", unlink("l2"));
  cat("target still there", "target.txt");
  T("rename symlink", rename("l1", "l1-renamed"));
  cat("through renamed link", "l1-renamed");
  T("unlink symlink to dir", unlink("ldir"));
  T("rmdir symlink to dir", rmdir("dir/up"));

  /* hard links */
  T("link", link("target.txt", "hard"));
  stat("target.txt", &st);
  stat("hard", &st2);
  V("nlink", (long)st.st_nlink);
  CHECK("same inode", st.st_ino == st2.st_ino);
  int fd = open("hard", O_WRONLY | O_APPEND);
  write(fd, " (changed)", 10);
  close(fd);
  cat("change seen through other name", "target.txt");
  T("link over existing", link("target.txt", "hard"));
  T("link dir", link("dir", "dirlink"));
  T("link missing", link("missing", "x"));
  T("link into missing dir", link("target.txt", "nodir/x"));
  T("unlink original", unlink("target.txt"));
  stat("hard", &st);
  V("nlink after unlink", (long)st.st_nlink);
  cat("content kept", "hard");
  cat("dangling now", "l1-renamed");
  T("link to symlink", link("l1-renamed", "hard-to-link"));
  T("lstat hard link to symlink", lstat("hard-to-link", &st));
  CHECK("is a symlink", S_ISLNK(st.st_mode));
  return 0;
}
