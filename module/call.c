// execute() and atomic() for Python, in C: they run once per Redis command a
// script issues, so arguments go straight from Python objects to Redis strings
// and replies straight back, without a trip through Go.
//
// Lock order: never wait for the Redis lock while holding a GIL. Both paths
// release the interpreter's GIL before taking the Redis lock.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "module.h"
#include "_cgo_export.h"

static __thread gears_thread tls;

gears_thread *gears_thread_state(void) { return &tls; }

// Whether the command being served now (the Redis lock is held) could be
// blocked: not inside MULTI, Lua or functions, nor while loading.
int gears_may_block_here(void) {
    int flags = rm.GetContextFlags(NULL);
    return (flags & (REDISMODULE_CTX_FLAGS_MULTI | REDISMODULE_CTX_FLAGS_LUA | REDISMODULE_CTX_FLAGS_LOADING |
                     REDISMODULE_CTX_FLAGS_ASYNC_LOADING)) == 0;
}

// Takes the Redis lock unless this thread holds it already, and marks the
// thread as holding it: commands run under it may fire keyspace events whose
// sync registrations call execute() again on this thread. Returns whether it
// locked (to pass to gears_unlock).
//
// A thread that holds the lock already and runs Python under it leaves
// Python for Redis here (see busy.c): it takes Redis back from the watchdog.
int gears_lock(gears_thread *t) {
    if (t->lock_held) return gears_busy_pause(t) ? 2 : 0;
    rm.ThreadSafeContextLock(gears_detached);
    t->lock_held = 1;
    return 1;
}

void gears_unlock(gears_thread *t, int locked) {
    if (locked == 2) {
        gears_busy_resume(t, 1);
    } else if (locked) {
        t->lock_held = 0;
        rm.ThreadSafeContextUnlock(gears_detached);
    }
}


// Bulk strings become str, or bytearray when they are not UTF-8 (as in
// RedisGears); nested errors become their text.
static PyObject *reply_to_py(RedisModuleCallReply *r) {
    size_t len;
    const char *p;
    switch (rm.CallReplyType(r)) {
    case REDISMODULE_REPLY_STRING:
    case REDISMODULE_REPLY_ERROR: {
        p = rm.CallReplyStringPtr(r, &len);
        PyObject *s = py.PyUnicode_DecodeUTF8(p, (Py_ssize_t)len, "strict");
        if (s) return s;
        py.PyErr_Clear();
        return py.PyByteArray_FromStringAndSize(p, (Py_ssize_t)len);
    }
    case REDISMODULE_REPLY_INTEGER:
        return py.PyLong_FromLongLong(rm.CallReplyInteger(r));
    case REDISMODULE_REPLY_ARRAY: {
        size_t n = rm.CallReplyLength(r);
        PyObject *list = py.PyList_New((Py_ssize_t)n);
        if (!list) return NULL;
        for (size_t i = 0; i < n; i++) {
            PyObject *e = reply_to_py(rm.CallReplyArrayElement(r, i));
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

// bytes and bytearray go as they are, str as UTF-8, anything else as str(x).
static RedisModuleString *arg_to_string(PyObject *o) {
    char *p;
    Py_ssize_t n;
    if (py_is(o, py.PyBytes_Type)) {
        if (py.PyBytes_AsStringAndSize(o, &p, &n) < 0) return NULL;
        return rm.CreateString(NULL, p, (size_t)n);
    }
    if (py_is(o, py.PyByteArray_Type)) {
        return rm.CreateString(NULL, py.PyByteArray_AsString(o), (size_t)py.PyByteArray_Size(o));
    }
    PyObject *s;
    if (py_is(o, py.PyUnicode_Type)) {
        py.Py_IncRef(o);
        s = o;
    } else if (!(s = py.PyObject_Str(o))) {
        return NULL;
    }
    const char *u = py.PyUnicode_AsUTF8AndSize(s, &n);
    RedisModuleString *r = u ? rm.CreateString(NULL, u, (size_t)n) : NULL;
    py.Py_DecRef(s);
    return r;
}

int gears_shared_mode;

gears_session *gears_session_of(PyObject *self) {
    if (tls.session) return tls.session;
    void **slot = (void **)py_native_slot(self);
    return slot ? (gears_session *)*slot : NULL;
}

// _gears.session_key(): the key of the session this thread runs Python for
// under IsolationMode shared; 0 otherwise (an own-GIL interpreter is its
// session's alone).
PyObject *gears_session_key(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    return py.PyLong_FromLongLong(tls.session ? tls.session->key : 0);
}

// With the Redis lock held: 1 and errbuf filled when the session's user may
// not run this command on these keys.
static int acl_denied(gears_session *s, RedisModuleString **argv, int argc, const char *cmd,
                      char *errbuf, size_t errlen) {
    if (gears_session_may_run(s, argv, argc)) return 0;
    RedisModuleUser *u = rm.GetModuleUserFromUserName(s->user);
    if (!u) {
        snprintf(errbuf, errlen, "NOPERM the user that ran this script no longer exists");
        return 1;
    }
    rm.FreeModuleUser(u);
    snprintf(errbuf, errlen, "NOPERM this user has no permissions to run the '%s' command or to access its keys", cmd);
    return 1;
}

#define STACK_ARGS 16

PyObject *gears_execute(PyObject *self, PyObject *args) {
    Py_ssize_t n = py.PyTuple_Size(args);
    if (n == 0) return py.PyList_New(0);
    PyObject *cmdobj = py.PyTuple_GetItem(args, 0);
    if (!py_is(cmdobj, py.PyUnicode_Type)) return py_raise_gears("the given command must be a string", -1);
    Py_ssize_t cmdlen;
    const char *cmd = py.PyUnicode_AsUTF8AndSize(cmdobj, &cmdlen); // alive as long as args
    if (!cmd) return NULL;
    gears_session *sess = gears_session_of(self);
    // Without its session there is no ACL user to check the command against.
    if (!sess && gears_shared_mode)
        return py_raise_gears("execute() is not available on threads started by Python under IsolationMode shared "
                              "(gears cannot tell their session)", -1);

    RedisModuleString *stackv[STACK_ARGS];
    RedisModuleString **argv = n <= STACK_ARGS ? stackv : malloc(sizeof(*argv) * (size_t)n);
    if (!argv) return py_raise_gears("out of memory", -1);
    Py_ssize_t built = 0;
    argv[built++] = rm.CreateString(NULL, cmd, (size_t)cmdlen);
    for (; built < n; built++) {
        if (!(argv[built] = arg_to_string(py.PyTuple_GetItem(args, built)))) break;
    }
    if (built < n) {
        for (Py_ssize_t i = 0; i < built; i++) rm.FreeString(NULL, argv[i]);
        if (argv != stackv) free(argv);
        return NULL;
    }

    gears_thread *t = &tls;
    char errbuf[256] = {0};
    int call_errno = 0;
    RedisModuleCallReply *reply = NULL;

    PyThreadState *ts = py.PyEval_SaveThread();
    int locked = gears_lock(t);
    if (!acl_denied(sess, argv, (int)n, cmd, errbuf, sizeof errbuf)) {
        errno = 0;
        // !: replicate, v: argv array, E: errors as replies, M: refuse deny-oom commands at maxmemory.
        // A restored script's writes already happened before the restart:
        // W refuses them, and they return None below.
        const char *fmt = t->restoring ? "vEMW" : "!vEM";
        gears_session *caller = t->calling;
        t->calling = sess; // gears' commands run by it act for its user (gears_caller_name)
        RedisModuleCtx *ctx = t->in_execution && t->sync_depth == 0 ? gears_hookable : gears_detached;
        reply = rm.Call(ctx, cmd, fmt, argv + 1, (size_t)(n - 1));
        t->calling = caller;
        call_errno = errno;
    }
    // Freed under the lock: the keyspace may now share these objects.
    for (Py_ssize_t i = 0; i < n; i++) rm.FreeString(NULL, argv[i]);
    gears_unlock(t, locked);
    py.PyEval_RestoreThread(ts);

    if (argv != stackv) free(argv);
    if (errbuf[0]) return py_raise_gears(errbuf, -1);
    if (!reply) {
        if (call_errno == ENOENT) snprintf(errbuf, sizeof errbuf, "ERR unknown command '%s'", cmd);
        else snprintf(errbuf, sizeof errbuf, "%s", call_errno ? strerror(call_errno) : "Failed executing command");
        return py_raise_gears(errbuf, -1);
    }
    PyObject *res;
    if (t->restoring && rm.CallReplyType(reply) == REDISMODULE_REPLY_ERROR) {
        rm.FreeCallReply(reply);
        return py_new_none();
    }
    if (rm.CallReplyType(reply) == REDISMODULE_REPLY_ERROR) {
        size_t len;
        const char *p = rm.CallReplyStringPtr(reply, &len);
        res = py_raise_gears(p, (Py_ssize_t)len);
    } else {
        res = reply_to_py(reply);
    }
    rm.FreeCallReply(reply);
    return res;
}

PyObject *gears_atomic_enter(PyObject *self, PyObject *unused) {
    (void)unused;
    gears_thread *t = &tls;
    if (t->atomic_depth > 0) return py_raise_gears("Already inside an atomic block", -1);
    if (!t->lock_held) {
        PyThreadState *ts = py.PyEval_SaveThread();
        t->atomic_locked = gears_lock(t);
        // Python goes on under the lock: busy, as a sync registration.
        t->atomic_busy = gears_busy_enter(gears_session_of(self));
        py.PyEval_RestoreThread(ts);
    }
    t->atomic_depth = 1;
    return py_new_none();
}

PyObject *gears_atomic_exit(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
    gears_release_atomic();
    return py_new_none();
}

// Also called when a script or step returns, so a block left open by an
// exception or a missing __exit__ never keeps Redis locked.
void gears_release_atomic(void) {
    gears_thread *t = &tls;
    gears_busy_leave(t->atomic_busy);
    t->atomic_busy = NULL;
    gears_unlock(t, t->atomic_locked);
    t->atomic_locked = 0;
    t->atomic_depth = 0;
}

// A command from Go (management paths, not per record): takes the Redis lock
// unless this thread holds it. Frees argv.
RedisModuleCallReply *gears_call(const char *cmd, RedisModuleString **argv, size_t argc, int replicate) {
    gears_thread *t = &tls;
    int locked = gears_lock(t);
    RedisModuleCallReply *r = rm.Call(gears_detached, cmd, replicate ? "!vE" : "vE", argv, argc);
    for (size_t i = 0; i < argc; i++) rm.FreeString(NULL, argv[i]);
    gears_unlock(t, locked);
    return r;
}

// Sends a command to replicas and the AOF; frees argv.
void gears_replicate(const char *cmd, RedisModuleString **argv, size_t argc) {
    gears_thread *t = &tls;
    int locked = gears_lock(t);
    rm.Replicate(gears_detached, cmd, "v", argv, argc);
    for (size_t i = 0; i < argc; i++) rm.FreeString(NULL, argv[i]);
    gears_unlock(t, locked);
}

// _gears.resume(sid): the async records that suspended execution `sid` of
// this interpreter waited for have all been continued. Unlike host
// functions it keeps the GIL: the code that continued the last one goes on
// before the execution can (as in RedisGears, where it resumes later).
PyObject *gears_resume(PyObject *self, PyObject *arg) {
    long long sid = py.PyLong_AsLongLong(arg);
    if (sid == -1 && py.PyErr_Occurred()) return NULL;
    goResume(py_native_slot(self), sid);
    return py_new_none();
}

// _gears.in_atomic(): whether this thread is inside atomic().
PyObject *gears_in_atomic(PyObject *self, PyObject *unused) { return py_bool(tls.atomic_depth > 0); }
