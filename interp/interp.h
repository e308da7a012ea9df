// Declarations shared by interp's C and Go files, and thin wrappers that let
// Go call through the function table (cgo cannot call function pointers).
#ifndef GEARS_INTERP_H
#define GEARS_INTERP_H

#include <pthread.h>
#include <stdlib.h>
#include "py.h"
#include "pyhost.h"

#define PY_MAX_HOST_FUNCS 64

int py_new_interp(int shared_gil, PyThreadState **out, const char **errmsg);
void py_set_host_def(int id, const char *name);
void py_set_native_def(int id, const char *name, void *fn, int flags);
int py_add_host(PyObject *dict, int id, long long self_val);
int py_add_native(PyObject *dict, int id, void *slot);
void *py_native_slot(PyObject *self);
extern PyObject *goHostCall(PyObject *self, PyObject *args);
void py_install_memory_counters(void);
int py_install_process_guard(void);
const char *py_guard_functions(void);
void py_set_main(PyThreadState *ts);
int py_create(int shared_gil, PyThreadState **out, const char **errmsg);
void py_ensure_thread(void);
void py_memory(long long *total, long long *peak, long long *current);
void py_set_memory_limit(long long n);
long long py_memory_refused(void);
PyThreadState *py_new_thread_state(PyInterpreterState *i);
void py_end(PyThreadState *ts);
PyObject *py_exec(const char *src, PyObject *globals);
void py_wake(unsigned long tid);

// natives.c: the _gears functions that reach the host (pyhost.h).
PyObject *gears_execute(PyObject *self, PyObject *args);
PyObject *gears_atomic_enter(PyObject *self, PyObject *unused);
PyObject *gears_atomic_exit(PyObject *self, PyObject *unused);
PyObject *gears_in_atomic(PyObject *self, PyObject *unused);
PyObject *gears_session_key(PyObject *self, PyObject *unused);
PyObject *gears_key_scanner(PyObject *self, PyObject *args);
PyObject *gears_scan_next(PyObject *self, PyObject *capsule);
PyObject *gears_read_key(PyObject *self, PyObject *args);

// events.c: a registration's run from a trigger's or a keyspace event's data.
enum { TRIGGER_REPLIED, TRIGGER_RAISED, TRIGGER_RESULT };
int py_trigger(void *ctx, PyObject *run_event, long long token, void *argv, int argc, PyObject **out);
enum { EVENT_NONE, EVENT_RAISED, EVENT_RESULT };
int py_key_event(PyObject *run_event, long long token, const char *key, size_t keylen, const char *event,
                 size_t eventlen, int keep, PyObject **out);
static inline int w_py_trigger(uintptr_t ctx, PyObject *f, long long token, uintptr_t argv, int argc, PyObject **out) {
    return py_trigger((void *)ctx, f, token, (void *)argv, argc, out);
}
static inline void py_use_host(uintptr_t table) { py_host = (const pyhost *)table; }
static inline int py_leave_python(void) { return py_host ? py_host->leave_python() : 0; }
static inline void py_return_to_python(int left) { if (py_host) py_host->return_to_python(left); }

static inline void w_Py_InitializeEx(int i) { py.Py_InitializeEx(i); }
static inline const char *w_Py_GetVersion(void) { return py.Py_GetVersion(); }
static inline PyThreadState *w_PyEval_SaveThread(void) { return py.PyEval_SaveThread(); }
static inline void w_PyEval_RestoreThread(PyThreadState *t) { py.PyEval_RestoreThread(t); }
static inline void w_PyThreadState_Clear(PyThreadState *t) { py.PyThreadState_Clear(t); }
static inline void w_PyThreadState_DeleteCurrent(void) { py.PyThreadState_DeleteCurrent(); }
static inline void w_PyThreadState_Delete(PyThreadState *t) { py.PyThreadState_Delete(t); }
static inline PyThreadState *w_PyThreadState_GetUnchecked(void) { return py.PyThreadState_GetUnchecked(); }
static inline PyInterpreterState *w_PyThreadState_GetInterpreter(PyThreadState *t) { return py.PyThreadState_GetInterpreter(t); }
static inline int64_t w_PyInterpreterState_GetID(PyInterpreterState *i) { return py.PyInterpreterState_GetID(i); }
static inline PyObject *w_PyImport_AddModuleRef(const char *n) { return py.PyImport_AddModuleRef(n); }
static inline PyObject *w_PyModule_GetDict(PyObject *m) { return py.PyModule_GetDict(m); }
static inline PyObject *w_PyDict_New(void) { return py.PyDict_New(); }
static inline PyObject *w_PyDict_Copy(PyObject *d) { return py.PyDict_Copy(d); }
static inline PyObject *w_PyDict_GetItemString(PyObject *d, const char *k) { return py.PyDict_GetItemString(d, k); }
static inline int w_PyDict_SetItemString(PyObject *d, const char *k, PyObject *v) { return py.PyDict_SetItemString(d, k, v); }
static inline PyObject *w_PyObject_CallOneArg(PyObject *f, PyObject *a) { return py.PyObject_CallFunctionObjArgs(f, a, NULL); }
static inline Py_ssize_t w_PyTuple_Size(PyObject *t) { return py.PyTuple_Size(t); }
static inline PyObject *w_PyTuple_GetItem(PyObject *t, Py_ssize_t i) { return py.PyTuple_GetItem(t, i); }
static inline PyObject *w_PyList_New(Py_ssize_t n) { return py.PyList_New(n); }
static inline int w_PyList_SetItem(PyObject *l, Py_ssize_t i, PyObject *v) { return py.PyList_SetItem(l, i, v); }
static inline Py_ssize_t w_PyList_Size(PyObject *l) { return py.PyList_Size(l); }
static inline PyObject *w_PyList_GetItem(PyObject *l, Py_ssize_t i) { return py.PyList_GetItem(l, i); }
static inline const char *w_PyUnicode_AsUTF8AndSize(PyObject *o, Py_ssize_t *n) { return py.PyUnicode_AsUTF8AndSize(o, n); }
static inline PyObject *w_PyUnicode_FromStringAndSize(const char *s, Py_ssize_t n) { return py.PyUnicode_FromStringAndSize(s, n); }
static inline PyObject *w_PyBytes_FromStringAndSize(const char *s, Py_ssize_t n) { return py.PyBytes_FromStringAndSize(s, n); }
static inline int w_PyBytes_AsStringAndSize(PyObject *o, char **s, Py_ssize_t *n) { return py.PyBytes_AsStringAndSize(o, s, n); }
static inline char *w_PyByteArray_AsString(PyObject *o) { return py.PyByteArray_AsString(o); }
static inline Py_ssize_t w_PyByteArray_Size(PyObject *o) { return py.PyByteArray_Size(o); }
static inline PyObject *w_PyLong_FromLongLong(long long v) { return py.PyLong_FromLongLong(v); }
static inline long long w_PyLong_AsLongLong(PyObject *o) { return py.PyLong_AsLongLong(o); }
static inline PyObject *w_PyFloat_FromDouble(double v) { return py.PyFloat_FromDouble(v); }
static inline double w_PyFloat_AsDouble(PyObject *o) { return py.PyFloat_AsDouble(o); }
static inline PyObject *w_PyObject_Str(PyObject *o) { return py.PyObject_Str(o); }
static inline void w_Py_IncRef(PyObject *o) { py.Py_IncRef(o); }
static inline void w_Py_DecRef(PyObject *o) { py.Py_DecRef(o); }
static inline PyObject *w_PyErr_Occurred(void) { return py.PyErr_Occurred(); }
static inline PyObject *w_PyErr_GetRaisedException(void) { return py.PyErr_GetRaisedException(); }
static inline void w_PyErr_Clear(void) { py.PyErr_Clear(); }

// Type tags for converting Python values to Go.
enum { PYK_OTHER, PYK_NONE, PYK_BOOL, PYK_INT, PYK_FLOAT, PYK_STR, PYK_BYTES, PYK_BYTEARRAY, PYK_LIST, PYK_TUPLE, PYK_DICT };
static inline int py_kind(PyObject *o) {
    if (o == py_none()) return PYK_NONE;
    if (py_is(o, py.PyBool_Type)) return PYK_BOOL; // before int: bool subclasses int
    if (py_is(o, py.PyLong_Type)) return PYK_INT;
    if (py_is(o, py.PyUnicode_Type)) return PYK_STR;
    if (py_is(o, py.PyBytes_Type)) return PYK_BYTES;
    if (py_is(o, py.PyByteArray_Type)) return PYK_BYTEARRAY;
    if (py_is(o, py.PyFloat_Type)) return PYK_FLOAT;
    if (py_is(o, py.PyList_Type)) return PYK_LIST;
    if (py_is(o, py.PyTuple_Type)) return PYK_TUPLE;
    if (py_is(o, py.PyDict_Type)) return PYK_DICT;
    return PYK_OTHER;
}
static inline int w_PyDict_Next(PyObject *d, Py_ssize_t *pos, PyObject **k, PyObject **v) { return py.PyDict_Next(d, pos, k, v); }
static inline int w_PyThreadState_SetAsyncExc(unsigned long id, PyObject *exc) { return py.PyThreadState_SetAsyncExc(id, exc); }
static inline PyObject *w_PyObject_CallObject(PyObject *f, PyObject *args) { return py.PyObject_CallObject(f, args); }
static inline PyObject *w_PyTuple_New(Py_ssize_t n) { return py.PyTuple_New(n); }
static inline int w_PyTuple_SetItem(PyObject *t, Py_ssize_t i, PyObject *v) { return py.PyTuple_SetItem(t, i, v); }
static inline unsigned long py_thread_ident(void) { return (unsigned long)pthread_self(); }
static inline int py_is_memory_error(PyObject *e) { return py_is(e, py.PyExc_MemoryError); }

#endif
