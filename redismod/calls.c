// The calling thread's gears state, the Redis lock, and commands run from
// Go. Lock order: never wait for the Redis lock while holding a GIL (the
// callers release theirs first).
#include <string.h>
#include "redismod.h"

static __thread gears_thread tls;

gears_thread *gears_thread_state(void) { return &tls; }

int gears_shared_mode;

// Whether the command being served now (the Redis lock is held) could be
// blocked: not inside MULTI, Lua or functions, nor while loading.
int gears_may_block_here(void) {
    int flags = rm.GetContextFlags(NULL);
    return (flags & (REDISMODULE_CTX_FLAGS_MULTI | REDISMODULE_CTX_FLAGS_LUA | REDISMODULE_CTX_FLAGS_LOADING |
                     REDISMODULE_CTX_FLAGS_ASYNC_LOADING)) == 0;
}

// Takes the Redis lock unless this thread holds it already, and marks the
// thread as holding it: commands run under it may fire keyspace events whose
// sync registrations call execute() again on this thread. Returns how it
// locked (for gears_unlock).
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

// Leaves an atomic() block; also called when a script or step returns, so a
// block left open by an exception or a missing __exit__ never keeps Redis
// locked.
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
