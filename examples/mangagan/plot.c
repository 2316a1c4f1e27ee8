/*
 * plot.c — mangagan's training plot: log.csv drawn into a PNG with the library's writer, no
 * plotting library. Three panels over the steps: the losses (D on real, D on fake, G), the mean
 * D outputs (D(x), D(G(z))) and the sliced Wasserstein distance to held-out faces where it was
 * evaluated. Per-step values are averaged per pixel column; text uses a 3x5 pixel font.
 */
#include "plot.h"

#include <tensorgan.h>

#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define W 960
#define PANEL_H 200
#define NPANEL 3
#define H (NPANEL * PANEL_H + 40)
#define LEFT 80
#define RIGHT 20

typedef struct {
    uint8_t *px;
} canvas;

static void put(canvas *c, int x, int y, const uint8_t rgb[3]) {
    if (x < 0 || y < 0 || x >= W || y >= H) return;
    memcpy(c->px + ((size_t)y * W + x) * 3, rgb, 3);
}

static void line(canvas *c, int x0, int y0, int x1, int y1, const uint8_t rgb[3], int thick) {
    int dx = abs(x1 - x0), dy = -abs(y1 - y0), sx = x0 < x1 ? 1 : -1, sy = y0 < y1 ? 1 : -1, e = dx + dy;
    for (;;) {
        for (int t = 0; t < thick; t++) put(c, x0, y0 + t, rgb);
        if (x0 == x1 && y0 == y1) break;
        int e2 = 2 * e;
        if (e2 >= dy) e += dy, x0 += sx;
        if (e2 <= dx) e += dx, y0 += sy;
    }
}

/* 3x5 glyphs: five rows of three cells ('#' on) per character */
static const char *const *glyph(char ch) {
    static const struct { char c; const char *rows[5]; } F[] = {
        {'0', {"###", "#.#", "#.#", "#.#", "###"}},
        {'1', {".#.", "##.", ".#.", ".#.", "###"}},
        {'2', {"###", "..#", "###", "#..", "###"}},
        {'3', {"###", "..#", ".##", "..#", "###"}},
        {'4', {"#.#", "#.#", "###", "..#", "..#"}},
        {'5', {"###", "#..", "###", "..#", "###"}},
        {'6', {"###", "#..", "###", "#.#", "###"}},
        {'7', {"###", "..#", ".#.", ".#.", ".#."}},
        {'8', {"###", "#.#", "###", "#.#", "###"}},
        {'9', {"###", "#.#", "###", "..#", "###"}},
        {'.', {"...", "...", "...", "...", ".#."}},
        {'-', {"...", "...", "###", "...", "..."}},
        {'(', {".#.", "#..", "#..", "#..", ".#."}},
        {')', {".#.", "..#", "..#", "..#", ".#."}},
        {',', {"...", "...", "...", ".#.", "#.."}},
        {':', {"...", ".#.", "...", ".#.", "..."}},
        {'=', {"...", "###", "...", "###", "..."}},
        {'+', {"...", ".#.", "###", ".#.", "..."}},
        {'A', {".#.", "#.#", "###", "#.#", "#.#"}},
        {'B', {"##.", "#.#", "##.", "#.#", "##."}},
        {'C', {".##", "#..", "#..", "#..", ".##"}},
        {'D', {"##.", "#.#", "#.#", "#.#", "##."}},
        {'E', {"###", "#..", "##.", "#..", "###"}},
        {'F', {"###", "#..", "##.", "#..", "#.."}},
        {'G', {".##", "#..", "#.#", "#.#", ".##"}},
        {'H', {"#.#", "#.#", "###", "#.#", "#.#"}},
        {'I', {"###", ".#.", ".#.", ".#.", "###"}},
        {'K', {"#.#", "#.#", "##.", "#.#", "#.#"}},
        {'L', {"#..", "#..", "#..", "#..", "###"}},
        {'M', {"#.#", "###", "###", "#.#", "#.#"}},
        {'N', {"##.", "#.#", "#.#", "#.#", "#.#"}},
        {'O', {".#.", "#.#", "#.#", "#.#", ".#."}},
        {'P', {"##.", "#.#", "##.", "#..", "#.."}},
        {'R', {"##.", "#.#", "##.", "#.#", "#.#"}},
        {'S', {".##", "#..", ".#.", "..#", "##."}},
        {'T', {"###", ".#.", ".#.", ".#.", ".#."}},
        {'U', {"#.#", "#.#", "#.#", "#.#", "###"}},
        {'V', {"#.#", "#.#", "#.#", "#.#", ".#."}},
        {'W', {"#.#", "#.#", "###", "###", "#.#"}},
        {'X', {"#.#", "#.#", ".#.", "#.#", "#.#"}},
        {'Y', {"#.#", "#.#", ".#.", ".#.", ".#."}},
        {'Z', {"###", "..#", ".#.", "#..", "###"}},
    };
    for (size_t i = 0; i < sizeof F / sizeof F[0]; i++)
        if (F[i].c == ch) return F[i].rows;
    return NULL; /* space and anything else: blank */
}

/* text at (x, y) top-left, each font pixel scale x scale; returns the x after it */
static int text(canvas *c, int x, int y, const char *s, const uint8_t rgb[3], int scale) {
    for (; *s; s++) {
        char ch = *s >= 'a' && *s <= 'z' ? (char)(*s - 32) : *s;
        const char *const *g = glyph(ch);
        for (int r = 0; g && r < 5; r++)
            for (int k = 0; k < 3; k++)
                if (g[r][k] == '#')
                    for (int a = 0; a < scale; a++)
                        for (int b = 0; b < scale; b++) put(c, x + k * scale + b, y + r * scale + a, rgb);
        x += 4 * scale;
    }
    return x;
}

typedef struct {
    const char *name;
    int col; /* column of log.csv */
    uint8_t rgb[3];
} series;

static void fmt(char *b, size_t n, double v) {
    if (fabs(v) >= 100) snprintf(b, n, "%.0f", v);
    else if (fabs(v) >= 10) snprintf(b, n, "%.1f", v);
    else snprintf(b, n, "%.2f", v);
}

/* One panel: the series' values per step on a shared y range. Dense series (a value every step)
 * are smoothed by a centred moving average over 1% of the steps and averaged per pixel column;
 * sparse ones (the evaluations) are drawn point to point with a marker at each. */
static void panel(canvas *c, int top, const char *title, const double *steps, double *const *raw,
                  int rows, const series *s, int ns, double smax) {
    double *vals[4];
    int sparse[4];
    for (int k = 0; k < ns; k++) {
        int have = 0;
        for (int r = 0; r < rows; r++) have += !isnan(raw[k][r]);
        sparse[k] = have < rows / 2;
        vals[k] = malloc(sizeof(double) * (size_t)(rows ? rows : 1));
        const int half = sparse[k] ? 0 : rows / 200;
        for (int r = 0; r < rows; r++) {
            double sum = 0;
            int cnt = 0;
            for (int j = r - half; j <= r + half; j++)
                if (j >= 0 && j < rows && !isnan(raw[k][j])) sum += raw[k][j], cnt++;
            vals[k][r] = cnt && !isnan(raw[k][r]) ? sum / cnt : NAN;
        }
    }
    static const uint8_t axis[3] = {90, 90, 90}, grid[3] = {225, 225, 225}, dark[3] = {30, 30, 30};
    const int x0 = LEFT, x1 = W - RIGHT, y0 = top + 28, y1 = top + PANEL_H - 14;
    double lo = INFINITY, hi = -INFINITY;
    for (int k = 0; k < ns; k++)
        for (int r = 0; r < rows; r++)
            if (!isnan(vals[k][r])) lo = fmin(lo, vals[k][r]), hi = fmax(hi, vals[k][r]);
    if (!(lo <= hi)) lo = 0, hi = 1;
    if (hi - lo < 1e-6) hi = lo + 1;
    const double pad = 0.05 * (hi - lo);
    lo -= pad, hi += pad;
    for (int g = 0; g <= 4; g++) {
        int y = y1 - (y1 - y0) * g / 4;
        line(c, x0, y, x1, y, grid, 1);
        char b[32];
        fmt(b, sizeof b, lo + (hi - lo) * g / 4);
        text(c, 8, y - 4, b, dark, 2);
    }
    line(c, x0, y0, x0, y1, axis, 1);
    line(c, x0, y1, x1, y1, axis, 1);
    int tx = text(c, x0, top + 8, title, dark, 2) + 16;
    for (int k = 0; k < ns; k++) tx = text(c, tx, top + 8, s[k].name, s[k].rgb, 2) + 16;
    for (int k = 0; k < ns; k++) {
        int px = -1, py = -1;
        int r = 0;
        for (int x = x0; x <= x1; x++) {
            /* the rows whose step falls in this pixel column */
            double a = (double)(x - x0) / (x1 - x0) * smax, b = (double)(x + 1 - x0) / (x1 - x0) * smax;
            double sum = 0;
            int cnt = 0;
            while (r < rows && steps[r] < b) {
                if (steps[r] >= a && !isnan(vals[k][r])) sum += vals[k][r], cnt++;
                r++;
            }
            if (!cnt) continue;
            int y = y1 - (int)lround((sum / cnt - lo) / (hi - lo) * (y1 - y0));
            if (px >= 0) line(c, px, py, x, y, s[k].rgb, 2);
            else line(c, x, y, x, y, s[k].rgb, 2);
            if (sparse[k])
                for (int d = -3; d <= 3; d++) line(c, x - 3, y + d, x + 3, y + d, s[k].rgb, 1);
            px = x, py = y;
        }
    }
    for (int k = 0; k < ns; k++) free(vals[k]);
}

int plot_log(const char *csv, const char *png) {
    FILE *f = fopen(csv, "r");
    if (!f) return -1;
    int cap = 1024, rows = 0;
    double *cols[9];
    for (int k = 0; k < 9; k++) cols[k] = malloc(sizeof(double) * (size_t)cap);
    char line_buf[1024];
    int ok = 1;
    while (ok && fgets(line_buf, sizeof line_buf, f)) {
        if (line_buf[0] < '0' || line_buf[0] > '9') continue; /* the header */
        if (rows == cap) {
            cap *= 2;
            for (int k = 0; k < 9; k++) {
                double *p = realloc(cols[k], sizeof(double) * (size_t)cap);
                if (!p) ok = 0;
                else cols[k] = p;
            }
            if (!ok) break;
        }
        char *p = line_buf;
        for (int k = 0; k < 9; k++) {
            char *e;
            double v = strtod(p, &e);
            cols[k][rows] = e == p ? NAN : v; /* an empty field (no evaluation): NaN */
            p = strchr(e, ',');
            if (!p) {
                for (int j = k + 1; j < 9; j++) cols[j][rows] = NAN;
                break;
            }
            p++;
        }
        rows++;
    }
    fclose(f);
    int rc = -1;
    canvas c = {calloc((size_t)W * H * 3, 1)};
    if (ok && rows > 0 && c.px) {
        memset(c.px, 255, (size_t)W * H * 3);
        const double smax = cols[0][rows - 1];
        static const series loss[3] = {{"D REAL", 2, {31, 119, 180}}, {"D FAKE", 3, {214, 39, 40}}, {"G", 4, {44, 160, 44}}};
        static const series prob[2] = {{"D(X)", 5, {31, 119, 180}}, {"D(G(Z))", 6, {214, 39, 40}}};
        static const series swd[1] = {{"SWD X1E3 TO HELD-OUT FACES", 7, {148, 103, 189}}};
        double *lv[3] = {cols[2], cols[3], cols[4]}, *pv[2] = {cols[5], cols[6]}, *sv[1] = {cols[7]};
        panel(&c, 0, "LOSS", cols[0], lv, rows, loss, 3, smax);
        panel(&c, PANEL_H, "MEAN D", cols[0], pv, rows, prob, 2, smax);
        panel(&c, 2 * PANEL_H, "", cols[0], sv, rows, swd, 1, smax);
        static const uint8_t dark[3] = {30, 30, 30};
        char b[64];
        snprintf(b, sizeof b, "STEP 0 - %.0f", smax);
        text(&c, LEFT, NPANEL * PANEL_H + 10, b, dark, 2);
        rc = tg_image_save_png(png, c.px, W, H) == TG_OK ? 0 : -1;
    }
    free(c.px);
    for (int k = 0; k < 9; k++) free(cols[k]);
    return rc;
}
