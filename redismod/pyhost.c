// Redis's side of the table interp's natives call (interp/pyhost.h):
// execute() and atomic() for Python, the KeysReader's reads, and a trigger's
// arguments and reply. Only C values cross: strings as pointer and length,
// replies and contexts as opaque pointers.
#include <errno.h>
#include <stdio.h>
#include <string.h>
#include "redismod.h"
#include "pyhost.h"

// The session a thread runs Python for: the one attached on it (every
// attach says so), else the interpreter's (threads that Python started,
// under IsolationMode subinterpreter; none under shared).
gears_session *gears_session_at(void *cell) {
    gears_session *s = gears_thread_state()->session;
    if (s || gears_shared_mode) return s;
    return (gears_session *)cell;
}

// With the Redis lock held: 1 and errbuf filled when the session's user may
// not run this command on these keys.
// cmd (cmdlen bytes, not NUL-terminated) is formatted only for an error:
// every execute() passes here.
static int acl_denied(gears_session *s, RedisModuleString **argv, int argc, const char *cmd, size_t cmdlen,
                      char *err, size_t errlen) {
    if (gears_session_may_run(s, argv, argc)) return 0;
    RedisModuleUser *u = rm.GetModuleUserFromUserName(s->user);
    if (!u) {
        snprintf(err, errlen, "NOPERM the user that ran this script no longer exists");
        return 1;
    }
    rm.FreeModuleUser(u);
    snprintf(err, errlen, "NOPERM this user has no permissions to run the '%.*s' command or to access its keys",
             (int)(cmdlen < 128 ? cmdlen : 128), cmd);
    return 1;
}

#define STACK_ARGS 16

static int host_call(void *cell, int argc, const char **args, const size_t *lens, void **out, char *err,
                     size_t errlen) {
    gears_session *sess = gears_session_at(cell);
    // Without its session there is no ACL user to check the command against.
    if (!sess && gears_shared_mode) {
        snprintf(err, errlen, "execute() is not available on threads started by Python under IsolationMode shared "
                              "(gears cannot tell their session)");
        return PYHOST_FAILED;
    }
    RedisModuleString *stackv[STACK_ARGS];
    RedisModuleString **argv = argc <= STACK_ARGS ? stackv : malloc(sizeof(*argv) * (size_t)argc);
    if (!argv) {
        snprintf(err, errlen, "out of memory");
        return PYHOST_FAILED;
    }
    for (int i = 0; i < argc; i++) argv[i] = rm.CreateString(NULL, args[i], lens[i]);

    gears_thread *t = gears_thread_state();
    int call_errno = 0;
    RedisModuleCallReply *reply = NULL;
    int locked = gears_lock(t);
    if (!acl_denied(sess, argv, argc, args[0], lens[0], err, errlen)) {
        errno = 0;
        // !: replicate, v: argv array, E: errors as replies, M: refuse deny-oom commands at maxmemory.
        // A restored script's writes already happened before the restart:
        // W refuses them, and they return None below.
        const char *fmt = t->restoring ? "vEMW" : "!vEM";
        gears_session *caller = t->calling;
        t->calling = sess; // gears' commands run by it act for its user (gears_caller_name)
        RedisModuleCtx *ctx = t->in_execution && t->sync_depth == 0 ? gears_hookable : gears_detached;
        reply = rm.Call(ctx, args[0], fmt, argv + 1, (size_t)(argc - 1));
        t->calling = caller;
        call_errno = errno;
    }
    // Freed under the lock: the keyspace may now share these objects.
    for (int i = 0; i < argc; i++) rm.FreeString(NULL, argv[i]);
    gears_unlock(t, locked);
    if (argv != stackv) free(argv);

    if (err[0]) return PYHOST_FAILED;
    if (!reply) {
        if (call_errno == ENOENT)
            snprintf(err, errlen, "ERR unknown command '%.*s'", (int)(lens[0] < 128 ? lens[0] : 128), args[0]);
        else snprintf(err, errlen, "%s", call_errno ? strerror(call_errno) : "Failed executing command");
        return PYHOST_FAILED;
    }
    if (t->restoring && rm.CallReplyType(reply) == REDISMODULE_REPLY_ERROR) {
        rm.FreeCallReply(reply);
        return PYHOST_NONE;
    }
    *out = reply;
    return PYHOST_REPLY;
}

static int host_reply_type(void *r) {
    switch (rm.CallReplyType(r)) {
    case REDISMODULE_REPLY_STRING: return PYHOST_STRING;
    case REDISMODULE_REPLY_ERROR: return PYHOST_ERROR;
    case REDISMODULE_REPLY_INTEGER: return PYHOST_INTEGER;
    case REDISMODULE_REPLY_ARRAY: return PYHOST_ARRAY;
    default: return PYHOST_NULL;
    }
}
static const char *host_reply_str(void *r, size_t *n) { return rm.CallReplyStringPtr(r, n); }
static long long host_reply_int(void *r) { return rm.CallReplyInteger(r); }
static size_t host_reply_len(void *r) { return rm.CallReplyLength(r); }
static void *host_reply_elem(void *r, size_t i) { return rm.CallReplyArrayElement(r, i); }
static void host_reply_free(void *r) { rm.FreeCallReply(r); }

static int host_in_atomic(void) { return gears_thread_state()->atomic_depth > 0; }

static void host_atomic_enter(void *cell) {
    gears_thread *t = gears_thread_state();
    if (!t->lock_held) {
        t->atomic_locked = gears_lock(t);
        // Python goes on under the lock: busy, as a sync registration.
        t->atomic_busy = gears_busy_enter(gears_session_at(cell));
    }
    t->atomic_depth = 1;
}

static long long host_session_key(void) {
    gears_session *s = gears_thread_state()->session;
    return gears_shared_mode && s ? s->key : 0;
}

static const char *type_names[] = {"empty", "string", "list", "hash", "set", "zset", "module", "unknown"};

// With the Redis lock held: the key's type and, when asked, its value.
// Reading a missing key fires a keymiss event: gears' own reads fire no
// registration (as in RedisGears), or a keymiss registration's read of its
// key would fire it again.
static void read_key_locked(RedisModuleCtx *ctx, pyhost_key *k, int read_value) {
    gears_thread *t = gears_thread_state();
    t->reading_keys++;
    RedisModuleString *name = rm.CreateString(NULL, k->name, k->name_len);
    RedisModuleKey *key = rm.OpenKey(ctx, name, REDISMODULE_READ);
    int type = key ? rm.KeyType(key) : REDISMODULE_KEYTYPE_EMPTY;
    if (type < 0 || type > REDISMODULE_KEYTYPE_STREAM) type = REDISMODULE_KEYTYPE_STREAM;
    k->type = type_names[type];
    k->kind = PYHOST_VALUE_NONE;
    if (read_value && key) {
        if (type == REDISMODULE_KEYTYPE_STRING) {
            size_t n;
            const char *p = rm.StringDMA(key, &n, REDISMODULE_READ);
            char *copy = malloc(n ? n : 1);
            k->kind = PYHOST_VALUE_STRING;
            if (copy) {
                memcpy(copy, p, n);
                k->str = copy;
                k->str_len = n;
                k->owned = copy;
            }
        } else if (type == REDISMODULE_KEYTYPE_LIST) {
            k->kind = PYHOST_VALUE_LIST;
            k->reply = rm.Call(ctx, "LRANGE", "scc", name, "0", "-1");
        } else if (type == REDISMODULE_KEYTYPE_HASH) {
            k->kind = PYHOST_VALUE_HASH;
            k->reply = rm.Call(ctx, "HGETALL", "s", name);
        }
    }
    if (key) rm.CloseKey(key);
    rm.FreeString(NULL, name);
    t->reading_keys--;
}

static void host_free_key(pyhost_key *k) {
    free(k->owned);
    if (k->reply) rm.FreeCallReply(k->reply);
}

void gears_free_keys(pyhost_keys *b) {
    for (size_t i = 0; i < b->n; i++) host_free_key(&b->keys[i]);
    free(b->keys);
    if (b->owned) rm.FreeCallReply(b->owned);
    free(b);
}

// One SCAN chunk, read under the Redis lock (taken here unless this thread
// holds it). Keys the session's user may not read are left out, as if they
// did not exist (see acl.c).
pyhost_keys *gears_scan_chunk(gears_session *sess, const char *cursor, const char *pattern, long long count,
                              int read_value, char *err, size_t errlen) {
    char count_s[32];
    snprintf(count_s, sizeof count_s, "%lld", count);
    int match_all = strcmp(pattern, "*") == 0;
    gears_thread *t = gears_thread_state();
    RedisModuleCtx *ctx = gears_detached;
    pyhost_keys *b = calloc(1, sizeof *b);
    if (!b) {
        snprintf(err, errlen, "out of memory");
        return NULL;
    }
    b->read_value = read_value;
    int locked = gears_lock(t);
    RedisModuleCallReply *r = match_all ? rm.Call(ctx, "SCAN", "cccE", cursor, "COUNT", count_s)
                                        : rm.Call(ctx, "SCAN", "cccccE", cursor, "MATCH", pattern, "COUNT", count_s);
    b->owned = r;
    if (r && rm.CallReplyType(r) == REDISMODULE_REPLY_ARRAY && rm.CallReplyLength(r) == 2) {
        int restricted;
        RedisModuleUser *u = gears_session_user(sess, &restricted);
        RedisModuleCallReply *list = rm.CallReplyArrayElement(r, 1);
        size_t listed = rm.CallReplyLength(list);
        b->keys = calloc(listed ? listed : 1, sizeof *b->keys);
        for (size_t i = 0; b->keys && i < listed; i++) {
            pyhost_key *k = &b->keys[b->n];
            k->name = rm.CallReplyStringPtr(rm.CallReplyArrayElement(list, i), &k->name_len);
            if (restricted && !gears_user_may_read(u, k->name, k->name_len)) continue;
            if (read_value) read_key_locked(ctx, k, 1);
            b->n++;
        }
        if (u) rm.FreeModuleUser(u);
    }
    gears_unlock(t, locked);
    if (!r || !b->keys) {
        if (r && rm.CallReplyType(r) == REDISMODULE_REPLY_ERROR) {
            size_t len;
            const char *p = rm.CallReplyStringPtr(r, &len);
            snprintf(err, errlen, "%.*s", (int)len, p);
        } else {
            snprintf(err, errlen, "SCAN failed");
        }
        gears_free_keys(b);
        return NULL;
    }
    b->next = rm.CallReplyStringPtr(rm.CallReplyArrayElement(r, 0), &b->next_len);
    return b;
}

static int host_read_key(void *cell, const char *name, size_t len, int read_value, pyhost_key *k) {
    gears_thread *t = gears_thread_state();
    k->name = name;
    k->name_len = len;
    int locked = gears_lock(t);
    int readable = gears_session_may_read(gears_session_at(cell), name, len);
    if (readable) read_key_locked(gears_detached, k, read_value);
    gears_unlock(t, locked);
    return readable;
}

// The type of a key (RedisGears' names), with the Redis lock held.
const char *gears_key_type(RedisModuleCtx *ctx, const char *name, size_t len) {
    pyhost_key k = {.name = name, .name_len = len};
    read_key_locked(ctx ? ctx : gears_detached, &k, 0);
    return k.type;
}

static const char *host_arg(void *argv, int i, size_t *n) { return rm.StringPtrLen(((RedisModuleString **)argv)[i], n); }
static void host_reply_with_int(void *ctx, long long v) { rm.ReplyWithLongLong(ctx, v); }
static void host_reply_with_string(void *ctx, const char *p, size_t n) { rm.ReplyWithStringBuffer(ctx, p, n); }
static void host_reply_with_array(void *ctx, long n) { rm.ReplyWithArray(ctx, n); }
static void host_reply_with_status(void *ctx, const char *s) { rm.ReplyWithSimpleString(ctx, s); }

static const pyhost table = {
    .call = host_call,
    .reply_type = host_reply_type,
    .reply_str = host_reply_str,
    .reply_int = host_reply_int,
    .reply_len = host_reply_len,
    .reply_elem = host_reply_elem,
    .reply_free = host_reply_free,
    .in_atomic = host_in_atomic,
    .atomic_enter = host_atomic_enter,
    .atomic_exit = gears_release_atomic,
    .scanner_open = gears_scanner_open,
    .scanner_next = gears_scanner_next,
    .scanner_close = gears_scanner_close,
    .free_keys = gears_free_keys,
    .read_key = host_read_key,
    .free_key = host_free_key,
    .session_key = host_session_key,
    .arg = host_arg,
    .reply_with_int = host_reply_with_int,
    .reply_with_string = host_reply_with_string,
    .reply_with_array = host_reply_with_array,
    .reply_with_status = host_reply_with_status,
    .leave_python = gears_host_pause,
    .return_to_python = gears_host_resume,
};

uintptr_t gears_pyhost(void) { return (uintptr_t)&table; }
