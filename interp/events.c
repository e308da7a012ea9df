// The hottest calls of runtime/execution.py's _run_event, in C: a keyspace
// event's arguments, and RG.TRIGGER of a sync registration from the
// command's arguments (the host's, read through pyhost.h) to its reply,
// without a trip through Go. Each Go/C
// crossing of the generic path costs about as much as a step of a small
// plan, and the generic path crosses once per value.
#include "interp.h"
#include "pyhost.h"

#define MAX_DEPTH 32

// Whether reply() can write o: the shapes runtime/builder.py's _to_reply
// makes (str, bytes, int, lists of them, {'+': status}). Checked for the
// whole result before its first byte is written; anything else (errors,
// {'-': e}, 'PY RECORD' dicts) is left to the generic path.
static int replyable(PyObject *o, int depth) {
    if (depth > MAX_DEPTH) return 0;
    if (py_is(o, py.PyLong_Type)) { // bool included: 0 or 1, as the generic path
        if (py.PyLong_AsLongLong(o) == -1 && py.PyErr_Occurred()) {
            py.PyErr_Clear();
            return 0;
        }
        return 1;
    }
    if (py_is(o, py.PyUnicode_Type)) {
        Py_ssize_t n;
        if (py.PyUnicode_AsUTF8AndSize(o, &n)) return 1; // and keeps the UTF-8 for reply()
        py.PyErr_Clear();
        return 0;
    }
    if (py_is(o, py.PyBytes_Type)) return 1;
    if (py_is(o, py.PyList_Type)) {
        Py_ssize_t n = py.PyList_Size(o);
        for (Py_ssize_t i = 0; i < n; i++) {
            if (!replyable(py.PyList_GetItem(o, i), depth + 1)) return 0;
        }
        return 1;
    }
    if (py_is(o, py.PyDict_Type)) {
        Py_ssize_t pos = 0;
        PyObject *k, *v;
        int one = py.PyDict_Next(o, &pos, &k, &v) && !py.PyDict_Next(o, &pos, &k, &v);
        PyObject *status = one ? py.PyDict_GetItemString(o, "+") : NULL;
        return status && replyable(status, MAX_DEPTH) && py_is(status, py.PyUnicode_Type);
    }
    return 0;
}

// Writes o, which replyable() accepted.
static void reply(void *ctx, PyObject *o) {
    Py_ssize_t n;
    if (py_is(o, py.PyLong_Type)) {
        py_host->reply_with_int(ctx, py.PyLong_AsLongLong(o));
    } else if (py_is(o, py.PyUnicode_Type)) {
        const char *p = py.PyUnicode_AsUTF8AndSize(o, &n);
        py_host->reply_with_string(ctx, p, (size_t)n);
    } else if (py_is(o, py.PyBytes_Type)) {
        char *p;
        py.PyBytes_AsStringAndSize(o, &p, &n);
        py_host->reply_with_string(ctx, p, (size_t)n);
    } else if (py_is(o, py.PyList_Type)) {
        n = py.PyList_Size(o);
        py_host->reply_with_array(ctx, (long)n);
        for (Py_ssize_t i = 0; i < n; i++) reply(ctx, py.PyList_GetItem(o, i));
    } else {
        PyObject *status = py.PyDict_GetItemString(o, "+");
        py_host->reply_with_status(ctx, py.PyUnicode_AsUTF8AndSize(status, &n));
    }
}

// (token, [argv[1], ...], True): _run_event's arguments for a trigger.
static PyObject *trigger_args(long long token, void *argv, int argc) {
    PyObject *payload = py.PyList_New(argc - 1);
    PyObject *args = py.PyTuple_New(3);
    PyObject *tok = py.PyLong_FromLongLong(token);
    if (!payload || !args || !tok) goto fail;
    for (int i = 1; i < argc; i++) {
        size_t n;
        const char *p = py_host->arg(argv, i, &n);
        PyObject *s = py.PyUnicode_FromStringAndSize(p, (Py_ssize_t)n);
        if (!s) goto fail;
        py.PyList_SetItem(payload, i - 1, s);
    }
    py.PyTuple_SetItem(args, 0, tok);
    py.PyTuple_SetItem(args, 1, payload);
    py.PyTuple_SetItem(args, 2, py_bool(1));
    return args;
fail:
    if (payload) py.Py_DecRef(payload);
    if (args) py.Py_DecRef(args);
    if (tok) py.Py_DecRef(tok);
    return NULL;
}

// Calls run_event (runtime/builder.py's _run_event) on the trigger's
// arguments, attached to the registration's interpreter. Replies when the
// plan succeeded with replyable results; otherwise replies nothing and
// returns TRIGGER_RAISED (the Python error is set) or TRIGGER_RESULT with *out
// the plan's [results, errors] (a new reference) for the generic path.
int py_trigger(void *ctx, PyObject *run_event, long long token, void *argv, int argc,
                  PyObject **out) {
    *out = NULL;
    PyObject *args = trigger_args(token, argv, argc);
    if (!args) return TRIGGER_RAISED;
    PyObject *r = py.PyObject_CallObject(run_event, args);
    py.Py_DecRef(args);
    if (!r) return TRIGGER_RAISED;
    PyObject *results = NULL, *errors = NULL;
    if (py_is(r, py.PyList_Type) && py.PyList_Size(r) == 2) {
        results = py.PyList_GetItem(r, 0);
        errors = py.PyList_GetItem(r, 1);
    }
    if (results && errors && py_is(results, py.PyList_Type) && py_is(errors, py.PyList_Type) &&
        py.PyList_Size(errors) == 0 && replyable(results, 0)) {
        int left = py_host->leave_python(); // the reply is the host's: out of Python
        reply(ctx, results);
        py_host->return_to_python(left);
        py.Py_DecRef(r);
        return TRIGGER_REPLIED;
    }
    *out = r;
    return TRIGGER_RESULT;
}

// Calls run_event (token, [key, event], keep) for a keyspace event, attached
// to the registration's interpreter. Returns EVENT_NONE when it returned None
// (no errors, no results), EVENT_RAISED with the Python error set, or
// EVENT_RESULT with *out what it returned (a new reference).
int py_key_event(PyObject *run_event, long long token, const char *key, size_t keylen, const char *event,
                    size_t eventlen, int keep, PyObject **out) {
    *out = NULL;
    PyObject *args = py.PyTuple_New(3);
    PyObject *payload = py.PyList_New(2);
    PyObject *tok = py.PyLong_FromLongLong(token);
    PyObject *k = py.PyUnicode_FromStringAndSize(key, (Py_ssize_t)keylen);
    PyObject *ev = k ? py.PyUnicode_FromStringAndSize(event, (Py_ssize_t)eventlen) : NULL;
    if (!args || !payload || !tok || !k || !ev) {
        PyObject *made[] = {args, payload, tok, k, ev};
        for (int i = 0; i < 5; i++) {
            if (made[i]) py.Py_DecRef(made[i]);
        }
        return EVENT_RAISED;
    }
    py.PyList_SetItem(payload, 0, k);
    py.PyList_SetItem(payload, 1, ev);
    py.PyTuple_SetItem(args, 0, tok);
    py.PyTuple_SetItem(args, 1, payload);
    py.PyTuple_SetItem(args, 2, py_bool(keep));
    PyObject *r = py.PyObject_CallObject(run_event, args);
    py.Py_DecRef(args);
    if (!r) return EVENT_RAISED;
    if (r == py_none()) {
        py.Py_DecRef(r);
        return EVENT_NONE;
    }
    *out = r;
    return EVENT_RESULT;
}
