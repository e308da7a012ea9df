package main

/*
#include "module.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"unsafe"
)

// call runs a Redis command from Go and converts its reply: string, int64,
// []any or nil; an error reply becomes an error. It takes the Redis lock unless
// the calling thread holds it, so never call it holding a GIL.
func call(cmd string, args ...string) (any, error) { return callWith(0, cmd, args...) }

// callReplicated is call for a write on a client's behalf: it is replicated.
func callReplicated(cmd string, args ...string) (any, error) { return callWith(1, cmd, args...) }

// withRedisLock runs fn holding the Redis lock (taken unless this thread
// holds it already). Never call it holding a GIL.
func withRedisLock(fn func()) {
	t := C.gears_thread_state()
	locked := C.gears_lock(t)
	defer C.gears_unlock(t, locked)
	fn()
}

func callWith(replicate C.int, cmd string, args ...string) (any, error) {
	ccmd, p, n := commandArgs(cmd, args)
	defer C.free(unsafe.Pointer(ccmd))
	r := C.gears_call(ccmd, p, n, replicate)
	if r == nil {
		return nil, fmt.Errorf("%s failed", cmd)
	}
	defer C.w_FreeCallReply(r)
	return replyValue(r)
}

// commandArgs makes a command name (free it) and Redis strings of its
// arguments (the C side frees those) for gears_call and gears_replicate.
func commandArgs(cmd string, args []string) (*C.char, **C.RedisModuleString, C.size_t) {
	if len(args) == 0 {
		return C.CString(cmd), nil, 0
	}
	argv := make([]*C.RedisModuleString, len(args))
	for i, a := range args {
		argv[i] = cString(a)
	}
	return C.CString(cmd), &argv[0], C.size_t(len(args)) // Go memory holding only C pointers: allowed to pass
}

// cStringData points at s's bytes for a C call that copies them (s must
// not be empty).
func cStringData(s string) *C.char { return (*C.char)(unsafe.Pointer(unsafe.StringData(s))) }

// withRedisStrings passes argv (not empty) to fn as Redis strings, freed
// after.
func withRedisStrings(argv []string, fn func(argv **C.RedisModuleString, argc C.int)) {
	rs := make([]*C.RedisModuleString, len(argv))
	for i, a := range argv {
		rs[i] = cString(a)
	}
	fn(&rs[0], C.int(len(rs))) // Go memory holding only C pointers: allowed to pass
	for _, s := range rs {
		C.w_FreeString(s)
	}
}

func cString(s string) *C.RedisModuleString {
	if s == "" {
		return C.w_CreateString(nil, 0)
	}
	cs := C.CString(s)
	defer C.free(unsafe.Pointer(cs))
	return C.w_CreateString(cs, C.size_t(len(s)))
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

// lowestOwnedSlot is the first slot of the ranges this cluster node serves as
// master (0 when it cannot tell).
func lowestOwnedSlot() int {
	id, err := call("CLUSTER", "MYID")
	if err != nil {
		return 0
	}
	ranges, err := call("CLUSTER", "SLOTS")
	if err != nil {
		return 0
	}
	lowest := -1
	for _, rv := range ranges.([]any) {
		r, ok := rv.([]any)
		if !ok || len(r) < 3 {
			continue
		}
		start, _ := r[0].(int64)
		master, _ := r[2].([]any)
		if len(master) >= 3 && master[2] == id && (lowest < 0 || int(start) < lowest) {
			lowest = int(start)
		}
	}
	if lowest < 0 {
		return 0
	}
	return lowest
}
