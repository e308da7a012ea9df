// Hand-written subset of the Redis module API (Redis 7.0 signatures). No
// redismodule.h exists in any package registry we can use, so the project
// declares only what it calls; every function is resolved by name at load
// through RedisModule_GetApi, and a missing one fails the load cleanly.
#ifndef GEARS_RM_H
#define GEARS_RM_H

#include <stddef.h>
#include <stdint.h>

#define REDISMODULE_OK 0
#define REDISMODULE_ERR 1
#define REDISMODULE_APIVER_1 1

#define REDISMODULE_REPLY_UNKNOWN -1
#define REDISMODULE_REPLY_STRING 0
#define REDISMODULE_REPLY_ERROR 1
#define REDISMODULE_REPLY_INTEGER 2
#define REDISMODULE_REPLY_ARRAY 3
#define REDISMODULE_REPLY_NULL 4

#define REDISMODULE_CTX_FLAGS_LUA (1 << 0)
#define REDISMODULE_CTX_FLAGS_MULTI (1 << 1)
#define REDISMODULE_CTX_FLAGS_MASTER (1 << 2)
#define REDISMODULE_CTX_FLAGS_CLUSTER (1 << 5)
#define REDISMODULE_CTX_FLAGS_LOADING (1 << 13)
#define REDISMODULE_CTX_FLAGS_DENY_BLOCKING (1 << 21)
#define REDISMODULE_CTX_FLAGS_ASYNC_LOADING (1 << 23)

#define REDISMODULE_POSTPONED_ARRAY_LEN -1
#define REDISMODULE_READ (1 << 0)
#define REDISMODULE_WRITE (1 << 1)

#define REDISMODULE_NOTIFY_KEY_MISS (1 << 11)
#define REDISMODULE_NOTIFY_ALL 0x27FC /* generic..stream, module: as redismodule.h's ALL */

#define REDISMODULE_KEYTYPE_EMPTY 0
#define REDISMODULE_KEYTYPE_STRING 1
#define REDISMODULE_KEYTYPE_LIST 2
#define REDISMODULE_KEYTYPE_HASH 3
#define REDISMODULE_KEYTYPE_SET 4
#define REDISMODULE_KEYTYPE_ZSET 5
#define REDISMODULE_KEYTYPE_MODULE 6
#define REDISMODULE_KEYTYPE_STREAM 7

typedef struct RedisModuleCtx RedisModuleCtx;
typedef struct RedisModuleString RedisModuleString;
typedef struct RedisModuleCallReply RedisModuleCallReply;
typedef struct RedisModuleBlockedClient RedisModuleBlockedClient;
typedef struct RedisModuleInfoCtx RedisModuleInfoCtx;
typedef struct RedisModuleUser RedisModuleUser;
typedef struct RedisModuleKey RedisModuleKey;
typedef struct RedisModuleIO RedisModuleIO;
typedef struct RedisModuleCommandFilterCtx RedisModuleCommandFilterCtx;
typedef struct RedisModuleCommandFilter RedisModuleCommandFilter;
typedef void (*RedisModuleCommandFilterFunc)(RedisModuleCommandFilterCtx *filter);
#define REDISMODULE_CMDFILTER_NOSELF (1 << 0)
#define REDISMODULE_CTX_FLAGS_REPLICATED (1 << 12)
#define REDISMODULE_CMD_KEY_ACCESS (1ULL << 4)
#define REDISMODULE_CLIENT_ID_AOF UINT64_MAX /* the client that replays the AOF */
typedef struct RedisModuleType RedisModuleType;
typedef struct { uint64_t id; uint64_t dataver; } RedisModuleEvent;
typedef void (*RedisModuleEventCallback)(RedisModuleCtx *ctx, RedisModuleEvent eid, uint64_t subevent, void *data);

// RedisModuleTypeMethods, version 4 (Redis 7.0); gears uses only aux_load and
// aux_save (RDB aux data), the rest stays NULL.
#define REDISMODULE_TYPE_METHOD_VERSION 4
#define REDISMODULE_AUX_AFTER_RDB (1 << 1)
typedef struct {
    uint64_t version;
    void *(*rdb_load)(RedisModuleIO *, int);
    void (*rdb_save)(RedisModuleIO *, void *);
    void (*aof_rewrite)(RedisModuleIO *, RedisModuleString *, void *);
    size_t (*mem_usage)(const void *);
    void (*digest)(void *, void *);
    void (*free)(void *);
    int (*aux_load)(RedisModuleIO *, int encver, int when);
    void (*aux_save)(RedisModuleIO *, int when);
    int aux_save_triggers;
    void *free_effort, *unlink, *copy, *defrag, *mem_usage2, *free_effort2, *unlink2, *copy2;
} RedisModuleTypeMethods;

#define REDISMODULE_EVENT_REPLICATION_ROLE_CHANGED 0
#define REDISMODULE_SUBEVENT_REPLROLECHANGED_NOW_MASTER 0
#define REDISMODULE_EVENT_LOADING 3
#define REDISMODULE_EVENT_FORK_CHILD 13
#define REDISMODULE_SUBEVENT_FORK_CHILD_BORN 0
#define REDISMODULE_SUBEVENT_LOADING_RDB_START 0
#define REDISMODULE_SUBEVENT_LOADING_AOF_START 1
#define REDISMODULE_SUBEVENT_LOADING_REPL_START 2
#define REDISMODULE_SUBEVENT_LOADING_ENDED 3
#define REDISMODULE_SUBEVENT_LOADING_FAILED 4
typedef int (*RedisModuleCmdFunc)(RedisModuleCtx *ctx, RedisModuleString **argv, int argc);
typedef void (*RedisModuleInfoFunc)(RedisModuleInfoCtx *ctx, int for_crash_report);
typedef void (*RedisModuleFreePrivFunc)(RedisModuleCtx *ctx, void *privdata);
typedef void (*RedisModuleDisconnectFunc)(RedisModuleCtx *ctx, RedisModuleBlockedClient *bc);
#define REDISMODULE_YIELD_FLAG_CLIENTS (1 << 1)
typedef int (*RedisModuleNotificationFunc)(RedisModuleCtx *ctx, int type, const char *event, RedisModuleString *key);

// Cluster bus (Redis Cluster only).
#define REDISMODULE_NODE_ID_LEN 40
#define REDISMODULE_NODE_MYSELF (1 << 0)
#define REDISMODULE_NODE_MASTER (1 << 1)
#define REDISMODULE_NODE_SLAVE (1 << 2)
#define REDISMODULE_NODE_PFAIL (1 << 3)
#define REDISMODULE_NODE_FAIL (1 << 4)
typedef void (*RedisModuleClusterMessageReceiver)(RedisModuleCtx *ctx, const char *sender_id, uint8_t type,
                                                  const unsigned char *payload, uint32_t len);

// X(return type, name, parameter list)
#define RM_FUNCS(X)                                                                            \
    X(int, CreateCommand, (RedisModuleCtx *, const char *, RedisModuleCmdFunc, const char *, int, int, int)) \
    X(void, SetModuleAttribs, (RedisModuleCtx *, const char *, int, int))                      \
    X(int, IsModuleNameBusy, (const char *))                                                   \
    X(int, WrongArity, (RedisModuleCtx *))                                                     \
    X(int, ReplyWithError, (RedisModuleCtx *, const char *))                                   \
    X(int, ReplyWithSimpleString, (RedisModuleCtx *, const char *))                            \
    X(int, ReplyWithStringBuffer, (RedisModuleCtx *, const char *, size_t))                    \
    X(int, ReplyWithLongLong, (RedisModuleCtx *, long long))                                   \
    X(int, ReplyWithArray, (RedisModuleCtx *, long))                                           \
    X(void, ReplySetArrayLength, (RedisModuleCtx *, long))                                     \
    X(int, ReplyWithNull, (RedisModuleCtx *))                                                  \
    X(const char *, StringPtrLen, (const RedisModuleString *, size_t *))                       \
    X(RedisModuleString *, CreateString, (RedisModuleCtx *, const char *, size_t))             \
    X(void, FreeString, (RedisModuleCtx *, RedisModuleString *))                               \
    X(RedisModuleCallReply *, Call, (RedisModuleCtx *, const char *, const char *, ...))       \
    X(int, CallReplyType, (RedisModuleCallReply *))                                            \
    X(const char *, CallReplyStringPtr, (RedisModuleCallReply *, size_t *))                    \
    X(long long, CallReplyInteger, (RedisModuleCallReply *))                                   \
    X(size_t, CallReplyLength, (RedisModuleCallReply *))                                       \
    X(RedisModuleCallReply *, CallReplyArrayElement, (RedisModuleCallReply *, size_t))         \
    X(void, FreeCallReply, (RedisModuleCallReply *))                                           \
    X(void, Log, (RedisModuleCtx *, const char *, const char *, ...))                          \
    X(RedisModuleBlockedClient *, BlockClient, (RedisModuleCtx *, RedisModuleCmdFunc, RedisModuleCmdFunc, RedisModuleFreePrivFunc, long long)) \
    X(int, UnblockClient, (RedisModuleBlockedClient *, void *))                                \
    X(void *, GetBlockedClientPrivateData, (RedisModuleCtx *))                                 \
    X(int, BlockedClientMeasureTimeStart, (RedisModuleBlockedClient *))                        \
    X(int, BlockedClientMeasureTimeEnd, (RedisModuleBlockedClient *))                          \
    X(RedisModuleCtx *, GetDetachedThreadSafeContext, (RedisModuleCtx *))                      \
    X(void, FreeThreadSafeContext, (RedisModuleCtx *))                                         \
    X(RedisModuleCtx *, GetThreadSafeContext, (RedisModuleBlockedClient *))                    \
    X(void, ThreadSafeContextLock, (RedisModuleCtx *))                                         \
    X(void, ThreadSafeContextUnlock, (RedisModuleCtx *))                                       \
    X(int, GetContextFlags, (RedisModuleCtx *))                                                \
    X(int, RegisterInfoFunc, (RedisModuleCtx *, RedisModuleInfoFunc))                          \
    X(int, InfoAddSection, (RedisModuleInfoCtx *, const char *))                               \
    X(int, InfoAddFieldLongLong, (RedisModuleInfoCtx *, const char *, long long))              \
    X(int, InfoAddFieldCString, (RedisModuleInfoCtx *, const char *, const char *))            \
    X(RedisModuleString *, GetCurrentUserName, (RedisModuleCtx *))                             \
    X(RedisModuleString *, GetClientUserNameById, (RedisModuleCtx *, uint64_t))                \
    X(void, LogIOError, (RedisModuleIO *, const char *, const char *, ...))                    \
    X(RedisModuleUser *, GetModuleUserFromUserName, (RedisModuleString *))                     \
    X(int, ACLCheckCommandPermissions, (RedisModuleUser *, RedisModuleString **, int))         \
    X(int, FreeModuleUser, (RedisModuleUser *))                                                \
    X(RedisModuleKey *, OpenKey, (RedisModuleCtx *, RedisModuleString *, int))                 \
    X(void, CloseKey, (RedisModuleKey *))                                                      \
    X(int, KeyType, (RedisModuleKey *))                                                        \
    X(char *, StringDMA, (RedisModuleKey *, size_t *, int))                                    \
    X(int, SubscribeToKeyspaceEvents, (RedisModuleCtx *, int, RedisModuleNotificationFunc))  \
    X(RedisModuleType *, CreateDataType, (RedisModuleCtx *, const char *, int, RedisModuleTypeMethods *)) \
    X(void, SaveStringBuffer, (RedisModuleIO *, const char *, size_t))                         \
    X(char *, LoadStringBuffer, (RedisModuleIO *, size_t *))                                   \
    X(void, SaveUnsigned, (RedisModuleIO *, uint64_t))                                         \
    X(uint64_t, LoadUnsigned, (RedisModuleIO *))                                               \
    X(void, Free, (void *))                                                                    \
    X(int, SubscribeToServerEvent, (RedisModuleCtx *, RedisModuleEvent, RedisModuleEventCallback)) \
    X(int, Replicate, (RedisModuleCtx *, const char *, const char *, ...))                     \
    X(RedisModuleCommandFilter *, RegisterCommandFilter, (RedisModuleCtx *, RedisModuleCommandFilterFunc, int)) \
    X(int, CommandFilterArgsCount, (RedisModuleCommandFilterCtx *))                            \
    X(const RedisModuleString *, CommandFilterArgGet, (RedisModuleCommandFilterCtx *, int))    \
    X(int, CommandFilterArgInsert, (RedisModuleCommandFilterCtx *, int, RedisModuleString *))  \
    X(int *, GetCommandKeys, (RedisModuleCtx *, RedisModuleString **, int, int *))              \
    X(int, ModuleTypeSetValue, (RedisModuleKey *, RedisModuleType *, void *))                  \
    X(RedisModuleType *, ModuleTypeGetType, (RedisModuleKey *))                                \
    X(void *, ModuleTypeGetValue, (RedisModuleKey *))                                          \
    X(void, SaveSigned, (RedisModuleIO *, int64_t))                                            \
    X(int64_t, LoadSigned, (RedisModuleIO *))                                                  \
    X(void *, Alloc, (size_t))                                                                 \
    X(int, ACLCheckKeyPermissions, (RedisModuleUser *, RedisModuleString *, int))              \
    X(unsigned long long, GetClientId, (RedisModuleCtx *))                                     \
    X(void, RetainString, (RedisModuleCtx *, RedisModuleString *))                             \
    X(void, Yield, (RedisModuleCtx *, int, const char *))                                      \
    X(void, SetDisconnectCallback, (RedisModuleBlockedClient *, RedisModuleDisconnectFunc))   \
    X(void, RegisterClusterMessageReceiver, (RedisModuleCtx *, uint8_t, RedisModuleClusterMessageReceiver)) \
    X(int, SendClusterMessage, (RedisModuleCtx *, const char *, uint8_t, const char *, uint32_t)) \
    X(char **, GetClusterNodesList, (RedisModuleCtx *, size_t *))                             \
    X(void, FreeClusterNodesList, (char **))                                                   \
    X(int, GetClusterNodeInfo, (RedisModuleCtx *, const char *, char *, char *, int *, int *)) \
    X(const char *, GetMyClusterID, (void))

typedef struct {
#define RM_FIELD(ret, name, params) ret(*name) params;
    RM_FUNCS(RM_FIELD)
#undef RM_FIELD
} rm_api;

extern rm_api rm;

#endif
