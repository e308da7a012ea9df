package redismod

/*
#include "redismod.h"
*/
import "C"

// A session runs as the ACL user that ran its script (see acl.c). These ask
// Redis, with the Redis lock held.

// MayRun reports whether s's user may run the command argv.
func (s Session) MayRun(_ Locked, argv []string) (ok bool) {
	if len(argv) == 0 {
		return true
	}
	withRedisStrings(argv, func(p **C.RedisModuleString, n C.int) { ok = C.gears_session_may_run(s.p, p, n) == 1 })
	return ok
}

// MayRead reports whether s's user may read key.
func (s Session) MayRead(_ Locked, key string) bool {
	return C.gears_session_may_read(s.p, cData(key), C.size_t(len(key))) == 1
}

// CallerMayRun reports whether the client of c may run the command argv.
func (c Ctx) CallerMayRun(argv []string) (ok bool) {
	withRedisStrings(argv, func(p **C.RedisModuleString, n C.int) { ok = C.gears_caller_may_run(c.p, p, n) == 1 })
	return ok
}

// CallerName is the ACL user of the command's client (for a command that
// gears' execute() runs, its session's user); false when it has none.
func (c Ctx) CallerName() (string, bool) {
	name := C.gears_caller_name(c.p)
	if name == nil {
		return "", false
	}
	var n C.size_t
	p := C.w_StringPtrLen(name, &n)
	s := C.GoStringN(p, C.int(n))
	C.w_FreeString(name)
	return s, true
}

// CallerIsACLAdmin reports whether the client may administer ACL users:
// such a client could make itself any user.
func (c Ctx) CallerIsACLAdmin() bool { return C.gears_caller_is_acl_admin(c.p) == 1 }
