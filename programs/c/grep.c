// grep: print lines that match a small regular expression.
//   grep [-i] [-v] [-n] [-c] PATTERN [FILE...]
// The expression language (after Kernighan and Pike): c (a literal), . (any character),
// ^ and $ (anchors), x* x+ x? (repetition of the preceding item), \c (a literal c).
// Exit status: 0 when a line was selected, 1 when none, 2 on error.
#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int ignore_case, invert, number, count_only;

static int same(int pat, int c) {
  if (ignore_case) return tolower(pat) == tolower(c);
  return pat == c;
}

/* One pattern item: a literal, '.', or an escaped literal. Its width in the pattern. */
static int item_width(const char *re) { return re[0] == '\\' && re[1] ? 2 : 1; }

static int item_matches(const char *re, int c) {
  if (c == '\0') return 0;
  if (re[0] == '\\' && re[1]) return same(re[1], c);
  return re[0] == '.' || same(re[0], c);
}

static int match_here(const char *re, const char *text);

/* item repeated min..inf times, leftmost-longest not required: try shortest first */
static int match_repeat(const char *item, int min, int max, const char *rest, const char *text) {
  int n = 0;
  for (;;) {
    if (n >= min && match_here(rest, text)) return 1;
    if (n == max || !item_matches(item, *text)) return 0;
    text++;
    n++;
  }
}

static int match_here(const char *re, const char *text) {
  if (re[0] == '\0') return 1;
  if (re[0] == '$' && re[1] == '\0') return *text == '\0';
  int w = item_width(re);
  char op = re[w];
  if (op == '*') return match_repeat(re, 0, -1, re + w + 1, text);
  if (op == '+') return match_repeat(re, 1, -1, re + w + 1, text);
  if (op == '?') return match_repeat(re, 0, 1, re + w + 1, text);
  if (item_matches(re, *text)) return match_here(re + w, text + 1);
  return 0;
}

static int match(const char *re, const char *text) {
  if (re[0] == '^') return match_here(re + 1, text);
  do {
    if (match_here(re, text)) return 1;
  } while (*text++ != '\0');
  return 0;
}

static int grep(const char *re, FILE *f, const char *name) {
  char *line = NULL;
  size_t cap = 0;
  ssize_t len;
  long lineno = 0, matches = 0;
  while ((len = getline(&line, &cap, f)) >= 0) {
    lineno++;
    if (len > 0 && line[len - 1] == '\n') line[--len] = '\0';
    if (match(re, line) == invert) continue;
    matches++;
    if (count_only) continue;
    if (name) printf("%s:", name);
    if (number) printf("%ld:", lineno);
    printf("%s\n", line);
  }
  free(line);
  if (count_only) {
    if (name) printf("%s:", name);
    printf("%ld\n", matches);
  }
  return matches > 0;
}

int main(int argc, char **argv) {
  int i = 1;
  for (; i < argc && argv[i][0] == '-' && argv[i][1]; i++) {
    for (const char *o = argv[i] + 1; *o; o++) {
      switch (*o) {
        case 'i': ignore_case = 1; break;
        case 'v': invert = 1; break;
        case 'n': number = 1; break;
        case 'c': count_only = 1; break;
        default:
          fprintf(stderr, "grep: unknown option -%c\n", *o);
          return 2;
      }
    }
  }
  if (i >= argc) {
    fprintf(stderr, "usage: grep [-ivnc] PATTERN [FILE...]\n");
    return 2;
  }
  const char *re = argv[i++];
  int files = argc - i, found = 0, error = 0;
  if (files == 0) return grep(re, stdin, NULL) ? 0 : 1;
  for (; i < argc; i++) {
    FILE *f = fopen(argv[i], "r");
    if (!f) {
      fprintf(stderr, "grep: %s: %s\n", argv[i], strerror(errno));
      error = 1;
      continue;
    }
    found |= grep(re, f, files > 1 ? argv[i] : NULL);
    fclose(f);
  }
  return error ? 2 : found ? 0 : 1;
}
