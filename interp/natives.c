// The natives of module _gears that reach the host: execute(), atomic() and
// the KeysReader's reads. They run once per command or key a script touches,
// so arguments go straight from Python objects to C strings for the host
// (pyhost.h) and replies straight back, without a trip through Go.
//
// Lock order: never wait for the host's lock while holding a GIL. Every call
// that may take it (call, atomic_enter, scan, read_key) runs with the
// interpreter's GIL released.
#include <stdio.h>
#include <string.h>
#include "interp.h"
#include "pyhost.h"

const pyhost *py_host;

static void *session_of(PyObject *self) {
    void **slot = (void **)py_native_slot(self);
    return slot ? *slot : NULL;
}

// Bulk strings become str, or bytearray when they are not UTF-8 (as in
// RedisGears).
static PyObject *decode(const char *p, size_t n) {
    PyObject *s = py.PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
    if (s) return s;
    py.PyErr_Clear();
    return py.PyByteArray_FromStringAndSize(p, (Py_ssize_t)n);
}

// Nested errors become their text.
static PyObject *reply_to_py(void *r) {
    size_t len;
    switch (py_host->reply_type(r)) {
    case PYHOST_STRING:
    case PYHOST_ERROR: {
        const char *p = py_host->reply_str(r, &len);
        return decode(p, len);
    }
    case PYHOST_INTEGER:
        return py.PyLong_FromLongLong(py_host->reply_int(r));
    case PYHOST_ARRAY: {
        size_t n = py_host->reply_len(r);
        PyObject *list = py.PyList_New((Py_ssize_t)n);
        if (!list) return NULL;
        for (size_t i = 0; i < n; i++) {
            PyObject *e = reply_to_py(py_host->reply_elem(r, i));
            if (!e) {
                py.Py_DecRef(list);
                return NULL;
            }
            py.PyList_SetItem(list, (Py_ssize_t)i, e);
        }
        return list;
    }
    default:
        return py_new_none();
    }
}

// bytes go as they are, str as UTF-8, anything else as str(x). The bytes
// are read after the GIL is released, so they must not change: a bytearray
// (which another thread could resize) is copied. What is made is kept alive
// in *made until the call is done.
static const char *arg_bytes(PyObject *o, size_t *len, PyObject **made) {
    char *p;
    Py_ssize_t n;
    *made = NULL;
    if (py_type(o) == py.PyUnicode_Type) { // the usual argument: its UTF-8 is cached
        const char *u = py.PyUnicode_AsUTF8AndSize(o, &n);
        *len = (size_t)n;
        return u;
    }
    if (py_is(o, py.PyByteArray_Type)) {
        o = *made = py.PyBytes_FromStringAndSize(py.PyByteArray_AsString(o), py.PyByteArray_Size(o));
        if (!o) return NULL;
    }
    if (py_is(o, py.PyBytes_Type)) {
        if (py.PyBytes_AsStringAndSize(o, &p, &n) < 0) return NULL;
        *len = (size_t)n;
        return p;
    }
    PyObject *s = o;
    if (!py_is(o, py.PyUnicode_Type)) {
        if (!(s = py.PyObject_Str(o))) return NULL;
        *made = s;
    }
    const char *u = py.PyUnicode_AsUTF8AndSize(s, &n);
    *len = (size_t)n;
    return u;
}

#define STACK_ARGS 16

PyObject *gears_execute(PyObject *self, PyObject *args) {
    Py_ssize_t n = py.PyTuple_Size(args);
    if (n == 0) return py.PyList_New(0);
    PyObject *cmdobj = py.PyTuple_GetItem(args, 0);
    if (!py_is(cmdobj, py.PyUnicode_Type)) return py_raise_gears("the given command must be a string", -1);

    const char *stackv[STACK_ARGS];
    size_t stackl[STACK_ARGS];
    PyObject *stackm[STACK_ARGS];
    const char **argv = n <= STACK_ARGS ? stackv : malloc(sizeof(*argv) * (size_t)n);
    size_t *lens = n <= STACK_ARGS ? stackl : malloc(sizeof(*lens) * (size_t)n);
    PyObject **made = n <= STACK_ARGS ? stackm : malloc(sizeof(*made) * (size_t)n);
    PyObject *res = NULL;
    Py_ssize_t built = 0;
    if (!argv || !lens || !made) {
        py_raise_gears("out of memory", -1);
        goto done;
    }
    for (; built < n; built++) {
        if (!(argv[built] = arg_bytes(py.PyTuple_GetItem(args, built), &lens[built], &made[built]))) {
            if (made[built]) py.Py_DecRef(made[built]);
            break;
        }
    }
    if (built < n) goto done;

    char errbuf[256];
    errbuf[0] = 0; // the host fills it only on failure
    void *reply = NULL;
    void *sess = session_of(self);
    PyThreadState *ts = py.PyEval_SaveThread();
    int rc = py_host->call(sess, (int)n, argv, lens, &reply, errbuf, sizeof errbuf);
    py.PyEval_RestoreThread(ts);

    if (rc == PYHOST_FAILED) {
        res = py_raise_gears(errbuf, -1);
    } else if (rc == PYHOST_NONE) {
        res = py_new_none();
    } else if (py_host->reply_type(reply) == PYHOST_ERROR) {
        size_t len;
        const char *p = py_host->reply_str(reply, &len);
        res = py_raise_gears(p, (Py_ssize_t)len);
    } else {
        res = reply_to_py(reply);
    }
    if (reply) py_host->reply_free(reply);
done:
    for (Py_ssize_t i = 0; i < built; i++) {
        if (made[i]) py.Py_DecRef(made[i]);
    }
    if (argv != stackv) free(argv);
    if (lens != stackl) free(lens);
    if (made != stackm) free(made);
    return res;
}

PyObject *gears_atomic_enter(PyObject *self, PyObject *unused) {
    (void)unused;
    if (py_host->in_atomic()) return py_raise_gears("Already inside an atomic block", -1);
    void *sess = session_of(self);
    PyThreadState *ts = py.PyEval_SaveThread();
    py_host->atomic_enter(sess);
    py.PyEval_RestoreThread(ts);
    return py_new_none();
}

// Also called by the host when a script or step returns, so a block left
// open by an exception or a missing __exit__ never keeps it locked.
PyObject *gears_atomic_exit(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    py_host->atomic_exit();
    return py_new_none();
}

// _gears.in_atomic(): whether this thread is inside atomic().
PyObject *gears_in_atomic(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return py_bool(py_host->in_atomic());
}

// _gears.session_key(): the key of the session this thread runs Python for
// under IsolationMode shared; 0 otherwise (an own-GIL interpreter is its
// session's alone).
PyObject *gears_session_key(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return py.PyLong_FromLongLong(py_host->session_key());
}

static int set_item(PyObject *d, const char *k, PyObject *v) {
    if (!v) return -1;
    int rc = py.PyDict_SetItemString(d, k, v);
    py.Py_DecRef(v);
    return rc;
}

static PyObject *array_value(const pyhost_key *k) {
    void *r = k->reply;
    if (!r || py_host->reply_type(r) != PYHOST_ARRAY) return py_new_none();
    size_t n = py_host->reply_len(r);
    size_t len;
    const char *p;
    if (k->kind == PYHOST_VALUE_LIST) {
        PyObject *l = py.PyList_New((Py_ssize_t)n);
        for (size_t i = 0; l && i < n; i++) {
            p = py_host->reply_str(py_host->reply_elem(r, i), &len);
            PyObject *e = decode(p, len);
            if (!e) {
                py.Py_DecRef(l);
                return NULL;
            }
            py.PyList_SetItem(l, (Py_ssize_t)i, e);
        }
        return l;
    }
    PyObject *d = py.PyDict_New();
    for (size_t i = 0; d && i + 1 < n; i += 2) {
        p = py_host->reply_str(py_host->reply_elem(r, i), &len);
        PyObject *f = decode(p, len);
        p = py_host->reply_str(py_host->reply_elem(r, i + 1), &len);
        PyObject *v = decode(p, len);
        int rc = (f && v) ? py.PyDict_SetItem(d, f, v) : -1;
        if (f) py.Py_DecRef(f);
        if (v) py.Py_DecRef(v);
        if (rc < 0) {
            py.Py_DecRef(d);
            return NULL;
        }
    }
    return d;
}

// {'key', 'value', 'type', 'event'}, or {'key', 'event'} without values.
// Streams report 'unknown' and sets/zsets no value, as RedisGears 1.2 does.
static PyObject *make_record(const pyhost_key *k, int read_value) {
    PyObject *d = py.PyDict_New();
    if (!d) return NULL;
    if (set_item(d, "key", decode(k->name, k->name_len)) < 0) goto fail;
    if (read_value) {
        PyObject *v;
        if (k->kind == PYHOST_VALUE_STRING) v = k->str ? decode(k->str, k->str_len) : py_new_none();
        else if (k->kind == PYHOST_VALUE_NONE) v = py_new_none();
        else v = array_value(k);
        if (set_item(d, "value", v) < 0) goto fail;
        if (set_item(d, "type", py.PyUnicode_FromStringAndSize(k->type, (Py_ssize_t)strlen(k->type))) < 0) goto fail;
    }
    if (set_item(d, "event", py_new_none()) < 0) goto fail;
    return d;
fail:
    py.Py_DecRef(d);
    return NULL;
}

static const char scanner_name[] = "gears.scanner";

static void scanner_free(PyObject *capsule) {
    void *sc = py.PyCapsule_GetPointer(capsule, scanner_name);
    if (sc) py_host->scanner_close(sc);
    else py.PyErr_Clear();
}

// key_scanner(pattern, count, read_value) -> scanner: a SCAN of the keys
// that match, for scan_next; the host reads it a chunk ahead.
PyObject *gears_key_scanner(PyObject *self, PyObject *args) {
    if (py.PyTuple_Size(args) != 3) return py_raise_gears("key_scanner takes 3 arguments", -1);
    const char *pattern = py.PyUnicode_AsUTF8AndSize(py.PyTuple_GetItem(args, 0), NULL);
    long long count = py.PyLong_AsLongLong(py.PyTuple_GetItem(args, 1));
    int read_value = py.PyObject_IsTrue(py.PyTuple_GetItem(args, 2));
    if (!pattern || py.PyErr_Occurred()) return NULL;
    char errbuf[256] = {0};
    void *sc = py_host->scanner_open(session_of(self), pattern, count, read_value, errbuf, sizeof errbuf);
    if (!sc) return py_raise_gears(errbuf, -1);
    PyObject *capsule = py.PyCapsule_New(sc, scanner_name, scanner_free);
    if (!capsule) py_host->scanner_close(sc);
    return capsule;
}

// scan_next(scanner) -> [records] of the next chunk (maybe empty), or None
// at the end. The chunk is read without the GIL; the records are built here.
PyObject *gears_scan_next(PyObject *self, PyObject *capsule) {
    void *sc = py.PyCapsule_GetPointer(capsule, scanner_name);
    if (!sc) return NULL;
    char errbuf[256] = {0};
    void *sess = session_of(self);
    PyThreadState *ts = py.PyEval_SaveThread();
    pyhost_keys *keys = py_host->scanner_next(sess, sc, errbuf, sizeof errbuf);
    py.PyEval_RestoreThread(ts);
    if (!keys) return errbuf[0] ? py_raise_gears(errbuf, -1) : py_new_none();
    int read_value = keys->read_value;
    PyObject *records = py.PyList_New((Py_ssize_t)keys->n);
    for (size_t i = 0; records && i < keys->n; i++) {
        PyObject *rec = make_record(&keys->keys[i], read_value);
        if (!rec) {
            py.Py_DecRef(records);
            records = NULL;
            break;
        }
        py.PyList_SetItem(records, (Py_ssize_t)i, rec);
    }
    py_host->free_keys(keys);
    return records;
}

// read_key(name, read_value) -> record, or None when the session's user may
// not read the key (KeysReader with noScan, and a registration's event)
PyObject *gears_read_key(PyObject *self, PyObject *args) {
    if (py.PyTuple_Size(args) != 2) return py_raise_gears("read_key takes 2 arguments", -1);
    Py_ssize_t len;
    const char *name = py.PyUnicode_AsUTF8AndSize(py.PyTuple_GetItem(args, 0), &len);
    if (!name) return NULL;
    int read_value = py.PyObject_IsTrue(py.PyTuple_GetItem(args, 1));
    pyhost_key k = {0};
    void *sess = session_of(self);
    PyThreadState *ts = py.PyEval_SaveThread();
    int readable = py_host->read_key(sess, name, (size_t)len, read_value, &k);
    py.PyEval_RestoreThread(ts);
    if (!readable) return py_new_none();
    PyObject *rec = make_record(&k, read_value);
    py_host->free_key(&k);
    return rec;
}
