// Redis Cluster's bus: gears' frames travel as module messages of one type
// (GEARS_MSG_TYPE), which other modules with id 0 may share (every module
// whose name is not 9 characters long gets id 0): the cluster package frames
// and checks them.
#include <string.h>
#include "redismod.h"
#include "_cgo_export.h"

#define GEARS_MSG_TYPE 71 /* 'G' */

static void on_message(RedisModuleCtx *ctx, const char *sender, uint8_t type, const unsigned char *payload,
                       uint32_t len) {
    (void)ctx;
    if (type != GEARS_MSG_TYPE) return;
    goClusterMessage((char *)sender, (char *)payload, len);
}

void gears_cluster_listen(RedisModuleCtx *ctx) { rm.RegisterClusterMessageReceiver(ctx, GEARS_MSG_TYPE, on_message); }

// With the Redis lock held. target: a 40-byte node id (not terminated).
int gears_cluster_send(const char *target, const char *msg, uint32_t len) {
    char id[REDISMODULE_NODE_ID_LEN + 1];
    memcpy(id, target, REDISMODULE_NODE_ID_LEN);
    id[REDISMODULE_NODE_ID_LEN] = 0;
    return rm.SendClusterMessage(gears_detached, id, GEARS_MSG_TYPE, msg, len);
}

// With the Redis lock held: the nodes Redis knows (replicas and failed ones
// included), each with its info; NULL when not a cluster. Free with
// gears_cluster_free_nodes.
gears_node *gears_cluster_nodes(size_t *n) {
    char **ids = rm.GetClusterNodesList(gears_detached, n);
    if (!ids) return NULL;
    gears_node *out = calloc(*n ? *n : 1, sizeof *out);
    for (size_t i = 0; out && i < *n; i++) {
        memcpy(out[i].id, ids[i], REDISMODULE_NODE_ID_LEN);
        rm.GetClusterNodeInfo(gears_detached, ids[i], out[i].ip, out[i].master, &out[i].port, &out[i].flags);
    }
    rm.FreeClusterNodesList(ids);
    return out;
}

void gears_cluster_free_nodes(gears_node *n) { free(n); }

// This node's id, 40 bytes (not terminated), or NULL outside a cluster.
const char *gears_cluster_my_id(void) { return rm.GetMyClusterID(); }
