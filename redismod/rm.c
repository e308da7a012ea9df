// The module's C side: RedisModule_OnLoad, API resolution, command and
// callback trampolines into Go. Go panics never reach here: every exported Go
// function recovers.
#include <string.h>
#include "redismod.h"
#include "_cgo_export.h"

rm_api rm;
RedisModuleCtx *gears_detached;
RedisModuleCtx *gears_hookable;

// Reported in MODULE LIST: the RedisGears version whose API gears implements.
#define GEARS_MODULE_VERSION 10213

int RedisModule_OnLoad(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    int (*getapi)(const char *, void *) = (int (*)(const char *, void *))((void **)ctx)[0];
    if (getapi("RedisModule_Log", (void *)&rm.Log) != REDISMODULE_OK) return REDISMODULE_ERR;
#define RM_RESOLVE(ret, name, params)                                                        \
    if (getapi("RedisModule_" #name, (void *)&rm.name) != REDISMODULE_OK || !rm.name) {        \
        rm.Log(ctx, "warning", "gears: this Redis lacks RedisModule_" #name " (Redis 7.0+ is required)"); \
        return REDISMODULE_ERR;                                                                \
    }
    RM_FUNCS(RM_RESOLVE)
#undef RM_RESOLVE
    if (rm.IsModuleNameBusy("rg")) {
        rm.Log(ctx, "warning", "gears: a module named rg is already loaded");
        return REDISMODULE_ERR;
    }
    rm.SetModuleAttribs(ctx, "rg", GEARS_MODULE_VERSION, REDISMODULE_APIVER_1);
    gears_detached = rm.GetDetachedThreadSafeContext(ctx);
    gears_hookable = rm.GetThreadSafeContext(NULL);
    for (int i = 0; i < GEARS_YIELD_CTXS; i++) gears_yield_ctx[i] = rm.GetDetachedThreadSafeContext(ctx);
    return goOnLoad(ctx, argv, argc);
}

// A Go runtime cannot be unloaded from a process.
int RedisModule_OnUnload(RedisModuleCtx *ctx) {
    rm.Log(ctx, "warning", "gears: MODULE UNLOAD is not supported; restart Redis to remove the module");
    return REDISMODULE_ERR;
}

// One C entry point per command id: CreateCommand takes bare function pointers.
#define CMD_FN(name, id) \
    static int gears_cmd_##name(RedisModuleCtx *c, RedisModuleString **v, int a) { return goCommand(id, c, v, a); }
#define CMD_FN8(p, base)                                                                 \
    CMD_FN(p##0, base + 0) CMD_FN(p##1, base + 1) CMD_FN(p##2, base + 2) CMD_FN(p##3, base + 3) \
    CMD_FN(p##4, base + 4) CMD_FN(p##5, base + 5) CMD_FN(p##6, base + 6) CMD_FN(p##7, base + 7)
CMD_FN8(a, 0) CMD_FN8(b, 8) CMD_FN8(c, 16) CMD_FN8(d, 24) CMD_FN8(e, 32) CMD_FN8(f, 40) CMD_FN8(g, 48) CMD_FN8(h, 56)
#define CMD_REF8(p) gears_cmd_##p##0, gears_cmd_##p##1, gears_cmd_##p##2, gears_cmd_##p##3, \
                    gears_cmd_##p##4, gears_cmd_##p##5, gears_cmd_##p##6, gears_cmd_##p##7,
static RedisModuleCmdFunc cmd_fns[GEARS_MAX_COMMANDS] = {
    CMD_REF8(a) CMD_REF8(b) CMD_REF8(c) CMD_REF8(d) CMD_REF8(e) CMD_REF8(f) CMD_REF8(g) CMD_REF8(h)};

int gears_register_command(RedisModuleCtx *ctx, int id, const char *name, const char *flags,
                           int first, int last, int step) {
    if (id < 0 || id >= GEARS_MAX_COMMANDS) return REDISMODULE_ERR;
    return rm.CreateCommand(ctx, name, cmd_fns[id], flags, first, last, step);
}

static int gears_blocked_reply(RedisModuleCtx *ctx, RedisModuleString **argv, int argc) {
    (void)argv;
    (void)argc;
    return goBlockedReply(ctx, (uint64_t)(uintptr_t)rm.GetBlockedClientPrivateData(ctx));
}

static void gears_blocked_free(RedisModuleCtx *ctx, void *priv) {
    (void)ctx;
    goBlockedFree((uint64_t)(uintptr_t)priv);
}

static void gears_blocked_disconnect(RedisModuleCtx *ctx, RedisModuleBlockedClient *bc) {
    (void)ctx;
    goBlockedDisconnect(bc);
}

RedisModuleBlockedClient *gears_block(RedisModuleCtx *ctx) {
    RedisModuleBlockedClient *bc = rm.BlockClient(ctx, gears_blocked_reply, NULL, gears_blocked_free, 0);
    if (bc) rm.SetDisconnectCallback(bc, gears_blocked_disconnect);
    return bc;
}

int gears_unblock(RedisModuleBlockedClient *bc, uint64_t handle) {
    return rm.UnblockClient(bc, (void *)(uintptr_t)handle);
}

static void gears_info(RedisModuleInfoCtx *ctx, int for_crash_report) {
    // The crash report runs in a signal handler: no Go there.
    if (for_crash_report) return;
    goInfo(ctx);
}

int gears_register_info(RedisModuleCtx *ctx) { return rm.RegisterInfoFunc(ctx, gears_info); }

void gears_log(RedisModuleCtx *ctx, const char *level, const char *msg) {
    rm.Log(ctx ? ctx : gears_detached, level, "%s", msg);
}

RedisModuleString *gears_arg(RedisModuleString **argv, int i) { return argv[i]; }
RedisModuleString **gears_argv_at(RedisModuleString **argv, int i) { return argv + i; }

static int gears_keyspace_event(RedisModuleCtx *ctx, int type, const char *event, RedisModuleString *key) {
    (void)type;
    if (gears_thread_state()->reading_keys) return REDISMODULE_OK;
    size_t n;
    const char *k = rm.StringPtrLen(key, &n);
    goKeyspaceEvent(ctx, rm.GetContextFlags(ctx), (char *)event, (int)strlen(event), (char *)k, (int)n,
                    gears_thread_state()->event_depth);
    return REDISMODULE_OK;
}

int gears_subscribe_keyspace(RedisModuleCtx *ctx) {
    return rm.SubscribeToKeyspaceEvents(ctx, REDISMODULE_NOTIFY_ALL | REDISMODULE_NOTIFY_KEY_MISS, gears_keyspace_event);
}
