/*
 * train.c — mangagan's training loop: the data order (reproducible from the data seed and the
 * epoch, so a resumed run rebuilds it), each rank's share of a global batch, the data-parallel
 * set-up, and what a step leaves behind (log.csv, progress lines, sample grids, the loss plot,
 * checkpoints, SWD evaluations).
 */
#define _GNU_SOURCE
#include "mangagan.h"
#include "plot.h"

#include <errno.h>
#include <math.h>
#include <signal.h>
#include <string.h>
#include <unistd.h>

static volatile sig_atomic_t interrupted;
static void on_sigint(int sig) {
    (void)sig;
    interrupted = 1;
}

/* The epoch's order: Fisher-Yates driven by (data seed, epoch) alone, so a resumed run rebuilds
 * it exactly. */
static void shuffle_epoch(int64_t *perm, int64_t n, const progress *p) {
    for (int64_t i = 0; i < n; i++) perm[i] = i;
    uint64_t s = mix64(p->data_seed ^ mix64((uint64_t)p->epoch));
    for (int64_t i = n - 1; i > 0; i--) {
        s = mix64(s);
        int64_t j = (int64_t)(s % (uint64_t)(i + 1)), t = perm[i];
        perm[i] = perm[j];
        perm[j] = t;
    }
}

/* The next global batch (batch x world images of the epoch's order) with this rank's share of it
 * into g->real; a new epoch (and order) when the current one cannot fill it. */
static void fill_batch(gan *g, const tg_dataset *ds, progress *p, int64_t *perm, int flip) {
    const int64_t n = tg_dataset_count(ds), B = (int64_t)g->batch * g->world, own = (int64_t)g->rank * g->batch;
    int64_t idx[4096];
    uint8_t flips[4096];
    if (p->pos + B > n) {
        p->epoch++;
        p->pos = 0;
        shuffle_epoch(perm, n, p);
    }
    for (int64_t b = 0; b < g->batch; b++) {
        const int64_t at = p->pos + own + b;
        idx[b] = perm[at];
        flips[b] = flip ? (uint8_t)(mix64(p->data_seed ^ mix64((uint64_t)(p->epoch * n + at))) & 1) : 0;
    }
    TRY(tg_dataset_batch(ds, g->real, idx, flips));
    p->pos += B;
}

/* For tests: MANGAGAN_POISON_STEP=N puts a NaN into the real batch of step N. */
static void poison(gan *g) {
    const int64_t n = tg_tensor_numel(g->real);
    float *h = need(malloc(sizeof(float) * (size_t)n));
    TRY(tg_tensor_read(g->real, h, n));
    h[n / 2] = NAN;
    TRY(tg_tensor_write(g->real, h, n));
    free(h);
}

/* Data-parallel set-up after the model exists: gradient averagers for G and D, the BatchNorm
 * running statistics to average after each step, and (fresh runs) rank 0's initial state on
 * every rank. */
static void dist_setup(gan *g, tg_dist *dist, int fresh) {
    g->dist = dist;
    g->rank = tg_dist_rank(dist), g->world = tg_dist_world(dist);
    tg_tensor *p[64];
    int n = tg_module_params(g->G, p, 64);
    g->sync_g = need(tg_dist_grads_new(dist, p, n, 0));
    n = tg_module_params(g->D, p, 64);
    g->sync_d = need(tg_dist_grads_new(dist, p, n, 0));
    tg_module *mods[3] = {g->G, g->D, g->Gema};
    for (int m = 0; m < 3; m++) {
        if (!mods[m]) continue;
        tg_tensor *t[128];
        n = tg_module_state(mods[m], NULL, t, 128);
        if (fresh) TRY(tg_dist_broadcast(dist, t, n, 0));
        if (m == 2) continue; /* the moving average's statistics are re-estimated, not averaged */
        n = tg_module_batch_norm_stats(mods[m], g->bn_stats + g->n_bn_stats, 64 - g->n_bn_stats);
        if (n < 0 || g->n_bn_stats + n > 64) die("too many BatchNorm layers");
        g->n_bn_stats += n;
    }
    if (fresh) TRY(tg_dist_broadcast(dist, &g->fixed, 1, 0));
}

/* A training run's settings (the defaults filled in) and what it writes to. */
typedef struct {
    opts o;
    long poison_step;           /* MANGAGAN_POISON_STEP, 0: none */
    int lead, tty;              /* rank 0 (it alone writes and prints); stdout is a terminal */
    long sample_every, ckpt_every, log_every, start;
    double t_start, secs0;
    FILE *log;
    uint8_t *eval_real;         /* the held-out images every evaluation compares with, or NULL */
    int64_t eval_n;
} run;

/* The faces to train on, with a warning for unreadable ones and a refusal below one batch. */
static tg_dataset *load_faces(const char *data, int64_t global_batch, double *seconds) {
    int skipped = 0;
    double t0 = now();
    tg_dataset *ds = tg_dataset_load(data, SIZE, &skipped);
    if (!ds) die("%s", tg_last_error());
    if (skipped) fprintf(stderr, "mangagan: warning: skipped %d unreadable image(s) under %s\n", skipped, data);
    if (tg_dataset_count(ds) < global_batch)
        die("%s has %lld usable images, fewer than one batch of %lld", data, (long long)tg_dataset_count(ds),
            (long long)global_batch);
    *seconds = now() - t0;
    return ds;
}

static void print_banner(const gan *g, const tg_dataset *ds, const char *data, double load_s, int resume) {
    const recipe *r = g->r;
    printf("mangagan: recipe %s (width %d), batch %d, %lld images from %s (%.1f s), device %s%s\n",
           r->name, g->width, g->batch * g->world, (long long)tg_dataset_count(ds), data, load_s,
           tg_ctx_device(g->ctx) == TG_CUDA ? "cuda" : "cpu", resume ? ", resuming" : "");
    if (g->world > 1) {
        /* what each step all-reduces: G's gradients once, D's once per D update */
        tg_tensor *pp[64];
        double ng = 0, nd = 0;
        for (int i = 0, n = tg_module_params(g->G, pp, 64); i < n; i++) ng += (double)tg_tensor_numel(pp[i]);
        for (int i = 0, n = tg_module_params(g->D, pp, 64); i < n; i++) nd += (double)tg_tensor_numel(pp[i]);
        const int d_updates = r->keras_step ? 2 : 1;
        printf("mangagan: %d ranks of %d images each (%s); gradients averaged per step: G %.3fM + %dx D %.3fM "
               "parameters (%.1f MB)\n", g->world, g->batch, tg_dist_info(), ng / 1e6, d_updates, nd / 1e6,
               4.0 * (ng + d_updates * nd) / 1e6);
    }
    printf("mangagan: loss %s, learning rates G %g D %g, ", loss_name(r->loss), r->lr_g, r->lr_d);
    if (r->ema > 0) printf("EMA of G with decay %g", r->ema);
    else printf("no EMA");
    char ab[64];
    printf("%s, augment %s\n", r->sn ? ", spectral normalisation in D (no BatchNorm there)" : "",
           aug_name(r->aug, ab, sizeof ab));
    printf("mangagan: %s\n", tg_ctx_describe(g->ctx));
}

/* --eval-every: the held-out faces the SWD compares with, copied once */
static uint8_t *load_eval_real(const opts *o, int64_t n) {
    char eb[4096];
    const char *ed = o->eval_data ? o->eval_data : bundled(eb, sizeof eb, "heldout.safetensors.xz");
    if (!ed) die("--eval-every: the bundled held-out faces were not found (pass --eval-data FILE|DIR)");
    tg_dataset *eval_ds = tg_dataset_load(ed, SIZE, NULL);
    if (!eval_ds) die("%s", tg_last_error());
    uint8_t *real = first_images(eval_ds, n, ed);
    tg_dataset_free(eval_ds);
    return real;
}

/* With several ranks: BatchNorm's running statistics averaged (the same on all of them), the
 * global batch's losses into *st; whether any rank was interrupted. */
static int agree(gan *g, step_stats *st) {
    if (g->world == 1) return interrupted;
    TRY(tg_dist_average(g->dist, g->bn_stats, g->n_bn_stats));
    double v[6] = {st->d_real, st->d_fake, st->g, st->dx, st->dgz, interrupted};
    TRY(tg_dist_sum_host(g->dist, v, 6));
    const double w = g->world;
    st->d_real = (float)(v[0] / w), st->d_fake = (float)(v[1] / w), st->g = (float)(v[2] / w);
    st->dx = (float)(v[3] / w), st->dgz = (float)(v[4] / w);
    return v[5] > 0;
}

/* What rank 0 writes after step p->step (dt seconds): the evaluation when due, the log row, the
 * progress line, the sample grid and loss plot, the checkpoint. */
static void report(run *R, gan *g, const progress *p, const step_stats *st, double dt) {
    const opts *o = &R->o;
    const double images = (double)g->batch * g->world;
    const int last = p->step == o->steps;
    char path[4096], swd[32] = "";
    if (R->eval_real && (p->step % o->eval_every == 0 || last)) {
        double lv[3], te = now();
        double m = eval_swd(g, R->eval_real, R->eval_n, lv);
        snprintf(swd, sizeof swd, "%.3f", m);
        printf("%smangagan: step %ld: SWD x1e3 to held-out faces %.2f (64px %.2f, 32px %.2f, 16px %.2f; %lld images, %.1f s)\n",
               R->tty ? "\n" : "", p->step, m, lv[0], lv[1], lv[2], (long long)R->eval_n, now() - te);
    }
    fprintf(R->log, "%ld,%.3f,%.9g,%.9g,%.9g,%.6f,%.6f,%s,%.2f\n", p->step, p->seconds, st->d_real,
            st->d_fake, st->g, st->dx, st->dgz, swd, images / dt);
    if (p->step % R->log_every == 0 || last) {
        char eta[32];
        cli_eta((now() - R->t_start) / (double)(p->step - R->start) * (double)(o->steps - p->step), eta, sizeof eta);
        printf("%sstep %ld/%ld  D(real) %.3f  D(fake) %.3f  G %.3f  D(x) %.2f  D(G(z)) %.2f  %.1f img/s  ETA %s%s",
               R->tty ? "\r" : "", p->step, o->steps, st->d_real, st->d_fake, st->g, st->dx, st->dgz,
               images / dt, eta, R->tty ? "   " : "\n");
        fflush(stdout);
    }
    if (p->step % R->sample_every == 0 || last) {
        uint8_t *img = generate(g, sampler(g), g->fixed);
        snprintf(path, sizeof path, "%s/samples/step-%06ld.png", o->out, p->step);
        write_grid(path, img, 64, 8);
        free(img);
        /* the plot of the log so far, beside the grids */
        fflush(R->log);
        char csv[4096];
        snprintf(csv, sizeof csv, "%s/log.csv", o->out);
        snprintf(path, sizeof path, "%s/samples/losses.png", o->out);
        if (plot_log(csv, path) != 0) fprintf(stderr, "mangagan: warning: could not draw %s\n", path);
    }
    if (p->step % R->ckpt_every == 0 || last) {
        fflush(R->log);
        save_checkpoint(g, p, o->out, o->flip);
    }
}

int cmd_train(opts o) {
    run R = {0};
    const char *pe = getenv("MANGAGAN_POISON_STEP");
    R.poison_step = pe ? strtol(pe, NULL, 10) : 0;
    if (!o.steps) o.steps = 20000;
    if (!o.out) o.out = "mangagan-out";
    recipe rc = *find_recipe(o.recipe ? o.recipe : "seed");
    char buf[4096], path[4096];
    const char *data = o.data ? o.data : bundled(buf, sizeof buf, "faces.safetensors.xz");
    if (!data) die("no --data given and the bundled faces were not found (set MANGAGAN_DATA or pass --data DIR)");
    /* one rank, or one of those mpirun started: rank 0 alone writes files and prints */
    tg_dist *dist = need(tg_dist_init(NULL, NULL));
    const int rank = tg_dist_rank(dist), world = tg_dist_world(dist);
    R.lead = rank == 0;
    if (R.lead) {
        if (mkdirs(o.out) != 0) die("cannot create %s: %s", o.out, strerror(errno));
        remove_stale_temps(o.out);
        snprintf(path, sizeof path, "%s/samples", o.out);
        if (mkdirs(path) != 0) die("cannot create %s: %s", path, strerror(errno));
    }

    progress p = {0, 0, 0, o.seed ^ 0x6d616e6761ull, 0};
    snprintf(path, sizeof path, "%s/checkpoint.safetensors", o.out);
    if (o.resume) resume_settings(&o, &rc, path, world);
    if (!o.width) o.width = 64;
    if (!o.batch) o.batch = 64;
    if (!o.resume) apply_settings(&rc, &o);
    if (o.batch % world) die("--batch %ld does not split over %d ranks", o.batch, world);
    gan g;
    gan_init(&g, &rc, (int)o.width, (int)(o.batch / world), pick_device(o.device), rank_seed(o.seed, rank), 1);
    gan_set_precision(&g, o.precision);
    g.out = o.out;
    dist_setup(&g, dist, !o.resume);
    if (o.resume) resume_state(&g, &p, path, o.steps);
    double load_s;
    tg_dataset *ds = load_faces(data, (int64_t)g.batch * world, &load_s);
    int64_t *perm = need(malloc(sizeof(int64_t) * (size_t)tg_dataset_count(ds)));
    shuffle_epoch(perm, tg_dataset_count(ds), &p); /* the current epoch's order, also on resume */
    if (!R.lead && !freopen("/dev/null", "w", stdout)) die("cannot redirect stdout"); /* rank 0 speaks for the job */
    print_banner(&g, ds, data, load_s, o.resume);
    R.eval_n = o.eval_n ? o.eval_n : 2048;
    if (o.eval_every && R.lead) R.eval_real = load_eval_real(&o, R.eval_n);

    snprintf(path, sizeof path, "%s/log.csv", o.out);
    R.log = R.lead ? fopen(path, o.resume ? "a" : "w") : NULL;
    if (R.lead && !R.log) die("cannot write %s: %s", path, strerror(errno));
    if (R.lead && !o.resume) fprintf(R.log, "step,seconds,d_loss_real,d_loss_fake,g_loss,d_x,d_g_z,swd,images_per_s\n");
    signal(SIGINT, on_sigint);
    R.o = o;
    R.tty = isatty(STDOUT_FILENO);
    R.sample_every = o.sample_every ? o.sample_every : 200;
    R.ckpt_every = o.ckpt_every ? o.ckpt_every : 500;
    R.log_every = o.log_every ? o.log_every : (R.tty ? 1 : 50);
    R.start = p.step;
    R.t_start = now(), R.secs0 = p.seconds;
    int stop = 0;
    while (p.step < o.steps && !stop) {
        double t0 = now();
        fill_batch(&g, ds, &p, perm, o.flip);
        g.step = p.step + 1;
        if (R.poison_step == g.step) poison(&g);
        step_stats st;
        gan_step(&g, &st);
        stop = agree(&g, &st);
        p.step++;
        double dt = now() - t0;
        p.seconds = R.secs0 + (now() - R.t_start);
        if (!isfinite(st.d_real) || !isfinite(st.d_fake) || !isfinite(st.g))
            die("losses became non-finite at step %ld; the last checkpoint in %s is the last good one",
                p.step, o.out);
        if (R.lead) report(&R, &g, &p, &st, dt);
    }
    if (R.tty && R.lead) printf("\n");
    if (R.log) fclose(R.log);
    if (stop && R.lead) {
        save_checkpoint(&g, &p, o.out, o.flip);
        printf("mangagan: interrupted at step %ld; checkpoint saved in %s (continue with --resume)\n", p.step, o.out);
    } else if (R.lead) {
        printf("mangagan: done, %ld steps; samples, checkpoint and log in %s\n", p.step, o.out);
    }
    free(perm);
    tg_dataset_free(ds);
    free(R.eval_real);
    gan_free(&g);
    tg_dist_free(dist);
    return 0;
}
