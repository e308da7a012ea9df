package main

/*
#include "module.h"
*/
import "C"

import (
	"fmt"
	"strings"

	"gears/session"
)

// A session runs as the ACL user that ran its script (see acl.c). These ask
// Redis, with the Redis lock held.

// sessionMayRun reports whether sess's user may run the command argv.
func sessionMayRun(sess *session.Session, argv []string) (ok bool) {
	if len(argv) == 0 {
		return true
	}
	withRedisStrings(argv, func(p **C.RedisModuleString, n C.int) {
		ok = C.gears_session_may_run((*C.gears_session)(sess.Native), p, n) == 1
	})
	return ok
}

// callerMayRun reports whether the client of c may run the command argv.
func callerMayRun(c Ctx, argv []string) (ok bool) {
	withRedisStrings(argv, func(p **C.RedisModuleString, n C.int) { ok = C.gears_caller_may_run(c.p, p, n) == 1 })
	return ok
}

// mayRead reports whether sess's user may read key; the Redis lock is
// taken unless this thread holds it.
func mayRead(sess *session.Session, key string) (ok bool) {
	var p *C.char
	if key != "" {
		p = cStringData(key)
	}
	withRedisLock(func() { ok = C.gears_session_may_read((*C.gears_session)(sess.Native), p, C.size_t(len(key))) == 1 })
	return ok
}

// mayManage reports whether the client of c may see and control what the
// ACL user owner made (its executions' results, its registrations): it is
// that user, or may administer ACL users (and so could become it anyway).
// Sessions from before users were recorded have no owner.
func mayManage(c Ctx, owner string) bool {
	if owner == "" {
		return true
	}
	if name := C.gears_caller_name(c.p); name != nil {
		same := goString(name) == owner
		C.w_FreeString(name)
		if same {
			return true
		}
	}
	return C.gears_caller_is_acl_admin(c.p) == 1
}

// noPerm is the error of a command the user may not run, in execute()'s
// words (call.c).
func noPerm(cmd string) string {
	return fmt.Sprintf("NOPERM this user has no permissions to run the '%s' command or to access its keys", strings.ToLower(cmd))
}

// errNotOwner is the reply to a client that mayManage refuses.
func errNotOwner(what string) string {
	return "NOPERM this " + what + " belongs to another user"
}
