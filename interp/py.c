// Loading libpython and the small C helpers that Go cannot express
// (function pointers, by-value structs, the host-call trampoline).
#include <dlfcn.h>
#include <stdio.h>
#include <string.h>
#include "py.h"
#include "interp.h"

py_api py;

const char *py_load(const char *libpath) {
    static char err[512];
    // RTLD_GLOBAL: C extension modules resolve Py* symbols against it.
    void *h = dlopen(libpath, RTLD_NOW | RTLD_GLOBAL);
    if (!h) {
        snprintf(err, sizeof err, "dlopen %s: %s", libpath, dlerror());
        return err;
    }
#define PY_RESOLVE(ret, name, params)                                         \
    if (!(py.name = (ret(*) params)dlsym(h, #name))) {                         \
        snprintf(err, sizeof err, "libpython lacks symbol %s", #name);         \
        return err;                                                            \
    }
    PY_FUNCS(PY_RESOLVE)
#undef PY_RESOLVE
#define PY_RESOLVE_EXC(name)                                                  \
    {                                                                          \
        PyObject **p = (PyObject **)dlsym(h, #name);                           \
        if (!p || !*p) {                                                       \
            snprintf(err, sizeof err, "libpython lacks data %s", #name);       \
            return err;                                                        \
        }                                                                      \
        py.name = *p;                                                          \
    }
    PY_EXC_DATA(PY_RESOLVE_EXC)
#undef PY_RESOLVE_EXC
#define PY_RESOLVE_TYPE(name)                                                 \
    if (!(py.name = (PyObject *)dlsym(h, #name))) {                            \
        snprintf(err, sizeof err, "libpython lacks type %s", #name);           \
        return err;                                                            \
    }
    PY_TYPE_DATA(PY_RESOLVE_TYPE)
#undef PY_RESOLVE_TYPE
    // No `site`: it costs every new interpreter ~3 ms of its ~10, and gears
    // manages sys.path itself (there is no site-packages to add).
    int *nosite = (int *)dlsym(h, "Py_NoSiteFlag");
    if (nosite) *nosite = 1;
    return NULL;
}

int py_new_interp(int shared_gil, PyThreadState **out, const char **errmsg) {
    PyInterpreterConfig cfg;
    if (shared_gil) {
        // RedisGears 1.x's model: shares obmalloc and GIL, loads any extension.
        cfg = (PyInterpreterConfig){1, 0, 0, 1, 0, 0, PyInterpreterConfig_SHARED_GIL};
    } else {
        cfg = (PyInterpreterConfig){0, 0, 0, 1, 0, 1, PyInterpreterConfig_OWN_GIL};
    }
    PyStatus st = py.Py_NewInterpreterFromConfig(out, &cfg);
    if (st._type != 0) {
        *errmsg = st.err_msg ? st.err_msg : "Py_NewInterpreterFromConfig failed";
        return -1;
    }
    return 0;
}

// Host functions: one PyMethodDef per registered name (it must outlive every
// function object made from it), all pointing at one trampoline into Go.
static PyMethodDef host_defs[PY_MAX_HOST_FUNCS];

static PyObject *host_trampoline(PyObject *self, PyObject *args) { return goHostCall(self, args); }

void py_set_host_def(int id, const char *name) {
    host_defs[id] = (PyMethodDef){name, host_trampoline, METH_VARARGS, NULL};
}

static PyMethodDef native_defs[PY_MAX_HOST_FUNCS];

void py_set_native_def(int id, const char *name, void *fn, int flags) {
    native_defs[id] = (PyMethodDef){name, (PyCFunction)fn, flags, NULL};
}

// Adds host function `id` to module dict `dict`, with `self` identifying the
// interpreter and the function. Returns -1 with a Python error set.
int py_add_host(PyObject *dict, int id, long long self_val) {
    PyObject *self = py.PyLong_FromLongLong(self_val);
    if (!self) return -1;
    PyObject *fn = py.PyCFunction_NewEx(&host_defs[id], self, NULL);
    py.Py_DecRef(self);
    if (!fn) return -1;
    int rc = py.PyDict_SetItemString(dict, host_defs[id].ml_name, fn);
    py.Py_DecRef(fn);
    return rc;
}

int py_add_native(PyObject *dict, int id, void *slot) {
    PyObject *self = py.PyLong_FromLongLong((long long)(intptr_t)slot);
    if (!self) return -1;
    PyObject *fn = py.PyCFunction_NewEx(&native_defs[id], self, NULL);
    py.Py_DecRef(self);
    if (!fn) return -1;
    int rc = py.PyDict_SetItemString(dict, native_defs[id].ml_name, fn);
    py.Py_DecRef(fn);
    return rc;
}

void *py_native_slot(PyObject *self) { return (void *)(intptr_t)py.PyLong_AsLongLong(self); }

// Memory accounting. Python's memory is invisible to Redis's used_memory, so
// count it ourselves: pymalloc's arenas (whose free is told the size) plus the
// raw domain (malloc; sizes from malloc_usable_size). Objects larger than
// pymalloc's blocks come from the raw domain, so together they cover all.
#include <malloc.h>
#include <pthread.h>
#include <stdint.h>
#include <stdatomic.h>
#include <stdlib.h>

static atomic_llong mem_total, mem_current, mem_peak;
static PyObjectArenaAllocator arena_orig;

// The limit (0: none): an allocation that would take Python's memory beyond
// it fails, and Python raises MemoryError where it asked. Checked before the
// allocation, so concurrent ones may overshoot it by what they ask together.
static atomic_llong mem_limit, mem_refused;

void py_set_memory_limit(long long n) { atomic_store(&mem_limit, n); }

long long py_memory_refused(void) { return atomic_load(&mem_refused); }

// Making and ending interpreters and thread states is exempt: CPython
// gives up the process (Py_FatalError) when they run out of memory, and
// they are gears' own, small and short. Set on the thread doing them.
static __thread int exempt;

static int refused(size_t n) {
    long long limit = atomic_load_explicit(&mem_limit, memory_order_relaxed);
    if (!limit || exempt) return 0;
    if (n <= (size_t)limit && atomic_load_explicit(&mem_current, memory_order_relaxed) + (long long)n <= limit) return 0;
    atomic_fetch_add_explicit(&mem_refused, 1, memory_order_relaxed);
    return 1;
}

static void mem_add(long long n) {
    atomic_fetch_add_explicit(&mem_total, n, memory_order_relaxed);
    long long cur = atomic_fetch_add_explicit(&mem_current, n, memory_order_relaxed) + n;
    long long peak = atomic_load_explicit(&mem_peak, memory_order_relaxed);
    while (cur > peak && !atomic_compare_exchange_weak(&mem_peak, &peak, cur)) {
    }
}

static void mem_sub(long long n) { atomic_fetch_sub_explicit(&mem_current, n, memory_order_relaxed); }

static void *raw_malloc(void *ctx, size_t n) {
    (void)ctx;
    if (refused(n)) return NULL;
    void *p = malloc(n ? n : 1);
    if (p) mem_add((long long)malloc_usable_size(p));
    return p;
}

static void *raw_calloc(void *ctx, size_t k, size_t n) {
    (void)ctx;
    if (n && k > SIZE_MAX / n) return NULL;
    if (refused(k * n)) return NULL;
    void *p = (k && n) ? calloc(k, n) : calloc(1, 1);
    if (p) mem_add((long long)malloc_usable_size(p));
    return p;
}

static void *raw_realloc(void *ctx, void *old, size_t n) {
    (void)ctx;
    long long before = old ? (long long)malloc_usable_size(old) : 0;
    if ((long long)n > before && refused(n - (size_t)before)) return NULL;
    void *p = realloc(old, n ? n : 1);
    if (p) {
        mem_sub(before);
        mem_add((long long)malloc_usable_size(p));
    }
    return p;
}

static void raw_free(void *ctx, void *p) {
    (void)ctx;
    if (p) mem_sub((long long)malloc_usable_size(p));
    free(p);
}

// A thread state's first frame takes a 16 KiB data-stack chunk from the
// arena allocator, and deleting the thread state gives it back: an mmap, page
// faults and an munmap (with a TLB flush on every CPU) per attach on threads
// that do not keep their thread states. A few freed chunks of that size are
// kept for reuse instead. CPython initializes every chunk it gets.
#define CHUNK_SIZE (16 * 1024)
#define CHUNKS_KEPT 16

static pthread_mutex_t chunks_mu = PTHREAD_MUTEX_INITIALIZER;
static void *chunks[CHUNKS_KEPT];
static int nchunks;

static void *arena_alloc(void *ctx, size_t n) {
    (void)ctx;
    if (refused(n)) return NULL;
    void *p = NULL;
    if (n == CHUNK_SIZE) {
        pthread_mutex_lock(&chunks_mu);
        if (nchunks > 0) p = chunks[--nchunks];
        pthread_mutex_unlock(&chunks_mu);
    }
    if (!p) p = arena_orig.alloc(arena_orig.ctx, n);
    if (p) mem_add((long long)n);
    return p;
}

static void arena_free(void *ctx, void *p, size_t n) {
    (void)ctx;
    if (!p) return;
    mem_sub((long long)n);
    if (n == CHUNK_SIZE) {
        pthread_mutex_lock(&chunks_mu);
        int kept = nchunks < CHUNKS_KEPT;
        if (kept) chunks[nchunks++] = p;
        pthread_mutex_unlock(&chunks_mu);
        if (kept) return;
    }
    arena_orig.free(arena_orig.ctx, p, n);
}

// Before Py_InitializeEx: the hooks wrap, never replace, Python's allocators
// (PEP 684 allows wrapping with per-interpreter GILs).
void py_install_memory_counters(void) {
    PyMemAllocatorEx raw = {NULL, raw_malloc, raw_calloc, raw_realloc, raw_free};
    py.PyMem_SetAllocator(PYMEM_DOMAIN_RAW, &raw);
    py.PyObject_GetArenaAllocator(&arena_orig);
    PyObjectArenaAllocator arena = {NULL, arena_alloc, arena_free};
    py.PyObject_SetArenaAllocator(&arena);
}

void py_memory(long long *total, long long *peak, long long *current) {
    *total = atomic_load(&mem_total);
    *peak = atomic_load(&mem_peak);
    *current = atomic_load(&mem_current);
}

// Each OS thread that creates interpreters keeps its own thread state of the
// main interpreter (a thread state belongs to one thread), made on first use.
static PyInterpreterState *main_interp;
static __thread PyThreadState *main_ts;

// The thread that initialized Python keeps using its own thread state.
void py_set_main(PyThreadState *ts) {
    main_interp = py.PyThreadState_GetInterpreter(ts);
    main_ts = ts;
}

// Gives the calling thread its own thread state of the main interpreter, kept
// for the thread's life. The first thread state made on a thread is the one
// CPython binds to the thread (PyGILState); it must never be one that another
// thread deletes (a sub-interpreter's, deleted when it closes), or that
// binding would dangle.
void py_ensure_thread(void) {
    if (!main_ts) main_ts = py.PyThreadState_New(main_interp);
}

// Creates an interpreter from the calling thread: takes the main GIL, which
// Py_NewInterpreterFromConfig hands over to the new interpreter's GIL.
int py_create(int shared_gil, PyThreadState **out, const char **errmsg) {
    exempt++;
    py_ensure_thread();
    py.PyEval_RestoreThread(main_ts);
    int rc = py_new_interp(shared_gil, out, errmsg);
    if (rc != 0) py.PyEval_SaveThread(); // main_ts is current again
    exempt--;
    return rc;
}

void py_end(PyThreadState *ts) {
    exempt++;
    py.Py_EndInterpreter(ts);
    exempt--;
}

// Runs src as a module body in globals. Compiling is exempt from the memory
// limit: CPython's parser does not survive every allocation failing
// halfway (it crashed), and what it takes is bounded by the source's size.
PyObject *py_exec(const char *src, PyObject *globals) {
    exempt++;
    PyObject *code = py.Py_CompileString(src, "<string>", Py_file_input);
    exempt--;
    if (!code) return NULL;
    PyObject *r = py.PyEval_EvalCode(code, globals, globals);
    py.Py_DecRef(code);
    return r;
}

// A thread state for an attach (NULL when Python is out of memory).
PyThreadState *py_new_thread_state(PyInterpreterState *i) {
    exempt++;
    PyThreadState *ts = py.PyThreadState_New(i);
    exempt--;
    return ts;
}

// The process guard: Python code runs inside the server's process, so what
// would end, replace or signal that process, or start other programs from
// it, is refused in every interpreter (os.fork and os.exec* are refused by
// the isolated interpreters' own config too). A C audit hook cannot be
// removed from Python; what raises no audit event is guarded below, in the
// functions' own method tables.
#include <errno.h>
#include <signal.h>
#include <time.h>
#include <unistd.h>

// A PermissionError: code that copes with a program it cannot start (an
// OSError) copes with this too.
static int refuse(const char *what) {
    char msg[256];
    snprintf(msg, sizeof msg,
             "%s is not allowed in gears: Python runs inside the Redis server's process, "
             "which it may not end, signal, fork, replace or leave to start other programs",
             what);
    py.PyErr_SetString(py.PyExc_PermissionError, msg);
    return -1;
}

// The first argument of an event, as a number (-1 and no error when it is
// not one).
static long long int_arg(PyObject *args, Py_ssize_t i) {
    if (!args || py.PyTuple_Size(args) <= i) return -1;
    long long v = py.PyLong_AsLongLong(py.PyTuple_GetItem(args, i));
    if (v == -1 && py.PyErr_Occurred()) py.PyErr_Clear();
    return v;
}

static int process_guard(const char *event, PyObject *args, void *data) {
    (void)data;
    // Most events are none of these: one comparison of the first bytes.
    if (strncmp(event, "os.", 3) != 0 && strncmp(event, "signal.", 7) != 0 &&
        strncmp(event, "subprocess.", 11) != 0 && strncmp(event, "resource.", 9) != 0)
        return 0;
    static const char *never[] = {"os.system", "os.posix_spawn", "os.spawn", "os.exec", "os.fork",
                                  "os.forkpty", "subprocess.Popen", "os.chdir", NULL};
    for (int i = 0; never[i]; i++) {
        if (strcmp(event, never[i]) == 0) return refuse(event);
    }
    if (strcmp(event, "os.kill") == 0) {
        long long pid = int_arg(args, 0);
        if (pid <= 0 || pid == (long long)getpid()) return refuse("os.kill of the server's process (or its group)");
    } else if (strcmp(event, "os.killpg") == 0) {
        long long pgid = int_arg(args, 0);
        if (pgid <= 1 || pgid == (long long)getpgrp()) return refuse("os.killpg of the server's process group");
    } else if (strcmp(event, "signal.pthread_kill") == 0) {
        if (int_arg(args, 1) != 0) return refuse("signal.pthread_kill (every thread here is the server's)");
    } else if (strcmp(event, "resource.setrlimit") == 0) {
        return refuse("resource.setrlimit (the limits are the server's)");
    } else if (strcmp(event, "resource.prlimit") == 0) {
        long long pid = int_arg(args, 0);
        if (pid == 0 || pid == (long long)getpid()) return refuse("resource.prlimit of the server's process");
    }
    return 0;
}

// Before Py_InitializeEx, so that it covers every interpreter.
int py_install_process_guard(void) { return py.PySys_AddAuditHook(process_guard, NULL); }

// Functions that end or signal the process without an audit event. Their
// entries in their modules' static method tables point at a refusal
// instead, so every copy of the module, in every interpreter, made before or
// after, refuses them, and no Python code can reach the original. Any
// calling convention fits: the refusal reads no argument.
#define PY_GUARDED(X)                                                      \
    X(posix, _exit, "os._exit")                                            \
    X(posix, abort, "os.abort")                                            \
    X(_signal, raise_signal, "signal.raise_signal")                        \
    X(_signal, alarm, "signal.alarm")                                      \
    X(_signal, setitimer, "signal.setitimer")                              \
    X(_posixsubprocess, fork_exec, "_posixsubprocess.fork_exec")

#define PY_REFUSAL(module, name, shown) \
    static PyObject *refused_##module##_##name(PyObject *self, PyObject *args) { \
        (void)self;                                                         \
        (void)args;                                                         \
        refuse(shown);                                                      \
        return NULL;                                                        \
    }
PY_GUARDED(PY_REFUSAL)
#undef PY_REFUSAL

// Points module.name at fn in the module's method table; flags, when not
// -1, are the calling convention fn needs the original to have.
static const char *replace_function(const char *module, const char *name, PyCFunction fn, int flags) {
    static char err[160];
    PyObject *m = py.PyImport_ImportModule(module);
    PyModuleDef *def = m ? py.PyModule_GetDef(m) : NULL;
    if (m) py.Py_DecRef(m);
    if (!def || !def->m_name || strcmp(def->m_name, module) != 0 || !def->m_methods) {
        py.PyErr_Clear();
        snprintf(err, sizeof err, "module %s has no method table to guard", module);
        return err;
    }
    for (PyMethodDef *d = def->m_methods; d->ml_name; d++) {
        if (strcmp(d->ml_name, name) == 0) {
            if (flags != -1 && d->ml_flags != flags) {
                snprintf(err, sizeof err, "%s.%s has calling convention %d, not %d", module, name, d->ml_flags, flags);
                return err;
            }
            d->ml_meth = fn;
            return NULL;
        }
    }
    snprintf(err, sizeof err, "module %s has no function %s to guard", module, name);
    return err;
}

// time.sleep, in every interpreter, is a wait that an interrupt
// (Interp.Interrupt) ends at once: an aborted execution does not sleep on.
// CPython's own sleep only wakes for signals, which reach no sub-interpreter.
typedef struct sleeper {
    unsigned long tid;
    int woken;
    pthread_cond_t cond;
    struct sleeper *next;
} sleeper;

static pthread_mutex_t sleep_mu = PTHREAD_MUTEX_INITIALIZER;
static sleeper *sleepers;

void py_wake(unsigned long tid) {
    pthread_mutex_lock(&sleep_mu);
    for (sleeper *s = sleepers; s; s = s->next) {
        if (s->tid == tid) {
            s->woken = 1;
            pthread_cond_signal(&s->cond);
        }
    }
    pthread_mutex_unlock(&sleep_mu);
}

static PyObject *sleep_interruptibly(PyObject *self, PyObject *arg) {
    (void)self;
    double secs = py.PyFloat_AsDouble(arg);
    if (secs == -1.0 && py.PyErr_Occurred()) return NULL;
    if (secs != secs) {
        py.PyErr_SetString(py.PyExc_ValueError, "Invalid value NaN (not a number)");
        return NULL;
    }
    if (secs < 0) {
        py.PyErr_SetString(py.PyExc_ValueError, "sleep length must be non-negative");
        return NULL;
    }
    struct timespec deadline;
    clock_gettime(CLOCK_MONOTONIC, &deadline);
    if (secs > 1e9) secs = 1e9; // ~31 years: no overflow below
    long long ns = deadline.tv_nsec + (long long)((secs - (double)(long long)secs) * 1e9);
    deadline.tv_sec += (time_t)secs + ns / 1000000000;
    deadline.tv_nsec = ns % 1000000000;

    sleeper s = {.tid = (unsigned long)pthread_self()};
    pthread_condattr_t attr;
    pthread_condattr_init(&attr);
    pthread_condattr_setclock(&attr, CLOCK_MONOTONIC);
    pthread_cond_init(&s.cond, &attr);
    pthread_condattr_destroy(&attr);
    PyThreadState *ts = py.PyEval_SaveThread();
    pthread_mutex_lock(&sleep_mu);
    s.next = sleepers;
    sleepers = &s;
    while (!s.woken && pthread_cond_timedwait(&s.cond, &sleep_mu, &deadline) != ETIMEDOUT) {
    }
    for (sleeper **p = &sleepers; *p; p = &(*p)->next) {
        if (*p == &s) {
            *p = s.next;
            break;
        }
    }
    pthread_mutex_unlock(&sleep_mu);
    py.PyEval_RestoreThread(ts);
    pthread_cond_destroy(&s.cond);
    return py_new_none(); // woken: the interrupt's exception is raised next
}

// With the main interpreter's GIL, once at start; an error names what is
// missing.
const char *py_guard_functions(void) {
    const char *err;
#define PY_GUARD(module, name, shown) \
    if ((err = replace_function(#module, #name, refused_##module##_##name, -1))) return err;
    PY_GUARDED(PY_GUARD)
#undef PY_GUARD
    return replace_function("time", "sleep", sleep_interruptibly, METH_O);
}

PyObject *py_gears_error_type(void) {
    PyObject *m = py.PyImport_AddModuleRef("_gears");
    if (!m) {
        py.PyErr_Clear();
        return py.PyExc_RuntimeError;
    }
    PyObject *t = py.PyDict_GetItemString(py.PyModule_GetDict(m), "error");
    py.Py_DecRef(m);
    return t ? t : py.PyExc_RuntimeError;
}

PyObject *py_raise_gears(const char *msg, Py_ssize_t n) {
    if (n < 0) n = (Py_ssize_t)strlen(msg);
    PyObject *s = py.PyUnicode_DecodeUTF8(msg, n, "replace");
    if (s) {
        py.PyErr_SetObject(py_gears_error_type(), s);
        py.Py_DecRef(s);
    }
    return NULL;
}
