// WASI test: directories through libc — mkdir/rmdir, readdir with telldir/seekdir cookies,
// many entries (several fd_readdir buffers), rename rules for files and directories,
// unlink/rmdir errors, chdir/getcwd.
#include "wtest.h" /* first: it sets _GNU_SOURCE for native builds */
#include <dirent.h>
#include <fcntl.h>
#include <stdlib.h>
#include <sys/stat.h>
#include <unistd.h>

static void touch(const char *path, const char *content) {
  int fd = open(path, O_CREAT | O_WRONLY | O_TRUNC, 0644);
  if (fd < 0) {
    printf("touch %s: %s\n", path, errname(errno));
    return;
  }
  if (content) write(fd, content, strlen(content));
  close(fd);
}

static int cmp(const void *a, const void *b) { return strcmp(*(char *const *)a, *(char *const *)b); }

/* Entry names of a directory, sorted, on one line. */
static void list(const char *label, const char *path) {
  DIR *d = opendir(path);
  if (!d) {
    printf("%s: %s\n", label, errname(errno));
    return;
  }
  char *names[64];
  int n = 0;
  struct dirent *e;
  while ((e = readdir(d)) && n < 64) names[n++] = strdup(e->d_name);
  closedir(d);
  qsort(names, (size_t)n, sizeof *names, cmp);
  printf("%s:", label);
  for (int i = 0; i < n; i++) {
    printf(" %s", names[i]);
    free(names[i]);
  }
  printf("\n");
}

int main(void) {
  struct stat st;
  T("mkdir d", mkdir("d", 0755));
  T("mkdir d again", mkdir("d", 0755));
  T("mkdir missing parent", mkdir("nope/x", 0755));
  T("mkdir below file", (touch("f", "file"), mkdir("f/x", 0755)));
  T("mkdir trailing slash", mkdir("d2/", 0755));
  T("mkdir dot", mkdir(".", 0755));
  T("stat d", stat("d", &st));
  CHECK("d is dir", S_ISDIR(st.st_mode));
  touch("d/a", "A");
  touch("d/b", "B");
  touch("d/c", "C");
  T("mkdir d/sub", mkdir("d/sub", 0755));
  list("d", "d");
  list("opendir file", "f");
  list("opendir missing", "missing");

  /* telldir/seekdir: remember the position after two entries, read on, go back. */
  DIR *dir = opendir("d");
  readdir(dir);
  readdir(dir);
  long pos = telldir(dir);
  struct dirent *e = readdir(dir);
  char third[256];
  strcpy(third, e ? e->d_name : "(none)");
  int rest = 1;
  while (readdir(dir)) rest++;
  printf("entries after position: %d\n", rest);
  seekdir(dir, pos);
  e = readdir(dir);
  CHECK("seekdir returns to the same entry", e && strcmp(e->d_name, third) == 0);
  rewinddir(dir);
  int all = 0;
  while (readdir(dir)) all++;
  printf("entries after rewind: %d\n", all);
  closedir(dir);

  /* Many entries: several fd_readdir calls, each continuing from a cookie. */
  mkdir("many", 0755);
  char name[64];
  for (int i = 0; i < 300; i++) {
    snprintf(name, sizeof name, "many/file-with-a-longish-name-%03d", i);
    touch(name, NULL);
  }
  dir = opendir("many");
  int count = 0, seen[300] = {0}, dups = 0;
  while ((e = readdir(dir))) {
    count++;
    int k;
    if (sscanf(e->d_name, "file-with-a-longish-name-%d", &k) == 1 && k >= 0 && k < 300) {
      if (seen[k]++) dups++;
    }
  }
  closedir(dir);
  int missing = 0;
  for (int i = 0; i < 300; i++) missing += !seen[i];
  printf("many: %d entries, %d missing, %d duplicates\n", count, missing, dups);

  /* unlink and rmdir */
  T("rmdir non-empty", rmdir("d"));
  T("rmdir file", rmdir("d/a"));
  T("rmdir missing", rmdir("d/missing"));
  T("unlink dir", unlink("d/sub"));
  T("unlink missing", unlink("d/missing"));
  T("unlink file with trailing slash", unlink("d/a/"));
  T("rmdir dot", rmdir("d/sub/."));
  T("rmdir sub", rmdir("d/sub"));
  T("rmdir sub again", rmdir("d/sub"));
  T("unlink d/c", unlink("d/c"));
  list("d after removals", "d");

  /* rename */
  touch("r1", "one");
  touch("r2", "two");
  T("rename file over file", rename("r1", "r2"));
  cat("r2 now", "r2");
  cat("r1 now", "r1");
  T("rename missing", rename("r1", "r3"));
  T("rename to same name", rename("r2", "r2"));
  mkdir("e1", 0755);
  mkdir("e2", 0755);
  touch("e1/inside", "in e1");
  T("rename dir over empty dir", rename("e1", "e2"));
  cat("e2/inside", "e2/inside");
  T("stat e1", stat("e1", &st));
  mkdir("full", 0755);
  touch("full/x", NULL);
  mkdir("e3", 0755);
  T("rename dir over non-empty dir", rename("e3", "full"));
  T("rename file over dir", rename("r2", "e3"));
  T("rename dir over file", rename("e3", "r2"));
  T("rename dir into itself", rename("e2", "e2/deeper"));
  T("rename dir into own subdir", (mkdir("e2/sub", 0755), rename("e2", "e2/sub/x")));
  T("rename into missing dir", rename("r2", "nodir/r2"));
  T("rename across dirs", rename("r2", "e2/sub/moved"));
  cat("moved", "e2/sub/moved");
  T("rename dir across dirs", rename("e2/sub", "full/sub"));
  cat("moved again", "full/sub/moved");
  T("rename dir with trailing slash", rename("e3/", "e4/"));
  T("rename file with trailing slash", rename("f/", "g"));
  list("top", ".");

  /* chdir and relative paths */
  T("chdir full", chdir("full"));
  char cwd[256];
  printf("getcwd: %s\n", getcwd(cwd, sizeof cwd) ? strrchr(cwd, '/') : "(error)");
  cat("relative after chdir", "sub/moved");
  cat("dot-dot after chdir", "../f");
  T("chdir to file", chdir("x"));
  T("chdir missing", chdir("missing"));
  T("chdir ..", chdir(".."));
  cat("back at the top", "f");
  return 0;
}
