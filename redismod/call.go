package redismod

/*
#include "redismod.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"runtime"
	"unsafe"
)

// Locked is the Redis lock, held: Lock returns it, Unlock (once, on the
// same goroutine, usually deferred) lets it go. Functions that need the
// lock take a Locked, so holding it is not a convention but a value. While
// it is held the goroutine stays on its OS thread: the lock and gears'
// thread state belong to the thread.
type Locked struct {
	t   *C.gears_thread
	how C.int // gears_lock's: 0 held already, 1 taken, 2 taken back from the watchdog
}

// Lock takes the Redis lock, unless this thread holds it already (the main
// thread always does while it runs module code). Never call it holding a
// GIL.
func Lock() Locked {
	runtime.LockOSThread()
	t := C.gears_thread_state()
	return Locked{t: t, how: C.gears_lock(t)}
}

// Unlock releases what Lock took.
func (l Locked) Unlock() {
	if l.t == nil { // Held: nothing was taken
		return
	}
	C.gears_unlock(l.t, l.how)
	runtime.UnlockOSThread()
}

// MainThreadHoldsLock records, at load, that the main thread holds the
// Redis lock whenever it runs module code.
func MainThreadHoldsLock() { C.gears_thread_state().lock_held = 1 }

// Call runs a Redis command from Go and converts its reply: string, int64,
// []any or nil; an error reply becomes an error. It takes the Redis lock
// unless the calling thread holds it, so never call it holding a GIL.
func Call(cmd string, args ...string) (any, error) { return call(0, cmd, args) }

// CallReplicated is Call for a write on a client's behalf: it is
// replicated.
func CallReplicated(cmd string, args ...string) (any, error) { return call(1, cmd, args) }

func call(replicate C.int, cmd string, args []string) (any, error) {
	ccmd, p, n := commandArgs(cmd, args)
	defer C.free(unsafe.Pointer(ccmd))
	r := C.gears_call(ccmd, p, n, replicate) // locks and unlocks within the one C call
	if r == nil {
		return nil, fmt.Errorf("%s failed", cmd)
	}
	defer C.w_FreeCallReply(r)
	return replyValue(r)
}

// Replicate sends a command to replicas and the AOF (under the Redis lock,
// which it takes unless this thread holds it).
func Replicate(cmd string, args ...string) {
	ccmd, p, n := commandArgs(cmd, args)
	defer C.free(unsafe.Pointer(ccmd))
	C.gears_replicate(ccmd, p, n)
}

// commandArgs makes a command name (free it) and Redis strings of its
// arguments (the C side frees those) for gears_call and gears_replicate.
func commandArgs(cmd string, args []string) (*C.char, **C.RedisModuleString, C.size_t) {
	if len(args) == 0 {
		return C.CString(cmd), nil, 0
	}
	argv := make([]*C.RedisModuleString, len(args))
	for i, a := range args {
		argv[i] = redisString(a)
	}
	return C.CString(cmd), &argv[0], C.size_t(len(args)) // Go memory holding only C pointers: allowed to pass
}

func redisString(s string) *C.RedisModuleString { return C.w_CreateString(cData(s), C.size_t(len(s))) }

// withRedisStrings passes argv (not empty) to fn as Redis strings, freed
// after.
func withRedisStrings(argv []string, fn func(argv **C.RedisModuleString, argc C.int)) {
	rs := make([]*C.RedisModuleString, len(argv))
	for i, a := range argv {
		rs[i] = redisString(a)
	}
	fn(&rs[0], C.int(len(rs))) // Go memory holding only C pointers: allowed to pass
	for _, s := range rs {
		C.w_FreeString(s)
	}
}

func replyValue(r *C.RedisModuleCallReply) (any, error) {
	switch C.w_CallReplyType(r) {
	case C.REDISMODULE_REPLY_STRING:
		var n C.size_t
		p := C.w_CallReplyStringPtr(r, &n)
		return C.GoStringN(p, C.int(n)), nil
	case C.REDISMODULE_REPLY_ERROR:
		var n C.size_t
		p := C.w_CallReplyStringPtr(r, &n)
		return nil, errors.New(C.GoStringN(p, C.int(n)))
	case C.REDISMODULE_REPLY_INTEGER:
		return int64(C.w_CallReplyInteger(r)), nil
	case C.REDISMODULE_REPLY_ARRAY:
		n := int(C.w_CallReplyLength(r))
		out := make([]any, n)
		for i := range out {
			v, err := replyValue(C.w_CallReplyArrayElement(r, C.size_t(i)))
			if err != nil {
				v = err.Error()
			}
			out[i] = v
		}
		return out, nil
	}
	return nil, nil
}

// MayBlockHere reports whether the command being served now (the Redis
// lock is held) could be blocked: not inside MULTI, Lua or functions, nor
// while loading.
func MayBlockHere(Locked) bool { return C.gears_may_block_here() == 1 }

// KeyType is the type of a key in RedisGears' names.
func KeyType(c Ctx, key string) string {
	return C.GoString(C.gears_key_type(c.p, cData(key), C.size_t(len(key))))
}

// Held is the Redis lock that the main thread holds while it serves a
// command or an event: nothing to take or release.
func (c Ctx) Held() Locked { return Locked{} }
