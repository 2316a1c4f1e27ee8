/*
 * module_tree.c — modules as trees: modules of the user's own (tg_module_new) and their named
 * children, the sequential container (a module whose children are named "0", "1", ...), the walk
 * that names every parameter and buffer by its dotted path ("enc1.conv1.weight", as PyTorch's
 * state_dict names it), the flags that apply to a subtree (frozen, training), and freeing. The
 * layers and running a module are in module.c; struct tg_module in module.h.
 */
#include "module.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

tg_module *tg_module_new(tg_ctx *ctx, tg_forward_fn forward, void *user) {
    static const char *fn = "tg_module_new";
    if (!forward) {
        tg_fail(TG_ERR_INVALID, fn, "forward is NULL: a module of your own needs a forward function");
        return NULL;
    }
    tg_module *m = tg_module_alloc(ctx, M_USER, fn);
    if (!m) return NULL;
    m->cfg.user.fn = forward;
    m->cfg.user.user = user;
    return m;
}

tg_module *tg_sequential(tg_ctx *ctx) { return tg_module_alloc(ctx, M_SEQ, "tg_sequential"); }

const char *tg_module_name(const tg_module *m) {
    if (!m->parent) return "";
    for (int i = 0; i < m->parent->n_child; i++)
        if (m->parent->child[i] == m) return m->parent->child_name[i];
    return "";
}

/* whether a is m or one of m's ancestors */
static bool is_self_or_ancestor(const tg_module *a, const tg_module *m) {
    for (; m; m = m->parent)
        if (m == a) return true;
    return false;
}

static int child_index(const tg_module *m, const char *name) {
    for (int i = 0; i < m->n_child; i++)
        if (!strcmp(m->child_name[i], name)) return i;
    return -1;
}

/* Why name cannot name a child of parent (NULL: it can): empty, too long, with the path
 * separator, or taken. */
static const char *bad_name(const tg_module *parent, const char *name) {
    if (!name) return "is NULL";
    if (!name[0]) return "is empty";
    if (strlen(name) >= TG_CHILD_NAME_MAX) return "is longer than 63 characters";
    if (strchr(name, '.')) return "contains '.', which separates the names of a state path";
    if (child_index(parent, name) >= 0) return "is taken by another child";
    return NULL;
}

/* parent takes child under name (checked by the caller). Refusals that would take child away
 * from its owner (it has a parent, or it is parent or one of its ancestors) leave it as it is;
 * the others free it, so that `tg_module_add(m, "c", tg_layer_relu(ctx))` never leaks. */
static tg_status attach(tg_module *parent, const char *name, tg_module *child, const char *fn) {
    if (child && child->parent)
        return tg_fail(TG_ERR_INVALID, fn, "the %s already belongs to a %s (as '%s'): a module has one owner",
                       tg_module_kind_name(child), tg_module_kind_name(child->parent), tg_module_name(child));
    if (child && parent && is_self_or_ancestor(child, parent))
        return tg_fail(TG_ERR_INVALID, fn, "adding the %s to %s would make a cycle", tg_module_kind_name(child),
                       child == parent ? "itself" : "one of its own descendants");
    tg_status st = TG_OK;
    const char *why;
    if (!child) return tg_fail(TG_ERR_INVALID, fn, "the child is NULL (did its constructor fail?)");
    if (child->ctx != parent->ctx) st = tg_fail(TG_ERR_DEVICE, fn, "the child belongs to another context");
    else if ((why = bad_name(parent, name))) st = tg_fail(TG_ERR_INVALID, fn, "the name '%s' %s", name ? name : "", why);
    else if (parent->n_child == INT32_MAX) st = tg_fail(TG_ERR_INVALID, fn, "the %s is full", tg_module_kind_name(parent));
    else if (parent->n_child == parent->cap_child) {
        const int cap = parent->cap_child ? (parent->cap_child > INT32_MAX / 2 ? INT32_MAX : parent->cap_child * 2) : 8;
        tg_module **c = realloc(parent->child, sizeof *c * (size_t)cap);
        if (c) parent->child = c;
        char(*nm)[TG_CHILD_NAME_MAX] = c ? realloc(parent->child_name, sizeof *nm * (size_t)cap) : NULL;
        if (nm) parent->child_name = nm, parent->cap_child = cap;
        else st = tg_fail(TG_ERR_NOMEM, fn, "out of host memory");
    }
    if (st) {
        tg_module_free(child);
        return st;
    }
    parent->child[parent->n_child] = child;
    snprintf(parent->child_name[parent->n_child], TG_CHILD_NAME_MAX, "%s", name);
    parent->n_child++;
    child->parent = parent;
    return TG_OK;
}

tg_status tg_module_add(tg_module *parent, const char *name, tg_module *child) {
    static const char *fn = "tg_module_add";
    if (!parent || parent->kind != M_USER) {
        /* child's owner stays as it was when it has one */
        const tg_status st = tg_fail(TG_ERR_INVALID, fn, "parent is %s", !parent ? "NULL"
                                     : parent->kind == M_SEQ ? "a sequential: use tg_sequential_add, which numbers its children"
                                                             : "a layer, which has no children: make a module with tg_module_new");
        if (child && !child->parent && child != parent) tg_module_free(child);
        return st;
    }
    return attach(parent, name, child, fn);
}

tg_status tg_sequential_add(tg_module *seq, tg_module *layer) {
    static const char *fn = "tg_sequential_add";
    if (!seq || seq->kind != M_SEQ) {
        const tg_status st = tg_fail(TG_ERR_INVALID, fn, "seq is %s", seq ? "not a sequential" : "NULL");
        if (layer && !layer->parent && layer != seq) tg_module_free(layer);
        return st;
    }
    char name[16];
    snprintf(name, sizeof name, "%d", seq->n_child);
    return attach(seq, name, layer, fn);
}

/* m with children (a sequential or a module of the user's own), or a message naming fn */
static bool has_children(const tg_module *m, const char *fn) {
    if (!m) return tg_fail(TG_ERR_INVALID, fn, "module is NULL"), false;
    if (m->kind != M_SEQ && m->kind != M_USER)
        return tg_fail(TG_ERR_INVALID, fn, "the module is a %s layer, which has no children", tg_module_kind_name(m)), false;
    return true;
}

tg_module *tg_module_child(tg_module *m, const char *name) {
    static const char *fn = "tg_module_child";
    if (!has_children(m, fn)) return NULL;
    const int i = name ? child_index(m, name) : -1;
    if (i >= 0) return m->child[i];
    char list[256] = "";
    size_t n = 0;
    for (int k = 0; k < m->n_child && n < sizeof list - 1; k++) {
        const int w = snprintf(list + n, sizeof list - n, "%s'%s'", k ? ", " : "", m->child_name[k]);
        n = w > 0 && n + (size_t)w < sizeof list ? n + (size_t)w : sizeof list - 1;
    }
    tg_fail(TG_ERR_INVALID, fn, "no child named '%s' (the %s has %s%s)", name ? name : "(NULL)", tg_module_kind_name(m),
            m->n_child ? "" : "no children", list);
    return NULL;
}

int tg_module_child_count(const tg_module *m) {
    return has_children(m, "tg_module_child_count") ? m->n_child : -1;
}

static bool child_at_ok(const tg_module *m, int i, const char *fn) {
    if (!has_children(m, fn)) return false;
    if (i < 0 || i >= m->n_child)
        return tg_fail(TG_ERR_INVALID, fn, "index %d is outside the %s's %d children", i, tg_module_kind_name(m),
                       m->n_child), false;
    return true;
}

tg_module *tg_module_child_at(tg_module *m, int i) {
    return child_at_ok(m, i, "tg_module_child_at") ? m->child[i] : NULL;
}

const char *tg_module_child_name(const tg_module *m, int i) {
    return child_at_ok(m, i, "tg_module_child_name") ? m->child_name[i] : NULL;
}

static bool is_seq(const tg_module *seq, const char *fn) {
    if (!seq || seq->kind != M_SEQ)
        tg_fail(TG_ERR_INVALID, fn, "seq is %s", seq ? "not a sequential" : "NULL");
    return seq && seq->kind == M_SEQ;
}

int tg_sequential_len(const tg_module *seq) {
    return is_seq(seq, "tg_sequential_len") ? seq->n_child : 0;
}

tg_module *tg_sequential_get(tg_module *seq, int i) {
    static const char *fn = "tg_sequential_get";
    if (!is_seq(seq, fn)) return NULL;
    if (i < 0 || i >= seq->n_child) {
        tg_fail(TG_ERR_INVALID, fn, "index %d is outside the sequential's %d children", i, seq->n_child);
        return NULL;
    }
    return seq->child[i];
}

/* Visits (name, tensor, is_param) in the fixed order. */
typedef void (*visit_fn)(void *u, const char *name, tg_tensor *t, bool is_param);

/* false when a name was longer than TG_STATE_NAME_MAX - 1 (and was cut) */
static bool walk(tg_module *m, const char *prefix, visit_fn f, void *u) {
    char name[TG_STATE_NAME_MAX];
    bool ok = true;
    for (int i = 0; i < m->n_child; i++) { /* a sequential's or a module of the user's own */
        ok &= snprintf(name, sizeof name, "%s%s.", prefix, m->child_name[i]) < (int)sizeof name;
        ok &= walk(m->child[i], name, f, u);
    }
    ok &= strlen(prefix) + sizeof "running_mean" <= sizeof name; /* the longest name below */
    if (m->weight) {
        snprintf(name, sizeof name, m->sn_u ? "%sweight_orig" : "%sweight", prefix);
        f(u, name, m->weight, true);
    }
    if (m->bias) {
        snprintf(name, sizeof name, "%sbias", prefix);
        f(u, name, m->bias, true);
    }
    if (m->sn_u) { /* torch.nn.utils.spectral_norm's names */
        snprintf(name, sizeof name, "%sweight_u", prefix);
        f(u, name, m->sn_u, false);
        snprintf(name, sizeof name, "%sweight_v", prefix);
        f(u, name, m->sn_v, false);
    }
    if (m->running_mean) {
        snprintf(name, sizeof name, "%srunning_mean", prefix);
        f(u, name, m->running_mean, false);
        snprintf(name, sizeof name, "%srunning_var", prefix);
        f(u, name, m->running_var, false);
    }
    return ok;
}

typedef struct {
    tg_module *root;
    tg_tensor **out;
    const char **names;
    int max, count;
    bool params_only;
} collect_t;

static void collect(void *u, const char *name, tg_tensor *t, bool is_param) {
    collect_t *c = u;
    if (c->params_only && !is_param) return;
    if (c->count < c->max) {
        if (c->out) c->out[c->count] = t;
        if (c->names && c->root->names) {
            snprintf(c->root->names[c->count], sizeof c->root->names[0], "%s", name);
            c->names[c->count] = c->root->names[c->count];
        }
    }
    c->count++;
}

/* the shared checks of the two listings: -1 (with a message) for a NULL module, a negative max,
 * or no array for a positive max */
static bool listing_ok(const tg_module *m, const void *out, const void *names, int max, const char *fn) {
    if (!m) return tg_fail(TG_ERR_INVALID, fn, "module is NULL"), false;
    if (max < 0) return tg_fail(TG_ERR_INVALID, fn, "max %d is negative", max), false;
    if (max > 0 && !out && !names)
        return tg_fail(TG_ERR_INVALID, fn, "max is %d but there is no array to write into", max), false;
    return true;
}

int tg_module_params(tg_module *m, tg_tensor **out, int max) {
    if (!listing_ok(m, out, NULL, max, "tg_module_params")) return -1;
    collect_t c = {m, out, NULL, out ? max : 0, 0, true};
    walk(m, "", collect, &c);
    return c.count;
}

int tg_module_state(tg_module *m, const char **names, tg_tensor **out, int max) {
    if (!listing_ok(m, out, names, max, "tg_module_state")) return -1;
    collect_t c = {m, NULL, NULL, 0, 0, false};
    /* count first, to size the name storage */
    if (!walk(m, "", collect, &c)) {
        tg_fail(TG_ERR_INVALID, "tg_module_state", "a state name would be longer than %d characters: shorten the "
                "children's names or nest less deeply", TG_STATE_NAME_MAX - 1);
        return -1;
    }
    if (c.count > m->n_names) {
        void *p = realloc(m->names, sizeof *m->names * (size_t)c.count);
        if (!p) {
            tg_fail(TG_ERR_NOMEM, "tg_module_state", "out of host memory");
            return -1;
        }
        m->names = p;
        m->n_names = c.count;
    }
    collect_t d = {m, out, names, max, 0, false};
    walk(m, "", collect, &d);
    return d.count;
}

/* every BatchNorm's running mean and variance, in the tree's order */
static int bn_stats(const tg_module *m, tg_tensor **out, int max, int n) {
    if (m->running_mean) {
        if (n < max) out[n] = m->running_mean;
        if (n + 1 < max) out[n + 1] = m->running_var;
        n += 2;
    }
    for (int i = 0; i < m->n_child; i++) n = bn_stats(m->child[i], out, max, n);
    return n;
}

int tg_module_batch_norm_stats(tg_module *m, tg_tensor **out, int max) {
    if (!listing_ok(m, out, NULL, max, "tg_module_batch_norm_stats")) return -1;
    return bn_stats(m, out, out ? max : 0, 0);
}

void tg_module_set_frozen(tg_module *m, bool frozen) {
    if (!m) {
        tg_fail(TG_ERR_INVALID, "tg_module_set_frozen", "module is NULL");
        return;
    }
    m->frozen = frozen;
    if (m->weight) m->weight->requires_grad = !frozen;
    if (m->bias) m->bias->requires_grad = !frozen;
    for (int i = 0; i < m->n_child; i++) tg_module_set_frozen(m->child[i], frozen);
}

bool tg_module_frozen(const tg_module *m) {
    if (!m) tg_fail(TG_ERR_INVALID, "tg_module_frozen", "module is NULL");
    return m && m->frozen;
}

void tg_module_set_training(tg_module *m, bool training) {
    if (!m) {
        tg_fail(TG_ERR_INVALID, "tg_module_set_training", "module is NULL");
        return;
    }
    m->training = training;
    for (int i = 0; i < m->n_child; i++) tg_module_set_training(m->child[i], training);
}

static void module_destroy(tg_module *m) {
    for (int i = 0; i < m->n_child; i++) module_destroy(m->child[i]);
    free(m->child);
    free(m->child_name);
    tg_tensor_release(m->weight);
    tg_tensor_release(m->bias);
    tg_tensor_release(m->running_mean);
    tg_tensor_release(m->running_var);
    tg_tensor_release(m->sn_u);
    tg_tensor_release(m->sn_v);
    free(m->names);
    free(m);
}

void tg_module_free(tg_module *m) {
    if (!m) return;
    if (m->parent) {
        tg_fail(TG_ERR_INVALID, "tg_module_free", "the module (%s '%s') belongs to a %s, which frees it",
                tg_module_kind_name(m), tg_module_name(m), tg_module_kind_name(m->parent));
        return;
    }
    module_destroy(m);
}
