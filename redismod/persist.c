// Persistence in RDB aux data. aux_save runs in the BGSAVE child, where Go
// must never run: it writes a snapshot that the parent keeps in C memory and
// replaces only while holding the Redis lock (so no fork sees it half-made),
// then the requirement wheels the snapshot names, read from their files.
//
// Format (encver 2): the snapshot (JSON), the number of wheels, each wheel's
// bytes. Encver 1 had the snapshot only.
#include <stdio.h>
#include <string.h>
#include "redismod.h"
#include "_cgo_export.h"

static char *snapshot;
static size_t snapshot_len;
static char **wheels; // paths of the wheel files, in the snapshot's order
static size_t nwheels;

// Takes ownership of buf and of paths (and its strings), all malloc'ed.
// Call with the Redis lock held.
void gears_set_snapshot(char *buf, size_t len, char **paths, size_t npaths) {
    free(snapshot);
    for (size_t i = 0; i < nwheels; i++) free(wheels[i]);
    free(wheels);
    snapshot = buf;
    snapshot_len = len;
    wheels = paths;
    nwheels = npaths;
}

// save_file writes a file's bytes as one string buffer; an unreadable file
// is written empty (loading then reports that wheel as missing).
static void save_file(RedisModuleIO *io, const char *path) {
    char *data = NULL;
    long size = 0;
    FILE *f = fopen(path, "rb");
    if (f && fseek(f, 0, SEEK_END) == 0 && (size = ftell(f)) > 0 && fseek(f, 0, SEEK_SET) == 0) {
        data = malloc((size_t)size);
        if (data && fread(data, 1, (size_t)size, f) != (size_t)size) {
            free(data);
            data = NULL;
        }
    }
    if (f) fclose(f);
    rm.SaveStringBuffer(io, data ? data : "", data ? (size_t)size : 0);
    free(data);
}

static void aux_save(RedisModuleIO *io, int when) {
    (void)when;
    rm.SaveStringBuffer(io, snapshot ? snapshot : "", snapshot ? snapshot_len : 0);
    rm.SaveUnsigned(io, nwheels);
    for (size_t i = 0; i < nwheels; i++) save_file(io, wheels[i]);
}

static int aux_load(RedisModuleIO *io, int encver, int when) {
    (void)when;
    if (encver != 1 && encver != 2) return REDISMODULE_ERR;
    size_t n;
    char *p = rm.LoadStringBuffer(io, &n);
    if (!p) return REDISMODULE_ERR;
    uint64_t count = encver >= 2 ? rm.LoadUnsigned(io) : 0;
    char **bufs = calloc(count ? count : 1, sizeof(char *));
    size_t *lens = calloc(count ? count : 1, sizeof(size_t));
    int rc = REDISMODULE_OK;
    for (uint64_t i = 0; i < count && rc == REDISMODULE_OK; i++) {
        if (!(bufs[i] = rm.LoadStringBuffer(io, &lens[i]))) rc = REDISMODULE_ERR;
    }
    if (rc == REDISMODULE_OK) rc = goAuxLoad(p, n, bufs, lens, count);
    for (uint64_t i = 0; i < count; i++) {
        if (bufs[i]) rm.Free(bufs[i]);
    }
    free(bufs);
    free(lens);
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
    return rm.CreateDataType(ctx, "gears_rg1", 2, &tm) ? REDISMODULE_OK : REDISMODULE_ERR;
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
