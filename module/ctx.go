package main

/*
#cgo CFLAGS: -O2 -I${SRCDIR}/../interp
#include "module.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Ctx is a Redis command context on the main thread: it writes the reply.
type Ctx struct{ p *C.RedisModuleCtx }

func (c Ctx) Error(msg string) {
	// An error reply is one line.
	msg = strings.NewReplacer("\r", " ", "\n", " ").Replace(msg)
	cs := C.CString(msg)
	C.w_ReplyWithError(c.p, cs)
	C.free(unsafe.Pointer(cs))
}

func (c Ctx) Simple(s string) {
	cs := C.CString(s)
	C.w_ReplyWithSimpleString(c.p, cs)
	C.free(unsafe.Pointer(cs))
}

// Bulk replies with s as it is (binary safe; Redis copies it).
func (c Ctx) Bulk(s string) {
	if len(s) == 0 {
		C.w_ReplyWithStringBuffer(c.p, nil, 0)
		return
	}
	C.w_ReplyWithStringBuffer(c.p, (*C.char)(unsafe.Pointer(unsafe.StringData(s))), C.size_t(len(s)))
}

// Value replies with a result value: string/[]byte as bulk, integers,
// arrays, nil, and the status/error markers {"+": s} / {"-": s} that
// runtime/execution.py's _to_reply makes.
func (c Ctx) Value(v any) {
	switch x := v.(type) {
	case nil:
		c.Null()
	case string:
		c.Bulk(x)
	case []byte:
		c.Bulk(string(x))
	case int64:
		c.Int(x)
	case bool:
		if x {
			c.Int(1)
		} else {
			c.Int(0)
		}
	case float64:
		c.Bulk(fmt.Sprintf("%f", x))
	case []any:
		c.Array(len(x))
		for _, e := range x {
			c.Value(e)
		}
	case []string:
		c.Array(len(x))
		for _, e := range x {
			c.Bulk(e)
		}
	case map[string]any:
		if s, ok := x["+"].(string); ok && len(x) == 1 {
			c.Simple(s)
		} else if s, ok := x["-"].(string); ok && len(x) == 1 {
			c.Error(s)
		} else {
			c.Bulk("PY RECORD")
		}
	default:
		c.Bulk(fmt.Sprint(x))
	}
}

// BulkOrNull replies nil for an empty string (RedisGears' "not set").
func (c Ctx) BulkOrNull(s string) {
	if s == "" {
		c.Null()
	} else {
		c.Bulk(s)
	}
}

func (c Ctx) Int(v int64) { C.w_ReplyWithLongLong(c.p, C.longlong(v)) }
func (c Ctx) Array(n int) { C.w_ReplyWithArray(c.p, C.long(n)) }
func (c Ctx) Null()       { C.w_ReplyWithNull(c.p) }
func (c Ctx) WrongArity() { C.w_WrongArity(c.p) }
func (c Ctx) Flags() int  { return int(C.w_GetContextFlags(c.p)) }
func (c Ctx) OK()         { c.Simple("OK") }

// args copies a command's arguments into Go strings.
func args(argv **C.RedisModuleString, argc C.int) []string {
	out := make([]string, int(argc))
	for i := range out {
		out[i] = goString(C.gears_arg(argv, C.int(i)))
	}
	return out
}

// goString copies a Redis string.
func goString(s *C.RedisModuleString) string {
	var n C.size_t
	p := C.w_StringPtrLen(s, &n)
	return C.GoStringN(p, C.int(n))
}

// logf writes one line to the Redis log from any thread.
func logf(level, msg string) {
	cl, cm := C.CString(level), C.CString(msg)
	C.gears_log(nil, cl, cm)
	C.free(unsafe.Pointer(cl))
	C.free(unsafe.Pointer(cm))
}
