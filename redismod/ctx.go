package redismod

/*
#include "redismod.h"
*/
import "C"

import (
	"fmt"
	"strings"
	"unsafe"
)

// Ctx is a Redis command context on the main thread: it writes the reply
// and knows the client.
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
func (c Ctx) Bulk(s string) { C.w_ReplyWithStringBuffer(c.p, cData(s), C.size_t(len(s))) }

func (c Ctx) Int(v int64) { C.w_ReplyWithLongLong(c.p, C.longlong(v)) }
func (c Ctx) Array(n int) { C.w_ReplyWithArray(c.p, C.long(n)) }
func (c Ctx) Null()       { C.w_ReplyWithNull(c.p) }
func (c Ctx) WrongArity() { C.w_WrongArity(c.p) }
func (c Ctx) OK()         { c.Simple("OK") }

// Flags are the context's RedisModule_GetContextFlags (Flag*).
func (c Ctx) Flags() int { return int(C.w_GetContextFlags(c.p)) }

// ClientID is the id of the command's client.
func (c Ctx) ClientID() uint64 { return uint64(C.w_GetClientId(c.p)) }

// Handle is the context for interp's natives (pyhost.h).
func (c Ctx) Handle() uintptr { return uintptr(unsafe.Pointer(c.p)) }

// FromReplicationOrAOF reports whether the command comes from the master's
// replication link or the AOF.
func (c Ctx) FromReplicationOrAOF() bool { return C.gears_from_replication_or_aof(c.p) == 1 }

// Value replies with a result value: string/[]byte as bulk, integers,
// arrays, nil, and the status/error markers {"+": s} / {"-": s} that
// runtime/execution.py's _to_reply makes.
func (c Ctx) Value(v any) { WriteValue(c, v) }

// Replier is what writes a reply: Ctx, or a test's recorder.
type Replier interface {
	Error(msg string)
	Simple(s string)
	Bulk(s string)
	Int(v int64)
	Array(n int)
	Null()
}

// WriteValue writes v to r as Ctx.Value does.
func WriteValue(r Replier, v any) {
	switch x := v.(type) {
	case nil:
		r.Null()
	case string:
		r.Bulk(x)
	case []byte:
		r.Bulk(string(x))
	case int64:
		r.Int(x)
	case bool:
		if x {
			r.Int(1)
		} else {
			r.Int(0)
		}
	case float64:
		r.Bulk(fmt.Sprintf("%f", x))
	case []any:
		r.Array(len(x))
		for _, e := range x {
			WriteValue(r, e)
		}
	case []string:
		r.Array(len(x))
		for _, e := range x {
			r.Bulk(e)
		}
	case map[string]any:
		if s, ok := x["+"].(string); ok && len(x) == 1 {
			r.Simple(s)
		} else if s, ok := x["-"].(string); ok && len(x) == 1 {
			r.Error(s)
		} else {
			r.Bulk("PY RECORD")
		}
	default:
		r.Bulk(fmt.Sprint(x))
	}
}

// Args are a command's arguments as Redis holds them, valid during the
// command.
type Args struct {
	v **C.RedisModuleString
	n int
}

// Len is the number of arguments, the command's name included.
func (a Args) Len() int { return a.n }

// View is argument i without a copy: valid during the command only.
func (a Args) View(i int) string {
	var n C.size_t
	p := C.w_StringPtrLen(C.gears_arg(a.v, C.int(i)), &n)
	return view(p, n)
}

// Strings copies the arguments.
func (a Args) Strings() []string {
	out := make([]string, a.n)
	for i := range out {
		out[i] = strings.Clone(a.View(i))
	}
	return out
}

// Handle is the arguments for interp's natives (pyhost.h).
func (a Args) Handle() uintptr { return uintptr(unsafe.Pointer(a.v)) }

// IsHookMarker reports whether argument 0 is the name gears' command filter
// inserts (hooks.c): the command is a hooked one, not a client's own
// RG.INNERHOOK.
func (a Args) IsHookMarker() bool { return a.n > 0 && C.gears_is_hook_marker(a.v) == 1 }

// CallerMayRunFrom reports whether the client of c may run the command
// made of the arguments from i on (a hooked command under RG.INNERHOOK).
func (c Ctx) CallerMayRunFrom(a Args, i int) bool {
	return C.gears_caller_may_run(c.p, C.gears_argv_at(a.v, C.int(i)), C.int(a.n-i)) == 1
}

// RegisterCommand makes Redis call Handlers.Command with id for name;
// key > 0 is the position of the command's one key.
func RegisterCommand(c Ctx, id int, name, flags string, key int) error {
	cname, cflags := C.CString(name), C.CString(flags)
	step := 0
	if key > 0 {
		step = 1
	}
	rc := C.gears_register_command(c.p, C.int(id), cname, cflags, C.int(key), C.int(key), C.int(step))
	C.free(unsafe.Pointer(cname))
	C.free(unsafe.Pointer(cflags))
	if rc != C.REDISMODULE_OK {
		return fmt.Errorf("cannot register command %s", name)
	}
	return nil
}

// Info writes the module's INFO section.
type Info struct{ p *C.RedisModuleInfoCtx }

// Section starts the module's section (name "" for the default).
func (w Info) Section(name string) {
	cs := C.CString(name)
	C.w_InfoAddSection(w.p, cs)
	C.free(unsafe.Pointer(cs))
}

// Int adds a field.
func (w Info) Int(name string, v int64) {
	cs := C.CString(name)
	C.w_InfoAddFieldLongLong(w.p, cs, C.longlong(v))
	C.free(unsafe.Pointer(cs))
}

// BulkOrNull replies nil for an empty string (RedisGears' "not set").
func (c Ctx) BulkOrNull(s string) {
	if s == "" {
		c.Null()
	} else {
		c.Bulk(s)
	}
}
