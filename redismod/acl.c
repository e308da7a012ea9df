// ACL checks: what a session's user, or the client of a command, may do
// with Redis. A session remembers the user that ran its script and runs as
// that user: its execute() calls, its readers and the events it sees are
// held to that user's permissions. All of these run with the Redis lock
// held. A NULL user name is Redis's superuser (no restriction), as for the
// AOF client.
#include <errno.h>
#include "redismod.h"

static int user_may_run(RedisModuleString *name, RedisModuleString **argv, int argc) {
    if (!name) return 1;
    RedisModuleUser *u = rm.GetModuleUserFromUserName(name);
    if (!u) return 0; // deleted since: it may do nothing
    errno = 0;
    // An unknown command is let through: Redis then refuses it by its name.
    int ok = rm.ACLCheckCommandPermissions(u, argv, argc) == REDISMODULE_OK || errno == ENOENT;
    rm.FreeModuleUser(u);
    return ok;
}

int gears_session_may_run(gears_session *s, RedisModuleString **argv, int argc) {
    return !s || user_may_run(s->user, argv, argc);
}

// The user of a series of checks by gears_user_may_read: NULL when the
// session has no user (no check applies), else *restricted is set and a NULL
// result means the user was deleted (it may read nothing).
RedisModuleUser *gears_session_user(gears_session *s, int *restricted) {
    *restricted = s && s->user;
    return *restricted ? rm.GetModuleUserFromUserName(s->user) : NULL;
}

int gears_user_may_read(RedisModuleUser *u, const char *key, size_t len) {
    if (!u) return 0;
    RedisModuleString *k = rm.CreateString(NULL, key, len);
    int ok = rm.ACLCheckKeyPermissions(u, k, REDISMODULE_CMD_KEY_ACCESS) == REDISMODULE_OK;
    rm.FreeString(NULL, k);
    return ok;
}

int gears_session_may_read(gears_session *s, const char *key, size_t len) {
    int restricted;
    RedisModuleUser *u = gears_session_user(s, &restricted);
    if (!restricted) return 1;
    int ok = gears_user_may_read(u, key, len);
    if (u) rm.FreeModuleUser(u);
    return ok;
}

// The ACL user name of a command's client (free it), or NULL for none. A
// command that a module runs (RedisModule_Call) has a client without a user
// (RedisModule_GetCurrentUserName would crash on it): when it is gears'
// execute(), the command is its session's user's.
RedisModuleString *gears_caller_name(RedisModuleCtx *ctx) {
    RedisModuleString *name = rm.GetClientUserNameById(ctx, rm.GetClientId(ctx));
    if (name) return name;
    gears_session *s = gears_thread_state()->calling;
    if (!s || !s->user) return NULL;
    size_t n;
    const char *p = rm.StringPtrLen(s->user, &n);
    return rm.CreateString(NULL, p, n);
}

int gears_caller_may_run(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    RedisModuleString *name = gears_caller_name(ctx);
    int ok = user_may_run(name, argv, argc);
    if (name) rm.FreeString(NULL, name);
    return ok;
}

// Whether the client may administer ACL users: such a client could make
// itself any user, so no boundary stands between it and other users' things.
int gears_caller_is_acl_admin(RedisModuleCtx *ctx) {
    RedisModuleString *argv[3] = {rm.CreateString(NULL, "ACL", 3), rm.CreateString(NULL, "SETUSER", 7),
                                  rm.CreateString(NULL, "x", 1)};
    int ok = gears_caller_may_run(ctx, argv, 3);
    for (int i = 0; i < 3; i++) rm.FreeString(NULL, argv[i]);
    return ok;
}

// Whether the command comes from the master's replication link or the AOF:
// the only senders of gears' internal commands besides gears itself.
int gears_from_replication_or_aof(RedisModuleCtx *ctx) {
    return (rm.GetContextFlags(ctx) & REDISMODULE_CTX_FLAGS_REPLICATED) != 0 ||
           rm.GetClientId(ctx) == REDISMODULE_CLIENT_ID_AOF;
}
