/*
 * cli.h — the examples' one command-line parser and progress line (header-only, C11 + POSIX;
 * include after example.h). A command is a table of options, each with its kind, bounds, default
 * and meaning; from it come the parsing, the refusals ("unknown option", "needs a value", "wants a
 * whole number in [1, 1000]") and `--help`/`-h` for every command and subcommand. Output paths
 * are checked with cli_out_dir / cli_out_file before any work starts, and loops longer than a
 * few seconds report done/total, rate and ETA with cli_progress.
 *
 *   static long epochs = 8;
 *   static const cli_opt OPTS[] = {
 *       {"--epochs", CLI_INT, &epochs, 1, 1000, "N", "training epochs"},
 *       ...
 *   };
 *   static const cli_cmd CMD = {"fashion", NULL, "train a classifier", OPTS, CLI_N(OPTS), NULL};
 *   cli_parse(&CMD, argc, argv, 1);   // exits 0 after --help, 2 after a refusal
 */
#ifndef CLI_H
#define CLI_H

#include <errno.h>
#include <limits.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

typedef enum {
    CLI_FLAG, /* no value: sets *(int *)dest to 1 */
    CLI_STR,  /* *(const char **)dest = the value */
    CLI_INT,  /* *(long *)dest, a whole number in [lo, hi] */
    CLI_NUM,  /* *(double *)dest, a number in [lo, hi] */
    CLI_U64,  /* *(unsigned long long *)dest, a whole number in [lo, hi] */
} cli_kind;

typedef struct {
    const char *name; /* "--steps" */
    cli_kind kind;
    void *dest;
    double lo, hi;    /* bounds of CLI_INT / CLI_NUM / CLI_U64 */
    const char *meta; /* the value's placeholder in the help: "N", "DIR" */
    const char *help; /* what it means, and its default ("(default 10000)") */
    const char *choices; /* CLI_STR: the allowed values, "a|b|c", or NULL for any */
} cli_opt;

typedef struct {
    const char *prog;    /* "mangagan" */
    const char *name;    /* the subcommand, "train", or NULL */
    const char *summary; /* one line */
    const cli_opt *opts;
    int n;
    const char *notes;   /* more help text after the options, or NULL */
} cli_cmd;

#define CLI_N(a) ((int)(sizeof(a) / sizeof((a)[0])))

static inline void cli_help(const cli_cmd *c, FILE *f) {
    fprintf(f, "usage: %s%s%s [options]\n%s\n", c->prog, c->name ? " " : "", c->name ? c->name : "", c->summary);
    if (c->n) fprintf(f, "\noptions:\n");
    for (int i = 0; i < c->n; i++) {
        const cli_opt *o = &c->opts[i];
        char left[64];
        snprintf(left, sizeof left, "%s%s%s", o->name, o->kind == CLI_FLAG ? "" : " ",
                 o->kind == CLI_FLAG ? "" : (o->choices ? o->choices : o->meta ? o->meta : "X"));
        fprintf(f, "  %-28s %s\n", left, o->help);
    }
    fprintf(f, "  %-28s %s\n", "-h, --help", "this help");
    if (c->notes) fprintf(f, "\n%s\n", c->notes);
}

static inline void cli_refuse(const cli_cmd *c, const char *fmt, ...) __attribute__((format(printf, 2, 3), noreturn));
static inline void cli_refuse(const cli_cmd *c, const char *fmt, ...) {
    va_list ap;
    va_start(ap, fmt);
    fprintf(stderr, "%s%s%s: ", c->prog, c->name ? " " : "", c->name ? c->name : "");
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, " (see '%s%s%s --help')\n", c->prog, c->name ? " " : "", c->name ? c->name : "");
    exit(2);
}

/* whether v is in the '|'-separated list */
static inline int cli_in(const char *v, const char *list) {
    const size_t n = strlen(v);
    for (const char *p = list; p && *p;) {
        const char *bar = strchr(p, '|');
        const size_t k = bar ? (size_t)(bar - p) : strlen(p);
        if (k == n && !strncmp(p, v, n)) return 1;
        p = bar ? bar + 1 : NULL;
    }
    return 0;
}

static inline void cli_set(const cli_cmd *c, const cli_opt *o, const char *v) {
    char *e;
    errno = 0;
    switch (o->kind) {
    case CLI_FLAG: *(int *)o->dest = 1; return;
    case CLI_STR:
        if (o->choices && !cli_in(v, o->choices)) cli_refuse(c, "%s wants one of %s, got '%s'", o->name, o->choices, v);
        if (!*v) cli_refuse(c, "%s wants a value, got an empty one", o->name);
        *(const char **)o->dest = v;
        return;
    case CLI_INT: {
        const long x = strtol(v, &e, 10);
        if (errno || e == v || *e || x < (long)o->lo || x > (long)o->hi)
            cli_refuse(c, "%s wants a whole number in [%ld, %ld], got '%s'", o->name, (long)o->lo, (long)o->hi, v);
        *(long *)o->dest = x;
        return;
    }
    case CLI_U64: {
        const unsigned long long x = strtoull(v, &e, 10);
        if (errno || e == v || *e || *v == '-' || (double)x < o->lo || (double)x > o->hi)
            cli_refuse(c, "%s wants a whole number in [%.0f, %.0f], got '%s'", o->name, o->lo, o->hi, v);
        *(unsigned long long *)o->dest = x;
        return;
    }
    case CLI_NUM: {
        const double x = strtod(v, &e);
        if (errno || e == v || *e || !(x >= o->lo && x <= o->hi))
            cli_refuse(c, "%s wants a number in [%g, %g], got '%s'", o->name, o->lo, o->hi, v);
        *(double *)o->dest = x;
        return;
    }
    }
}

/* Parses argv[first..argc): "--opt value", "--opt=value", flags. --help / -h anywhere prints
 * the command's help and exits 0; anything unknown exits 2 with the reason. */
static inline void cli_parse(const cli_cmd *c, int argc, char **argv, int first) {
    for (int i = first; i < argc; i++)
        if (!strcmp(argv[i], "--help") || !strcmp(argv[i], "-h")) {
            cli_help(c, stdout);
            exit(0);
        }
    for (int i = first; i < argc; i++) {
        const char *a = argv[i];
        if (strncmp(a, "--", 2) != 0) cli_refuse(c, "unexpected argument '%s'", a);
        const char *eq = strchr(a, '=');
        const size_t len = eq ? (size_t)(eq - a) : strlen(a);
        const cli_opt *o = NULL;
        for (int k = 0; k < c->n && !o; k++)
            if (strlen(c->opts[k].name) == len && !strncmp(c->opts[k].name, a, len)) o = &c->opts[k];
        if (!o) cli_refuse(c, "unknown option %.*s", (int)len, a);
        if (o->kind == CLI_FLAG) {
            if (eq) cli_refuse(c, "%s takes no value", o->name);
            cli_set(c, o, NULL);
            continue;
        }
        const char *v = eq ? eq + 1 : NULL;
        if (!v) {
            if (i + 1 >= argc) cli_refuse(c, "%s needs a value (%s)", o->name, o->meta ? o->meta : o->choices);
            v = argv[++i];
        }
        cli_set(c, o, v);
    }
}

/* A program with subcommands: argv[1] picks one of cmds (its --help lists them); returns its
 * index after parsing its options. */
static inline int cli_dispatch(const char *prog, const char *summary, const cli_cmd *cmds, int n, int argc, char **argv) {
    if (argc < 2 || !strcmp(argv[1], "--help") || !strcmp(argv[1], "-h") || !strcmp(argv[1], "help")) {
        FILE *f = argc < 2 ? stderr : stdout;
        fprintf(f, "usage: %s COMMAND [options]\n%s\n\ncommands:\n", prog, summary);
        for (int i = 0; i < n; i++) fprintf(f, "  %-12s %s\n", cmds[i].name, cmds[i].summary);
        fprintf(f, "\n'%s COMMAND --help' lists a command's options, their defaults and meaning.\n", prog);
        exit(argc < 2 ? 2 : 0);
    }
    for (int i = 0; i < n; i++)
        if (!strcmp(argv[1], cmds[i].name)) {
            cli_parse(&cmds[i], argc, argv, 2);
            return i;
        }
    fprintf(stderr, "%s: unknown command '%s' (", prog, argv[1]);
    for (int i = 0; i < n; i++) fprintf(stderr, "%s%s", cmds[i].name, i + 1 < n ? ", " : "; see '");
    fprintf(stderr, "%s --help')\n", prog);
    exit(2);
}

/* ---- output paths, checked before the work ---------------------------------------------------- */
/* dir exists (made if missing, one level) and is a writable directory; 0 or exits 1 with why */
static inline void cli_out_dir(const char *prog, const char *what, const char *dir) {
    struct stat sb;
    if (stat(dir, &sb) != 0 && mkdir(dir, 0777) != 0) {
        fprintf(stderr, "%s: %s %s cannot be created: %s\n", prog, what, dir, strerror(errno));
        exit(1);
    }
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "%s: %s %s is not a directory\n", prog, what, dir);
        exit(1);
    }
    if (access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "%s: %s %s is not writable: %s\n", prog, what, dir, strerror(errno));
        exit(1);
    }
}

/* a file can be written at path: not a directory, and its directory writable */
static inline void cli_out_file(const char *prog, const char *what, const char *path) {
    struct stat sb;
    if (stat(path, &sb) == 0 && S_ISDIR(sb.st_mode)) {
        fprintf(stderr, "%s: %s %s is a directory, not a file\n", prog, what, path);
        exit(1);
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s", path);
    char *slash = strrchr(dir, '/');
    if (!slash) snprintf(dir, sizeof dir, ".");
    else if (slash == dir) dir[1] = 0;
    else *slash = 0;
    if (stat(dir, &sb) != 0 || !S_ISDIR(sb.st_mode) || access(dir, W_OK | X_OK) != 0) {
        fprintf(stderr, "%s: %s %s cannot be written: directory %s %s\n", prog, what, path, dir,
                stat(dir, &sb) != 0 ? "does not exist" : "is not writable");
        exit(1);
    }
}

/* ---- progress ----------------------------------------------------------------------------------- */
/* A line on stderr at most every `every` seconds: "what: done/total (pct), rate unit/s, ETA".
 * On a terminal it rewrites itself (\r); in a log it is a line every 10 s or more. */
typedef struct {
    const char *what, *unit;
    double t0, last, every;
    long total;
    int tty, shown;
} cli_progress;

static inline double cli_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + 1e-9 * (double)ts.tv_nsec;
}

static inline void cli_progress_start(cli_progress *p, const char *what, const char *unit, long total) {
    p->what = what, p->unit = unit, p->total = total;
    p->t0 = p->last = cli_now();
    p->tty = isatty(2);
    p->every = p->tty ? 1.0 : 10.0;
    p->shown = 0;
}

static inline void cli_eta(double s, char *b, size_t n) {
    if (!(s >= 0) || s > 1e7) snprintf(b, n, "?");
    else if (s >= 3600) snprintf(b, n, "%dh%02dm", (int)(s / 3600), (int)fmod(s / 60, 60));
    else if (s >= 60) snprintf(b, n, "%dm%02ds", (int)(s / 60), (int)fmod(s, 60));
    else snprintf(b, n, "%.0fs", s);
}

static inline void cli_progress_step(cli_progress *p, long done) {
    const double t = cli_now();
    if (t - p->last < p->every && done < p->total) return;
    if (done >= p->total && !p->shown) return; /* a short loop: no line at all */
    p->last = t;
    p->shown = 1;
    const double el = t - p->t0, rate = el > 0 ? (double)done / el : 0;
    char eta[32];
    cli_eta(rate > 0 ? (double)(p->total - done) / rate : -1, eta, sizeof eta);
    fprintf(stderr, "%s%s: %ld/%ld (%.0f%%), %.1f %s/s, ETA %s%s", p->tty ? "\r" : "", p->what, done, p->total,
            100.0 * (double)done / (double)(p->total ? p->total : 1), rate, p->unit, eta, p->tty ? "   " : "\n");
    fflush(stderr);
}

static inline void cli_progress_end(cli_progress *p) {
    if (p->tty && p->shown) fprintf(stderr, "\r%*s\r", 79, ""), fflush(stderr);
}

#endif
