/*
 * load.c — reading mangagan's files: the metadata of a checkpoint or generator file, and the
 * generator built from one with its weights loaded (for sample, export, interpolate and eval, for
 * --resume's checks in checkpoint.c, and for the browser page's module, examples/web/face.c,
 * which links this file with recipes.c and model.c alone).
 */
#include "mangagan.h"

#include <string.h>

/* Reads only the metadata of a mangagan file. */
tg_state *peek(const char *path) {
    tg_state *s = need(tg_state_new());
    if (tg_state_load(s, path, false) != TG_OK) die("%s", tg_last_error());
    const char *f = tg_state_get_meta(s, "format");
    if (!f || strcmp(f, "mangagan-v1")) die("%s is not a mangagan checkpoint or generator file", path);
    return s;
}

long meta_num(tg_state *s, const char *k, const char *path) {
    const char *v = tg_state_get_meta(s, k);
    if (!v) die("%s lacks '%s' in its metadata", path, k);
    return strtol(v, NULL, 10);
}

/* Builds G from a checkpoint or a generator file; returns whether the weights loaded are a
 * checkpoint's moving average. */
int load_generator(gan *g, const char *path, tg_device dev, uint64_t seed, int batch, int no_ema) {
    tg_state *m = peek(path);
    const recipe *r = find_recipe(tg_state_get_meta(m, "recipe"));
    if (!r) die("%s names an unknown recipe", path);
    if (meta_num(m, "image_size", path) != SIZE) die("%s is for another image size", path);
    int width = (int)meta_num(m, "width", path);
    int is_ckpt = tg_state_get_meta(m, "step") != NULL;
    const char *ev = tg_state_get_meta(m, "ema");
    int ema = ev && strtof(ev, NULL) > 0 && !no_ema; /* a checkpoint samples from its average */
    recipe rc = *r;
    rc.ema = 0; /* the loaded weights are the ones that sample */
    tg_state_free(m);
    gan_init(g, &rc, width, batch, dev, seed, 0);
    tg_state *s = need(tg_state_new());
    TRY(tg_state_add_module(s, is_ckpt ? (ema ? "Gema.main." : "G.main.") : "main.", g->G));
    TRY(tg_state_load(s, path, false));
    tg_state_free(s);
    return is_ckpt && ema;
}
