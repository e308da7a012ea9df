package redismod

/*
#include "redismod.h"
*/
import "C"

import (
	"errors"
	"unsafe"
)

// Node is a node of the cluster as Redis's bus knows it.
type Node struct {
	ID, IP   string
	Port     int
	MasterID string // a replica's master
	Myself   bool
	Master   bool
	Failing  bool // PFAIL or FAIL
}

// ClusterNodes lists the nodes Redis knows (nil outside a cluster).
func ClusterNodes(Locked) []Node {
	var n C.size_t
	p := C.gears_cluster_nodes(&n)
	if p == nil {
		return nil
	}
	defer C.gears_cluster_free_nodes(p)
	out := make([]Node, int(n))
	for i, c := range unsafe.Slice(p, int(n)) {
		out[i] = Node{
			ID:       C.GoStringN(&c.id[0], C.REDISMODULE_NODE_ID_LEN),
			IP:       C.GoString(&c.ip[0]),
			Port:     int(c.port),
			MasterID: nodeID(c.master[:]),
			Myself:   c.flags&C.REDISMODULE_NODE_MYSELF != 0,
			Master:   c.flags&C.REDISMODULE_NODE_MASTER != 0,
			Failing:  c.flags&(C.REDISMODULE_NODE_PFAIL|C.REDISMODULE_NODE_FAIL) != 0,
		}
	}
	return out
}

func nodeID(b []C.char) string {
	s := C.GoStringN(&b[0], C.int(len(b)))
	for i := range len(s) {
		if s[i] == 0 {
			return s[:i]
		}
	}
	return s
}

// MyClusterID is this node's id ("" outside a cluster).
func MyClusterID() string {
	p := C.gears_cluster_my_id()
	if p == nil {
		return ""
	}
	return C.GoStringN(p, C.REDISMODULE_NODE_ID_LEN)
}

// ErrClusterSend is a send Redis refused (an unknown, unlinked or own id).
var ErrClusterSend = errors.New("the cluster bus refused the message")

// ClusterSend queues msg for node `to` on the cluster bus. It is only
// queued: a link reset discards it silently.
func ClusterSend(_ Locked, to string, msg []byte) error {
	if len(to) != C.REDISMODULE_NODE_ID_LEN || len(msg) == 0 {
		return ErrClusterSend
	}
	if C.gears_cluster_send(cData(to), (*C.char)(unsafe.Pointer(&msg[0])), C.uint32_t(len(msg))) != C.REDISMODULE_OK {
		return ErrClusterSend
	}
	return nil
}
