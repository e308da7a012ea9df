// Declarations shared by redismod's C and Go files.
#ifndef GEARS_REDISMOD_H
#define GEARS_REDISMOD_H

#include <stdint.h>
#include <stdlib.h>
#include "rm.h"
#include "pyhost.h"

#define GEARS_MAX_COMMANDS 64

// The per-session data native functions need, in C memory so Python threads
// can read it without calling Go.
typedef struct {
    RedisModuleString *user; // ACL user of the client that created the session; NULL: no check
    long long key;           // unique for the process's life: how Python names the session
} gears_session;

// IsolationMode shared: every session runs in one interpreter, so only the
// thread can tell whose Python runs (gears_session_at).
extern int gears_shared_mode;

// What the current OS thread may do with Redis while running Python.
typedef struct {
    int lock_held;       // the Redis lock is held by this thread (main thread or atomic())
    int atomic_depth;
    int atomic_locked; // atomic() took the lock itself and must release it
    int restoring;     // re-running a session's script after a restart: no writes
    gears_session *session; // the session this thread is attached for now, if any (every attach sets it)
    int busy_depth;    // Python runs entered while holding the Redis lock (busy.c)
    int busy_python;   // in one of them, and in Python now, not in Redis
    void *atomic_busy; // atomic() took the lock: its busy_enter
    int event_depth;   // registrations' runs under way on this thread, nested (Execution.Depth)
    int sync_depth;    // sync registrations' runs under way on this thread (they may go async
                       // only where the command that fired them could block: not in MULTI or Lua)
    int no_async;      // runs under way here that must not go async (call_next's hooks)
    gears_session *calling; // the session whose execute() runs a command on this thread now
    int in_execution;  // running an execution on an execution thread (see gears_hookable)
    int reading_keys;  // gears reads keys for a reader: the events this fires are not for registrations
} gears_thread;

RedisModuleString *gears_caller_name(RedisModuleCtx *ctx);

int gears_may_block_here(void);

extern RedisModuleCtx *gears_detached; // detached thread-safe context: logging, background calls
// A context of no module, for execute() in an execution on an execution
// thread: command hooks apply to its commands, as in RedisGears (where
// execute() used such a context there); gears' other calls skip them
// (REDISMODULE_CMDFILTER_NOSELF).
extern RedisModuleCtx *gears_hookable;
#define GEARS_YIELD_CTXS 6
extern RedisModuleCtx *gears_yield_ctx[GEARS_YIELD_CTXS]; // the watchdog's, for RedisModule_Yield (busy.c)

void *gears_busy_enter(gears_session *s);
void gears_busy_leave(void *entered);
static inline uintptr_t gears_busy_enter_h(gears_session *s) { return (uintptr_t)gears_busy_enter(s); }
static inline void gears_busy_leave_h(uintptr_t entered) { gears_busy_leave((void *)entered); }
int gears_busy_pause(gears_thread *t);
void gears_busy_resume(gears_thread *t, int paused);
int gears_host_pause(void);
void gears_host_resume(int paused);
long long gears_busy_tick(long long max_us, long long *sess_key, unsigned long *tid, int *busy);
int gears_busy_kill(void);
int gears_busy_running(long long r);
enum { BUSY_KILLED = 1, BUSY_OVERTIME = 2 };
int gears_busy_kill_why(void);
long long gears_now_us(void);

int gears_session_may_run(gears_session *s, RedisModuleString **argv, int argc);
int gears_session_may_read(gears_session *s, const char *key, size_t len);
RedisModuleUser *gears_session_user(gears_session *s, int *restricted);
int gears_user_may_read(RedisModuleUser *u, const char *key, size_t len);
int gears_caller_may_run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
int gears_caller_is_acl_admin(RedisModuleCtx *ctx);
int gears_from_replication_or_aof(RedisModuleCtx *ctx);
int gears_is_hook_marker(RedisModuleString **argv);

int gears_register_command(RedisModuleCtx *ctx, int id, const char *name, const char *flags,
                           int first, int last, int step);
RedisModuleBlockedClient *gears_block(RedisModuleCtx *ctx);
int gears_unblock(RedisModuleBlockedClient *bc, uint64_t handle);
int gears_register_info(RedisModuleCtx *ctx);
int gears_subscribe_keyspace(RedisModuleCtx *ctx);
void gears_set_snapshot(char *buf, size_t len, char **wheels, size_t nwheels);
int gears_create_aux_type(RedisModuleCtx *ctx);
int gears_create_te_type(RedisModuleCtx *ctx);
int gears_te_claim(int64_t id);
void gears_te_release(int64_t id);
int gears_te_alive(int64_t id);
int gears_te_create(const char *name, size_t len, int64_t period, int64_t timer, int attach);
int gears_is_master(void);
void gears_set_hooked(char **names, int n);
int gears_register_hook_filter(RedisModuleCtx *ctx);
int gears_command_key_positions(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, int *out, int max);
int gears_command_has_key_prefix(RedisModuleCtx *ctx, RedisModuleString **argv, int argc, const char *prefix, size_t plen);
int gears_subscribe_server_events(RedisModuleCtx *ctx);
const char *gears_key_type(RedisModuleCtx *ctx, const char *name, size_t len);

// The KeysReader's SCAN (pyhost.c, scanner.c).
pyhost_keys *gears_scan_chunk(gears_session *sess, const char *cursor, const char *pattern, long long count,
                              int read_value, char *err, size_t errlen);
void gears_free_keys(pyhost_keys *b);
void *gears_scanner_open(void *cell, const char *pattern, long long count, int read_value, char *err, size_t errlen);
pyhost_keys *gears_scanner_next(void *cell, void *scanner, char *err, size_t errlen);
void gears_scanner_close(void *scanner);
void gears_log(RedisModuleCtx *ctx, const char *level, const char *msg);
gears_thread *gears_thread_state(void);
int gears_lock(gears_thread *t);
void gears_unlock(gears_thread *t, int locked);
void gears_release_atomic(void);
RedisModuleString *gears_arg(RedisModuleString **argv, int i);
RedisModuleString **gears_argv_at(RedisModuleString **argv, int i);

RedisModuleCallReply *gears_call(const char *cmd, RedisModuleString **argv, size_t argc, int replicate);
void gears_replicate(const char *cmd, RedisModuleString **argv, size_t argc);

// cluster.c
typedef struct {
    char id[REDISMODULE_NODE_ID_LEN];
    char ip[46];
    char master[REDISMODULE_NODE_ID_LEN];
    int port;
    int flags;
} gears_node;
void gears_cluster_listen(RedisModuleCtx *ctx);
int gears_cluster_send(const char *target, const char *msg, uint32_t len);
gears_node *gears_cluster_nodes(size_t *n);
void gears_cluster_free_nodes(gears_node *n);
const char *gears_cluster_my_id(void);

// The table interp's natives reach Redis through (pyhost.c).
uintptr_t gears_pyhost(void);
gears_session *gears_session_at(void *cell);
static inline gears_session *gears_session_in(uintptr_t cell) { return gears_session_at((void *)cell); }

static inline const char *w_StringPtrLen(const RedisModuleString *s, size_t *n) { return rm.StringPtrLen(s, n); }
static inline int w_ReplyWithError(RedisModuleCtx *c, const char *e) { return rm.ReplyWithError(c, e); }
static inline int w_ReplyWithSimpleString(RedisModuleCtx *c, const char *s) { return rm.ReplyWithSimpleString(c, s); }
static inline int w_ReplyWithStringBuffer(RedisModuleCtx *c, const char *s, size_t n) { return rm.ReplyWithStringBuffer(c, s, n); }
static inline int w_ReplyWithLongLong(RedisModuleCtx *c, long long v) { return rm.ReplyWithLongLong(c, v); }
static inline int w_ReplyWithArray(RedisModuleCtx *c, long n) { return rm.ReplyWithArray(c, n); }
static inline int w_ReplyWithNull(RedisModuleCtx *c) { return rm.ReplyWithNull(c); }
static inline int w_WrongArity(RedisModuleCtx *c) { return rm.WrongArity(c); }
static inline int w_GetContextFlags(RedisModuleCtx *c) { return rm.GetContextFlags(c); }
static inline int w_MeasureStart(RedisModuleBlockedClient *bc) { return rm.BlockedClientMeasureTimeStart(bc); }
static inline int w_MeasureEnd(RedisModuleBlockedClient *bc) { return rm.BlockedClientMeasureTimeEnd(bc); }
static inline unsigned long long w_GetClientId(RedisModuleCtx *c) { return rm.GetClientId(c); }
static inline void w_FreeString(RedisModuleString *s) { rm.FreeString(NULL, s); }
static inline int w_InfoAddSection(RedisModuleInfoCtx *c, const char *n) { return rm.InfoAddSection(c, n); }
static inline int w_InfoAddFieldLongLong(RedisModuleInfoCtx *c, const char *f, long long v) { return rm.InfoAddFieldLongLong(c, f, v); }
static inline RedisModuleString *w_CreateString(const char *p, size_t n) { return rm.CreateString(NULL, p, n); }
static inline int w_CallReplyType(RedisModuleCallReply *r) { return rm.CallReplyType(r); }
static inline const char *w_CallReplyStringPtr(RedisModuleCallReply *r, size_t *n) { return rm.CallReplyStringPtr(r, n); }
static inline long long w_CallReplyInteger(RedisModuleCallReply *r) { return rm.CallReplyInteger(r); }
static inline size_t w_CallReplyLength(RedisModuleCallReply *r) { return rm.CallReplyLength(r); }
static inline RedisModuleCallReply *w_CallReplyArrayElement(RedisModuleCallReply *r, size_t i) { return rm.CallReplyArrayElement(r, i); }
static inline void w_FreeCallReply(RedisModuleCallReply *r) { rm.FreeCallReply(r); }

#endif
