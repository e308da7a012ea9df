// Time events with a key name (registerTE(..., keyName)): a key of module
// type rg_timeev (RedisGears' name, which TYPE shows) holds the period, so the
// event is saved with the data and deleting the key stops it. The key's free callback may run on any thread
// (lazyfree), and its RDB callbacks in the fork child: all C.
#include <string.h>
#include "redismod.h"

typedef struct {
    int64_t period;
    int64_t timer; // the running timer's id, 0 when none
} gears_te;

static RedisModuleType *te_type;
static RedisModuleType *te_legacy_type; // gears_te1: the name earlier gears versions saved

// rg_timeev's encoding version: above RedisGears 1.x's (1 and 2), whose keys
// hold a pickled Python 3.7 callback gears cannot load.
#define TE_ENCVER 100

// Timer ids own a slot while they run; a key's free cancels its timer only if
// that timer still owns the slot (ids are never reused for a slot's owner).
#define TE_SLOTS 4096
static int64_t te_owner[TE_SLOTS];
static int te_cancelled[TE_SLOTS];

int gears_te_claim(int64_t id) {
    int slot = (int)(id % TE_SLOTS);
    int64_t free_slot = 0;
    if (!__atomic_compare_exchange_n(&te_owner[slot], &free_slot, id, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST)) return 0;
    __atomic_store_n(&te_cancelled[slot], 0, __ATOMIC_SEQ_CST);
    return 1;
}

void gears_te_release(int64_t id) {
    int64_t owner = id;
    __atomic_compare_exchange_n(&te_owner[id % TE_SLOTS], &owner, 0, 0, __ATOMIC_SEQ_CST, __ATOMIC_SEQ_CST);
}

int gears_te_alive(int64_t id) {
    int slot = (int)(id % TE_SLOTS);
    return __atomic_load_n(&te_owner[slot], __ATOMIC_SEQ_CST) == id && !__atomic_load_n(&te_cancelled[slot], __ATOMIC_SEQ_CST);
}

static void te_cancel(int64_t id) {
    int slot = (int)(id % TE_SLOTS);
    if (id && __atomic_load_n(&te_owner[slot], __ATOMIC_SEQ_CST) == id) __atomic_store_n(&te_cancelled[slot], 1, __ATOMIC_SEQ_CST);
}

static void te_free(void *value) {
    gears_te *te = value;
    te_cancel(te->timer);
    rm.Free(te);
}

static void te_rdb_save(RedisModuleIO *io, void *value) { rm.SaveSigned(io, ((gears_te *)value)->period); }

static void *te_load(RedisModuleIO *io) {
    gears_te *te = rm.Alloc(sizeof *te);
    te->period = rm.LoadSigned(io);
    te->timer = 0; // the session's restore attaches a timer again
    return te;
}

static void *te_rdb_load(RedisModuleIO *io, int encver) {
    if (encver != TE_ENCVER) {
        rm.LogIOError(io, "warning", "a RedisGears 1.x time event (rg_timeev version %d) cannot be loaded by gears",
                      encver);
        return NULL;
    }
    return te_load(io);
}

static void *te_legacy_rdb_load(RedisModuleIO *io, int encver) { return encver == 1 ? te_load(io) : NULL; }

// Restoring the session recreates the key; nothing to write.
static void te_aof_rewrite(RedisModuleIO *io, RedisModuleString *key, void *value) {
    (void)io;
    (void)key;
    (void)value;
}

int gears_create_te_type(RedisModuleCtx *ctx) {
    RedisModuleTypeMethods tm = {0};
    tm.version = REDISMODULE_TYPE_METHOD_VERSION;
    tm.rdb_load = te_rdb_load;
    tm.rdb_save = te_rdb_save;
    tm.aof_rewrite = te_aof_rewrite;
    tm.free = te_free;
    te_type = rm.CreateDataType(ctx, "rg_timeev", TE_ENCVER, &tm);
    tm.rdb_load = te_legacy_rdb_load;
    te_legacy_type = rm.CreateDataType(ctx, "gears_te1", 1, &tm);
    return te_type && te_legacy_type ? REDISMODULE_OK : REDISMODULE_ERR;
}

// With the Redis lock held: creates key name holding a time event run by
// timer, or (attach) gives an existing one of ours that timer. 1: done,
// 0: the key exists (and was left alone).
int gears_te_create(const char *name, size_t len, int64_t period, int64_t timer, int attach) {
    RedisModuleString *k = rm.CreateString(NULL, name, len);
    RedisModuleKey *key = rm.OpenKey(gears_detached, k, REDISMODULE_READ | REDISMODULE_WRITE);
    int rc = 0;
    if (rm.KeyType(key) == REDISMODULE_KEYTYPE_EMPTY) {
        gears_te *te = rm.Alloc(sizeof *te);
        te->period = period;
        te->timer = timer;
        rc = rm.ModuleTypeSetValue(key, te_type, te) == REDISMODULE_OK;
    } else if (attach && (rm.ModuleTypeGetType(key) == te_type || rm.ModuleTypeGetType(key) == te_legacy_type)) {
        gears_te *te = rm.ModuleTypeGetValue(key);
        te_cancel(te->timer);
        te->timer = timer;
        rc = 1;
    }
    rm.CloseKey(key);
    rm.FreeString(NULL, k);
    return rc;
}

// Whether this server is a master (time events fire on masters only).
int gears_is_master(void) { return (rm.GetContextFlags(gears_detached) & REDISMODULE_CTX_FLAGS_MASTER) != 0; }
