/* Optional C accelerator of the recorder's hot path (tracelens.record._core.record)
 * and of the sink's renderer (tracelens.record._sink.Sink._render).
 *
 * Both functions do exactly what their Python reference does; anything unusual
 * (floats, non-ASCII or long strings, big ints, other types, extras that are not
 * flat dicts of such scalars) is handed back to Python callables so that the output
 * is byte for byte the Python renderer's. Only public C API that exists in 3.11 to
 * 3.13 is used (PyFrame_GetBack, PyFrame_GetCode, PyFrame_GetLasti). */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <time.h>
#include <unistd.h>

/* ------------------------------------------------------------------------------ */
/* Bytes rendered before they are written out (the chunk then goes in several writes,
 * each of whole lines; a buffer this size is reused by the allocator, not mapped anew). */
#define DRAIN_AT (60 * 1024)

/* A growable byte buffer. */
typedef struct {
    char *p;
    Py_ssize_t len, cap;
} Buf;

static int buf_grow(Buf *b, Py_ssize_t need) {
    if (b->len + need <= b->cap) return 0;
    Py_ssize_t cap = b->cap ? b->cap : DRAIN_AT + 4096;
    while (cap < b->len + need) cap *= 2;
    char *p = PyMem_Realloc(b->p, (size_t)cap);
    if (p == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    b->p = p;
    b->cap = cap;
    return 0;
}

static int buf_put(Buf *b, const char *s, Py_ssize_t n) {
    if (buf_grow(b, n) < 0) return -1;
    memcpy(b->p + b->len, s, (size_t)n);
    b->len += n;
    return 0;
}

static int buf_put_bytes(Buf *b, PyObject *bytes, Py_ssize_t skip_head, Py_ssize_t skip_tail) {
    if (!PyBytes_Check(bytes)) {
        PyErr_SetString(PyExc_TypeError, "expected bytes");
        return -1;
    }
    Py_ssize_t n = PyBytes_GET_SIZE(bytes) - skip_head - skip_tail;
    if (n < 0) n = 0;
    return buf_put(b, PyBytes_AS_STRING(bytes) + skip_head, n);
}

static int buf_put_ll(Buf *b, long long v) {
    char tmp[24], *e = tmp + sizeof tmp, *o = e;
    unsigned long long u = v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v;
    do {
        *--o = (char)('0' + u % 10);
        u /= 10;
    } while (u);
    if (v < 0) *--o = '-';
    return buf_put(b, o, e - o);
}

/* Any int as decimal (seq/ts are ints; formatted as b"%d" does). */
static int buf_put_int(Buf *b, PyObject *v) {
    int overflow = 0;
    long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
    if (x == -1 && PyErr_Occurred()) return -1;
    if (!overflow) return buf_put_ll(b, x);
    PyObject *s = PyObject_Str(v);
    if (s == NULL) return -1;
    Py_ssize_t n;
    const char *u = PyUnicode_AsUTF8AndSize(s, &n);
    int r = u == NULL ? -1 : buf_put(b, u, n);
    Py_DECREF(s);
    return r;
}

/* Longest string value kept as it is (tracelens.record._sink.VALUE_LIMIT, render()'s last argument). */
static Py_ssize_t value_limit = 120;

/* A JSON string as orjson writes it, for ASCII strings. 1: done, 0: not ASCII. */
static int buf_put_ascii_str(Buf *b, PyObject *s) {
    if (!PyUnicode_IS_ASCII(s)) return 0;
    Py_ssize_t n = PyUnicode_GET_LENGTH(s);
    const unsigned char *c = (const unsigned char *)PyUnicode_DATA(s);
    if (buf_grow(b, 6 * n + 2) < 0) return -1;
    char *o = b->p + b->len;
    static const char hex[] = "0123456789abcdef";
    *o++ = '"';
    for (Py_ssize_t i = 0; i < n; i++) {
        unsigned char ch = c[i];
        if (ch >= 0x20 && ch != '"' && ch != '\\') {
            *o++ = (char)ch;
            continue;
        }
        *o++ = '\\';
        switch (ch) {
        case '"': *o++ = '"'; break;
        case '\\': *o++ = '\\'; break;
        case '\b': *o++ = 'b'; break;
        case '\t': *o++ = 't'; break;
        case '\n': *o++ = 'n'; break;
        case '\f': *o++ = 'f'; break;
        case '\r': *o++ = 'r'; break;
        default:
            *o++ = 'u'; *o++ = '0'; *o++ = '0';
            *o++ = hex[ch >> 4]; *o++ = hex[ch & 15];
        }
    }
    *o++ = '"';
    b->len = o - b->p;
    return 1;
}

/* A value as the Python renderer writes it (dumps(bounded(v))): 1 done, 0 not handled. */
static int buf_put_scalar(Buf *b, PyObject *v) {
    if (v == Py_None) return buf_put(b, "null", 4) < 0 ? -1 : 1;
    if (v == Py_True) return buf_put(b, "true", 4) < 0 ? -1 : 1;
    if (v == Py_False) return buf_put(b, "false", 5) < 0 ? -1 : 1;
    if (PyLong_CheckExact(v)) {
        int overflow = 0;
        long long x = PyLong_AsLongLongAndOverflow(v, &overflow);
        if (x == -1 && PyErr_Occurred()) return -1;
        if (overflow) return 0;
        return buf_put_ll(b, x) < 0 ? -1 : 1;
    }
    if (PyUnicode_CheckExact(v)) {
        if (PyUnicode_GET_LENGTH(v) > value_limit) return 0;
        return buf_put_ascii_str(b, v);
    }
    if (PyFloat_CheckExact(v)) {
        /* repr's shortest round-trip digits are orjson's, except in exponent form
         * (1e+16 against 1e16) and for nan/inf (orjson: null): those go to orjson. */
        char *r = PyOS_double_to_string(PyFloat_AS_DOUBLE(v), 'r', 0, Py_DTSF_ADD_DOT_0, NULL);
        if (r == NULL) return -1;
        int res = 0;
        if (strpbrk(r, "eEnNiI") == NULL) res = buf_put(b, r, (Py_ssize_t)strlen(r)) < 0 ? -1 : 1;
        PyMem_Free(r);
        return res;
    }
    return 0;
}

/* A flat dict of ASCII str keys and scalar values, without its braces. 1/0/-1. */
static int buf_put_extra(Buf *b, PyObject *d) {
    Py_ssize_t pos = 0, start = b->len;
    PyObject *k, *v;
    int first = 1;
    while (PyDict_Next(d, &pos, &k, &v)) {
        if (!first && buf_put(b, ",", 1) < 0) return -1;
        first = 0;
        int r = PyUnicode_CheckExact(k) ? buf_put_ascii_str(b, k) : 0;
        if (r == 1) {
            if (buf_put(b, ":", 1) < 0) return -1;
            /* extras are not bounded: a long string is rendered by orjson as is */
            if (PyUnicode_CheckExact(v) && PyUnicode_GET_LENGTH(v) > value_limit)
                r = 0;
            else
                r = buf_put_scalar(b, v);
        }
        if (r != 1) {
            b->len = start;
            return r;
        }
    }
    return 1;
}

/* Write out what the buffer holds (whole lines) to fd, the GIL released.
 * An interrupted write is retried without running the signal handlers: they run at the
 * program's next instruction, after the flush, so an exception a handler raises is the
 * program's and the lines are all written. */
static int buf_drain(Buf *b, int fd) {
    Py_ssize_t off = 0;
    while (off < b->len) {
        ssize_t w;
        Py_BEGIN_ALLOW_THREADS
        w = write(fd, b->p + off, (size_t)(b->len - off));
        Py_END_ALLOW_THREADS
        if (w < 0) {
            if (errno == EINTR) continue;
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        off += w;
    }
    b->len = 0;
    return 0;
}

/* render(chunk, st, cache, make_prefix, dumps_value, dumps_extra, raw, novalue, limit, fd)
 * fd < 0: return the JSON lines as bytes; else write them to fd, remove the records
 * written from chunk (all of them unless it fails) and return None. */
static PyObject *render(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    if (nargs != 10) {
        PyErr_SetString(PyExc_TypeError, "render() takes 10 arguments");
        return NULL;
    }
    long fdl = PyLong_AsLong(args[9]);
    if (fdl == -1 && PyErr_Occurred()) return NULL;
    int fd = fdl < 0 || fdl > INT_MAX ? -1 : (int)fdl;
    value_limit = PyLong_AsSsize_t(args[8]);
    if (value_limit == -1 && PyErr_Occurred()) return NULL;
    PyObject *chunk = args[0], *st = args[1], *cache = args[2], *make_prefix = args[3];
    PyObject *dumps_value = args[4], *dumps_extra = args[5], *raw = args[6];
    PyObject *novalue = args[7];
    if (!PyList_Check(chunk) || !PyDict_Check(cache)) {
        PyErr_SetString(PyExc_TypeError, "render() needs a list and a dict");
        return NULL;
    }
    /* A small cache of this call's prefixes by identity of (op, target, code, task)
     * and lasti: most events of a chunk repeat a few sites, and this spares building
     * and hashing the key tuple for them. Identical elements make an equal key, so a
     * hit is what the dict lookup would have found. */
    enum { NCACHE = 64 };
    struct {
        PyObject *op, *target, *code, *task, *pre;
        long lasti;
    } lc[NCACHE];
    memset(lc, 0, sizeof lc);
    Buf b = {NULL, 0, 0};
    Py_ssize_t n = PyList_GET_SIZE(chunk);
    Py_ssize_t i = 0, written = 0; /* records [0, written) are on fd */
    for (i = 0; i < n; i++) {
        PyObject *rec = PyList_GET_ITEM(chunk, i);
        if (!PyTuple_Check(rec) || PyTuple_GET_SIZE(rec) < 2) {
            PyErr_SetString(PyExc_TypeError, "a record is a tuple");
            goto fail;
        }
        PyObject *op = PyTuple_GET_ITEM(rec, 0);
        if (op == raw) {
            PyObject *line = PyTuple_GET_ITEM(rec, 1);
            if (buf_put_bytes(&b, line, 0, 0) < 0) goto fail;
            Py_ssize_t ln = PyBytes_GET_SIZE(line);
            if ((ln == 0 || PyBytes_AS_STRING(line)[ln - 1] != '\n') && buf_put(&b, "\n", 1) < 0)
                goto fail;
            if (fd >= 0 && b.len >= DRAIN_AT) {
                if (buf_drain(&b, fd) < 0) goto fail;
                written = i + 1;
            }
            continue;
        }
        if (PyTuple_GET_SIZE(rec) != 10) {
            PyErr_SetString(PyExc_TypeError, "an event record has 10 fields");
            goto fail;
        }
        PyObject *seq = PyTuple_GET_ITEM(rec, 1), *ts = PyTuple_GET_ITEM(rec, 2);
        PyObject *target = PyTuple_GET_ITEM(rec, 3), *value = PyTuple_GET_ITEM(rec, 4);
        PyObject *code = PyTuple_GET_ITEM(rec, 5), *lasti = PyTuple_GET_ITEM(rec, 6);
        PyObject *task = PyTuple_GET_ITEM(rec, 7), *extra = PyTuple_GET_ITEM(rec, 8);
        PyObject *stack = PyTuple_GET_ITEM(rec, 9);
        long li = PyLong_Check(lasti) ? PyLong_AsLong(lasti) : -1;
        if (li == -1 && PyErr_Occurred()) goto fail;
        size_t h = ((size_t)op >> 4) ^ ((size_t)target >> 4) * 31 ^ ((size_t)code >> 4) * 17 ^
                   (size_t)li * 7 ^ ((size_t)task >> 4);
        h = (h ^ (h >> 7) ^ (h >> 13)) % NCACHE;
        if (lc[h].pre != NULL && lc[h].op == op && lc[h].target == target &&
            lc[h].code == code && lc[h].task == task && lc[h].lasti == li && li != -1) {
            if (buf_put_bytes(&b, lc[h].pre, 0, 0) < 0) goto fail;
            goto tail;
        }
        PyObject *key = PyTuple_Pack(6, st, op, target, code, lasti, task);
        if (key == NULL) goto fail;
        PyObject *pre = PyDict_GetItemWithError(cache, key); /* borrowed */
        if (pre == NULL) {
            if (PyErr_Occurred()) {
                Py_DECREF(key);
                goto fail;
            }
            pre = PyObject_CallFunctionObjArgs(make_prefix, st, op, target, code, lasti, task, NULL);
            if (pre == NULL || PyDict_SetItem(cache, key, pre) < 0) {
                Py_XDECREF(pre);
                Py_DECREF(key);
                goto fail;
            }
            Py_DECREF(pre); /* the cache holds it */
        }
        Py_DECREF(key);
        if (buf_put_bytes(&b, pre, 0, 0) < 0) goto fail;
        /* the records of the chunk keep op, target, code and task alive meanwhile */
        Py_INCREF(pre);
        Py_XSETREF(lc[h].pre, pre);
        lc[h].op = op;
        lc[h].target = target;
        lc[h].code = code;
        lc[h].task = task;
        lc[h].lasti = li;
    tail:
        if (buf_put(&b, "\"seq\":", 6) < 0 || buf_put_int(&b, seq) < 0) goto fail;
        if (buf_put(&b, ",\"ts\":", 6) < 0 || buf_put_int(&b, ts) < 0) goto fail;
        if (stack != Py_None &&
            (buf_put(&b, ",\"stack\":", 9) < 0 || buf_put_int(&b, stack) < 0))
            goto fail;
        if (value != novalue) {
            if (buf_put(&b, ",\"value\":", 9) < 0) goto fail;
            int r = buf_put_scalar(&b, value);
            if (r < 0) goto fail;
            if (r == 0) {
                PyObject *j = PyObject_CallOneArg(dumps_value, value);
                if (j == NULL) goto fail;
                int e = buf_put_bytes(&b, j, 0, 0);
                Py_DECREF(j);
                if (e < 0) goto fail;
            }
        }
        if (extra != Py_None && PyObject_IsTrue(extra)) {
            if (buf_put(&b, ",", 1) < 0) goto fail;
            int r = PyDict_CheckExact(extra) ? buf_put_extra(&b, extra) : 0;
            if (r < 0) goto fail;
            if (r == 0) {
                PyObject *j = PyObject_CallOneArg(dumps_extra, extra);
                if (j == NULL) goto fail;
                int e = buf_put_bytes(&b, j, 1, 1);
                Py_DECREF(j);
                if (e < 0) goto fail;
            }
        }
        if (buf_put(&b, "}\n", 2) < 0) goto fail;
        if (fd >= 0 && b.len >= DRAIN_AT) {
            if (buf_drain(&b, fd) < 0) goto fail;
            written = i + 1;
        }
    }
    PyObject *out;
    if (fd >= 0) {
        if (buf_drain(&b, fd) < 0) goto fail;
        written = n;
        /* all written: the chunk is emptied here, where no signal handler can run */
        if (PyList_SetSlice(chunk, 0, n, NULL) < 0) goto fail;
        out = Py_NewRef(Py_None);
    } else {
        out = PyBytes_FromStringAndSize(b.p ? b.p : "", b.len);
    }
    goto end;
fail:
    out = NULL;
    if (fd >= 0) {
        /* The exception may be a signal handler's, raised in a callback: the records
         * not written yet stay in the chunk, for the caller to write at the next flush. */
        PyObject *type, *exc, *tb;
        PyErr_Fetch(&type, &exc, &tb);
        if (PyList_SetSlice(chunk, 0, written, NULL) < 0) PyErr_Clear();
        PyErr_Restore(type, exc, tb);
    }
end:
    for (int k = 0; k < NCACHE; k++) Py_XDECREF(lc[k].pre);
    PyMem_Free(b.p);
    return out;
}

/* ------------------------------------------------------------------------------ */
/* The capture: tracelens.record._core.record. setup() hands over its collaborators. */
static PyObject *g_local, *g_new_state, *g_skip, *g_get_loop, *g_task_unit, *g_state;
static PyObject *g_novalue;
static PyObject *s_st, *s_off, *s_buf, *s_buffer_size, *s_sink, *s_flush_unit;

static PyObject *setup(PyObject *self, PyObject *args) {
    PyObject *local, *new_state, *skip, *get_loop, *task_unit, *state, *novalue;
    if (!PyArg_ParseTuple(args, "OOOOOOO", &local, &new_state, &skip, &get_loop, &task_unit,
                          &state, &novalue))
        return NULL;
    if (!PyAnySet_Check(skip)) {
        PyErr_SetString(PyExc_TypeError, "skip_files must be a set");
        return NULL;
    }
#define SET(g, v) do { Py_INCREF(v); Py_XSETREF(g, v); } while (0)
    SET(g_local, local);
    SET(g_new_state, new_state);
    SET(g_skip, skip);
    SET(g_get_loop, get_loop);
    SET(g_task_unit, task_unit);
    SET(g_state, state);
    SET(g_novalue, novalue);
#undef SET
    Py_RETURN_NONE;
}

static long long monotonic_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (long long)t.tv_sec * 1000000000LL + t.tv_nsec;
}

/* ------------------------------------------------------------------------------ */
/* Call stacks (tracelens.record._core.py_stack): the site frame and its callers, up to
 * STATE.stack_depth frames, ending before the first frame of a SKIP_FILES file. Their
 * key, (code, lasti, code, lasti, ...) innermost first, is interned by the Python
 * intern_stack(key) -> id; the ids of the keys seen last are cached here by identity of
 * the code objects (the cache holds the keys, so a code object cannot be freed and its
 * address reused while cached). forget_stacks() empties it when the sink starts anew. */
#define STACK_MAX 64
#define STACK_SLOTS 1024
typedef struct {
    size_t hash;
    PyObject *key, *id;
} StackSlot;
static StackSlot stack_cache[STACK_SLOTS];
static PyObject *g_intern_stack, *s_stack_depth;

static PyObject *setup_stacks(PyObject *self, PyObject *intern) {
    Py_INCREF(intern);
    Py_XSETREF(g_intern_stack, intern);
    Py_RETURN_NONE;
}

static PyObject *forget_stacks(PyObject *self, PyObject *unused) {
    for (int i = 0; i < STACK_SLOTS; i++) {
        stack_cache[i].hash = 0;
        Py_CLEAR(stack_cache[i].key);
        Py_CLEAR(stack_cache[i].id);
    }
    Py_RETURN_NONE;
}

/* The stack id at frame f (code: its code object), or None; NULL on error. */
static PyObject *stack_of(PyFrameObject *f, PyObject *code) {
    PyObject *d = PyObject_GetAttr(g_state, s_stack_depth);
    if (d == NULL) return NULL;
    Py_ssize_t depth = PyLong_AsSsize_t(d);
    Py_DECREF(d);
    if (depth == -1 && PyErr_Occurred()) return NULL;
    if (depth <= 0 || g_intern_stack == NULL) return Py_NewRef(Py_None);
    if (depth > STACK_MAX) depth = STACK_MAX;
    PyObject *codes[STACK_MAX];
    int lastis[STACK_MAX];
    Py_ssize_t n = 1;
    PyObject *result = NULL;
    codes[0] = Py_NewRef(code);
    lastis[0] = PyFrame_GetLasti(f);
    PyFrameObject *g = PyFrame_GetBack(f);
    while (g != NULL && n < depth) {
        PyObject *gc = (PyObject *)PyFrame_GetCode(g);
        int skip = PySet_Contains(g_skip, ((PyCodeObject *)gc)->co_filename);
        if (skip != 0) {
            Py_DECREF(gc);
            if (skip < 0) goto done;
            break;
        }
        codes[n] = gc;
        lastis[n] = PyFrame_GetLasti(g);
        n++;
        PyFrameObject *back = PyFrame_GetBack(g);
        Py_DECREF(g);
        g = back;
    }
    size_t h = (size_t)n;
    for (Py_ssize_t i = 0; i < n; i++)
        h = (h * 1000003) ^ ((size_t)codes[i] >> 4) ^ ((size_t)(unsigned)lastis[i] * 2654435761u);
    if (h == 0) h = 1;
    StackSlot *slot = &stack_cache[(h ^ (h >> 17)) % STACK_SLOTS];
    if (slot->hash == h && slot->key != NULL && PyTuple_GET_SIZE(slot->key) == 2 * n) {
        Py_ssize_t i = 0;
        for (; i < n; i++) {
            if (PyTuple_GET_ITEM(slot->key, 2 * i) != codes[i]) break;
            long li = PyLong_AsLong(PyTuple_GET_ITEM(slot->key, 2 * i + 1));
            if (li != lastis[i]) break;
        }
        if (i == n) {
            result = Py_NewRef(slot->id);
            goto done;
        }
    }
    PyObject *key = PyTuple_New(2 * n);
    if (key == NULL) goto done;
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *li = PyLong_FromLong(lastis[i]);
        if (li == NULL) {
            Py_DECREF(key);
            goto done;
        }
        PyTuple_SET_ITEM(key, 2 * i, Py_NewRef(codes[i]));
        PyTuple_SET_ITEM(key, 2 * i + 1, li);
    }
    result = PyObject_CallOneArg(g_intern_stack, key);
    if (result != NULL && result != Py_None) {
        slot->hash = h;
        Py_XSETREF(slot->key, key);
        Py_XSETREF(slot->id, Py_NewRef(result));
    } else {
        Py_DECREF(key);
    }
done:
    Py_XDECREF(g);
    for (Py_ssize_t i = 0; i < n; i++) Py_DECREF(codes[i]);
    return result;
}

/* record(op, seq, target, value=NOVALUE, extra=None, depth=2) */
static PyObject *record(PyObject *self, PyObject *const *args, Py_ssize_t nargs,
                        PyObject *kwnames) {
    static const char *names[] = {"op", "seq", "target", "value", "extra", "depth"};
    PyObject *a[6] = {NULL, NULL, NULL, NULL, NULL, NULL};
    if (g_local == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "setup() was not called");
        return NULL;
    }
    if (nargs > 6) {
        PyErr_SetString(PyExc_TypeError, "record() takes at most 6 arguments");
        return NULL;
    }
    for (Py_ssize_t i = 0; i < nargs; i++) a[i] = args[i];
    if (kwnames != NULL) {
        Py_ssize_t nk = PyTuple_GET_SIZE(kwnames);
        for (Py_ssize_t k = 0; k < nk; k++) {
            PyObject *name = PyTuple_GET_ITEM(kwnames, k);
            int j = 0;
            for (; j < 6; j++)
                if (PyUnicode_CompareWithASCIIString(name, names[j]) == 0) break;
            if (j == 6 || a[j] != NULL) {
                PyErr_Format(PyExc_TypeError, "record() got an unexpected keyword %R", name);
                return NULL;
            }
            a[j] = args[nargs + k];
        }
    }
    if (a[0] == NULL || a[1] == NULL || a[2] == NULL) {
        PyErr_SetString(PyExc_TypeError, "record() needs op, seq and target");
        return NULL;
    }
    PyObject *value = a[3] ? a[3] : g_novalue, *extra = a[4] ? a[4] : Py_None;
    Py_ssize_t depth = 2;
    if (a[5] != NULL) {
        depth = PyLong_AsSsize_t(a[5]);
        if (depth == -1 && PyErr_Occurred()) return NULL;
    }

    PyObject *st = PyObject_GetAttr(g_local, s_st);
    if (st == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return NULL;
        PyErr_Clear();
        st = PyObject_CallNoArgs(g_new_state);
        if (st == NULL) return NULL;
    }
    PyObject *result = NULL, *code = NULL, *task = NULL, *buf = NULL, *rec = NULL;
    PyObject *stack = NULL;
    PyFrameObject *f = NULL;
    PyObject *off = PyObject_GetAttr(st, s_off);
    if (off == NULL) goto done;
    int is_off = PyObject_IsTrue(off);
    Py_DECREF(off);
    if (is_off < 0) goto done;
    if (is_off) {
        result = Py_NewRef(Py_None);
        goto done;
    }
    /* The Python version runs in a frame of its own: its getframe(depth) is our
     * caller's frame walked back depth - 1 times. */
    f = PyEval_GetFrame();
    Py_XINCREF(f);
    for (Py_ssize_t i = 1; i < depth && f != NULL; i++) {
        PyFrameObject *back = PyFrame_GetBack(f);
        Py_DECREF(f);
        f = back;
    }
    if (f == NULL) {
        PyErr_SetString(PyExc_ValueError, "call stack is not deep enough");
        goto done;
    }
    code = (PyObject *)PyFrame_GetCode(f);
    int user = 1; /* a frame outside SKIP_FILES was found (a thread's begin has none) */
    for (;;) {
        int skip = PySet_Contains(g_skip, ((PyCodeObject *)code)->co_filename);
        if (skip < 0) goto done;
        if (!skip) break;
        PyFrameObject *back = PyFrame_GetBack(f);
        if (back == NULL) {
            user = 0;
            break;
        }
        Py_DECREF(f);
        f = back;
        Py_DECREF(code);
        code = (PyObject *)PyFrame_GetCode(f);
    }
    stack = user ? stack_of(f, code) : Py_NewRef(Py_None);
    if (stack == NULL) goto done;
    PyObject *loop = PyObject_CallNoArgs(g_get_loop);
    if (loop == NULL) goto done;
    if (loop == Py_None) {
        task = Py_NewRef(Py_None);
    } else {
        task = PyObject_CallNoArgs(g_task_unit);
    }
    Py_DECREF(loop);
    if (task == NULL) goto done;
    rec = PyTuple_New(10);
    if (rec == NULL) goto done;
    /* Nothing a record holds refers back to it: the collector need not scan it
     * (the thousand records of a full buffer would otherwise be traversed on every
     * young collection). */
    PyObject_GC_UnTrack(rec);
    PyObject *ts = PyLong_FromLongLong(monotonic_ns());
    PyObject *lasti = PyLong_FromLong(PyFrame_GetLasti(f));
    if (ts == NULL || lasti == NULL) {
        Py_XDECREF(ts);
        Py_XDECREF(lasti);
        goto done;
    }
    PyTuple_SET_ITEM(rec, 0, Py_NewRef(a[0]));
    PyTuple_SET_ITEM(rec, 1, Py_NewRef(a[1]));
    PyTuple_SET_ITEM(rec, 2, ts);
    PyTuple_SET_ITEM(rec, 3, Py_NewRef(a[2]));
    PyTuple_SET_ITEM(rec, 4, Py_NewRef(value));
    PyTuple_SET_ITEM(rec, 5, Py_NewRef(code));
    PyTuple_SET_ITEM(rec, 6, lasti);
    PyTuple_SET_ITEM(rec, 7, Py_NewRef(task));
    PyTuple_SET_ITEM(rec, 8, Py_NewRef(extra));
    PyTuple_SET_ITEM(rec, 9, Py_NewRef(stack));
    buf = PyObject_GetAttr(st, s_buf);
    if (buf == NULL) goto done;
    if (!PyList_Check(buf)) {
        PyErr_SetString(PyExc_TypeError, "a unit's buffer is a list");
        goto done;
    }
    if (PyList_Append(buf, rec) < 0) goto done;
    PyObject *size = PyObject_GetAttr(g_state, s_buffer_size);
    if (size == NULL) goto done;
    Py_ssize_t limit = PyLong_AsSsize_t(size);
    Py_DECREF(size);
    if (limit == -1 && PyErr_Occurred()) goto done;
    if (PyList_GET_SIZE(buf) >= limit) {
        PyObject *sink = PyObject_GetAttr(g_state, s_sink);
        if (sink == NULL) goto done;
        if (sink != Py_None) {
            PyObject *r = PyObject_CallMethodOneArg(sink, s_flush_unit, st);
            Py_DECREF(sink);
            if (r == NULL) goto done;
            Py_DECREF(r);
        } else {
            Py_DECREF(sink);
        }
    }
    result = Py_NewRef(Py_None);
done:
    Py_XDECREF(rec);
    Py_XDECREF(stack);
    Py_XDECREF(buf);
    Py_XDECREF(task);
    Py_XDECREF(code);
    Py_XDECREF((PyObject *)f);
    Py_DECREF(st);
    return result;
}

static PyMethodDef methods[] = {
    {"render", (PyCFunction)(void (*)(void))render, METH_FASTCALL,
     "JSON lines of a chunk of event records (Sink._render)."},
    {"record", (PyCFunction)(void (*)(void))record, METH_FASTCALL | METH_KEYWORDS,
     "Append one event to the current thread's buffer (_core.record)."},
    {"setup", setup, METH_VARARGS, "Hand the recorder's state to record()."},
    {"setup_stacks", setup_stacks, METH_O, "Hand record() the interner of call stacks."},
    {"forget_stacks", forget_stacks, METH_NOARGS, "Empty record()'s cache of stack ids."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "tracelens.record._speedups", NULL, -1, methods,
};

PyMODINIT_FUNC PyInit__speedups(void) {
#define INTERN(v, s) if ((v = PyUnicode_InternFromString(s)) == NULL) return NULL
    INTERN(s_st, "st");
    INTERN(s_off, "off");
    INTERN(s_buf, "buf");
    INTERN(s_buffer_size, "buffer_size");
    INTERN(s_sink, "sink");
    INTERN(s_flush_unit, "flush_unit");
    INTERN(s_stack_depth, "stack_depth");
#undef INTERN
    return PyModule_Create(&module);
}
