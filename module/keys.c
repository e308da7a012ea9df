// The KeysReader's reads, in C: one Redis lock hold reads a SCAN chunk of keys
// (type and value), then the records are built as Python objects straight
// from the bytes, without the lock and without a round trip through Go.
// Keys the session's user may not read are left out, as if they did not
// exist (see acl.c).
#include <stdio.h>
#include <string.h>
#include "module.h"

typedef struct {
    const char *name; // points into the SCAN reply (or the caller's string)
    size_t name_len;
    int type;
    char *str; // copy of a string value
    size_t str_len;
    RedisModuleCallReply *reply; // list or hash value
} key_read;

static const char *type_names[] = {"empty", "string", "list", "hash", "set", "zset", "module", "unknown"};

// With the Redis lock held. Streams report 'unknown' and sets/zsets no
// value, as RedisGears 1.2 does.
// Reading a missing key fires a keymiss event: gears' own reads fire no
// registration (as in RedisGears), or a keymiss registration's read of its
// key would fire it again.
static void read_key_locked(RedisModuleCtx *ctx, key_read *k, int read_value) {
    gears_thread *t = gears_thread_state();
    t->reading_keys++;
    RedisModuleString *name = rm.CreateString(NULL, k->name, k->name_len);
    RedisModuleKey *key = rm.OpenKey(ctx, name, REDISMODULE_READ);
    k->type = key ? rm.KeyType(key) : REDISMODULE_KEYTYPE_EMPTY;
    if (k->type < 0 || k->type > REDISMODULE_KEYTYPE_STREAM) k->type = REDISMODULE_KEYTYPE_STREAM;
    if (read_value && key) {
        if (k->type == REDISMODULE_KEYTYPE_STRING) {
            size_t n;
            const char *p = rm.StringDMA(key, &n, REDISMODULE_READ);
            if ((k->str = malloc(n ? n : 1))) {
                memcpy(k->str, p, n);
                k->str_len = n;
            }
        } else if (k->type == REDISMODULE_KEYTYPE_LIST) {
            k->reply = rm.Call(ctx, "LRANGE", "scc", name, "0", "-1");
        } else if (k->type == REDISMODULE_KEYTYPE_HASH) {
            k->reply = rm.Call(ctx, "HGETALL", "s", name);
        }
    }
    if (key) rm.CloseKey(key);
    rm.FreeString(NULL, name);
    t->reading_keys--;
}

static PyObject *decode(const char *p, size_t n) {
    PyObject *s = py.PyUnicode_DecodeUTF8(p, (Py_ssize_t)n, "strict");
    if (s) return s;
    py.PyErr_Clear();
    return py.PyByteArray_FromStringAndSize(p, (Py_ssize_t)n);
}

static int set_item(PyObject *d, const char *k, PyObject *v) {
    if (!v) return -1;
    int rc = py.PyDict_SetItemString(d, k, v);
    py.Py_DecRef(v);
    return rc;
}

static PyObject *reply_value(key_read *k) {
    RedisModuleCallReply *r = k->reply;
    if (!r || rm.CallReplyType(r) != REDISMODULE_REPLY_ARRAY) return py_new_none();
    size_t n = rm.CallReplyLength(r);
    size_t len;
    const char *p;
    if (k->type == REDISMODULE_KEYTYPE_LIST) {
        PyObject *l = py.PyList_New((Py_ssize_t)n);
        for (size_t i = 0; l && i < n; i++) {
            p = rm.CallReplyStringPtr(rm.CallReplyArrayElement(r, i), &len);
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
        p = rm.CallReplyStringPtr(rm.CallReplyArrayElement(r, i), &len);
        PyObject *f = decode(p, len);
        p = rm.CallReplyStringPtr(rm.CallReplyArrayElement(r, i + 1), &len);
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
static PyObject *make_record(key_read *k, int read_value) {
    PyObject *d = py.PyDict_New();
    if (!d) return NULL;
    if (set_item(d, "key", decode(k->name, k->name_len)) < 0) goto fail;
    if (read_value) {
        PyObject *v;
        if (k->type == REDISMODULE_KEYTYPE_STRING) v = k->str ? decode(k->str, k->str_len) : py_new_none();
        else v = reply_value(k);
        if (set_item(d, "value", v) < 0) goto fail;
        const char *t = type_names[k->type];
        if (set_item(d, "type", py.PyUnicode_FromStringAndSize(t, (Py_ssize_t)strlen(t))) < 0) goto fail;
    }
    if (set_item(d, "event", py_new_none()) < 0) goto fail;
    return d;
fail:
    py.Py_DecRef(d);
    return NULL;
}

static void free_read(key_read *k) {
    free(k->str);
    if (k->reply) rm.FreeCallReply(k->reply);
}


// scan_keys(cursor, pattern, count, read_value) -> (next_cursor, [records])
PyObject *gears_scan_keys(PyObject *self, PyObject *args) {
    if (py.PyTuple_Size(args) != 4) return py_raise_gears("scan_keys takes 4 arguments", -1);
    const char *cursor = py.PyUnicode_AsUTF8AndSize(py.PyTuple_GetItem(args, 0), NULL);
    const char *pattern = py.PyUnicode_AsUTF8AndSize(py.PyTuple_GetItem(args, 1), NULL);
    long long count = py.PyLong_AsLongLong(py.PyTuple_GetItem(args, 2));
    int read_value = py.PyObject_IsTrue(py.PyTuple_GetItem(args, 3));
    if (!cursor || !pattern || py.PyErr_Occurred()) return NULL;
    char count_s[32];
    snprintf(count_s, sizeof count_s, "%lld", count);
    int match_all = strcmp(pattern, "*") == 0;

    gears_thread *t = gears_thread_state();
    RedisModuleCtx *ctx = gears_detached;
    gears_session *sess = gears_session_of(self);
    key_read *keys = NULL;
    size_t n = 0;
    PyThreadState *ts = py.PyEval_SaveThread();
    int locked = gears_lock(t);
    RedisModuleCallReply *r = match_all ? rm.Call(ctx, "SCAN", "cccE", cursor, "COUNT", count_s)
                                        : rm.Call(ctx, "SCAN", "cccccE", cursor, "MATCH", pattern, "COUNT", count_s);
    RedisModuleCallReply *list = NULL;
    if (r && rm.CallReplyType(r) == REDISMODULE_REPLY_ARRAY && rm.CallReplyLength(r) == 2) {
        int restricted;
        RedisModuleUser *u = gears_session_user(sess, &restricted);
        list = rm.CallReplyArrayElement(r, 1);
        size_t listed = rm.CallReplyLength(list);
        keys = calloc(listed ? listed : 1, sizeof *keys);
        for (size_t i = 0; keys && i < listed; i++) {
            key_read *k = &keys[n];
            k->name = rm.CallReplyStringPtr(rm.CallReplyArrayElement(list, i), &k->name_len);
            if (restricted && !gears_user_may_read(u, k->name, k->name_len)) continue;
            if (read_value) read_key_locked(ctx, k, 1);
            n++;
        }
        if (u) rm.FreeModuleUser(u);
    }
    gears_unlock(t, locked);
    py.PyEval_RestoreThread(ts);

    PyObject *out = NULL;
    if (!r || !keys) {
        if (r && rm.CallReplyType(r) == REDISMODULE_REPLY_ERROR) {
            size_t len;
            const char *p = rm.CallReplyStringPtr(r, &len);
            py_raise_gears(p, (Py_ssize_t)len);
        } else {
            py_raise_gears("SCAN failed", -1);
        }
        goto done;
    }
    size_t clen;
    const char *next = rm.CallReplyStringPtr(rm.CallReplyArrayElement(r, 0), &clen);
    PyObject *records = py.PyList_New((Py_ssize_t)n);
    for (size_t i = 0; records && i < n; i++) {
        PyObject *rec = make_record(&keys[i], read_value);
        if (!rec) {
            py.Py_DecRef(records);
            records = NULL;
            break;
        }
        py.PyList_SetItem(records, (Py_ssize_t)i, rec);
    }
    if (records) {
        out = py.PyTuple_New(2);
        if (out) {
            py.PyTuple_SetItem(out, 0, py.PyUnicode_FromStringAndSize(next, (Py_ssize_t)clen));
            py.PyTuple_SetItem(out, 1, records);
        } else {
            py.Py_DecRef(records);
        }
    }
done:
    for (size_t i = 0; keys && i < n; i++) free_read(&keys[i]);
    free(keys);
    if (r) rm.FreeCallReply(r);
    return out;
}

// read_key(name, read_value) -> record, or None when the session's user may
// not read the key (KeysReader with noScan, and a registration's event)
PyObject *gears_read_key(PyObject *self, PyObject *args) {
    if (py.PyTuple_Size(args) != 2) return py_raise_gears("read_key takes 2 arguments", -1);
    key_read k = {0};
    Py_ssize_t len;
    k.name = py.PyUnicode_AsUTF8AndSize(py.PyTuple_GetItem(args, 0), &len);
    if (!k.name) return NULL;
    k.name_len = (size_t)len;
    int read_value = py.PyObject_IsTrue(py.PyTuple_GetItem(args, 1));
    gears_session *sess = gears_session_of(self);
    gears_thread *t = gears_thread_state();
    PyThreadState *ts = py.PyEval_SaveThread();
    int locked = gears_lock(t);
    int readable = gears_session_may_read(sess, k.name, k.name_len);
    if (readable) read_key_locked(gears_detached, &k, read_value);
    gears_unlock(t, locked);
    py.PyEval_RestoreThread(ts);
    if (!readable) return py_new_none();
    PyObject *rec = make_record(&k, read_value);
    free_read(&k);
    return rec;
}

// The type of a key (RedisGears' names), with the Redis lock held.
const char *gears_key_type(RedisModuleCtx *ctx, const char *name, size_t len) {
    key_read k = {.name = name, .name_len = len};
    read_key_locked(ctx ? ctx : gears_detached, &k, 0);
    return type_names[k.type];
}
