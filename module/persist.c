// Persistence in RDB aux data. aux_save runs in the BGSAVE child, where Go
// must never run: it writes a snapshot that the parent keeps in C memory and
// replaces only while holding the Redis lock (so no fork sees it half-made).
#include <string.h>
#include "module.h"
#include "_cgo_export.h"

static char *snapshot;
static size_t snapshot_len;

// Takes ownership of buf (malloc'ed). Call with the Redis lock held.
void gears_set_snapshot(char *buf, size_t len) {
    free(snapshot);
    snapshot = buf;
    snapshot_len = len;
}

static void aux_save(RedisModuleIO *io, int when) {
    (void)when;
    rm.SaveStringBuffer(io, snapshot ? snapshot : "", snapshot ? snapshot_len : 0);
}

static int aux_load(RedisModuleIO *io, int encver, int when) {
    (void)when;
    if (encver != 1) return REDISMODULE_ERR;
    size_t n;
    char *p = rm.LoadStringBuffer(io, &n);
    if (!p) return REDISMODULE_ERR;
    int rc = goAuxLoad(p, (int)n);
    rm.Free(p);
    return rc;
}

static void *no_rdb_load(RedisModuleIO *io, int encver) {
    (void)io;
    (void)encver;
    return NULL;
}

static void no_rdb_save(RedisModuleIO *io, void *value) {
    (void)io;
    (void)value;
}

static void no_free(void *value) { (void)value; }

int gears_create_aux_type(RedisModuleCtx *ctx) {
    RedisModuleTypeMethods tm = {0};
    tm.version = REDISMODULE_TYPE_METHOD_VERSION;
    tm.rdb_load = no_rdb_load;
    tm.rdb_save = no_rdb_save;
    tm.free = no_free;
    tm.aux_load = aux_load;
    tm.aux_save = aux_save;
    tm.aux_save_triggers = REDISMODULE_AUX_AFTER_RDB;
    return rm.CreateDataType(ctx, "gears_rg1", 1, &tm) ? REDISMODULE_OK : REDISMODULE_ERR;
}

static void on_server_event(RedisModuleCtx *ctx, RedisModuleEvent eid, uint64_t subevent, void *data) {
    (void)data;
    goServerEvent(ctx, (int)eid.id, (int)subevent);
}

// Server events gears follows: loading (registrations are replaced with the
// dataset), role changes (a promoted replica starts its stream readers) and
// forks (an AOF rewrite without RDB preamble needs the registrations again).
// The fork event runs in the parent.
int gears_subscribe_server_events(RedisModuleCtx *ctx) {
    RedisModuleEvent loading = {REDISMODULE_EVENT_LOADING, 1};
    RedisModuleEvent role = {REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED, 1};
    RedisModuleEvent fork = {REDISMODULE_EVENT_FORK_CHILD, 1};
    if (rm.SubscribeToServerEvent(ctx, loading, on_server_event) != REDISMODULE_OK) return REDISMODULE_ERR;
    if (rm.SubscribeToServerEvent(ctx, fork, on_server_event) != REDISMODULE_OK) return REDISMODULE_ERR;
    return rm.SubscribeToServerEvent(ctx, role, on_server_event);
}
