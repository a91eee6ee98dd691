/* Optional C accelerator of the happens-before walk (tracelens.analyze.hb.clocks).
 *
 * walk() does what clocks._vector_clocks_py does, one synchronisation event at a time,
 * with the same edges (ClockWalk's methods, ported one for one) and the same clocks:
 * persistent tries of Python ints, WIDTH entries a node, every all-zero subtree the
 * shared object that clocks.Tries made (its `zeros`), unchanged results returned by
 * identity. Its outputs are those of the Python walk: the answers to the queries, the
 * flat segment rows, and every unit's clock at every version (the snapshots, which
 * Versions.known reads with Tries.get). The pure-Python walk is the reference; a
 * Hypothesis test holds the two to the same outputs. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#define WIDTH 32
#define BITS 5
#define MASK (WIDTH - 1)
#define MAX_DEPTH 13 /* 32**13 > 2**63: more levels than any unit id needs */
/* Events between two chances for other threads to run and for signals to be handled
 * (the interpreter would give them every 5 ms; this is about 1 ms of the walk). */
#define YIELD_EVERY 4096

enum { ACQUIRE, RELEASE, FORK, JOIN, SEND, RECEIVE };

typedef struct {
    Py_ssize_t n;
    int top; /* the root level's shift */
    PyObject *zeros[MAX_DEPTH]; /* the all-zero subtree of each level (borrowed) */
    int versions;
    long long *epoch;   /* C_u(u) */
    long long *version; /* how many times u's clock changed */
    PyObject **clock;   /* C_u, own component apart (owned references) */
    PyObject *snapshots, *segments;
    PyObject *lock_release; /* lock -> (releasing unit, its epoch then, its clock then) */
    PyObject *sent_all, *sent_anonymous, *sent_message; /* -> the join of clocks sent */
    PyObject *sent_once; /* object -> (sender, epoch) while it has had one send, else None */
} Walk;

/* ---- tries ------------------------------------------------------------------------- */

/* Component k of t, in *out. */
static int t_get(const Walk *w, PyObject *t, long long k, long long *out) {
    for (int shift = w->top; shift >= 0; shift -= BITS)
        t = PyTuple_GET_ITEM(t, (k >> shift) & MASK);
    long long v = PyLong_AsLongLong(t);
    if (v == -1 && PyErr_Occurred()) return -1;
    *out = v;
    return 0;
}

/* A copy of the node t (a new reference). */
static PyObject *t_copy(PyObject *t) {
    PyObject *node = PyTuple_New(WIDTH);
    if (node == NULL) return NULL;
    for (Py_ssize_t j = 0; j < WIDTH; j++) {
        PyObject *x = PyTuple_GET_ITEM(t, j);
        Py_INCREF(x);
        PyTuple_SET_ITEM(node, j, x);
    }
    return node;
}

/* t with component k set to v (the path to it copied; a new reference). */
static PyObject *t_set(PyObject *t, long long k, PyObject *v, int shift) {
    Py_ssize_t i = (Py_ssize_t)((k >> shift) & MASK);
    PyObject *child;
    if (shift == 0) {
        Py_INCREF(v);
        child = v;
    } else {
        child = t_set(PyTuple_GET_ITEM(t, i), k, v, shift - BITS);
        if (child == NULL) return NULL;
    }
    PyObject *node = t_copy(t);
    if (node == NULL) {
        Py_DECREF(child);
        return NULL;
    }
    Py_DECREF(PyTuple_GET_ITEM(node, i));
    PyTuple_SET_ITEM(node, i, child);
    return node;
}

static PyObject *t_set_value(PyObject *t, long long k, long long v, int shift) {
    PyObject *value = PyLong_FromLongLong(v);
    if (value == NULL) return NULL;
    PyObject *r = t_set(t, k, value, shift);
    Py_DECREF(value);
    return r;
}

/* The componentwise maximum of a and b: a itself when b adds nothing, b itself when a
 * does (a new reference). */
static PyObject *t_join(const Walk *w, PyObject *a, PyObject *b, int shift) {
    PyObject *zero = w->zeros[shift / BITS];
    if (a == b || b == zero) {
        Py_INCREF(a);
        return a;
    }
    if (a == zero) {
        Py_INCREF(b);
        return b;
    }
    if (shift == 0) {
        long long av[WIDTH], bv[WIDTH];
        int all_a = 1, all_b = 1;
        for (Py_ssize_t i = 0; i < WIDTH; i++) {
            av[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(a, i));
            if (av[i] == -1 && PyErr_Occurred()) return NULL;
            bv[i] = PyLong_AsLongLong(PyTuple_GET_ITEM(b, i));
            if (bv[i] == -1 && PyErr_Occurred()) return NULL;
            all_a &= av[i] >= bv[i];
            all_b &= bv[i] >= av[i];
        }
        PyObject *keep = all_a ? a : all_b ? b : NULL;
        if (keep != NULL) {
            Py_INCREF(keep);
            return keep;
        }
        PyObject *node = PyTuple_New(WIDTH);
        if (node == NULL) return NULL;
        for (Py_ssize_t i = 0; i < WIDTH; i++) {
            PyObject *x = PyTuple_GET_ITEM(av[i] >= bv[i] ? a : b, i); /* max() keeps the first */
            Py_INCREF(x);
            PyTuple_SET_ITEM(node, i, x);
        }
        return node;
    }
    PyObject *node = NULL;
    for (Py_ssize_t i = 0; i < WIDTH; i++) {
        PyObject *x = PyTuple_GET_ITEM(a, i), *y = PyTuple_GET_ITEM(b, i);
        if (x == y) continue;
        PyObject *z = t_join(w, x, y, shift - BITS);
        if (z == NULL) {
            Py_XDECREF(node);
            return NULL;
        }
        if (z == x) {
            Py_DECREF(z);
            continue;
        }
        if (node == NULL && (node = t_copy(a)) == NULL) {
            Py_DECREF(z);
            return NULL;
        }
        Py_DECREF(PyTuple_GET_ITEM(node, i));
        PyTuple_SET_ITEM(node, i, z);
    }
    if (node == NULL) {
        Py_INCREF(a);
        return a;
    }
    for (Py_ssize_t i = 0; i < WIDTH; i++)
        if (PyTuple_GET_ITEM(node, i) != PyTuple_GET_ITEM(b, i)) return node;
    Py_DECREF(node);
    Py_INCREF(b);
    return b;
}

/* ---- the walk's helpers ------------------------------------------------------------ */

static int append_int(PyObject *list, long long v) {
    PyObject *x = PyLong_FromLongLong(v);
    if (x == NULL) return -1;
    int r = PyList_Append(list, x);
    Py_DECREF(x);
    return r;
}

/* u's clock (epoch or knowledge) changed at g. */
static int new_version(Walk *w, Py_ssize_t u, long long g) {
    w->version[u] += 1;
    if (append_int(w->segments, u) < 0 || append_int(w->segments, g) < 0 ||
        append_int(w->segments, w->epoch[u]) < 0 || append_int(w->segments, w->version[u]) < 0)
        return -1;
    return PyList_Append(PyList_GET_ITEM(w->snapshots, u), w->clock[u]);
}

static int next_epoch(Walk *w, Py_ssize_t u, long long g) {
    w->epoch[u] += 1;
    return w->versions ? new_version(w, u, g) : 0;
}

/* u learns clock (and epoch e of r, unless r < 0); 1 if its clock changed, 0 if not. */
static int learn(Walk *w, Py_ssize_t u, Py_ssize_t r, long long e, PyObject *clock) {
    PyObject *own = w->clock[u];
    PyObject *new = t_join(w, own, clock, w->top);
    if (new == NULL) return -1;
    if (r >= 0 && r != u) {
        long long known;
        if (t_get(w, new, r, &known) < 0) {
            Py_DECREF(new);
            return -1;
        }
        if (known < e) {
            PyObject *set = t_set_value(new, r, e, w->top);
            Py_DECREF(new);
            if (set == NULL) return -1;
            new = set;
        }
    }
    w->clock[u] = new;
    Py_DECREF(own); /* after the store: clock may be own */
    return new != own;
}

/* store[key] := store[key] ⊔ clock ⊔ {u: e} */
static int merge(Walk *w, PyObject *store, PyObject *key, Py_ssize_t u, long long e, PyObject *clock) {
    PyObject *into = PyDict_GetItemWithError(store, key);
    if (into == NULL && PyErr_Occurred()) return -1;
    if (into == NULL) {
        Py_INCREF(clock);
        into = clock;
    } else if ((into = t_join(w, into, clock, w->top)) == NULL) {
        return -1;
    }
    long long known;
    if (t_get(w, into, u, &known) < 0) goto fail;
    if (e > known) {
        PyObject *set = t_set_value(into, u, e, w->top);
        if (set == NULL) goto fail;
        Py_DECREF(into);
        into = set;
    }
    int r = PyDict_SetItem(store, key, into);
    Py_DECREF(into);
    return r;
fail:
    Py_DECREF(into);
    return -1;
}

/* ---- the edges --------------------------------------------------------------------- */

static int acquire(Walk *w, Py_ssize_t u, PyObject *lock, long long g) {
    PyObject *last = PyDict_GetItemWithError(w->lock_release, lock);
    if (last == NULL) return PyErr_Occurred() ? -1 : 0;
    Py_ssize_t r = PyLong_AsSsize_t(PyTuple_GET_ITEM(last, 0));
    PyObject *e_obj = PyTuple_GET_ITEM(last, 1);
    long long e = PyLong_AsLongLong(e_obj);
    if (PyErr_Occurred()) return -1;
    PyObject *own = w->clock[u];
    long long known;
    if (r == u) return 0;
    if (t_get(w, own, r, &known) < 0) return -1;
    if (known >= e) return 0; /* already known: nothing to learn */
    PyObject *set = t_set(own, r, e_obj, w->top);
    if (set == NULL) return -1;
    PyObject *new = t_join(w, set, PyTuple_GET_ITEM(last, 2), w->top);
    Py_DECREF(set);
    if (new == NULL) return -1;
    w->clock[u] = new;
    Py_DECREF(own);
    return w->versions ? new_version(w, u, g) : 0;
}

static int release(Walk *w, Py_ssize_t u, PyObject *lock, long long g) {
    PyObject *last = Py_BuildValue("(nLO)", u, w->epoch[u], w->clock[u]);
    if (last == NULL) return -1;
    int r = PyDict_SetItem(w->lock_release, lock, last);
    Py_DECREF(last);
    if (r < 0) return -1;
    return next_epoch(w, u, g);
}

/* dst learns src's clock, then src starts a new epoch (a fork or a join). */
static int unit_edge(Walk *w, Py_ssize_t dst, Py_ssize_t src, long long g) {
    int changed = learn(w, dst, src, w->epoch[src], w->clock[src]);
    if (changed < 0) return -1;
    if (changed && w->versions && new_version(w, dst, g) < 0) return -1;
    return next_epoch(w, src, g);
}

static int send(Walk *w, Py_ssize_t u, PyObject *obj, PyObject *msg, long long g) {
    PyObject *clock = w->clock[u];
    long long e = w->epoch[u];
    int seen = PyDict_Contains(w->sent_all, obj);
    if (seen < 0) return -1;
    PyObject *once = seen ? Py_NewRef(Py_None) : Py_BuildValue("(nL)", u, e);
    if (once == NULL) return -1;
    int r = PyDict_SetItem(w->sent_once, obj, once);
    Py_DECREF(once);
    if (r < 0 || merge(w, w->sent_all, obj, u, e, clock) < 0) return -1;
    if (msg == Py_None) {
        r = merge(w, w->sent_anonymous, obj, u, e, clock);
    } else {
        PyObject *key = PyTuple_Pack(2, obj, msg);
        if (key == NULL) return -1;
        r = merge(w, w->sent_message, key, u, e, clock);
        Py_DECREF(key);
    }
    if (r < 0) return -1;
    return next_epoch(w, u, g);
}

static int receive(Walk *w, Py_ssize_t u, PyObject *obj, PyObject *msg, long long g) {
    PyObject *sources[2] = {NULL, NULL};
    PyObject *sent = NULL;
    if (msg != Py_None) {
        PyObject *key = PyTuple_Pack(2, obj, msg);
        if (key == NULL) return -1;
        sent = PyDict_GetItemWithError(w->sent_message, key);
        Py_DECREF(key);
        if (sent == NULL && PyErr_Occurred()) return -1;
    }
    if (sent != NULL) {
        sources[0] = sent;
        sources[1] = PyDict_GetItemWithError(w->sent_anonymous, obj);
        if (sources[1] == NULL && PyErr_Occurred()) return -1;
    } else {
        PyObject *every = PyDict_GetItemWithError(w->sent_all, obj);
        if (every == NULL) return PyErr_Occurred() ? -1 : 0;
        PyObject *once = PyDict_GetItemWithError(w->sent_once, obj);
        if (once == NULL) {
            if (!PyErr_Occurred()) PyErr_SetObject(PyExc_KeyError, obj);
            return -1;
        }
        if (once != Py_None) {
            /* one send, of an epoch the receiver knows already: nothing to learn */
            Py_ssize_t r = PyLong_AsSsize_t(PyTuple_GET_ITEM(once, 0));
            long long e = PyLong_AsLongLong(PyTuple_GET_ITEM(once, 1));
            if (PyErr_Occurred()) return -1;
            if (r != u) {
                long long known;
                if (t_get(w, w->clock[u], r, &known) < 0) return -1;
                if (known >= e) return 0;
            }
        }
        sources[0] = every;
    }
    int changed = 0;
    for (int i = 0; i < 2 && sources[i] != NULL; i++) {
        int c = learn(w, u, -1, 0, sources[i]);
        if (c < 0) return -1;
        changed |= c;
    }
    return changed && w->versions ? new_version(w, u, g) : 0;
}

/* ---- walk() ------------------------------------------------------------------------ */

static int as_ll(PyObject *x, long long *out) {
    *out = PyLong_AsLongLong(x);
    return *out == -1 && PyErr_Occurred() ? -1 : 0;
}

static int as_unit(const Walk *w, PyObject *x, Py_ssize_t *out) {
    Py_ssize_t u = PyLong_AsSsize_t(x);
    if (u == -1 && PyErr_Occurred()) return -1;
    if (u < 0 || u >= w->n) {
        PyErr_Format(PyExc_IndexError, "unit id %zd out of range 0..%zd", u, w->n - 1);
        return -1;
    }
    *out = u;
    return 0;
}

/* What u knows now of p's clock (0 for u itself, as for nothing). */
static PyObject *knows(const Walk *w, PyObject *u_obj, PyObject *p_obj) {
    Py_ssize_t u;
    long long p, known = 0;
    if (as_unit(w, u_obj, &u) < 0 || as_ll(p_obj, &p) < 0) return NULL;
    if (p != u && t_get(w, w->clock[u], p, &known) < 0) return NULL;
    return PyLong_FromLongLong(known);
}

static void walk_free(Walk *w) {
    if (w->clock != NULL) {
        for (Py_ssize_t u = 0; u < w->n; u++) Py_XDECREF(w->clock[u]);
        PyMem_Free(w->clock);
    }
    PyMem_Free(w->epoch);
    PyMem_Free(w->version);
    Py_XDECREF(w->snapshots);
    Py_XDECREF(w->segments);
    Py_XDECREF(w->lock_release);
    Py_XDECREF(w->sent_all);
    Py_XDECREF(w->sent_anonymous);
    Py_XDECREF(w->sent_message);
    Py_XDECREF(w->sent_once);
}

static int check_list(PyObject *x, Py_ssize_t len, const char *what) {
    if (!PyList_Check(x)) {
        PyErr_Format(PyExc_TypeError, "%s must be a list", what);
        return -1;
    }
    if (len >= 0 && PyList_GET_SIZE(x) != len) {
        PyErr_Format(PyExc_ValueError, "%s has %zd items, not %zd", what, PyList_GET_SIZE(x), len);
        return -1;
    }
    return 0;
}

PyDoc_STRVAR(walk_doc,
    "walk(n, zeros, versions, g, op, u, obj, other, msg, before, q_u, q_p, /)\n--\n\n"
    "The vector-clock walk of clocks._vector_clocks_py over column lists: returns\n"
    "(answers, segments, snapshots or None).");

static PyObject *walk(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 12) {
        PyErr_SetString(PyExc_TypeError, "walk() takes 12 arguments");
        return NULL;
    }
    Walk w = {0};
    PyObject *answers = NULL, *result = NULL;
    w.n = PyLong_AsSsize_t(args[0]);
    if (w.n == -1 && PyErr_Occurred()) return NULL;
    PyObject *zeros = args[1];
    if (!PyTuple_Check(zeros) || PyTuple_GET_SIZE(zeros) < 1 || PyTuple_GET_SIZE(zeros) > MAX_DEPTH) {
        PyErr_SetString(PyExc_TypeError, "zeros must be a tuple of one empty node per level");
        return NULL;
    }
    Py_ssize_t depth = PyTuple_GET_SIZE(zeros);
    for (Py_ssize_t level = 0; level < depth; level++) {
        PyObject *z = PyTuple_GET_ITEM(zeros, level);
        if (!PyTuple_Check(z) || PyTuple_GET_SIZE(z) != WIDTH) {
            PyErr_SetString(PyExc_TypeError, "a trie node must be a tuple of 32 entries");
            return NULL;
        }
        w.zeros[level] = z;
    }
    w.top = (int)(BITS * (depth - 1));
    w.versions = PyObject_IsTrue(args[2]);
    if (w.versions < 0) return NULL;
    Py_ssize_t len = PyList_Check(args[3]) ? PyList_GET_SIZE(args[3]) : 0;
    const char *names[] = {"g", "op", "u", "obj", "other", "msg"};
    for (int i = 0; i < 6; i++)
        if (check_list(args[3 + i], len, names[i]) < 0) return NULL;
    PyObject *before = args[9], *q_u = args[10], *q_p = args[11];
    if (check_list(before, -1, "before") < 0) return NULL;
    Py_ssize_t n_q = PyList_GET_SIZE(before);
    if (check_list(q_u, n_q, "q_u") < 0 || check_list(q_p, n_q, "q_p") < 0) return NULL;

    PyObject *empty = w.zeros[depth - 1];
    w.epoch = PyMem_Malloc(sizeof(long long) * (size_t)(w.n ? w.n : 1));
    w.version = PyMem_Calloc((size_t)(w.n ? w.n : 1), sizeof(long long));
    w.clock = PyMem_Calloc((size_t)(w.n ? w.n : 1), sizeof(PyObject *));
    w.segments = PyList_New(0);
    w.lock_release = PyDict_New();
    w.sent_all = PyDict_New();
    w.sent_anonymous = PyDict_New();
    w.sent_message = PyDict_New();
    w.sent_once = PyDict_New();
    answers = PyList_New(n_q);
    if (w.epoch == NULL || w.version == NULL || w.clock == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (w.segments == NULL || w.lock_release == NULL || w.sent_all == NULL ||
        w.sent_anonymous == NULL || w.sent_message == NULL || w.sent_once == NULL || answers == NULL)
        goto done;
    for (Py_ssize_t u = 0; u < w.n; u++) {
        w.epoch[u] = 1;
        Py_INCREF(empty);
        w.clock[u] = empty;
    }
    if (w.versions) {
        if ((w.snapshots = PyList_New(w.n)) == NULL) goto done;
        for (Py_ssize_t u = 0; u < w.n; u++) {
            PyObject *first = PyList_New(1);
            if (first == NULL) goto done;
            Py_INCREF(empty);
            PyList_SET_ITEM(first, 0, empty);
            PyList_SET_ITEM(w.snapshots, u, first);
        }
    }

    /* per query, how many events come before it: answered after event before[q] - 1 */
    Py_ssize_t qi = 0;
    long long due = -1, b = 0;
#define NEXT_DUE()                                                                     \
    do {                                                                               \
        due = -1;                                                                      \
        if (qi < n_q) {                                                                \
            if (as_ll(PyList_GET_ITEM(before, qi), &b) < 0) goto done;                 \
            due = b - 1;                                                               \
        }                                                                              \
    } while (0)
    NEXT_DUE();
    while (qi < n_q && due == -1) {
        PyList_SET_ITEM(answers, qi, PyLong_FromLong(0));
        qi++;
        NEXT_DUE();
    }
    for (Py_ssize_t i = 0; i < len; i++) {
        long long g, op;
        Py_ssize_t u, other;
        if (as_ll(PyList_GET_ITEM(args[3], i), &g) < 0 || as_ll(PyList_GET_ITEM(args[4], i), &op) < 0 ||
            as_unit(&w, PyList_GET_ITEM(args[5], i), &u) < 0)
            goto done;
        PyObject *obj = PyList_GET_ITEM(args[6], i), *other_obj = PyList_GET_ITEM(args[7], i);
        PyObject *msg = PyList_GET_ITEM(args[8], i);
        int r = 0;
        switch (op) {
        case ACQUIRE: r = acquire(&w, u, obj, g); break;
        case RELEASE: r = release(&w, u, obj, g); break;
        case SEND: r = send(&w, u, obj, msg, g); break;
        case RECEIVE: r = receive(&w, u, obj, msg, g); break;
        default:
            if (other_obj == Py_None) break; /* a fork or join of a unit the trace does not name */
            if (as_unit(&w, other_obj, &other) < 0) goto done;
            r = op == FORK ? unit_edge(&w, other, u, g) : unit_edge(&w, u, other, g);
        }
        if (r < 0) goto done;
        if (i % YIELD_EVERY == YIELD_EVERY - 1) {
            /* every object the walk changes is its own: other threads may run */
            Py_BEGIN_ALLOW_THREADS
            Py_END_ALLOW_THREADS
            if (PyErr_CheckSignals() < 0) goto done;
        }
        if (i == due) {
            while (qi < n_q && b == i + 1) {
                PyObject *k = knows(&w, PyList_GET_ITEM(q_u, qi), PyList_GET_ITEM(q_p, qi));
                if (k == NULL) goto done;
                PyList_SET_ITEM(answers, qi, k);
                qi++;
                NEXT_DUE();
            }
        }
    }
#undef NEXT_DUE
    if (qi < n_q) {
        PyErr_SetString(PyExc_ValueError, "a query comes after the last event");
        goto done;
    }
    result = PyTuple_Pack(3, answers, w.segments, w.versions ? w.snapshots : Py_None);
done:
    Py_XDECREF(answers);
    walk_free(&w);
    return result;
}

static PyMethodDef methods[] = {
    {"walk", (PyCFunction)(void (*)(void))walk, METH_FASTCALL, walk_doc},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "_clockwalk",
    "Optional C accelerator of the happens-before walk (tracelens.analyze.hb.clocks).", -1,
    methods,
};

PyMODINIT_FUNC PyInit__clockwalk(void) { return PyModule_Create(&module); }
