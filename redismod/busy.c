// Python that runs while its thread holds the Redis lock (a sync
// registration, a command hook or trigger on the main thread, an atomic()
// block) keeps every other client waiting. Past busy-reply-threshold, as for
// a long Lua script, the watchdog thread lets Redis serve clients again:
// they get -BUSY, and the allow-busy commands (RG.PYKILL, SHUTDOWN NOSAVE)
// run.
//
// The watchdog does it with RedisModule_Yield from its own thread, while the
// lock holder is stuck in Python, which cannot touch Redis: `access` is held
// by whichever of the two may touch Redis now. The lock holder gives it up
// when it enters Python (busy_enter) and takes it back whenever it leaves
// Python for Redis: at the end (busy_leave), and around every call into
// gears from that Python (gears_lock, host functions, a trigger's reply).
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include "redismod.h"

static pthread_mutex_t access_mu = PTHREAD_MUTEX_INITIALIZER;

// Under access_mu.
static gears_thread *owner;       // the lock holder running Python, or NULL
static gears_session *owner_sess; // the session whose Python it runs
static unsigned long owner_tid;   // its thread (the Python thread id)
static long long since;           // when its outermost Python began (monotonic µs)
static long long run;             // counts outermost runs: which one a kill is for
static long long kill_run;        // the run RG.PYKILL or ExecutionMaxTime asked to stop
static long long kill_at;         // when (µs), 0: not asked
static int kill_why;              // BUSY_KILLED or BUSY_OVERTIME, read atomically
static long long threshold_us;    // busy-reply-threshold, read once per run that needs it
static long long threshold_run;   // the run it was read for

// The run under way (0: none), readable without access_mu: an interrupt
// checks it holding a GIL, which access_mu's holder may be waiting for.
static long long current_run;

// Set on the watchdog's thread while it yields (and holds access_mu):
// RG.PYKILL runs there then.
static __thread int yielding;

// RedisModule_Yield lets a context yield once per 1/hz (100 ms): the
// watchdog goes round several, to yield at each of its busy ticks. (Made at
// load, they yield at all only from busy-reply-threshold after it: Redis
// sets a new context's first yield time so.)
RedisModuleCtx *gears_yield_ctx[GEARS_YIELD_CTXS];
static int next_ctx;

long long gears_now_us(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (long long)ts.tv_sec * 1000000 + ts.tv_nsec / 1000;
}

void *gears_busy_enter(gears_session *s) {
    gears_thread *t = gears_thread_state();
    if (!t->lock_held) return NULL;
    gears_session *prev = owner_sess;
    if (t->busy_depth++ == 0) {
        pthread_mutex_lock(&access_mu);
        owner = t;
        owner_tid = (unsigned long)pthread_self();
        since = gears_now_us();
        run++;
        __atomic_store_n(&current_run, run, __ATOMIC_RELEASE);
        prev = NULL;
    } // else: in Redis inside outer Python (execute()), holding access already
    owner_sess = s;
    t->busy_python = 1;
    pthread_mutex_unlock(&access_mu);
    return prev ? (void *)prev : (void *)t;
}

void gears_busy_leave(void *entered) {
    if (!entered) return;
    gears_thread *t = gears_thread_state();
    pthread_mutex_lock(&access_mu);
    t->busy_python = 0;
    if (--t->busy_depth == 0) {
        owner = NULL;
        owner_sess = NULL;
        __atomic_store_n(&current_run, 0, __ATOMIC_RELEASE);
        pthread_mutex_unlock(&access_mu);
        return;
    }
    owner_sess = entered == (void *)t ? NULL : (gears_session *)entered; // back to the outer run's
}

int gears_busy_pause(gears_thread *t) {
    if (!t->busy_python) return 0;
    pthread_mutex_lock(&access_mu);
    t->busy_python = 0;
    return 1;
}

void gears_busy_resume(gears_thread *t, int paused) {
    if (!paused) return;
    t->busy_python = 1;
    pthread_mutex_unlock(&access_mu);
}

int gears_host_pause(void) { return gears_busy_pause(gears_thread_state()); }
void gears_host_resume(int paused) { gears_busy_resume(gears_thread_state(), paused); }

static const char *busy_reply =
    "Redis is busy running gears Python code (a sync registration, a command hook or an atomic block) "
    "for longer than busy-reply-threshold. You can only call RG.PYKILL or SHUTDOWN NOSAVE.";

// A numeric config of Redis, read with access_mu held while the lock holder
// is in Python: Redis is ours to call.
static long long read_config(const char *name, long long dflt) {
    long long v = dflt;
    RedisModuleCallReply *r = rm.Call(gears_yield_ctx[0], "CONFIG", "cc", "GET", name);
    if (r && rm.CallReplyType(r) == REDISMODULE_REPLY_ARRAY && rm.CallReplyLength(r) == 2) {
        size_t n;
        const char *p = rm.CallReplyStringPtr(rm.CallReplyArrayElement(r, 1), &n);
        char buf[32];
        if (p && n < sizeof buf) {
            memcpy(buf, p, n);
            buf[n] = 0;
            v = atoll(buf);
        }
    }
    if (r) rm.FreeCallReply(r);
    return v;
}

// When to begin yielding (µs into the run): busy-reply-threshold, but never
// before two of the event loop's sleeps (1/hz each): when the lock holder is
// not the main thread, the main thread must be waiting for the lock by then,
// not inside the event loop's epoll_wait, whose buffers Yield's round of the
// event loop uses too.
static long long read_threshold(void) {
    long long ms = read_config("busy-reply-threshold", 5000);
    long long hz = read_config("hz", 10);
    long long floor_ms = 2000 / (hz > 0 ? hz : 1);
    return (ms > floor_ms ? ms : floor_ms) * 1000;
}

// The watchdog's tick. Past busy-reply-threshold of Python under the lock,
// Redis serves clients for a moment (RG.PYKILL may run then, on this
// thread); past max_us (0: no limit) the run is asked to stop. Returns the
// run to interrupt, its session's key and thread in *sess_key and *tid, or 0.
long long gears_busy_tick(long long max_us, long long *sess_key, unsigned long *tid, int *busy) {
    long long stop = 0;
    *busy = 0;
    if (pthread_mutex_trylock(&access_mu) != 0) return 0; // the lock holder is in Redis now
    if (owner && owner->busy_python) {
        *busy = 1;
        long long now = gears_now_us();
        if (now - since >= 100000 && threshold_run != run) {
            threshold_us = read_threshold();
            threshold_run = run;
        }
        if (threshold_run == run && now - since >= threshold_us) {
            yielding = 1;
            rm.Yield(gears_yield_ctx[next_ctx], REDISMODULE_YIELD_FLAG_CLIENTS, busy_reply);
            next_ctx = (next_ctx + 1) % GEARS_YIELD_CTXS;
            yielding = 0;
        }
        if (max_us > 0 && now - since >= max_us && kill_run != run) {
            __atomic_store_n(&kill_run, run, __ATOMIC_RELEASE);
            kill_at = now;
            __atomic_store_n(&kill_why, BUSY_OVERTIME, __ATOMIC_RELEASE);
        }
        // Repeated until the run ends: an interrupt lands in the innermost
        // Python, which may be a nested registration's.
        if (kill_run == run) {
            stop = run;
            *sess_key = owner_sess ? owner_sess->key : 0; // the session may end once access_mu is let go
            *tid = owner_tid;
        }
    }
    pthread_mutex_unlock(&access_mu);
    return stop;
}

// RG.PYKILL: 1 asked to stop, 0 nothing runs under the lock, -1 asked over
// a second ago in vain (code inside a C function that never checks).
int gears_busy_kill(void) {
    if (!yielding || !owner || !owner->busy_python) return 0;
    long long now = gears_now_us();
    if (kill_run == run) return now - kill_at > 1000000 ? -1 : 1;
    __atomic_store_n(&kill_run, run, __ATOMIC_RELEASE);
    kill_at = now;
    __atomic_store_n(&kill_why, BUSY_KILLED, __ATOMIC_RELEASE);
    return 1;
}

// Why the run under way on this thread was asked to stop (0: it was not).
int gears_busy_kill_why(void) {
    gears_thread *t = gears_thread_state();
    if (!t->busy_depth || __atomic_load_n(&kill_run, __ATOMIC_ACQUIRE) != __atomic_load_n(&current_run, __ATOMIC_ACQUIRE))
        return 0;
    return __atomic_load_n(&kill_why, __ATOMIC_ACQUIRE);
}

// Whether run r is still under way (an interrupt for it may land).
int gears_busy_running(long long r) { return __atomic_load_n(&current_run, __ATOMIC_ACQUIRE) == r; }
