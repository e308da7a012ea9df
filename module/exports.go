package main

// Every function C calls into Go. cgo forbids C definitions in a file with
// //export, so the C side lives in rm.c, call.c and persist.c; each function
// here recovers, because a Go panic that crosses a cgo frame kills
// redis-server, and hands the call to its handler.

/*
#include "module.h"
*/
import "C"

import (
	"fmt"
	"runtime/debug"
	"unsafe"
)

func logPanic(where string, r any) {
	logf("warning", fmt.Sprintf("gears: internal error in %s: %v\n%s", where, r, debug.Stack()))
}

//export goOnLoad
func goOnLoad(ctx *C.RedisModuleCtx, argv **C.RedisModuleString, argc C.int) (rc C.int) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("module load", r)
			rc = C.REDISMODULE_ERR
		}
	}()
	if err := onLoad(Ctx{ctx}, args(argv, argc)); err != nil {
		logf("warning", "gears: the module cannot load: "+err.Error())
		return C.REDISMODULE_ERR
	}
	return C.REDISMODULE_OK
}

//export goCommand
func goCommand(id C.int, ctx *C.RedisModuleCtx, argv **C.RedisModuleString, argc C.int) C.int {
	c := Ctx{ctx}
	defer func() {
		if r := recover(); r != nil {
			logPanic(fmt.Sprintf("command %d", int(id)), r)
			c.Error("ERR gears internal error (see the Redis log)")
		}
	}()
	if int(id) >= len(commands) {
		c.Error("ERR unknown gears command")
		return C.REDISMODULE_OK
	}
	cmd := commands[id]
	if !mayCall(c, cmd, argv, argc) {
		return C.REDISMODULE_OK
	}
	if cmd.fast != nil && cmd.fast(c, argv, argc) {
		return C.REDISMODULE_OK
	}
	cmd.run(c, args(argv, argc))
	return C.REDISMODULE_OK
}

//export goBlockedReply
func goBlockedReply(ctx *C.RedisModuleCtx, handle C.uint64_t) C.int {
	c := Ctx{ctx}
	defer func() {
		if r := recover(); r != nil {
			logPanic("blocked client reply", r)
			c.Error("ERR gears internal error (see the Redis log)")
		}
	}()
	if b := blocked.get(uint64(handle)); b != nil {
		b.reply(c)
	} else {
		c.Error("ERR gears lost the reply of this command")
	}
	return C.REDISMODULE_OK
}

//export goBlockedFree
func goBlockedFree(handle C.uint64_t) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("blocked client cleanup", r)
		}
	}()
	blocked.finish(uint64(handle))
}

//export goBlockedDisconnect
func goBlockedDisconnect(bc *C.RedisModuleBlockedClient) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("blocked client disconnect", r)
		}
	}()
	blocked.disconnected(bc)
}

//export goInfo
func goInfo(ctx *C.RedisModuleInfoCtx) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("INFO", r)
		}
	}()
	writeInfo(ctx)
}

//export goKeyspaceEvent
func goKeyspaceEvent(ctx *C.RedisModuleCtx, flags C.int, event *C.char, eventLen C.int, key *C.char, keyLen C.int, depth C.int) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("keyspace event", r)
		}
	}()
	keyspaceEvent(ctx, flags, event, eventLen, key, keyLen, depth)
}

//export goResume
func goResume(slot unsafe.Pointer, sid C.longlong) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("resume", r)
		}
	}()
	resumeExecution(slot, int64(sid))
}

//export goAuxLoad
func goAuxLoad(p *C.char, n C.size_t, bufs **C.char, lens *C.size_t, count C.uint64_t) (rc C.int) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("RDB load", r)
			rc = C.REDISMODULE_ERR
		}
	}()
	return auxLoad(p, n, bufs, lens, count)
}

//export goServerEvent
func goServerEvent(ctx *C.RedisModuleCtx, event, sub C.int) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("server event", r)
		}
	}()
	serverEvent(event, sub)
}
