// Hand-written subset of the CPython 3.14 C API. There are no Python headers
// at build time: libpython is dlopen'ed at load and every function below is
// resolved by name into the table `py`. Only opaque pointers cross this
// boundary; no struct layout of CPython objects is assumed, and reference
// counting always goes through Py_IncRef/Py_DecRef (immortal objects make the
// inline macros unsafe to copy).
#ifndef GEARS_PY_H
#define GEARS_PY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/types.h>

typedef ssize_t Py_ssize_t;
typedef struct _object PyObject;
typedef struct _ts PyThreadState;
typedef struct _is PyInterpreterState;
typedef PyObject *(*PyCFunction)(PyObject *, PyObject *);

typedef struct PyMethodDef {
    const char *ml_name;
    PyCFunction ml_meth;
    int ml_flags;
    const char *ml_doc;
} PyMethodDef;

// Include/moduleobject.h: part of the stable ABI (PyObject_HEAD is two
// pointers in this build), so its layout may be relied on.
typedef struct {
    void *ob_refcnt, *ob_type;
    PyObject *(*m_init)(void);
    Py_ssize_t m_index;
    PyObject *m_copy;
} PyModuleDef_Base;
typedef struct {
    PyModuleDef_Base m_base;
    const char *m_name;
    const char *m_doc;
    Py_ssize_t m_size;
    PyMethodDef *m_methods;
} PyModuleDef;

// Returned by value (sret on x86-64); layout from Include/cpython/initconfig.h.
typedef struct {
    int _type; // 0 ok, 1 error, 2 exit
    const char *func;
    const char *err_msg;
    int exitcode;
} PyStatus;

// Include/cpython/pylifecycle.h, unchanged from 3.12 to 3.14.
typedef struct {
    int use_main_obmalloc;
    int allow_fork;
    int allow_exec;
    int allow_threads;
    int allow_daemon_threads;
    int check_multi_interp_extensions;
    int gil;
} PyInterpreterConfig;

#define PyInterpreterConfig_SHARED_GIL 1
#define PyInterpreterConfig_OWN_GIL 2
#define Py_file_input 257
#define Py_eval_input 258
#define METH_VARARGS 0x1
#define METH_NOARGS 0x4
#define METH_O 0x8
#define Py_CONSTANT_NONE 0
#define Py_CONSTANT_FALSE 1
#define Py_CONSTANT_TRUE 2

// Include/cpython/pymem.h and objimpl.h: allocator hooks, for accounting.
typedef struct {
    void *ctx;
    void *(*malloc)(void *ctx, size_t size);
    void *(*calloc)(void *ctx, size_t nelem, size_t elsize);
    void *(*realloc)(void *ctx, void *ptr, size_t new_size);
    void (*free)(void *ctx, void *ptr);
} PyMemAllocatorEx;
typedef struct {
    void *ctx;
    void *(*alloc)(void *ctx, size_t size);
    void (*free)(void *ctx, void *ptr, size_t size);
} PyObjectArenaAllocator;
#define PYMEM_DOMAIN_RAW 0

// X(return type, name, parameter list)
#define PY_FUNCS(X)                                                                        \
    X(void, Py_InitializeEx, (int))                                                        \
    X(const char *, Py_GetVersion, (void))                                                 \
    X(PyStatus, Py_NewInterpreterFromConfig, (PyThreadState **, const PyInterpreterConfig *)) \
    X(void, Py_EndInterpreter, (PyThreadState *))                                          \
    X(PyThreadState *, PyEval_SaveThread, (void))                                          \
    X(void, PyEval_RestoreThread, (PyThreadState *))                                       \
    X(PyThreadState *, PyThreadState_New, (PyInterpreterState *))                          \
    X(void, PyThreadState_Clear, (PyThreadState *))                                        \
    X(void, PyThreadState_Delete, (PyThreadState *))                                       \
    X(void, PyThreadState_DeleteCurrent, (void))                                           \
    X(PyThreadState *, PyThreadState_Get, (void))                                          \
    X(PyThreadState *, PyThreadState_GetUnchecked, (void))                                 \
    X(PyInterpreterState *, PyThreadState_GetInterpreter, (PyThreadState *))               \
    X(PyInterpreterState *, PyInterpreterState_Get, (void))                                \
    X(int64_t, PyInterpreterState_GetID, (PyInterpreterState *))                           \
    X(PyObject *, PyRun_StringFlags, (const char *, int, PyObject *, PyObject *, void *))   \
    X(PyObject *, Py_CompileString, (const char *, const char *, int))                     \
    X(PyObject *, PyEval_EvalCode, (PyObject *, PyObject *, PyObject *))                   \
    X(PyObject *, PyImport_AddModuleRef, (const char *))                                   \
    X(PyObject *, PyImport_ImportModule, (const char *))                                   \
    X(PyObject *, PyModule_GetDict, (PyObject *))                                          \
    X(PyObject *, PyDict_New, (void))                                                      \
    X(PyObject *, PyDict_Copy, (PyObject *))                                               \
    X(int, PyDict_SetItemString, (PyObject *, const char *, PyObject *))                   \
    X(int, PyDict_SetItem, (PyObject *, PyObject *, PyObject *))                           \
    X(PyObject *, PyDict_GetItemString, (PyObject *, const char *))                        \
    X(int, PyDict_DelItemString, (PyObject *, const char *))                               \
    X(PyObject *, PyObject_GetAttrString, (PyObject *, const char *))                      \
    X(int, PyObject_SetAttrString, (PyObject *, const char *, PyObject *))                 \
    X(PyObject *, PyObject_CallObject, (PyObject *, PyObject *))                           \
    X(PyObject *, PyObject_CallFunctionObjArgs, (PyObject *, ...))                         \
    X(PyObject *, PyObject_Str, (PyObject *))                                              \
    X(PyObject *, PyObject_Repr, (PyObject *))                                             \
    X(int, PyObject_IsInstance, (PyObject *, PyObject *))                                  \
    X(int, PyObject_IsTrue, (PyObject *))                                                  \
    X(int, PyCallable_Check, (PyObject *))                                                 \
    X(PyObject *, PyCFunction_NewEx, (PyMethodDef *, PyObject *, PyObject *))              \
    X(Py_ssize_t, PyTuple_Size, (PyObject *))                                              \
    X(PyObject *, PyTuple_GetItem, (PyObject *, Py_ssize_t))                               \
    X(PyObject *, PyTuple_New, (Py_ssize_t))                                               \
    X(int, PyTuple_SetItem, (PyObject *, Py_ssize_t, PyObject *))                          \
    X(PyObject *, PyList_New, (Py_ssize_t))                                                \
    X(PyObject *, PyCapsule_New, (void *, const char *, void (*)(PyObject *)))             \
    X(void *, PyCapsule_GetPointer, (PyObject *, const char *))                            \
    X(int, PyList_SetItem, (PyObject *, Py_ssize_t, PyObject *))                           \
    X(int, PyList_Append, (PyObject *, PyObject *))                                        \
    X(Py_ssize_t, PyList_Size, (PyObject *))                                               \
    X(PyObject *, PyList_GetItem, (PyObject *, Py_ssize_t))                                \
    X(const char *, PyUnicode_AsUTF8AndSize, (PyObject *, Py_ssize_t *))                   \
    X(PyObject *, PyUnicode_FromStringAndSize, (const char *, Py_ssize_t))                 \
    X(PyObject *, PyUnicode_DecodeUTF8, (const char *, Py_ssize_t, const char *))          \
    X(PyObject *, PyBytes_FromStringAndSize, (const char *, Py_ssize_t))                   \
    X(int, PyBytes_AsStringAndSize, (PyObject *, char **, Py_ssize_t *))                   \
    X(PyObject *, PyByteArray_FromStringAndSize, (const char *, Py_ssize_t))               \
    X(char *, PyByteArray_AsString, (PyObject *))                                          \
    X(Py_ssize_t, PyByteArray_Size, (PyObject *))                                          \
    X(PyObject *, PyLong_FromLongLong, (long long))                                        \
    X(long long, PyLong_AsLongLong, (PyObject *))                                          \
    X(PyObject *, PyFloat_FromDouble, (double))                                            \
    X(double, PyFloat_AsDouble, (PyObject *))                                              \
    X(void, Py_IncRef, (PyObject *))                                                       \
    X(void, Py_DecRef, (PyObject *))                                                       \
    X(PyObject *, Py_GetConstantBorrowed, (unsigned int))                                  \
    X(PyObject *, PyErr_Occurred, (void))                                                  \
    X(void, PyErr_SetString, (PyObject *, const char *))                                   \
    X(void, PyErr_SetObject, (PyObject *, PyObject *))                                     \
    X(PyObject *, PyErr_GetRaisedException, (void))                                        \
    X(void, PyErr_SetRaisedException, (PyObject *))                                        \
    X(void, PyErr_Clear, (void))                                                           \
    X(PyObject *, PyErr_NewException, (const char *, PyObject *, PyObject *))              \
    X(int, PyErr_CheckSignals, (void))                                                     \
    X(int, PyThreadState_SetAsyncExc, (unsigned long, PyObject *))                         \
    X(int, PyDict_Next, (PyObject *, Py_ssize_t *, PyObject **, PyObject **))              \
    X(int, Py_AddPendingCall, (int (*)(void *), void *))                                  \
    X(int, PySys_AddAuditHook, (int (*)(const char *, PyObject *, void *), void *))       \
    X(PyModuleDef *, PyModule_GetDef, (PyObject *))                                        \
    X(void, PyMem_SetAllocator, (int, PyMemAllocatorEx *))                                \
    X(void, PyObject_GetArenaAllocator, (PyObjectArenaAllocator *))                       \
    X(void, PyObject_SetArenaAllocator, (PyObjectArenaAllocator *))

// Data symbols. Exception objects are pointers stored in the library
// (dereferenced once at load); type objects are the symbols themselves.
#define PY_EXC_DATA(X) X(PyExc_RuntimeError) X(PyExc_TypeError) X(PyExc_ValueError) X(PyExc_Exception) X(PyExc_PermissionError) \
    X(PyExc_MemoryError)
#define PY_TYPE_DATA(X)                                                                    \
    X(PyUnicode_Type) X(PyBytes_Type) X(PyByteArray_Type) X(PyLong_Type) X(PyFloat_Type)  \
    X(PyBool_Type) X(PyList_Type) X(PyTuple_Type) X(PyDict_Type) X(PyFunction_Type)

typedef struct {
#define PY_FIELD(ret, name, params) ret(*name) params;
    PY_FUNCS(PY_FIELD)
#undef PY_FIELD
#define PY_DATA_FIELD(name) PyObject *name;
    PY_EXC_DATA(PY_DATA_FIELD)
    PY_TYPE_DATA(PY_DATA_FIELD)
#undef PY_DATA_FIELD
} py_api;

// The resolved table, filled by py_load. Shared by every package's C code.
extern py_api py;

// py_load dlopens libpython and resolves the table; on failure it returns a
// static message naming the missing piece, else NULL.
const char *py_load(const char *libpath);

// PyObject_HEAD is two pointers in this build (see PyModuleDef_Base): the
// second is the object's type. Most checks meet the exact type, and
// PyObject_IsInstance costs a call through the table and a walk of the MRO.
static inline PyObject *py_type(PyObject *o) { return ((PyObject **)o)[1]; }
static inline int py_is(PyObject *o, PyObject *type) { return py_type(o) == type || py.PyObject_IsInstance(o, type) == 1; }
static inline PyObject *py_none(void) { return py.Py_GetConstantBorrowed(Py_CONSTANT_NONE); }
static inline PyObject *py_new_none(void) { PyObject *n = py_none(); py.Py_IncRef(n); return n; }
static inline PyObject *py_bool(int v) {
    PyObject *b = py.Py_GetConstantBorrowed(v ? Py_CONSTANT_TRUE : Py_CONSTANT_FALSE);
    py.Py_IncRef(b);
    return b;
}

// The error type Python code sees as GearsError: _gears.error of the
// current interpreter (RuntimeError until the runtime defines it), borrowed.
PyObject *py_gears_error_type(void);
// Raises GearsError with the n bytes of msg (n < 0: up to its NUL; bad
// UTF-8 replaced) and returns NULL.
PyObject *py_raise_gears(const char *msg, Py_ssize_t n);

#endif
