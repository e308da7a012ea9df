package main

import (
	"strings"

	"gears/interp"
	"gears/redismod"
)

// RG.PYPROFILE STATS <session> [order] | RESET <session>: the cProfile data
// of a session's executions, collected while ProfileExecutions is 1.
func cmdPyProfile(c Ctx, argv []string) {
	if len(argv) < 3 || len(argv) > 4 {
		c.WrongArity()
		return
	}
	sub := strings.ToLower(argv[1])
	if sub != "stats" && sub != "reset" {
		c.Error("Wrong subcommand given to RG.PYPROFILE")
		return
	}
	// Acquired: the session may be ending (unregistered) right now.
	sess, ok := g.sessions.Acquire(argv[2])
	if !ok {
		c.Error("session does not exists")
		return
	}
	if !mayManage(c, sess.User) {
		sess.Release(g.threads.Go)
		c.Error(errNotOwner("session"))
		return
	}
	// Reading the profile needs the session's GIL: off the main thread.
	b := redismod.Block(c)
	g.threads.Go(func() {
		defer sess.Release(g.threads.Go)
		var out any
		err := withSession(sess, func(t *interp.Thread) (err error) {
			if sub == "reset" {
				_, err = t.Call("redisgears", "_profile_reset")
				out = nil
				return err
			}
			out, err = t.Call("redisgears", "_profile_stats")
			return err
		})
		switch {
		case err != nil:
			msg := err.Error()
			b.Unblock(func(c Ctx) { c.Error(msg) })
		case sub == "reset":
			b.Unblock(Ctx.OK)
		default:
			s, _ := out.(string)
			b.Unblock(func(c Ctx) { c.Bulk(s) })
		}
	})
}
