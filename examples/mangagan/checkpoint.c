/*
 * checkpoint.c — mangagan's files. A checkpoint holds everything that makes a step (both
 * networks, the moving average, Adam's moments and step counts, BatchNorm's buffers, the fixed
 * noise, the RNG's position, the data order's seed and place) and the settings it was trained
 * with, so --resume continues bit for bit; a generator file holds the sampling generator alone,
 * under the names of a torch.nn.Sequential stored as `main`.
 */
#define _GNU_SOURCE
#include "mangagan.h"

#include <dirent.h>
#include <string.h>
#include <unistd.h>

static tg_state *train_state(gan *g) {
    tg_state *s = need(tg_state_new());
    TRY(tg_state_add_module(s, "G.main.", g->G));
    TRY(tg_state_add_module(s, "D.main.", g->D));
    TRY(tg_state_add_optim(s, "optG.", g->og));
    TRY(tg_state_add_optim(s, "optD.", g->od));
    TRY(tg_state_add(s, "fixed_noise", g->fixed));
    if (g->Gema) TRY(tg_state_add_module(s, "Gema.main.", g->Gema));
    return s;
}

static void set_meta_num(tg_state *s, const char *k, unsigned long long v) {
    char b[32];
    snprintf(b, sizeof b, "%llu", v);
    TRY(tg_state_set_meta(s, k, b));
}

static void model_meta(tg_state *s, const gan *g) {
    TRY(tg_state_set_meta(s, "format", "mangagan-v1"));
    TRY(tg_state_set_meta(s, "recipe", g->r->name));
    set_meta_num(s, "width", (unsigned long long)g->width);
    set_meta_num(s, "nz", (unsigned long long)g->r->nz);
    set_meta_num(s, "image_size", SIZE);
    char b[32];
    TRY(tg_state_set_meta(s, "loss", loss_name(g->r->loss)));
    snprintf(b, sizeof b, "%.9g", g->r->lr_g);
    TRY(tg_state_set_meta(s, "lr_g", b));
    snprintf(b, sizeof b, "%.9g", g->r->lr_d);
    TRY(tg_state_set_meta(s, "lr_d", b));
    snprintf(b, sizeof b, "%.9g", g->r->ema);
    TRY(tg_state_set_meta(s, "ema", b));
    TRY(tg_state_set_meta(s, "sn", g->r->sn ? "1" : "0"));
    TRY(tg_state_set_meta(s, "augment", aug_name(g->r->aug, b, sizeof b)));
}

void save_checkpoint(gan *g, const progress *p, const char *out, int flip) {
    char path[4096];
    tg_module *gen = sampler(g); /* re-estimates the average's BatchNorm statistics first */
    tg_state *s = train_state(g);
    model_meta(s, g);
    uint64_t seed, off;
    tg_ctx_rng_get(g->ctx, &seed, &off);
    set_meta_num(s, "batch", (unsigned long long)g->batch * (unsigned long long)g->world);
    set_meta_num(s, "world", (unsigned long long)g->world);
    set_meta_num(s, "step", (unsigned long long)p->step);
    set_meta_num(s, "epoch", (unsigned long long)p->epoch);
    set_meta_num(s, "pos", (unsigned long long)p->pos);
    set_meta_num(s, "data_seed", p->data_seed);
    set_meta_num(s, "rng_seed", seed);
    set_meta_num(s, "rng_offset", off);
    set_meta_num(s, "flip", (unsigned long long)flip);
    TRY(tg_state_set_meta(s, "precision", tg_precision_name(tg_ctx_precision(g->ctx))));
    char secs[32];
    snprintf(secs, sizeof secs, "%.3f", p->seconds);
    TRY(tg_state_set_meta(s, "seconds", secs));
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", out);
    TRY(tg_state_save(s, path));
    tg_state_free(s);
    /* the generator alone (the moving average when --ema is on), with the names of a
     * torch.nn.Sequential stored as `main` */
    s = need(tg_state_new());
    TRY(tg_state_add_module(s, "main.", gen));
    model_meta(s, g);
    snprintf(path, sizeof path, "%s/generator.safetensors", out);
    TRY(tg_state_save(s, path));
    tg_state_free(s);
}

/* A run killed in the instant between naming a checkpoint's temporary file and renaming it can
 * leave "<name>.safetensors.tmp.XXXXXX" behind; this program owns its output directory, so it
 * removes such leftovers when it starts. */
void remove_stale_temps(const char *out) {
    DIR *d = opendir(out);
    if (!d) return;
    struct dirent *e;
    char path[4096];
    while ((e = readdir(d))) {
        if ((strncmp(e->d_name, "checkpoint.safetensors.tmp.", 27) &&
             strncmp(e->d_name, "generator.safetensors.tmp.", 26)))
            continue;
        snprintf(path, sizeof path, "%s/%s", out, e->d_name);
        if (unlink(path) == 0) fprintf(stderr, "mangagan: removed a stale temporary file %s\n", path);
    }
    closedir(d);
}

/* On --resume: the recipe, its settings, the width, the batch and --flip the checkpoint at path
 * was trained with, into *o and *rc; a refusal when the command line asks for others or the
 * number of ranks differs (the data order and the noise streams depend on it). */
void resume_settings(opts *o, recipe *rc, const char *path, int world) {
    if (access(path, R_OK) != 0) die("--resume: no checkpoint at %s", path);
    tg_state *m = peek(path);
    const char *rec = tg_state_get_meta(m, "recipe");
    long w = meta_num(m, "width", path), b = meta_num(m, "batch", path);
    if (!rec || !find_recipe(rec)) die("%s names an unknown recipe", path);
    if (o->recipe && strcmp(rec, o->recipe)) die("%s was trained with recipe '%s', not '%s'", path, rec, o->recipe);
    if (meta_num(m, "image_size", path) != SIZE)
        die("%s is for %ldx%ld images, this program makes %dx%d", path, meta_num(m, "image_size", path),
            meta_num(m, "image_size", path), SIZE, SIZE);
    if (o->width && o->width != w) die("%s has width %ld, not %ld", path, w, o->width);
    if (o->batch && o->batch != b) die("%s was trained at batch %ld, not %ld", path, b, o->batch);
    const long cw = tg_state_get_meta(m, "world") ? meta_num(m, "world", path) : 1;
    if (cw != world)
        die("%s was trained on %ld rank(s), this run has %d: the data order and the noise streams depend on "
            "the number of ranks, so resume it with mpirun -np %ld",
            path, cw, world, cw);
    *rc = *find_recipe(rec);
    checkpoint_settings(rc, m, o, path);
    o->width = w;
    o->batch = b;
    o->flip = (int)meta_num(m, "flip", path);
    /* the precision it trained in (fp32 before it was recorded), unless the command line asks
     * for another: a checkpoint trains on in any precision, bit for bit in its own */
    const char *prec = tg_state_get_meta(m, "precision");
    static char keep[16];
    if (!o->precision) {
        snprintf(keep, sizeof keep, "%s", prec ? prec : "fp32");
        o->precision = keep;
    }
    tg_state_free(m);
}

/* On --resume, once g is built: its whole state, the RNG's position (this rank's stream) and the
 * data order's place, from the checkpoint at path; a refusal when it is already at --steps. */
void resume_state(gan *g, progress *p, const char *path, long steps) {
    tg_state *s = train_state(g);
    TRY(tg_state_load(s, path, true));
    p->step = meta_num(s, "step", path);
    p->epoch = meta_num(s, "epoch", path);
    p->pos = meta_num(s, "pos", path);
    p->data_seed = strtoull(tg_state_get_meta(s, "data_seed"), NULL, 10);
    p->seconds = atof(tg_state_get_meta(s, "seconds"));
    tg_ctx_rng_set(g->ctx, rank_seed(strtoull(tg_state_get_meta(s, "rng_seed"), NULL, 10), g->rank),
                   strtoull(tg_state_get_meta(s, "rng_offset"), NULL, 10));
    tg_state_free(s);
    if (p->step >= steps) die("%s is already at step %ld (--steps %ld)", path, p->step, steps);
}
