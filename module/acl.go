package main

import (
	"fmt"
	"strings"

	"gears/redismod"
	"gears/session"
)

// A session runs as the ACL user that ran its script (see
// redismod/acl.c). These ask Redis, with the Redis lock held.

// sessionMayRun reports whether sess's user may run the command argv.
func sessionMayRun(l redismod.Locked, sess *session.Session, argv []string) bool {
	return native(sess).MayRun(l, argv)
}

// mayRead reports whether sess's user may read key; the Redis lock is
// taken unless this thread holds it.
func mayRead(sess *session.Session, key string) bool {
	l := redismod.Lock()
	defer l.Unlock()
	return native(sess).MayRead(l, key)
}

// mayManage reports whether the client of c may see and control what the
// ACL user owner made (its executions' results, its registrations): it is
// that user, or may administer ACL users (and so could become it anyway).
// Sessions from before users were recorded have no owner.
func mayManage(c Ctx, owner string) bool {
	if owner == "" {
		return true
	}
	if name, ok := c.CallerName(); ok && name == owner {
		return true
	}
	return c.CallerIsACLAdmin()
}

// noPerm is the error of a command the user may not run, in execute()'s
// words (redismod/pyhost.c).
func noPerm(cmd string) string {
	return fmt.Sprintf("NOPERM this user has no permissions to run the '%s' command or to access its keys", strings.ToLower(cmd))
}

// errNotOwner is the reply to a client that mayManage refuses.
func errNotOwner(what string) string {
	return "NOPERM this " + what + " belongs to another user"
}
