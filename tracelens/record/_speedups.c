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
#include <structmember.h>
#include <errno.h>
#include <stddef.h>
#include <time.h>
#include <unistd.h>
#include <structmember.h> /* T_OBJECT_EX */

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
    static const char pairs[] = "00010203040506070809101112131415161718192021222324252627282930"
                                "31323334353637383940414243444546474849505152535455565758596061"
                                "62636465666768697071727374757677787980818283848586878889909192"
                                "93949596979899";
    while (u >= 100) { /* two digits a division: timestamps have 14 or more */
        unsigned d = (unsigned)(u % 100) * 2;
        u /= 100;
        *--o = pairs[d + 1];
        *--o = pairs[d];
    }
    if (u >= 10) {
        *--o = pairs[u * 2 + 1];
        *--o = pairs[u * 2];
    } else {
        *--o = (char)('0' + u);
    }
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

/* Prefixes by identity of (unit state, op, target, code, task) and lasti, kept from one
 * render() to the next: most events repeat a few thousand sites, and this spares
 * building and hashing the key tuple for them (a code object's hash is not cached: it
 * hashes its constants, nested code objects included). Identical elements make an
 * equal key, so a hit is what the dict lookup would have found; the entries hold
 * their objects, so an identity is never reused while it is here. They belong to one
 * prefix dict: another one (a new sink, a forked child's), or this one emptied, empties
 * them first. */
enum { NSITES = 4096, NWAYS = 4 };
typedef struct {
    PyObject *st, *op, *target, *code, *task, *pre;
    long lasti;
} Site;
static Site sites[NSITES];
static PyObject *sites_of;      /* the prefix dict the entries are from (held) */
static Py_ssize_t sites_seen;   /* its size when an entry was last kept */

static void sites_clear(void) {
    for (int k = 0; k < NSITES; k++) {
        Site *e = &sites[k];
        PyObject *o[6] = {e->st, e->op, e->target, e->code, e->task, e->pre};
        memset(e, 0, sizeof *e);
        for (int j = 0; j < 6; j++) Py_XDECREF(o[j]);
    }
}

/* The set of NWAYS entries where a site's prefix may be kept. */
static Site *site_set(PyObject *cache, PyObject *st, PyObject *op, PyObject *target,
                      PyObject *code, PyObject *task, long li) {
    if (sites_of != cache || PyDict_GET_SIZE(cache) < sites_seen) {
        sites_clear();
        Py_INCREF(cache);
        Py_XSETREF(sites_of, cache);
        sites_seen = 0;
    }
    uint64_t h = (uint64_t)(uintptr_t)target * 0x9E3779B97F4A7C15ULL;
    h ^= (uint64_t)(uintptr_t)code * 0xC2B2AE3D27D4EB4FULL + (uint64_t)li * 0x165667B19E3779F9ULL;
    h ^= (uint64_t)(uintptr_t)op + ((uint64_t)(uintptr_t)task << 7) + ((uint64_t)(uintptr_t)st << 13);
    h *= 0x94D049BB133111EBULL;
    return &sites[((h >> 40) % (NSITES / NWAYS)) * NWAYS];
}

/* The prefix kept for a site, or NULL (borrowed). */
static PyObject *site_find(PyObject *cache, PyObject *st, PyObject *op, PyObject *target,
                           PyObject *code, PyObject *task, long li) {
    Site *set = site_set(cache, st, op, target, code, task, li);
    for (int w = 0; w < NWAYS; w++) {
        Site *e = &set[w];
        if (e->pre != NULL && e->target == target && e->code == code && e->lasti == li &&
            e->op == op && e->st == st && e->task == task)
            return e->pre;
    }
    return NULL;
}

/* Keep a site's prefix (the cache holds it too) first in its set; the last one goes. */
static void site_keep(PyObject *cache, PyObject *st, PyObject *op, PyObject *target,
                      PyObject *code, PyObject *task, long li, PyObject *pre) {
    Site *set = site_set(cache, st, op, target, code, task, li);
    Site old = set[NWAYS - 1];
    memmove(&set[1], &set[0], (NWAYS - 1) * sizeof *set);
    Site *e = &set[0];
    e->st = Py_NewRef(st);
    e->op = Py_NewRef(op);
    e->target = Py_NewRef(target);
    e->code = Py_NewRef(code);
    e->task = Py_NewRef(task);
    e->pre = Py_NewRef(pre);
    e->lasti = li;
    sites_seen = PyDict_GET_SIZE(cache);
    /* last: a dealloc may run code */
    PyObject *o[6] = {old.st, old.op, old.target, old.code, old.task, old.pre};
    for (int j = 0; j < 6; j++) Py_XDECREF(o[j]);
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
        PyObject *kept = li == -1 ? NULL : site_find(cache, st, op, target, code, task, li);
        if (kept != NULL) {
            if (buf_put_bytes(&b, kept, 0, 0) < 0) goto fail;
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
        if (li != -1) site_keep(cache, st, op, target, code, task, li, pre);
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
    PyMem_Free(b.p);
    return out;
}

/* ------------------------------------------------------------------------------ */
/* The capture: tracelens.record._core.record. setup() hands over its collaborators. */
static PyObject *g_local, *g_new_state, *g_skip, *g_get_loop, *g_task_unit, *g_state;
static PyObject *g_novalue;
static PyObject *s_st, *s_off, *s_buf, *s_buffer_size, *s_sink, *s_flush_unit;

/* Attribute reads of the recorder's own __slots__ objects (a unit state, STATE) on the
 * hot path. getattr on them costs ~200 instructions (the type's MRO lookup, then the
 * member descriptor); read_slot reads the slot directly when the attribute is a plain
 * object member of the exact type, checked against the type's version tag (which
 * changes when the type or a base is modified), so it gives what getattr gives. */
typedef struct {
    PyTypeObject *type; /* held */
    unsigned int tag;   /* its tp_version_tag when looked at */
    Py_ssize_t off;     /* the slot's offset, or -1: use getattr */
} SlotRead;

static PyObject *read_slot(PyObject *o, PyObject *name, SlotRead *c) {
    PyTypeObject *t = Py_TYPE(o);
    if (t != c->type || t->tp_version_tag != c->tag || c->tag == 0) {
        Py_ssize_t off = -1;
        if (t->tp_getattro == PyObject_GenericGetAttr) {
            PyObject *d = _PyType_Lookup(t, name); /* borrowed; assigns the version tag */
            if (d != NULL && Py_IS_TYPE(d, &PyMemberDescr_Type)) {
                PyMemberDef *m = ((PyMemberDescrObject *)d)->d_member;
                if (m->type == T_OBJECT_EX) off = m->offset;
            }
        }
        Py_INCREF(t);
        Py_XSETREF(c->type, t);
        c->tag = PyType_HasFeature(t, Py_TPFLAGS_VALID_VERSION_TAG) ? t->tp_version_tag : 0;
        c->off = c->tag == 0 ? -1 : off;
    }
    if (c->off >= 0) {
        PyObject *v = *(PyObject **)((char *)o + c->off);
        if (v != NULL) return Py_NewRef(v);
    }
    return PyObject_GetAttr(o, name); /* unset (raises as getattr does), or not a slot */
}

static SlotRead slot_off, slot_buf, slot_buffer_size, slot_sink, slot_stack_depth, slot_on;

/* The current thread's unit state, cached in its thread-state dict (what
 * threading.local uses underneath, less its own lookups) as (state, token). The token
 * is replaced whenever Python binds or forgets a thread's state (unit_state_changed()),
 * so a cached state is always the one _local.st holds; a thread's cache goes with its
 * thread state. A new reference, or NULL. */
static PyObject *g_st_key, *g_st_token;

/* The state found last, and for which thread state (its address and its id, unique in
 * the interpreter: an address may be reused by a later thread) and token: most events
 * follow one of the same thread. Held references. */
static struct {
    PyThreadState *ts;
    uint64_t id;
    PyObject *st, *token;
} last_state;

static void remember_state(PyThreadState *ts, PyObject *st) {
    PyObject *old_st = last_state.st, *old_token = last_state.token;
    last_state.ts = ts;
    last_state.id = PyThreadState_GetID(ts);
    last_state.st = Py_NewRef(st);
    last_state.token = Py_NewRef(g_st_token);
    Py_XDECREF(old_st); /* last: a dealloc may run code */
    Py_XDECREF(old_token);
}

static PyObject *current_state(void) {
    PyThreadState *ts = PyThreadState_Get();
    if (last_state.ts == ts && last_state.token == g_st_token && last_state.st != NULL &&
        last_state.id == PyThreadState_GetID(ts))
        return Py_NewRef(last_state.st);
    PyObject *d = PyThreadState_GetDict(); /* borrowed; NULL without an error if none */
    if (d != NULL && g_st_token != NULL) {
        PyObject *c = PyDict_GetItemWithError(d, g_st_key);
        if (c != NULL) {
            if (PyTuple_CheckExact(c) && PyTuple_GET_SIZE(c) == 2 &&
                PyTuple_GET_ITEM(c, 1) == g_st_token) {
                remember_state(ts, PyTuple_GET_ITEM(c, 0));
                return Py_NewRef(PyTuple_GET_ITEM(c, 0));
            }
        } else if (PyErr_Occurred()) {
            return NULL;
        }
    }
    PyObject *st = PyObject_GetAttr(g_local, s_st);
    if (st == NULL) {
        if (!PyErr_ExceptionMatches(PyExc_AttributeError)) return NULL;
        PyErr_Clear();
        st = PyObject_CallNoArgs(g_new_state); /* binds: a new token, taken below */
        if (st == NULL) return NULL;
    }
    if (d != NULL && g_st_token != NULL) {
        PyObject *c = PyTuple_Pack(2, st, g_st_token);
        if (c == NULL || PyDict_SetItem(d, g_st_key, c) < 0) {
            Py_XDECREF(c);
            Py_DECREF(st);
            return NULL;
        }
        Py_DECREF(c);
        remember_state(ts, st);
    }
    return st;
}

/* unit_state_changed(): a thread's state was bound or forgotten (_core.bind_unit_state,
 * forget_unit_state): every thread's cached state is looked up again. */
static int new_st_token(void) {
    PyObject *token = PyObject_CallNoArgs((PyObject *)&PyBaseObject_Type);
    if (token == NULL) return -1;
    Py_XSETREF(g_st_token, token);
    return 0;
}

static PyObject *unit_state_changed(PyObject *self, PyObject *unused) {
    if (new_st_token() < 0) return NULL;
    Py_RETURN_NONE;
}

/* The running asyncio loop's check is skipped while it is type(None) (asyncio not
 * imported: _core._get_running_loop), which returns None. */
static int loop_can_run(void) { return g_get_loop != (PyObject *)Py_TYPE(Py_None); }

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

/* Whether a code object's file is in SKIP_FILES (code.co_filename in SKIP_FILES), asked
 * for every frame an event looks at. Cached by identity of the code object (held, so
 * its address is not reused while cached) with the set's identity and size: SKIP_FILES
 * only grows (_config, sync, aio add to it). */
enum { NSKIP = 256 };
static struct {
    PyObject *code, *set;
    Py_ssize_t size;
    int skip;
} skip_cache[NSKIP];

static int skipped(PyObject *code) {
    size_t k = ((uintptr_t)code >> 4) % NSKIP;
    Py_ssize_t size = PySet_GET_SIZE(g_skip);
    if (skip_cache[k].code == code && skip_cache[k].set == g_skip && skip_cache[k].size == size)
        return skip_cache[k].skip;
    int r = PySet_Contains(g_skip, ((PyCodeObject *)code)->co_filename);
    if (r < 0) return r;
    PyObject *old_code = skip_cache[k].code, *old_set = skip_cache[k].set;
    skip_cache[k].code = Py_NewRef(code);
    skip_cache[k].set = Py_NewRef(g_skip);
    skip_cache[k].size = size;
    skip_cache[k].skip = r;
    Py_XDECREF(old_code);
    Py_XDECREF(old_set);
    return r;
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
    PyObject *d = read_slot(g_state, s_stack_depth, &slot_stack_depth);
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
        int skip = skipped(gc);
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

/* The current thread's state and the record of one event (record()'s arguments), not
 * yet appended to its buffer (_core.py_event). 0 with *rec NULL: a recorder's own
 * thread (nothing to record); -1: an error. New references in *st_out and *rec_out. */
static int make_record(PyObject *op, PyObject *seq, PyObject *target, PyObject *value,
                       PyObject *extra, Py_ssize_t depth, PyObject **st_out, PyObject **rec_out) {
    *st_out = *rec_out = NULL;
    PyObject *st = current_state();
    if (st == NULL) return -1;
    int r = -1;
    PyObject *code = NULL, *task = NULL, *rec = NULL, *stack = NULL;
    PyFrameObject *f = NULL;
    PyObject *off = read_slot(st, s_off, &slot_off);
    if (off == NULL) goto done;
    int is_off = PyObject_IsTrue(off);
    Py_DECREF(off);
    if (is_off < 0) goto done;
    if (is_off) {
        r = 0;
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
        int skip = skipped(code);
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
    PyObject *loop = loop_can_run() ? PyObject_CallNoArgs(g_get_loop) : Py_NewRef(Py_None);
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
        Py_CLEAR(rec);
        goto done;
    }
    PyTuple_SET_ITEM(rec, 0, Py_NewRef(op));
    PyTuple_SET_ITEM(rec, 1, Py_NewRef(seq));
    PyTuple_SET_ITEM(rec, 2, ts);
    PyTuple_SET_ITEM(rec, 3, Py_NewRef(target));
    PyTuple_SET_ITEM(rec, 4, Py_NewRef(value));
    PyTuple_SET_ITEM(rec, 5, Py_NewRef(code));
    PyTuple_SET_ITEM(rec, 6, lasti);
    PyTuple_SET_ITEM(rec, 7, Py_NewRef(task));
    PyTuple_SET_ITEM(rec, 8, Py_NewRef(extra));
    PyTuple_SET_ITEM(rec, 9, Py_NewRef(stack));
    *rec_out = rec;
    *st_out = Py_NewRef(st);
    r = 0;
done:
    Py_XDECREF(stack);
    Py_XDECREF(task);
    Py_XDECREF(code);
    Py_XDECREF((PyObject *)f);
    Py_DECREF(st);
    return r;
}

/* Append a record to a unit's buffer and write the buffer when full (_core.py_append). */
static int append_record(PyObject *st, PyObject *rec) {
    PyObject *buf = read_slot(st, s_buf, &slot_buf);
    if (buf == NULL) return -1;
    int r = -1;
    if (!PyList_Check(buf)) {
        PyErr_SetString(PyExc_TypeError, "a unit's buffer is a list");
        goto done;
    }
    if (PyList_Append(buf, rec) < 0) goto done;
    PyObject *size = read_slot(g_state, s_buffer_size, &slot_buffer_size);
    if (size == NULL) goto done;
    Py_ssize_t limit = PyLong_AsSsize_t(size);
    Py_DECREF(size);
    if (limit == -1 && PyErr_Occurred()) goto done;
    if (PyList_GET_SIZE(buf) >= limit) {
        PyObject *sink = read_slot(g_state, s_sink, &slot_sink);
        if (sink == NULL) goto done;
        if (sink != Py_None) {
            PyObject *res = PyObject_CallMethodOneArg(sink, s_flush_unit, st);
            Py_DECREF(sink);
            if (res == NULL) goto done;
            Py_DECREF(res);
        } else {
            Py_DECREF(sink);
        }
    }
    r = 0;
done:
    Py_DECREF(buf);
    return r;
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
    PyObject *st, *rec;
    if (make_record(a[0], a[1], a[2], value, extra, depth, &st, &rec) < 0) return NULL;
    if (rec == NULL) Py_RETURN_NONE;
    int r = append_record(st, rec);
    Py_DECREF(rec);
    Py_DECREF(st);
    if (r < 0) return NULL;
    Py_RETURN_NONE;
}

/* ------------------------------------------------------------------------------ */
/* The helpers instrumented code calls (tracelens.record.shadow): attribute, item and
 * global loads and stores, and their events. Each does exactly what its Python
 * reference in shadow.py does (_attr_event, _item_event, the generated get/set/delete/
 * aug, _get_item, _set_item, _del_item, _aug_item, _contains, _global_helpers), without
 * a Python frame: the access, then its sequence number with no Python code in between,
 * then the event appended by record() above. What is rare (a first sight of an object,
 * a key never seen, a failure to record) is handed to the Python functions. */
static PyObject *sh_names, *sh_proxies, *sh_not_data, *sh_immutable, *sh_containers;
static PyObject *sh_scalars, *sh_sized, *sh_whole, *sh_local_type, *sh_entry, *sh_failed;
static PyObject *sh_key_text, *sh_builtin, *sh_counter, *sh_R, *sh_W, *sh_missing;
static PyObject *sh_commuting, *sh_depth, *s_on, *s_module, *s_qualname, *s_class;
static PyObject *sh_mapping; /* collections.abc.Mapping */

/* shadow_setup(names, proxies, not_data, immutable, containers, scalars, sized, whole,
 *              local_type, entry, failed, key_text, builtin, counter, R, W, missing,
 *              commuting, mapping) */
static PyObject *shadow_setup(PyObject *self, PyObject *args) {
    PyObject *a[19];
    if (!PyArg_ParseTuple(args, "OOOOOOOOOOOOOOOOOOO", &a[0], &a[1], &a[2], &a[3], &a[4], &a[5],
                          &a[6], &a[7], &a[8], &a[9], &a[10], &a[11], &a[12], &a[13], &a[14],
                          &a[15], &a[16], &a[17], &a[18]))
        return NULL;
    if (!PyDict_CheckExact(a[0]) || !PyAnySet_Check(a[1]) || !PyAnySet_Check(a[2]) ||
        !PyAnySet_Check(a[3]) || !PyAnySet_Check(a[4]) || !PyAnySet_Check(a[5]) ||
        !PyAnySet_Check(a[6]) || !PyTuple_Check(a[7]) || !PyType_Check(a[8]) ||
        Py_TYPE(a[13])->tp_iternext == NULL || !PyDict_CheckExact(a[17]) || !PyType_Check(a[18])) {
        PyErr_SetString(PyExc_TypeError, "shadow_setup() got an argument of the wrong type");
        return NULL;
    }
    PyObject **g[19] = {&sh_names, &sh_proxies, &sh_not_data, &sh_immutable, &sh_containers,
                        &sh_scalars, &sh_sized, &sh_whole, &sh_local_type, &sh_entry,
                        &sh_failed, &sh_key_text, &sh_builtin, &sh_counter, &sh_R, &sh_W,
                        &sh_missing, &sh_commuting, &sh_mapping};
    for (int i = 0; i < 19; i++) {
        Py_INCREF(a[i]);
        Py_XSETREF(*g[i], a[i]);
    }
    Py_RETURN_NONE;
}

/* The next number of the process-wide sequence (_core.next_seq). */
static inline PyObject *sh_next_seq(void) { return Py_TYPE(sh_counter)->tp_iternext(sh_counter); }

/* Whether recording is on (STATE.on): 1, 0, or -1 with an exception. */
static int sh_on(void) {
    PyObject *on = read_slot(g_state, s_on, &slot_on);
    if (on == NULL) return -1;
    int r = on == Py_True ? 1 : on == Py_False ? 0 : PyObject_IsTrue(on);
    Py_DECREF(on);
    return r;
}

/* Whether a type is in one of the sets of types above (set_lookkey costs ~100
 * instructions, and an access asks three to five times). The answers are cached by
 * identity of the set and of an exact type (a type of metaclass type compares by
 * identity, so the answer is the set's) with the set's size: the sets are frozensets
 * but for the proxies' (shadow._PROXIES), which only grows. The entries hold the set
 * and the type, so neither is freed and its address reused while cached. */
enum { NIN = 512 };
static struct {
    PyObject *set, *type;
    Py_ssize_t size;
    int in;
} in_cache[NIN];

static int sh_in(PyObject *set, PyObject *o) {
    if (!PyType_CheckExact(o)) return PySet_Contains(set, o);
    uintptr_t h = ((uintptr_t)o >> 4) * 31 + ((uintptr_t)set >> 4);
    size_t k = (size_t)(h ^ (h >> 11)) % NIN;
    Py_ssize_t size = PySet_GET_SIZE(set);
    if (in_cache[k].set == set && in_cache[k].type == o && in_cache[k].size == size)
        return in_cache[k].in;
    int r = PySet_Contains(set, o);
    if (r < 0) return r;
    PyObject *old_set = in_cache[k].set, *old_type = in_cache[k].type;
    in_cache[k].set = Py_NewRef(set);
    in_cache[k].type = Py_NewRef(o);
    in_cache[k].size = size;
    in_cache[k].in = r;
    Py_XDECREF(old_set); /* last: a dealloc may run code */
    Py_XDECREF(old_type);
    return r;
}

/* record(op, seq, target, value, extra) with the call site of the current Python frame
 * (the program's: the helper has no frame of its own). */
static int sh_record(PyObject *op, PyObject *seq, PyObject *target, PyObject *value,
                     PyObject *extra) {
    PyObject *args[6] = {op, seq, target, value, extra, sh_depth};
    PyObject *r = record(NULL, args, 6, NULL);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* Objects only one unit has touched (shadow._event, the reference): while one unit
 * alone has touched an object, its events are kept aside in pv_dict (id(object) ->
 * [registry entry, owner's unit state, kept: variable -> [last write, last commuting
 * write since, last read since]]) instead of being appended; the first access by
 * another unit (or from an asyncio task) hands them to shadow._emit_kept, which
 * appends them to the owner's buffer with their own sequence numbers, sites and unit,
 * and the object is recorded in full from then on ([entry, None, None]). */
static PyObject *pv_dict, *pv_emit;
static int pv_on;
enum { PV_MAX_VARS = 256 }; /* shadow.MAX_PRIVATE_VARS */

/* The entries of pv_dict seen last, by identity of the registry entry they are for
 * (unique to one object's name while it lives, and held here, so never reused while
 * cached): the dict lookup by id costs ~250 instructions an access. An entry is found
 * again in pv_dict only when it is the same list; private_setup() empties the cache
 * (called again when pv_dict is cleared: defer_private(), a forked child). */
enum { NPV = 1024 };
static struct {
    PyObject *entry, *p;
} pv_cache[NPV];

static void pv_cache_clear(void) {
    for (int k = 0; k < NPV; k++) {
        PyObject *e = pv_cache[k].entry, *q = pv_cache[k].p;
        pv_cache[k].entry = pv_cache[k].p = NULL;
        Py_XDECREF(e);
        Py_XDECREF(q);
    }
}

/* private_setup(private, emit_kept, on) */
static PyObject *private_setup(PyObject *self, PyObject *args) {
    PyObject *d, *emit;
    int on;
    if (!PyArg_ParseTuple(args, "O!Op", &PyDict_Type, &d, &emit, &on)) return NULL;
    pv_cache_clear();
    Py_INCREF(d);
    Py_XSETREF(pv_dict, d);
    Py_INCREF(emit);
    Py_XSETREF(pv_emit, emit);
    pv_on = on;
    Py_RETURN_NONE;
}

/* Keep a record among an object's kept events (shadow._keep_event). */
static int pv_keep(PyObject *kept, PyObject *var, PyObject *rec, PyObject *op, PyObject *extra) {
    PyObject *slots = PyDict_GetItemWithError(kept, var);
    if (slots == NULL) {
        if (PyErr_Occurred()) return -1;
        if ((slots = PyList_New(3)) == NULL) return -1;
        for (int i = 0; i < 3; i++) PyList_SET_ITEM(slots, i, Py_NewRef(Py_None));
        int r = PyDict_SetItem(kept, var, slots);
        Py_DECREF(slots); /* the dict holds it */
        if (r < 0) return -1;
    }
    if (!PyList_CheckExact(slots) || PyList_GET_SIZE(slots) != 3) {
        PyErr_SetString(PyExc_TypeError, "kept events are a list of three");
        return -1;
    }
    int op_is_read = PyUnicode_Compare(op, sh_R);
    if (op_is_read == -1 && PyErr_Occurred()) return -1;
    Py_ssize_t at = op_is_read == 0 ? 2 : extra == sh_commuting ? 1 : 0;
    Py_INCREF(slots);
    PyObject *old[3] = {NULL, NULL, NULL};
    old[0] = PyList_GET_ITEM(slots, at);
    PyList_SET_ITEM(slots, at, Py_NewRef(rec));
    if (at == 0) { /* a write: what it follows conflicts with nothing more than it does */
        old[1] = PyList_GET_ITEM(slots, 1);
        old[2] = PyList_GET_ITEM(slots, 2);
        PyList_SET_ITEM(slots, 1, Py_NewRef(Py_None));
        PyList_SET_ITEM(slots, 2, Py_NewRef(Py_None));
    }
    for (int i = 0; i < 3; i++) Py_XDECREF(old[i]);
    Py_DECREF(slots);
    return 0;
}

/* record() for a variable of object o (entry: its registry entry): appended at once, or
 * kept aside while the object is private to the current unit (shadow._event). */
static int sh_record_of(PyObject *o, PyObject *entry, PyObject *op, PyObject *seq,
                        PyObject *target, PyObject *value, PyObject *extra) {
    if (!pv_on || pv_dict == NULL) return sh_record(op, seq, target, value, extra);
    PyObject *st, *rec;
    if (make_record(op, seq, target, value, extra, 1, &st, &rec) < 0) return -1;
    if (rec == NULL) return 0;
    int r = -1, in_task = PyTuple_GET_ITEM(rec, 7) != Py_None;
    PyObject *p = NULL, *owner = NULL, *kept = NULL, *key = NULL;
    size_t slot = ((uintptr_t)entry >> 4) % NPV;
    if (pv_cache[slot].entry == entry) {
        p = Py_NewRef(pv_cache[slot].p);
        goto found;
    }
    if ((key = PyLong_FromVoidPtr(o)) == NULL) goto done;
    p = PyDict_GetItemWithError(pv_dict, key);
    if (p == NULL && PyErr_Occurred()) goto done;
    if (p != NULL && PyList_CheckExact(p) && PyList_GET_SIZE(p) == 3 &&
        PyList_GET_ITEM(p, 0) == entry) {
        Py_INCREF(p);
        PyObject *old_e = pv_cache[slot].entry, *old_p = pv_cache[slot].p;
        pv_cache[slot].entry = Py_NewRef(entry);
        pv_cache[slot].p = Py_NewRef(p);
        Py_XDECREF(old_e);
        Py_XDECREF(old_p);
    } else { /* first seen (or a new object at the address): its toucher owns it */
        PyObject *k = in_task ? Py_NewRef(Py_None) : PyDict_New();
        if (k == NULL || (p = PyList_New(3)) == NULL) {
            Py_XDECREF(k);
            goto done;
        }
        PyList_SET_ITEM(p, 0, Py_NewRef(entry));
        PyList_SET_ITEM(p, 1, Py_NewRef(in_task ? Py_None : st));
        PyList_SET_ITEM(p, 2, k);
        if (PyDict_SetItem(pv_dict, key, p) < 0) goto done;
        r = append_record(st, rec); /* its first access is written: the object is seen */
        goto done;
    }
found:;
    PyObject *own = PyList_GET_ITEM(p, 1);
    if (own == st && !in_task) {
        PyObject *k = PyList_GET_ITEM(p, 2);
        if (!PyDict_CheckExact(k)) {
            PyErr_SetString(PyExc_TypeError, "kept events are a dict");
            goto done;
        }
        if (pv_keep(k, target, rec, op, extra) < 0) goto done;
        if (PyDict_GET_SIZE(k) <= PV_MAX_VARS) {
            r = 0;
            goto done;
        }
    }
    if (own != Py_None) { /* another unit, or too many variables: recorded in full now */
        owner = Py_NewRef(own);
        kept = Py_NewRef(PyList_GET_ITEM(p, 2));
        PyList_SetItem(p, 1, Py_NewRef(Py_None)); /* we hold the old items */
        PyList_SetItem(p, 2, Py_NewRef(Py_None));
        PyObject *res = PyObject_CallFunctionObjArgs(pv_emit, owner, kept, NULL);
        if (res == NULL) goto done;
        Py_DECREF(res);
        if (owner == st && !in_task) { /* this event was kept, and went out with them */
            r = 0;
            goto done;
        }
    }
    r = append_record(st, rec);
done:
    Py_XDECREF(key);
    Py_XDECREF(p);
    Py_XDECREF(owner);
    Py_XDECREF(kept);
    Py_DECREF(rec);
    Py_DECREF(st);
    return r;
}

/* An event's failure (shadow._failed): an Exception is said once and swallowed (0); a
 * BaseException (KeyboardInterrupt, a signal handler's) goes on to the program (-1). */
static int sh_fail(void) {
    if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
    PyObject *type, *exc, *tb;
    PyErr_Fetch(&type, &exc, &tb);
    PyErr_NormalizeException(&type, &exc, &tb);
    if (exc != NULL && tb != NULL) PyException_SetTraceback(exc, tb);
    PyObject *r = PyObject_CallOneArg(sh_failed, exc ? exc : Py_None);
    Py_XDECREF(type);
    Py_XDECREF(exc);
    Py_XDECREF(tb);
    if (r == NULL) { /* telling failed too: the program runs on all the same */
        if (!PyErr_ExceptionMatches(PyExc_Exception)) return -1;
        PyErr_Clear();
        return 0;
    }
    Py_DECREF(r);
    return 0;
}

/* The registry entry of an object (shadow._entry): found by id and checked to be this
 * object's, else made by the Python function. A new reference, or NULL. */
static PyObject *sh_lookup(PyObject *o, PyObject *hint) {
    PyObject *key = PyLong_FromVoidPtr(o);
    if (key == NULL) return NULL;
    PyObject *entry = PyDict_GetItemWithError(sh_names, key); /* borrowed */
    Py_DECREF(key);
    if (entry != NULL && PyTuple_CheckExact(entry) && PyTuple_GET_SIZE(entry) == 5) {
        PyObject *held = PyTuple_GET_ITEM(entry, 0);
        int same;
        if (PyTuple_GET_ITEM(entry, 1) == Py_True) {
#if PY_VERSION_HEX >= 0x030D0000
            PyObject *ref = NULL;
            if (PyWeakref_GetRef(held, &ref) < 0) return NULL;
            same = ref == o;
            Py_XDECREF(ref);
#else
            same = PyWeakref_Check(held) && PyWeakref_GET_OBJECT(held) == o;
#endif
        } else {
            same = held == o;
        }
        if (same) return Py_NewRef(entry);
    } else if (entry == NULL && PyErr_Occurred()) {
        return NULL;
    }
    return PyObject_CallFunctionObjArgs(sh_entry, o, hint, NULL);
}

/* Decimal digits of n >= 0 written backwards from e; where they start. */
static char *sh_digits(char *e, unsigned long long n) {
    do {
        *--e = (char)('0' + n % 10);
        n /= 10;
    } while (n);
    return e;
}

/* The text "<mod.qual object at " of a type, made once per type: (type, module,
 * qualname, text), checked against the type's current module and qualname. */
enum { NTYPES = 64 };
static struct {
    PyObject *type, *mod, *qual, *text;
} type_texts[NTYPES];

/* A type's __module__ and __qualname__ (new references), as t.__module__ would give
 * them; read directly where type's own getters are the ones that run. */
static int sh_type_names(PyTypeObject *t, PyObject **mod, PyObject **qual) {
    if (Py_IS_TYPE(t, &PyType_Type) && (t->tp_flags & Py_TPFLAGS_HEAPTYPE) && t->tp_dict) {
        PyObject *m = PyDict_GetItemWithError(t->tp_dict, s_module);
        if (m != NULL) {
            *mod = Py_NewRef(m);
            *qual = Py_NewRef(((PyHeapTypeObject *)t)->ht_qualname);
            return 0;
        }
        if (PyErr_Occurred()) return -1;
    }
    if ((*mod = PyObject_GetAttr((PyObject *)t, s_module)) == NULL) return -1;
    if ((*qual = PyObject_GetAttr((PyObject *)t, s_qualname)) == NULL) {
        Py_CLEAR(*mod);
        return -1;
    }
    return 0;
}

/* _core.safe_value for a value that is not a scalar. A new reference. */
static PyObject *sh_safe_value(PyObject *v) {
    PyTypeObject *t = Py_TYPE(v);
    char tmp[48], *e = tmp + sizeof tmp, *o;
    int sized = sh_in(sh_sized, (PyObject *)t);
    if (sized < 0) return NULL;
    if (sized) { /* f"<{t.__name__} len={len(v)}>": builtin types, named by tp_name */
        Py_ssize_t n = PyObject_Size(v);
        if (n < 0) return NULL;
        if (t->tp_flags & Py_TPFLAGS_HEAPTYPE) { /* not one of _SIZED's: the slow way */
            PyObject *name = PyType_GetName(t);
            if (name == NULL) return NULL;
            PyObject *out = PyUnicode_FromFormat("<%U len=%zd>", name, n);
            Py_DECREF(name);
            return out;
        }
        const char *name = strrchr(t->tp_name, '.');
        name = name ? name + 1 : t->tp_name;
        size_t ln = strlen(name);
        *--e = '>';
        o = sh_digits(e, (unsigned long long)n);
        o -= 5;
        memcpy(o, " len=", 5);
        if (ln > (size_t)(o - tmp) - 1) return PyUnicode_FromFormat("<%s len=%zd>", name, n);
        o -= ln;
        memcpy(o, name, ln);
        *--o = '<';
        return PyUnicode_FromStringAndSize(o, tmp + sizeof tmp - o);
    }
    /* f"<{t.__module__}.{t.__qualname__} object at {id(v):#x}>" */
    PyObject *mod, *qual;
    if (sh_type_names(t, &mod, &qual) < 0) return NULL;
    size_t slot = ((uintptr_t)t >> 4) % NTYPES;
    PyObject *text = NULL;
    if (type_texts[slot].type == (PyObject *)t && type_texts[slot].mod == mod &&
        type_texts[slot].qual == qual) {
        text = Py_NewRef(type_texts[slot].text);
    } else {
        text = PyUnicode_FromFormat("<%S.%S object at ", mod, qual);
        if (text != NULL) {
            PyObject *old[4] = {type_texts[slot].type, type_texts[slot].mod,
                                type_texts[slot].qual, type_texts[slot].text};
            type_texts[slot].type = Py_NewRef((PyObject *)t);
            type_texts[slot].mod = Py_NewRef(mod);
            type_texts[slot].qual = Py_NewRef(qual);
            type_texts[slot].text = Py_NewRef(text);
            for (int j = 0; j < 4; j++) Py_XDECREF(old[j]);
        }
    }
    Py_DECREF(mod);
    Py_DECREF(qual);
    if (text == NULL) return NULL;
    static const char hex[] = "0123456789abcdef";
    uintptr_t a = (uintptr_t)v;
    o = e;
    *--o = '>';
    do {
        *--o = hex[a & 15];
        a >>= 4;
    } while (a);
    *--o = 'x';
    *--o = '0';
    PyObject *tail = PyUnicode_FromStringAndSize(o, e - o);
    if (tail == NULL) {
        Py_DECREF(text);
        return NULL;
    }
    PyObject *out = PyUnicode_Concat(text, tail);
    Py_DECREF(text);
    Py_DECREF(tail);
    return out;
}

/* What a value is recorded as (shadow._v): the value itself, or safe_value's text. */
static PyObject *sh_value(PyObject *v) {
    if (v == g_novalue) return Py_NewRef(v);
    int scalar = sh_in(sh_scalars, (PyObject *)Py_TYPE(v));
    if (scalar < 0) return NULL;
    return scalar ? Py_NewRef(v) : sh_safe_value(v);
}

/* isinstance(o, threading.local). What isinstance does, less the __class__ lookup where
 * its answer is known: o.__class__ is type(o) when its type gets attributes the generic
 * way and its __class__ is object's descriptor. */
static PyObject *sh_object_class; /* object.__dict__["__class__"] */

static int sh_is_local(PyObject *o) {
    if (PyObject_TypeCheck(o, (PyTypeObject *)sh_local_type)) return 1;
    if (sh_object_class != NULL && Py_TYPE(o)->tp_getattro == PyObject_GenericGetAttr &&
        _PyType_Lookup(Py_TYPE(o), s_class) == sh_object_class)
        return 0;
    return PyObject_IsInstance(o, sh_local_type);
}

/* shadow._key_set_kind: 1 a dict or dict subclass, 2 another Mapping, 0 neither; -1 an
 * error. Asked of the type, never of o.__class__ (the program's code). */
static int sh_key_set_kind(PyObject *o) {
    if (PyDict_CheckExact(o)) return 1;
    PyObject *t = (PyObject *)Py_TYPE(o);
    int r;
    if ((r = sh_in(sh_containers, t)) != 0) return r < 0 ? -1 : 0;
    if ((r = sh_in(sh_immutable, t)) != 0) return r < 0 ? -1 : 0;
    if ((r = sh_in(sh_proxies, t)) != 0) return r < 0 ? -1 : 0;
    if (PyDict_Check(o)) return 1;
    r = PyObject_IsSubclass(t, sh_mapping);
    return r < 0 ? -1 : r ? 2 : 0;
}

/* shadow._attr_event: 0 (recorded, or said why not), -1 a BaseException to raise. */
static int sh_attr_event(PyObject *op, PyObject *seq, PyObject *o, PyObject *name, PyObject *v) {
    PyObject *entry = NULL, *var = NULL, *val = NULL;
    PyTypeObject *t = Py_TYPE(v);
    int r;
    if (v != g_novalue) {
        if ((r = sh_in(sh_not_data, (PyObject *)t)) != 0) goto skip;
        if (PyType_Check(v)) return 0;
    }
    if ((r = sh_in(sh_proxies, (PyObject *)Py_TYPE(o))) != 0) goto skip;
    if ((r = sh_is_local(o)) != 0) goto skip;
    if ((entry = sh_lookup(o, Py_None)) == NULL) goto fail;
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 5 ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(entry, 3))) {
        PyErr_SetString(PyExc_TypeError, "a registry entry is a 5-tuple");
        goto fail;
    }
    PyObject *names = PyTuple_GET_ITEM(entry, 3);
    var = PyDict_GetItemWithError(names, name);
    if (var != NULL) {
        Py_INCREF(var);
    } else {
        if (PyErr_Occurred()) goto fail;
        var = PyUnicode_FromFormat("%S.%S", PyTuple_GET_ITEM(entry, 2), name);
        if (var == NULL || PyDict_SetItem(names, name, var) < 0) goto fail;
    }
    if ((r = sh_in(sh_containers, (PyObject *)t)) < 0) goto fail;
    if (r) { /* the container is named after who holds it */
        PyObject *held = sh_lookup(v, var);
        if (held == NULL) goto fail;
        Py_DECREF(held);
    }
    if ((val = sh_value(v)) == NULL) goto fail;
    if (sh_record_of(o, entry, op, seq, var, val, Py_None) < 0) goto fail;
    r = 0;
    goto end;
skip:
    if (r > 0) return 0;
fail:
    r = sh_fail();
end:
    Py_XDECREF(entry);
    Py_XDECREF(var);
    Py_XDECREF(val);
    return r;
}

/* shadow._item_event; key_set: the access also wrote the key set. 0 or -1 as above. */
static int sh_item_event(PyObject *op, PyObject *seq, PyObject *o, PyObject *key, PyObject *v,
                         PyObject *hint, int key_set) {
    PyObject *entry = NULL, *var = NULL, *val = NULL, *seq2 = NULL;
    PyTypeObject *t = Py_TYPE(o);
    int r;
    if ((r = sh_in(sh_immutable, (PyObject *)t)) != 0) goto skip;
    if ((r = sh_in(sh_proxies, (PyObject *)t)) != 0) goto skip;
    if ((entry = sh_lookup(o, hint)) == NULL) goto fail;
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 5 ||
        !PyDict_CheckExact(PyTuple_GET_ITEM(entry, 4))) {
        PyErr_SetString(PyExc_TypeError, "a registry entry is a 5-tuple");
        goto fail;
    }
    PyObject *label = PyTuple_GET_ITEM(entry, 2);
    r = PyDict_CheckExact(o) ? 0 : PyObject_IsInstance(o, sh_whole);
    if (r < 0) goto fail;
    if (r) {
        if (sh_record_of(o, entry, op, seq, label, g_novalue, Py_None) < 0) goto fail;
        r = 0;
        goto end;
    }
    PyObject *keys = PyTuple_GET_ITEM(entry, 4);
    var = PyDict_GetItemWithError(keys, key);
    if (var != NULL) {
        Py_INCREF(var);
    } else if (PyErr_Occurred()) {
        /* an unhashable key (the access itself has raised or will) */
        if (!PyErr_ExceptionMatches(PyExc_TypeError)) goto fail;
        PyErr_Clear();
    }
    if (var == NULL) {
        PyObject *text = PyObject_CallOneArg(sh_key_text, key);
        if (text == NULL) goto fail;
        var = PyUnicode_FromFormat("%S[%S]", label, text);
        Py_DECREF(text);
        if (var == NULL) goto fail;
        if ((r = sh_in(sh_scalars, (PyObject *)Py_TYPE(key))) < 0) goto fail;
        if (r && PyDict_SetItem(keys, key, var) < 0) goto fail;
    }
    if ((val = sh_value(v)) == NULL) goto fail;
    if (sh_record_of(o, entry, op, seq, var, val, Py_None) < 0) goto fail;
    if (key_set) { /* an insert or delete of one key: commutes with those of others */
        if ((seq2 = sh_next_seq()) == NULL) goto fail;
        if (sh_record_of(o, entry, sh_W, seq2, label, g_novalue, sh_commuting) < 0) goto fail;
    }
    r = 0;
    goto end;
skip:
    if (r > 0) return 0;
fail:
    r = sh_fail();
end:
    Py_XDECREF(entry);
    Py_XDECREF(var);
    Py_XDECREF(val);
    Py_XDECREF(seq2);
    return r;
}

/* A global's event (shadow._global_event); short: its name without the module. */
static int sh_global_event(PyObject *op, PyObject *seq, PyObject *name, PyObject *shortname,
                           PyObject *v) {
    PyObject *val = NULL;
    int r = sh_in(sh_containers, (PyObject *)Py_TYPE(v));
    if (r < 0) goto fail;
    if (r) {
        PyObject *held = sh_lookup(v, shortname);
        if (held == NULL) goto fail;
        Py_DECREF(held);
    }
    if ((val = sh_value(v)) == NULL) goto fail;
    r = sh_record(op, seq, name, val, Py_None);
    Py_DECREF(val);
    if (r == 0) return 0;
fail:
    Py_XDECREF(val);
    return sh_fail();
}

/* A global load's event: not for functions, classes and modules (shadow._global_helpers). */
static int sh_global_load_event(PyObject *seq, PyObject *name, PyObject *shortname, PyObject *v) {
    int r = sh_in(sh_not_data, (PyObject *)Py_TYPE(v));
    if (r < 0) return sh_fail();
    if (r || PyType_Check(v)) return 0;
    return sh_global_event(sh_R, seq, name, shortname, v);
}

/* Take the sequence number of the access just done and, recording on, call the event.
 * The exception the access raised, if any, is kept aside meanwhile and put back. */
#define SEQ_THEN(event_call)                                                              \
    do {                                                                                  \
        PyObject *et_, *ev_, *etb_;                                                       \
        PyErr_Fetch(&et_, &ev_, &etb_);                                                   \
        PyObject *seq = sh_next_seq();                                                    \
        int ok_ = seq != NULL;                                                            \
        if (ok_) {                                                                        \
            int on_ = sh_on();                                                            \
            ok_ = on_ >= 0 && (on_ == 0 || (event_call) == 0);                            \
            Py_DECREF(seq);                                                               \
        }                                                                                 \
        if (!ok_) {                                                                       \
            Py_XDECREF(et_);                                                              \
            Py_XDECREF(ev_);                                                              \
            Py_XDECREF(etb_);                                                             \
            failed_ = 1;                                                                  \
        } else {                                                                          \
            PyErr_Restore(et_, ev_, etb_);                                                \
        }                                                                                 \
    } while (0)

/* The kinds of helper. */
enum {
    K_ATTR_GET, K_ATTR_SET, K_ATTR_DEL, K_ATTR_AUG,
    K_ITEM_GET, K_ITEM_SET, K_ITEM_DEL, K_ITEM_AUG, K_ITEM_IN,
    K_GLOBAL_LOAD, K_GLOBAL_STORE, K_GLOBAL_AUG, K_METHOD, K_GATE,
};
static const Py_ssize_t helper_nargs[] = {1, 2, 1, 3, 3, 4, 3, 5, 3, 1, 2, 3, 2};
static const char *const helper_kinds[] = {
    "attr_get", "attr_set", "attr_del", "attr_aug", "item_get", "item_set", "item_del",
    "item_aug", "item_in",  "global_load", "global_store", "global_aug", "method",
};
/* What a container method does (shadow.CONTAINER_METHODS): nothing recorded, a read, a
 * write, a read or write of one key of a dict. */
enum { E_NONE, E_R, E_W, E_RK, E_WK };

/* One helper: its kind; an attribute's mangled name and its text as the program wrote
 * it; a module's globals, name and the names of its globals' variables. */
typedef struct {
    PyObject_HEAD
    vectorcallfunc vectorcall;
    int kind;
    PyObject *name, *text;      /* attributes */
    PyObject *g;                /* globals: the module's dict */
    PyObject *module, *vars;    /* globals: module name (None for __main__), name -> var */
    int dict_effect, other_effect; /* methods: on a dict, on a list/set/deque/bytearray */
    PyObject *how;              /* methods: type -> how its write commutes ("c", "e", "l") */
    PyObject *fallback;         /* methods: the Python helper, for dict subclasses and mappings;
                                   gates: the Python helper, for containers */
    int gate;                   /* gates: G_TRUTH, G_EQ, G_NE, G_CALL */
    PyObject *real;             /* gates of builtins: the builtin (NULL: sep.join) */
} Helper;

/* The gates: helpers whose accesses are recorded only on containers (shadow._truth,
 * _compare, _builtin_helper, _join). On anything else they do what the program's code
 * does, here in C; on a container they hand the call to the Python helper. */
enum { G_TRUTH, G_EQ, G_NE, G_CALL };
static PyObject *sh_untracked, *sh_bases; /* types never containers; container bases */

/* shadow._tracked: 1, 0, or -1 with an exception. Asked of the type. */
static int sh_tracked(PyObject *o) {
    PyObject *t = (PyObject *)Py_TYPE(o);
    int r;
    if ((r = sh_in(sh_containers, t)) != 0) return r;
    if ((r = sh_in(sh_untracked, t)) != 0) return r < 0 ? -1 : 0;
    if ((r = sh_in(sh_proxies, t)) != 0) return r < 0 ? -1 : 0;
    if ((r = PyObject_IsSubclass(t, sh_bases)) != 0) return r;
    return PyObject_IsSubclass(t, sh_mapping);
}

/* A gate: (o, hint) for truth, (a, b, hint_a, hint_b) for ==/!=, (f, hints, *args,
 * **kwargs) for a builtin's or sep.join's call. */
static PyObject *helper_gate(Helper *h, PyObject *const *args, Py_ssize_t nargs,
                             PyObject *kwnames) {
    int r;
    if (h->gate == G_CALL) {
        if (nargs < 2 || !PyTuple_Check(args[1])) {
            PyErr_SetString(PyExc_TypeError, "tracelens call helper takes f, hints, *args");
            return NULL;
        }
        PyObject *f = args[0], *hints = args[1];
        Py_ssize_t npos = nargs - 2, nh = PyTuple_GET_SIZE(hints);
        int any = 0;
        if (h->real == NULL || f == h->real) {
            for (Py_ssize_t i = 0; i < npos && i < nh && !any; i++) {
                PyObject *hint = PyTuple_GET_ITEM(hints, i);
                if (PyUnicode_Check(hint) && PyUnicode_GET_LENGTH(hint) == 0) continue;
                if ((r = sh_tracked(args[2 + i])) < 0) return NULL;
                any = r;
            }
        }
        if (any) return PyObject_Vectorcall(h->fallback, args, nargs, kwnames);
        return PyObject_Vectorcall(f, args + 2, npos, kwnames);
    }
    Py_ssize_t want = h->gate == G_TRUTH ? 2 : 4;
    if (kwnames != NULL || nargs != want) {
        PyErr_Format(PyExc_TypeError, "tracelens gate takes %zd positional arguments", want);
        return NULL;
    }
    if ((r = sh_tracked(args[0])) < 0) return NULL;
    if (!r && h->gate != G_TRUTH && (r = sh_tracked(args[1])) < 0) return NULL;
    if (r) return PyObject_Vectorcall(h->fallback, args, nargs, NULL);
    if (h->gate == G_TRUTH) {
        int b = PyObject_IsTrue(args[0]);
        return b < 0 ? NULL : Py_NewRef(b ? Py_True : Py_False);
    }
    return PyObject_RichCompare(args[0], args[1], h->gate == G_EQ ? Py_EQ : Py_NE);
}

/* The size of a dict subclass's storage (shadow._subclass_size), -1 for other objects;
 * whether it grew since (a __missing__ that inserted, as a defaultdict's does). */
#define SUBCLASS_SIZE(o) (!PyDict_CheckExact(o) && PyDict_Check(o) ? PyDict_GET_SIZE(o) : -1)
#define GREW(o, size) ((size) >= 0 && PyDict_GET_SIZE(o) != (size))

static int is_key_or_index_error(void) {
    return PyErr_ExceptionMatches(PyExc_KeyError) || PyErr_ExceptionMatches(PyExc_IndexError);
}

/* A global's variable name (``x`` in __main__, else ``module.x``), made once. Borrowed. */
static PyObject *helper_var(Helper *h, PyObject *name) {
    PyObject *var = PyDict_GetItemWithError(h->vars, name);
    if (var != NULL || PyErr_Occurred()) return var;
    var = h->module == Py_None ? Py_NewRef(name) : PyUnicode_FromFormat("%S.%S", h->module, name);
    if (var == NULL) return NULL;
    int r = PyDict_SetItem(h->vars, name, var);
    Py_DECREF(var); /* the dict holds it */
    return r < 0 ? NULL : var;
}

/* g[name] if name in g else shadow._builtin(g, name). */
static PyObject *helper_global_get(Helper *h, PyObject *name) {
    PyObject *v;
    if (PyDict_CheckExact(h->g)) {
        v = PyDict_GetItemWithError(h->g, name);
        if (v != NULL) return Py_NewRef(v);
        if (PyErr_Occurred()) return NULL;
    } else {
        v = PyObject_GetItem(h->g, name);
        if (v != NULL || !PyErr_ExceptionMatches(PyExc_KeyError)) return v;
        PyErr_Clear();
    }
    return PyObject_CallFunctionObjArgs(sh_builtin, h->g, name, NULL);
}

/* A container method call's event (shadow._method_event): on one key of a dict
 * (keyed), else on the whole container; how: 0 or how its write commutes. */
static int sh_method_event(int effect, PyObject *seq, PyObject *o, PyObject *hint,
                           PyObject *first, int keyed, int resized, int how) {
    PyObject *entry = NULL, *var = NULL, *seq2 = NULL;
    int r = -1;
    if ((entry = sh_lookup(o, hint)) == NULL) goto fail;
    if (!PyTuple_CheckExact(entry) || PyTuple_GET_SIZE(entry) != 5) {
        PyErr_SetString(PyExc_TypeError, "a registry entry is a 5-tuple");
        goto fail;
    }
    PyObject *label = PyTuple_GET_ITEM(entry, 2);
    int second = 0; /* a commuting write of the whole follows */
    PyObject *op = effect == E_R ? sh_R : sh_W, *extra = Py_None;
    if (keyed || (how == 'e' && first != NULL)) {
        PyObject *text = PyObject_CallOneArg(sh_key_text, first);
        if (text == NULL) goto fail;
        var = PyUnicode_FromFormat("%S[%S]", label, text);
        Py_DECREF(text);
        if (keyed) op = effect == E_WK && resized ? sh_W : sh_R;
        second = resized;
    } else if (how == 'c') {
        var = Py_NewRef(label);
        extra = sh_commuting;
    } else if (how == 'l') {
        var = PyUnicode_FromFormat("%S<left>", label);
        second = 1;
    } else {
        var = Py_NewRef(label);
    }
    if (var == NULL || sh_record_of(o, entry, op, seq, var, g_novalue, extra) < 0) goto fail;
    if (second) {
        if ((seq2 = sh_next_seq()) == NULL) goto fail;
        if (sh_record_of(o, entry, sh_W, seq2, label, g_novalue, sh_commuting) < 0) goto fail;
    }
    r = 0;
    goto end;
fail:
    r = sh_fail();
end:
    Py_XDECREF(entry);
    Py_XDECREF(var);
    Py_XDECREF(seq2);
    return r;
}

/* The generated method helper (shadow._method_helper): call(o, hint, *args, **kwargs). */
static PyObject *helper_method(Helper *h, PyObject *const *args, Py_ssize_t nargs,
                               PyObject *kwnames) {
    if (nargs < 2) {
        PyErr_SetString(PyExc_TypeError, "tracelens method helper takes the object and its name");
        return NULL;
    }
    PyObject *o = args[0], *hint = args[1];
    Py_ssize_t npos = nargs - 2;
    int effect = PyDict_CheckExact(o) ? h->dict_effect : E_NONE;
    if (!PyDict_CheckExact(o)) {
        int c = sh_in(sh_containers, (PyObject *)Py_TYPE(o));
        if (c < 0) return NULL;
        if (c) effect = h->other_effect;
    }
    if (effect == E_NONE && h->dict_effect != E_NONE && h->fallback != NULL) {
        int kind = sh_key_set_kind(o);
        if (kind < 0) return NULL;
        if (kind) /* a dict subclass or another mapping: the Python helper (rare) */
            return PyObject_Vectorcall(h->fallback, args, nargs, kwnames);
    }
    PyObject *meth = PyObject_GetAttr(o, h->name);
    if (meth == NULL) return NULL;
    if (effect == E_NONE) {
        PyObject *out = PyObject_Vectorcall(meth, args + 2, npos, kwnames);
        Py_DECREF(meth);
        return out;
    }
    int keyed = (effect == E_RK || effect == E_WK) && npos > 0;
    int how = 0;
    if (effect == E_W) {
        PyObject *x = PyDict_GetItemWithError(h->how, (PyObject *)Py_TYPE(o));
        if (x == NULL && PyErr_Occurred()) {
            Py_DECREF(meth);
            return NULL;
        }
        if (x != NULL && PyUnicode_Check(x) && PyUnicode_GET_LENGTH(x) == 1)
            how = (int)PyUnicode_READ_CHAR(x, 0);
    }
    Py_ssize_t size = PyObject_Size(o);
    if (size < 0) {
        Py_DECREF(meth);
        return NULL;
    }
    PyObject *first = npos > 0 ? args[2] : NULL;
    PyObject *out = PyObject_Vectorcall(meth, args + 2, npos, kwnames);
    Py_DECREF(meth);
    int failed_ = 0;
    if (out == NULL) {
        if (PyErr_ExceptionMatches(PyExc_KeyError) || PyErr_ExceptionMatches(PyExc_IndexError) ||
            PyErr_ExceptionMatches(PyExc_ValueError)) {
            if (how == 'l') /* a popleft of an empty deque: it read the length */
                SEQ_THEN(sh_method_event(E_R, seq, o, hint, first, 0, 0, 0));
            else
                SEQ_THEN(sh_method_event(effect, seq, o, hint, first, keyed, 0, how));
        }
        return NULL;
    }
    Py_ssize_t now = PyObject_Size(o);
    if (now < 0) {
        Py_DECREF(out);
        return NULL;
    }
    SEQ_THEN(sh_method_event(effect, seq, o, hint, first, keyed, now != size, how));
    if (failed_) Py_CLEAR(out);
    return out;
}

static PyObject *helper_call(PyObject *self, PyObject *const *args, size_t nargsf,
                             PyObject *kwnames) {
    Helper *h = (Helper *)self;
    Py_ssize_t nargs = PyVectorcall_NARGS(nargsf);
    if (h->kind == K_METHOD) return helper_method(h, args, nargs, kwnames);
    if (h->kind == K_GATE) return helper_gate(h, args, nargs, kwnames);
    if (kwnames != NULL || nargs != helper_nargs[h->kind]) {
        PyErr_Format(PyExc_TypeError, "tracelens %s helper takes %zd positional arguments",
                     helper_kinds[h->kind], helper_nargs[h->kind]);
        return NULL;
    }
    PyObject *o = args[0], *out = NULL, *v = NULL, *w = NULL;
    int failed_ = 0;
    switch (h->kind) {
    case K_ATTR_GET:
        v = PyObject_GetAttr(o, h->name);
        if (v == NULL) {
            if (PyErr_ExceptionMatches(PyExc_AttributeError))
                SEQ_THEN(sh_attr_event(sh_R, seq, o, h->text, g_novalue));
            return NULL;
        }
        SEQ_THEN(sh_attr_event(sh_R, seq, o, h->text, v));
        if (failed_) Py_CLEAR(v);
        return v;
    case K_ATTR_SET:
        if (PyObject_SetAttr(o, h->name, args[1]) < 0) return NULL;
        SEQ_THEN(sh_attr_event(sh_W, seq, o, h->text, args[1]));
        return failed_ ? NULL : Py_NewRef(Py_None);
    case K_ATTR_DEL: {
        int r = PyObject_DelAttr(o, h->name);
        SEQ_THEN(sh_attr_event(sh_W, seq, o, h->text, g_novalue));
        return r < 0 || failed_ ? NULL : Py_NewRef(Py_None);
    }
    case K_ATTR_AUG:
        if ((v = PyObject_GetAttr(o, h->name)) == NULL) return NULL;
        SEQ_THEN(sh_attr_event(sh_R, seq, o, h->text, v));
        if (failed_) goto done;
        if ((w = PyObject_CallFunctionObjArgs(args[1], v, args[2], NULL)) == NULL) goto done;
        if (PyObject_SetAttr(o, h->name, w) < 0) goto done;
        SEQ_THEN(sh_attr_event(sh_W, seq, o, h->text, w));
        if (!failed_) out = Py_NewRef(Py_None);
        goto done;
    case K_ITEM_GET: {
        Py_ssize_t size = SUBCLASS_SIZE(o);
        v = PyObject_GetItem(o, args[1]);
        if (v == NULL) {
            if (is_key_or_index_error())
                SEQ_THEN(sh_item_event(sh_R, seq, o, args[1], sh_missing, args[2], 0));
            return NULL;
        }
        /* a defaultdict's d[k] of a missing key inserted it: a write */
        SEQ_THEN(sh_item_event(GREW(o, size) ? sh_W : sh_R, seq, o, args[1], v, args[2],
                               GREW(o, size)));
        if (failed_) Py_CLEAR(v);
        return v;
    }
    case K_ITEM_SET: {
        /* a new key writes the key set: a dict (or subclass) asked by its storage,
         * another mapping not asked (every store writes it: shadow._set_item) */
        int kind = sh_key_set_kind(o), is_new = kind == 2;
        if (kind < 0) return NULL;
        if (kind == 1) {
            int has = PyDict_Contains(o, args[1]);
            if (has < 0) {
                /* a key only a subclass's own __setitem__ can take (an exact dict's
                 * store raises the same TypeError itself) */
                if (PyDict_CheckExact(o) || !PyErr_ExceptionMatches(PyExc_TypeError))
                    return NULL;
                PyErr_Clear();
                has = 0;
            }
            is_new = !has;
        }
        if (PyObject_SetItem(o, args[1], args[2]) < 0) return NULL;
        SEQ_THEN(sh_item_event(sh_W, seq, o, args[1], args[2], args[3], is_new));
        return failed_ ? NULL : Py_NewRef(Py_None);
    }
    case K_ITEM_DEL: {
        /* a del that raises (KeyError) is recorded: the racing second del */
        int kind = sh_key_set_kind(o);
        if (kind < 0) return NULL;
        int r = PyObject_DelItem(o, args[1]);
        SEQ_THEN(sh_item_event(sh_W, seq, o, args[1], sh_missing, args[2], kind != 0));
        return r < 0 || failed_ ? NULL : Py_NewRef(Py_None);
    }
    case K_ITEM_AUG: {
        Py_ssize_t size = SUBCLASS_SIZE(o);
        if ((v = PyObject_GetItem(o, args[1])) == NULL) return NULL;
        SEQ_THEN(sh_item_event(sh_R, seq, o, args[1], v, args[4], 0));
        if (failed_) goto done;
        if ((w = PyObject_CallFunctionObjArgs(args[2], v, args[3], NULL)) == NULL) goto done;
        if (PyObject_SetItem(o, args[1], w) < 0) goto done;
        /* counts[k] += 1 of a defaultdict's missing key inserted it */
        SEQ_THEN(sh_item_event(sh_W, seq, o, args[1], w, args[4], GREW(o, size)));
        if (!failed_) out = Py_NewRef(Py_None);
        goto done;
    }
    case K_ITEM_IN: {
        int present = PySequence_Contains(o, args[1]);
        if (present < 0) return NULL;
        /* a read of the key (a list or set: of the whole) */
        SEQ_THEN(sh_item_event(sh_R, seq, o, args[1], present ? g_novalue : sh_missing,
                               args[2], 0));
        return failed_ ? NULL : Py_NewRef(present ? Py_True : Py_False);
    }
    case K_GLOBAL_LOAD: {
        PyObject *var = helper_var(h, o);
        if (var == NULL) return NULL;
        if (PyDict_CheckExact(h->g)) {
            v = PyDict_GetItemWithError(h->g, o);
            if (v == NULL && PyErr_Occurred()) return NULL;
            Py_XINCREF(v);
        } else if ((v = PyObject_GetItem(h->g, o)) == NULL) {
            if (!PyErr_ExceptionMatches(PyExc_KeyError)) return NULL;
            PyErr_Clear();
        }
        if (v == NULL) return PyObject_CallFunctionObjArgs(sh_builtin, h->g, o, NULL);
        SEQ_THEN(sh_global_load_event(seq, var, o, v));
        if (failed_) Py_CLEAR(v);
        return v;
    }
    case K_GLOBAL_STORE: {
        PyObject *var = helper_var(h, o);
        if (var == NULL) return NULL;
        if (PyObject_SetItem(h->g, o, args[1]) < 0) return NULL;
        SEQ_THEN(sh_global_event(sh_W, seq, var, o, args[1]));
        return failed_ ? NULL : Py_NewRef(Py_None);
    }
    case K_GLOBAL_AUG: {
        PyObject *var = helper_var(h, o);
        if (var == NULL) return NULL;
        if ((v = helper_global_get(h, o)) == NULL) return NULL;
        SEQ_THEN(sh_global_event(sh_R, seq, var, o, v));
        if (failed_) goto done;
        if ((w = PyObject_CallFunctionObjArgs(args[1], v, args[2], NULL)) == NULL) goto done;
        if (PyObject_SetItem(h->g, o, w) < 0) goto done;
        SEQ_THEN(sh_global_event(sh_W, seq, var, o, w));
        if (!failed_) out = Py_NewRef(Py_None);
        goto done;
    }
    }
    PyErr_SetString(PyExc_SystemError, "unknown helper kind");
done:
    Py_XDECREF(v);
    Py_XDECREF(w);
    return out;
}

static void helper_dealloc(PyObject *self) {
    Helper *h = (Helper *)self;
    PyObject_GC_UnTrack(self);
    Py_CLEAR(h->name);
    Py_CLEAR(h->text);
    Py_CLEAR(h->g);
    Py_CLEAR(h->module);
    Py_CLEAR(h->vars);
    Py_CLEAR(h->how);
    Py_CLEAR(h->fallback);
    Py_CLEAR(h->real);
    PyObject_GC_Del(self);
}

static int helper_traverse(PyObject *self, visitproc visit, void *arg) {
    Helper *h = (Helper *)self;
    Py_VISIT(h->g);
    Py_VISIT(h->vars);
    Py_VISIT(h->how);
    Py_VISIT(h->fallback);
    Py_VISIT(h->real);
    return 0;
}

static int helper_clear(PyObject *self) {
    Helper *h = (Helper *)self;
    Py_CLEAR(h->g);
    Py_CLEAR(h->vars);
    Py_CLEAR(h->how);
    Py_CLEAR(h->fallback);
    Py_CLEAR(h->real);
    return 0;
}

static PyObject *helper_repr(PyObject *self) {
    Helper *h = (Helper *)self;
    if (h->kind == K_METHOD) return PyUnicode_FromFormat("<tracelens method %S>", h->name);
    if (h->kind == K_GATE) return PyUnicode_FromFormat("<tracelens gate %R>", h->fallback);
    if (h->text != NULL) return PyUnicode_FromFormat("<tracelens %s %S>", helper_kinds[h->kind], h->text);
    return PyUnicode_FromFormat("<tracelens %s>", helper_kinds[h->kind]);
}

static PyObject *helper_call_slot(PyObject *self, PyObject *args, PyObject *kwargs) {
    return PyVectorcall_Call(self, args, kwargs);
}

static PyTypeObject HelperType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracelens.record._speedups.Helper",
    .tp_basicsize = sizeof(Helper),
    .tp_dealloc = helper_dealloc,
    .tp_vectorcall_offset = offsetof(Helper, vectorcall),
    .tp_repr = helper_repr,
    .tp_call = helper_call_slot,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_HAVE_GC | Py_TPFLAGS_HAVE_VECTORCALL,
    .tp_traverse = helper_traverse,
    .tp_clear = helper_clear,
    .tp_doc = "A helper that instrumented code calls (tracelens.record.shadow).",
};

/* helper(kind, name, text, g, module): kind is one of helper_kinds; name and text the
 * attribute's (attributes), g and module the module's (globals; module None in __main__);
 * the arguments a kind does not use are None. */
static PyObject *make_helper(PyObject *self, PyObject *args) {
    const char *kind;
    PyObject *name, *text, *g, *module;
    if (!PyArg_ParseTuple(args, "sOOOO", &kind, &name, &text, &g, &module)) return NULL;
    int k = 0, n = (int)(sizeof helper_kinds / sizeof *helper_kinds);
    while (k < n && strcmp(kind, helper_kinds[k]) != 0) k++;
    if (k == n || k == K_METHOD) {
        PyErr_Format(PyExc_ValueError, "unknown helper kind %s", kind);
        return NULL;
    }
    if (sh_names == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "shadow_setup() was not called");
        return NULL;
    }
    if (k <= K_ATTR_AUG && (!PyUnicode_Check(name) || !PyUnicode_Check(text))) {
        PyErr_SetString(PyExc_TypeError, "an attribute helper needs its name and text");
        return NULL;
    }
    if (k >= K_GLOBAL_LOAD && (!PyDict_Check(g) || (module != Py_None && !PyUnicode_Check(module)))) {
        PyErr_SetString(PyExc_TypeError, "a global helper needs the module's dict and name");
        return NULL;
    }
    Helper *h = PyObject_GC_New(Helper, &HelperType);
    if (h == NULL) return NULL;
    h->vectorcall = helper_call;
    h->kind = k;
    h->name = k <= K_ATTR_AUG ? Py_NewRef(name) : NULL;
    h->text = k <= K_ATTR_AUG ? Py_NewRef(text) : NULL;
    h->g = k >= K_GLOBAL_LOAD ? Py_NewRef(g) : NULL;
    h->module = k >= K_GLOBAL_LOAD ? Py_NewRef(module) : NULL;
    h->vars = k >= K_GLOBAL_LOAD ? PyDict_New() : NULL;
    h->dict_effect = h->other_effect = E_NONE;
    h->how = h->fallback = h->real = NULL;
    h->gate = 0;
    if (k >= K_GLOBAL_LOAD && h->vars == NULL) {
        Py_DECREF(h);
        return NULL;
    }
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

static int effect_of(const char *e) {
    return strcmp(e, "r") == 0 ? E_R : strcmp(e, "w") == 0 ? E_W : strcmp(e, "rk") == 0 ? E_RK
         : strcmp(e, "wk") == 0 ? E_WK : strcmp(e, "") == 0 ? E_NONE : -1;
}

/* method_helper(name, dict_effect, other_effect, how[, fallback]): the helper of a
 * container method (shadow._method_helper); how: type -> how its write commutes
 * (_COMMUTING_METHODS); fallback: the Python helper, called for a dict subclass or
 * another mapping. */
static PyObject *make_method_helper(PyObject *self, PyObject *args) {
    PyObject *name, *how, *fallback = NULL;
    const char *de, *oe;
    if (!PyArg_ParseTuple(args, "UssO!|O", &name, &de, &oe, &PyDict_Type, &how, &fallback))
        return NULL;
    if (fallback == Py_None) fallback = NULL;
    if (fallback != NULL && !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_TypeError, "a method helper's fallback is callable");
        return NULL;
    }
    int d = effect_of(de), o = effect_of(oe);
    if (d < 0 || o < 0) {
        PyErr_SetString(PyExc_ValueError, "unknown method effect");
        return NULL;
    }
    if (sh_names == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "shadow_setup() was not called");
        return NULL;
    }
    Helper *h = PyObject_GC_New(Helper, &HelperType);
    if (h == NULL) return NULL;
    h->vectorcall = helper_call;
    h->kind = K_METHOD;
    h->name = Py_NewRef(name);
    h->text = NULL;
    h->g = h->module = h->vars = NULL;
    h->dict_effect = d;
    h->other_effect = o;
    h->how = Py_NewRef(how);
    h->fallback = Py_XNewRef(fallback);
    h->real = NULL;
    h->gate = 0;
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

/* ------------------------------------------------------------------------------ */
/* LockCore: the methods of a recorded lock (tracelens.record.locks._PyLockCore, the
 * reference) as C method descriptors. A Python method's entry is an eval-breaker check:
 * a signal handler that raises there (KeyboardInterrupt) runs before the method's own
 * ``try``, so ``__exit__`` could leave the lock held. Called from the interpreter, a C
 * method runs no bytecode of its own: an exception raised while it records (the sink's
 * Python code runs signal handlers too) is caught here, and the lock is released (or,
 * after an acquire, released again) before it is passed on. */

typedef struct {
    PyObject_HEAD
    PyObject *lk;    /* the real lock (_thread.allocate_lock()) */
    PyObject *name;  /* Lock@file.py:12#3 */
    PyObject *extra; /* {kind: ..., internal: True} */
} LockCore;

/* the globals of tracelens.record.locks, where STATE, next_seq, record and
 * acquire_arguments are looked up at each use (as the Python methods do: a test may
 * replace one) */
static PyObject *lc_globals;
static PyObject *lc_A, *lc_R, *lc_T, *lc_F, *lc_wait_ns;
static PyObject *s_STATE, *s_next_seq, *s_record, *s_acquire_arguments;
static PyObject *lc_kw_extra_depth, *lc_minus_one;
static PyObject *s_acquire, *s_release, *s_locked;

/* The exception being raised, taken (NULL: none), and raised again: the 3.12 API, or
 * its equivalent on 3.11. */
static PyObject *lc_fetch(void) {
#if PY_VERSION_HEX >= 0x030C0000
    return PyErr_GetRaisedException();
#else
    PyObject *t, *v, *tb;
    PyErr_Fetch(&t, &v, &tb);
    if (t == NULL) return NULL;
    PyErr_NormalizeException(&t, &v, &tb);
    if (tb != NULL) PyException_SetTraceback(v, tb);
    Py_XDECREF(t);
    Py_XDECREF(tb);
    return v;
#endif
}

static void lc_restore(PyObject *exc) {
#if PY_VERSION_HEX >= 0x030C0000
    PyErr_SetRaisedException(exc);
#else
    if (exc == NULL) return;
    PyErr_Restore(Py_NewRef((PyObject *)Py_TYPE(exc)), exc, PyException_GetTraceback(exc));
#endif
}


static PyObject *lock_setup(PyObject *self, PyObject *args) {
    PyObject *a[6];
    if (!PyArg_UnpackTuple(args, "lock_setup", 6, 6, &a[0], &a[1], &a[2], &a[3], &a[4], &a[5]))
        return NULL;
    if (!PyDict_Check(a[0])) {
        PyErr_SetString(PyExc_TypeError, "lock_setup() needs the module's globals");
        return NULL;
    }
    PyObject **slots[6] = {&lc_globals, &lc_A, &lc_R, &lc_T, &lc_F, &lc_wait_ns};
    for (int i = 0; i < 6; i++) Py_XSETREF(*slots[i], Py_NewRef(a[i]));
    Py_RETURN_NONE;
}

/* a global of tracelens.record.locks (borrowed), or NULL with an exception set */
static PyObject *lc_global(PyObject *name) {
    PyObject *v = PyDict_GetItemWithError(lc_globals, name);
    if (v == NULL && !PyErr_Occurred()) PyErr_Format(PyExc_NameError, "%U is gone", name);
    return v;
}

/* STATE.on: 1, 0, or -1 with an exception set */
static int lc_on(void) {
    PyObject *state = lc_global(s_STATE);
    if (state == NULL) return -1;
    PyObject *on = PyObject_GetAttr(state, s_on);
    if (on == NULL) return -1;
    int r = PyObject_IsTrue(on);
    Py_DECREF(on);
    return r;
}

/* record(op, next_seq(), name, extra=extra, depth=depth): 0, or -1 with an exception */
static int lc_record_op(LockCore *self, PyObject *op, PyObject *extra, Py_ssize_t depth) {
    PyObject *next_seq = lc_global(s_next_seq), *record = lc_global(s_record);
    if (next_seq == NULL || record == NULL) return -1;
    Py_INCREF(record); /* (next_seq() could run code that rebinds it) */
    PyObject *seq = PyObject_CallNoArgs(next_seq);
    if (seq == NULL) {
        Py_DECREF(record);
        return -1;
    }
    PyObject *d = PyLong_FromSsize_t(depth);
    if (d == NULL) {
        Py_DECREF(seq);
        Py_DECREF(record);
        return -1;
    }
    PyObject *argv[5] = {op, seq, self->name, extra, d};
    PyObject *r = PyObject_Vectorcall(record, argv, 3, lc_kw_extra_depth);
    Py_DECREF(record);
    Py_DECREF(seq);
    Py_DECREF(d);
    if (r == NULL) return -1;
    Py_DECREF(r);
    return 0;
}

/* {**self._extra, wait_ns: ns} */
static PyObject *lc_with_wait(LockCore *self, long long ns) {
    PyObject *extra = PyDict_Copy(self->extra);
    if (extra == NULL) return NULL;
    PyObject *v = PyLong_FromLongLong(ns);
    if (v == NULL || PyDict_SetItem(extra, lc_wait_ns, v) < 0) {
        Py_XDECREF(v);
        Py_DECREF(extra);
        return NULL;
    }
    Py_DECREF(v);
    return extra;
}

static long long lc_now(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts); /* time.monotonic_ns on Linux and macOS */
    return (long long)ts.tv_sec * 1000000000LL + ts.tv_nsec;
}

/* The exception being raised passed on, after ``lk.release()`` (whose own error, if
 * any, is dropped: the lock was held by us, it cannot fail but on a broken lock). */
static PyObject *lc_release_and_raise(PyObject *lk) {
    PyObject *exc = lc_fetch();
    PyObject *r = PyObject_CallMethodNoArgs(lk, s_release);
    if (r == NULL) PyErr_Clear();
    Py_XDECREF(r);
    lc_restore(exc);
    return NULL;
}

/* _PyLockCore._acquire; ``depth`` counts frames from record() as the C record does
 * (this function has none). */
static PyObject *lc_acquire_impl(LockCore *self, int blocking, PyObject *timeout,
                                 Py_ssize_t depth) {
    PyObject *lk = self->lk;
    PyObject *r = PyObject_CallMethodOneArg(lk, s_acquire, Py_False);
    if (r == NULL) return NULL;
    int ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (ok < 0) return NULL;
    if (ok) {
        int on = lc_on();
        if (on < 0) return lc_release_and_raise(lk);
        if (on) {
            PyObject *extra = lc_with_wait(self, 0);
            if (extra == NULL) return lc_release_and_raise(lk);
            int bad = lc_record_op(self, lc_A, extra, depth);
            Py_DECREF(extra);
            if (bad) return lc_release_and_raise(lk);
        }
        Py_RETURN_TRUE;
    }
    if (!blocking) Py_RETURN_FALSE;
    int on = lc_on();
    if (on < 0) return NULL;
    if (on && lc_record_op(self, lc_T, self->extra, depth) < 0) return NULL;
    long long t0 = lc_now();
    r = PyObject_CallMethodObjArgs(lk, s_acquire, Py_True, timeout, NULL);
    if (r == NULL) return NULL;
    ok = PyObject_IsTrue(r);
    Py_DECREF(r);
    if (ok < 0) return NULL;
    if (on) {
        int still = lc_on();
        if (still < 0) return ok ? lc_release_and_raise(lk) : NULL;
        if (still) {
            int bad;
            if (ok) {
                PyObject *extra = lc_with_wait(self, lc_now() - t0);
                if (extra == NULL) return lc_release_and_raise(lk);
                bad = lc_record_op(self, lc_A, extra, depth);
                Py_DECREF(extra);
            } else {
                bad = lc_record_op(self, lc_F, self->extra, depth);
            }
            if (bad) return ok ? lc_release_and_raise(lk) : NULL;
        }
    }
    return PyBool_FromLong(ok);
}

/* _PyLockCore._release: recorded first (when on and held), released in any case. */
static PyObject *lc_release_impl(LockCore *self, Py_ssize_t depth) {
    PyObject *lk = self->lk;
    int bad = 0;
    int on = lc_on();
    if (on < 0) {
        bad = 1;
    } else if (on) {
        PyObject *held = PyObject_CallMethodNoArgs(lk, s_locked);
        int is_held = held == NULL ? -1 : PyObject_IsTrue(held);
        Py_XDECREF(held);
        if (is_held < 0 || (is_held && lc_record_op(self, lc_R, self->extra, depth) < 0)) bad = 1;
    }
    PyObject *exc = bad ? lc_fetch() : NULL;
    PyObject *r = PyObject_CallMethodNoArgs(lk, s_release);
    if (r == NULL) { /* as a ``finally`` that raises: this error, the first as its context */
        if (exc != NULL) {
            PyObject *now = lc_fetch();
            PyException_SetContext(now, exc);
            lc_restore(now);
        }
        return NULL;
    }
    Py_DECREF(r);
    if (exc != NULL) {
        lc_restore(exc);
        return NULL;
    }
    Py_RETURN_NONE;
}

static PyObject *lc_acquire(LockCore *self, PyObject *args, PyObject *kwargs) {
    if (PyTuple_GET_SIZE(args) == 0 && (kwargs == NULL || PyDict_GET_SIZE(kwargs) == 0))
        return lc_acquire_impl(self, 1, lc_minus_one, 1);
    /* checked, and bound, as the standard library's lock does (acquire_arguments) */
    PyObject *kw = kwargs != NULL ? Py_NewRef(kwargs) : PyDict_New();
    if (kw == NULL) return NULL;
    PyObject *arguments = lc_global(s_acquire_arguments);
    PyObject *bt = arguments == NULL ? NULL : PyObject_CallFunctionObjArgs(arguments, args, kw, NULL);
    Py_DECREF(kw);
    if (bt == NULL) return NULL;
    if (!PyTuple_Check(bt) || PyTuple_GET_SIZE(bt) != 2) {
        Py_DECREF(bt);
        PyErr_SetString(PyExc_TypeError, "acquire_arguments() gave no (blocking, timeout)");
        return NULL;
    }
    int blocking = PyObject_IsTrue(PyTuple_GET_ITEM(bt, 0));
    PyObject *r = blocking < 0 ? NULL : lc_acquire_impl(self, blocking, PyTuple_GET_ITEM(bt, 1), 1);
    Py_DECREF(bt);
    return r;
}

static PyObject *lc_enter(LockCore *self, PyObject *unused) {
    return lc_acquire_impl(self, 1, lc_minus_one, 1);
}

static PyObject *lc_release(LockCore *self, PyObject *unused) { return lc_release_impl(self, 1); }

static PyObject *lc_exit(LockCore *self, PyObject *args) { return lc_release_impl(self, 1); }

/* _acquire(blocking, timeout, depth) and _release(depth) for the Python methods that
 * call them (Condition's protocol): ``depth`` as the reference counts it, which has a
 * frame of its own for them. */
static PyObject *lc__acquire(LockCore *self, PyObject *args) {
    PyObject *blocking, *timeout;
    Py_ssize_t depth;
    if (!PyArg_ParseTuple(args, "OOn", &blocking, &timeout, &depth)) return NULL;
    int b = PyObject_IsTrue(blocking);
    if (b < 0) return NULL;
    return lc_acquire_impl(self, b, timeout, depth - 1);
}

static PyObject *lc__release(LockCore *self, PyObject *arg) {
    Py_ssize_t depth = PyLong_AsSsize_t(arg);
    if (depth == -1 && PyErr_Occurred()) return NULL;
    return lc_release_impl(self, depth - 1);
}

static PyMethodDef lc_methods[] = {
    {"acquire", (PyCFunction)(void (*)(void))lc_acquire, METH_VARARGS | METH_KEYWORDS,
     "Acquire the lock (as the standard library's), recorded."},
    {"__enter__", (PyCFunction)lc_enter, METH_NOARGS, "Acquire the lock, recorded."},
    {"release", (PyCFunction)lc_release, METH_NOARGS, "Release the lock, recorded first."},
    {"__exit__", (PyCFunction)lc_exit, METH_VARARGS, "Release the lock, recorded first."},
    {"_acquire", (PyCFunction)lc__acquire, METH_VARARGS, "acquire(blocking, timeout), depth."},
    {"_release", (PyCFunction)lc__release, METH_O, "release(), depth."},
    {NULL, NULL, 0, NULL},
};

static PyMemberDef lc_members[] = {
    {"_lk", T_OBJECT_EX, offsetof(LockCore, lk), 0, "the real lock"},
    {"name", T_OBJECT_EX, offsetof(LockCore, name), 0, "the lock's identity"},
    {"_extra", T_OBJECT_EX, offsetof(LockCore, extra), 0, "the fields of its events"},
    {NULL, 0, 0, 0, NULL},
};

static int lc_traverse(LockCore *self, visitproc visit, void *arg) {
    Py_VISIT(self->lk);
    Py_VISIT(self->name);
    Py_VISIT(self->extra);
    return 0;
}

static int lc_clear(LockCore *self) {
    Py_CLEAR(self->lk);
    Py_CLEAR(self->name);
    Py_CLEAR(self->extra);
    return 0;
}

static void lc_dealloc(LockCore *self) {
    PyTypeObject *tp = Py_TYPE(self);
    PyObject_GC_UnTrack(self);
    lc_clear(self);
    tp->tp_free((PyObject *)self);
}

static PyTypeObject LockCoreType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "tracelens.record._speedups.LockCore",
    .tp_basicsize = sizeof(LockCore),
    .tp_dealloc = (destructor)lc_dealloc,
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_traverse = (traverseproc)lc_traverse,
    .tp_clear = (inquiry)lc_clear,
    .tp_methods = lc_methods,
    .tp_members = lc_members,
    .tp_new = PyType_GenericNew,
    .tp_doc = "The C methods of a recorded lock (tracelens.record.locks.TracedLock).",
};

/* gate(kind, fallback, real): a helper recorded only on containers (see helper_gate);
 * kind "truth", "eq", "ne" or "call"; fallback the Python helper; real the builtin
 * called (a "call"; None for sep.join, whose callee is checked by the fallback). */
static PyObject *make_gate(PyObject *self, PyObject *args) {
    const char *kind;
    PyObject *fallback, *real;
    if (!PyArg_ParseTuple(args, "sOO", &kind, &fallback, &real)) return NULL;
    int g = strcmp(kind, "truth") == 0 ? G_TRUTH : strcmp(kind, "eq") == 0 ? G_EQ
          : strcmp(kind, "ne") == 0 ? G_NE : strcmp(kind, "call") == 0 ? G_CALL : -1;
    if (g < 0 || !PyCallable_Check(fallback)) {
        PyErr_SetString(PyExc_ValueError, "gate() takes a kind and the Python helper");
        return NULL;
    }
    if (sh_untracked == NULL || sh_names == NULL) {
        PyErr_SetString(PyExc_RuntimeError, "gate_setup() was not called");
        return NULL;
    }
    Helper *h = PyObject_GC_New(Helper, &HelperType);
    if (h == NULL) return NULL;
    h->vectorcall = helper_call;
    h->kind = K_GATE;
    h->name = h->text = h->g = h->module = h->vars = h->how = NULL;
    h->dict_effect = h->other_effect = E_NONE;
    h->gate = g;
    h->fallback = Py_NewRef(fallback);
    h->real = real == Py_None ? NULL : Py_NewRef(real);
    PyObject_GC_Track(h);
    return (PyObject *)h;
}

/* gate_setup(untracked, bases): the types that are never containers (a set) and the
 * container base types (a tuple) of shadow._tracked. */
static PyObject *gate_setup(PyObject *self, PyObject *args) {
    PyObject *untracked, *bases;
    if (!PyArg_ParseTuple(args, "OO!", &untracked, &PyTuple_Type, &bases)) return NULL;
    if (!PyAnySet_Check(untracked)) {
        PyErr_SetString(PyExc_TypeError, "gate_setup() takes a set of types");
        return NULL;
    }
    Py_XSETREF(sh_untracked, Py_NewRef(untracked));
    Py_XSETREF(sh_bases, Py_NewRef(bases));
    Py_RETURN_NONE;
}

static PyMethodDef methods[] = {
    {"render", (PyCFunction)(void (*)(void))render, METH_FASTCALL,
     "JSON lines of a chunk of event records (Sink._render)."},
    {"record", (PyCFunction)(void (*)(void))record, METH_FASTCALL | METH_KEYWORDS,
     "Append one event to the current thread's buffer (_core.record)."},
    {"setup", setup, METH_VARARGS, "Hand the recorder's state to record()."},
    {"setup_stacks", setup_stacks, METH_O, "Hand record() the interner of call stacks."},
    {"forget_stacks", forget_stacks, METH_NOARGS, "Empty record()'s cache of stack ids."},
    {"private_setup", private_setup, METH_VARARGS,
     "Hand tracelens.record.shadow's kept events of unit-private objects to the helpers."},
    {"unit_state_changed", unit_state_changed, METH_NOARGS,
     "A thread's state was bound or forgotten: look every thread's up again."},
    {"shadow_setup", shadow_setup, METH_VARARGS,
     "Hand tracelens.record.shadow's registry and rules to the helpers."},
    {"method_helper", make_method_helper, METH_VARARGS,
     "The helper of a container method (tracelens.record.shadow._method_helper)."},
    {"gate", make_gate, METH_VARARGS,
     "A helper recorded only on containers (shadow._truth, _compare, _builtin_helper)."},
    {"gate_setup", gate_setup, METH_VARARGS, "Hand shadow._tracked's rules to the gates."},
    {"helper", make_helper, METH_VARARGS,
     "A helper that instrumented code calls (tracelens.record.shadow.helpers)."},
    {"lock_setup", lock_setup, METH_VARARGS,
     "Hand LockCore the globals of tracelens.record.locks and the lock's ops."},
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
    INTERN(s_on, "on");
    INTERN(s_module, "__module__");
    INTERN(s_qualname, "__qualname__");
    INTERN(s_class, "__class__");
    INTERN(g_st_key, "tracelens.record._speedups.unit_state");
    INTERN(s_acquire, "acquire");
    INTERN(s_release, "release");
    INTERN(s_locked, "locked");
    INTERN(s_STATE, "STATE");
    INTERN(s_next_seq, "next_seq");
    INTERN(s_record, "record");
    INTERN(s_acquire_arguments, "acquire_arguments");
#undef INTERN
    if ((lc_kw_extra_depth = Py_BuildValue("(ss)", "extra", "depth")) == NULL) return NULL;
    if ((lc_minus_one = PyLong_FromLong(-1)) == NULL) return NULL;
    if (PyType_Ready(&LockCoreType) < 0) return NULL;
    if ((sh_depth = PyLong_FromLong(1)) == NULL) return NULL;
    if (new_st_token() < 0) return NULL;
    if (PyType_Ready(&HelperType) < 0) return NULL;
    /* object's own __class__ (a static type's tp_dict is NULL from 3.12: looked up) */
    sh_object_class = _PyType_Lookup(&PyBaseObject_Type, s_class);
    Py_XINCREF(sh_object_class);
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    if (PyModule_AddObjectRef(m, "LockCore", (PyObject *)&LockCoreType) < 0) {
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
