// Package redismod binds the Redis module API (7.0): the module's entry
// point, commands and their replies, blocked clients, RedisModule_Call, the
// Redis lock, ACL checks, keyspace and server events, the command filter,
// data types and RDB aux data, INFO and the log. Its API speaks Go types;
// its C (rm.h, the subset of the API gears declares) is the only code of
// gears that calls Redis. It also fills the table through which interp's
// natives reach Redis (pyhost.c), without seeing CPython.
//
// Redis calls the module through exports.go, which recovers every Go panic
// and hands the call to the Handlers the module set.
package redismod

/*
#cgo CFLAGS: -O2 -I${SRCDIR}/../interp
#include "redismod.h"
*/
import "C"

import "unsafe"

// Handlers are the module's answers to what Redis calls. Set them with
// Handle before Redis loads the module (an init function).
type Handlers struct {
	// Load runs in RedisModule_OnLoad with the module's arguments.
	Load func(c Ctx, args []string) error
	// Command serves command id (see RegisterCommand).
	Command func(id int, c Ctx, args Args)
	// Info writes the module's INFO section.
	Info func(w Info)
	// KeyspaceEvent is every keyspace notification but gears' own reads:
	// key and event are valid during the call only (copy to keep them);
	// depth is how many registration runs on this thread caused it.
	KeyspaceEvent func(c Ctx, flags int, event, key string, depth int)
	// AuxLoad receives the RDB's snapshot and the wheels that follow it.
	AuxLoad func(snapshot []byte, wheels [][]byte) error
	// ServerEvent is loading, a promotion, or a fork.
	ServerEvent func(e ServerEvent)
	// ClusterMessage is a message of gears' type from node `from` on the
	// cluster bus, on the main thread; msg is valid during the call only.
	ClusterMessage func(from string, msg []byte)
	// Panic logs a panic recovered at the border with C.
	Panic func(where string, r any)
}

var handlers Handlers

// Handle sets the handlers.
func Handle(h Handlers) { handlers = h }

// PythonHost is the table interp's natives call (interp.UseHost).
func PythonHost() uintptr { return uintptr(C.gears_pyhost()) }

// Log writes one line to the Redis log, from any thread.
func Log(level, msg string) {
	cl, cm := C.CString(level), C.CString(msg)
	C.gears_log(nil, cl, cm)
	C.free(unsafe.Pointer(cl))
	C.free(unsafe.Pointer(cm))
}

// Context flags (RedisModule_GetContextFlags).
const (
	FlagLua          = C.REDISMODULE_CTX_FLAGS_LUA
	FlagMulti        = C.REDISMODULE_CTX_FLAGS_MULTI
	FlagMaster       = C.REDISMODULE_CTX_FLAGS_MASTER
	FlagCluster      = C.REDISMODULE_CTX_FLAGS_CLUSTER
	FlagLoading      = C.REDISMODULE_CTX_FLAGS_LOADING
	FlagReplicated   = C.REDISMODULE_CTX_FLAGS_REPLICATED
	FlagDenyBlocking = C.REDISMODULE_CTX_FLAGS_DENY_BLOCKING
)

// cData points at s's bytes for a C call that copies them or reads them
// during the call only (nil for "").
func cData(s string) *C.char {
	if s == "" {
		return nil
	}
	return (*C.char)(unsafe.Pointer(unsafe.StringData(s)))
}

// view is a C string as a Go string without a copy, valid while C keeps it.
func view(p *C.char, n C.size_t) string {
	if n == 0 {
		return ""
	}
	return unsafe.String((*byte)(unsafe.Pointer(p)), int(n))
}
