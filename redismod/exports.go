package redismod

// Every function C calls into Go. cgo forbids C definitions in a file with
// //export, so their C side lives in rm.c and persist.c. Each recovers,
// because a Go panic that crosses a cgo frame kills redis-server, and hands
// the call to its handler.

/*
#include "redismod.h"
*/
import "C"

import (
	"fmt"
	"unsafe"
)

func recovered(where string) {
	if r := recover(); r != nil && handlers.Panic != nil {
		handlers.Panic(where, r)
	}
}

// replyInternalError answers a command whose handler panicked.
func replyInternalError(c Ctx, where string) {
	if r := recover(); r != nil {
		if handlers.Panic != nil {
			handlers.Panic(where, r)
		}
		c.Error("ERR gears internal error (see the Redis log)")
	}
}

//export goOnLoad
func goOnLoad(ctx *C.RedisModuleCtx, argv **C.RedisModuleString, argc C.int) (rc C.int) {
	rc = C.REDISMODULE_ERR
	defer recovered("module load")
	if handlers.Load == nil {
		Log("warning", "gears: the module cannot load: no handlers")
		return rc
	}
	if err := handlers.Load(Ctx{ctx}, Args{argv, int(argc)}.Strings()); err != nil {
		Log("warning", "gears: the module cannot load: "+err.Error())
		return rc
	}
	return C.REDISMODULE_OK
}

//export goCommand
func goCommand(id C.int, ctx *C.RedisModuleCtx, argv **C.RedisModuleString, argc C.int) C.int {
	c := Ctx{ctx}
	defer replyInternalError(c, fmt.Sprintf("command %d", int(id)))
	handlers.Command(int(id), c, Args{argv, int(argc)})
	return C.REDISMODULE_OK
}

//export goBlockedReply
func goBlockedReply(ctx *C.RedisModuleCtx, handle C.uint64_t) C.int {
	c := Ctx{ctx}
	defer replyInternalError(c, "blocked client reply")
	if b := blocked.get(uint64(handle)); b != nil {
		b.reply(c)
	} else {
		c.Error("ERR gears lost the reply of this command")
	}
	return C.REDISMODULE_OK
}

//export goBlockedFree
func goBlockedFree(handle C.uint64_t) {
	defer recovered("blocked client cleanup")
	blocked.finish(uint64(handle))
}

//export goBlockedDisconnect
func goBlockedDisconnect(bc *C.RedisModuleBlockedClient) {
	defer recovered("blocked client disconnect")
	blocked.disconnected(bc)
}

//export goInfo
func goInfo(ctx *C.RedisModuleInfoCtx) {
	defer recovered("INFO")
	handlers.Info(Info{ctx})
}

//export goKeyspaceEvent
func goKeyspaceEvent(ctx *C.RedisModuleCtx, flags C.int, event *C.char, eventLen C.int, key *C.char, keyLen C.int, depth C.int) {
	defer recovered("keyspace event")
	handlers.KeyspaceEvent(Ctx{ctx}, int(flags), view(event, C.size_t(eventLen)), view(key, C.size_t(keyLen)), int(depth))
}

//export goAuxLoad
func goAuxLoad(p *C.char, n C.size_t, bufs **C.char, lens *C.size_t, count C.uint64_t) (rc C.int) {
	rc = C.REDISMODULE_ERR
	defer recovered("RDB load")
	snapshot := C.GoBytes(unsafe.Pointer(p), C.int(n))
	wheels := make([][]byte, int(count))
	if count > 0 {
		bs, ls := unsafe.Slice(bufs, count), unsafe.Slice(lens, count)
		for i := range wheels {
			wheels[i] = C.GoBytes(unsafe.Pointer(bs[i]), C.int(ls[i]))
		}
	}
	if err := handlers.AuxLoad(snapshot, wheels); err != nil {
		Log("warning", "gears: "+err.Error())
		return rc
	}
	return C.REDISMODULE_OK
}

//export goServerEvent
func goServerEvent(ctx *C.RedisModuleCtx, event, sub C.int) {
	defer recovered("server event")
	if e, ok := serverEventOf(event, sub); ok {
		handlers.ServerEvent(e)
	}
}

//export goClusterMessage
func goClusterMessage(sender *C.char, payload *C.char, n C.uint32_t) {
	defer recovered("cluster message")
	if handlers.ClusterMessage == nil {
		return
	}
	handlers.ClusterMessage(C.GoStringN(sender, C.REDISMODULE_NODE_ID_LEN),
		unsafe.Slice((*byte)(unsafe.Pointer(payload)), int(n)))
}
