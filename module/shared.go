package main

import (
	"fmt"

	"gears/interp"
	"gears/redismod"
	gearsrt "gears/runtime"
	"gears/session"
)

// IsolationMode shared runs sessions the RedisGears 1.x way, for packages
// whose C extensions refuse own-GIL interpreters (single-phase init): one
// interpreter, made at load, with the main GIL and no check on extensions;
// each session has its own globals dict there, and sys.modules is
// everyone's. The interpreter cannot tell which session runs; the thread
// can, since every attach says whose session it is for (inInterp):
// execute() reads it for the ACL user, host functions through sessionOf,
// Python as _gears.session_key(). Threads that Python starts inherit it
// (below).

var sharedInterp *interp.Interp // nil under IsolationMode subinterpreter

// startShared creates the shared interpreter and checks its configuration.
func startShared() error {
	redismod.SetSharedMode()
	return onThread(func() error {
		it, err := interp.New(interp.SharedGIL, func(t *interp.Thread) error {
			d := t.NewDict()
			defer t.Decref(d)
			err := t.Exec(`
import _interpreters
c = _interpreters.get_config(_interpreters.get_current()[0])
want = dict(use_main_obmalloc=True, allow_threads=True, allow_daemon_threads=False,
            check_multi_interp_extensions=False, gil='shared')
got = {k: getattr(c, k) for k in want}
if got != want:
    raise SystemError('shared interpreter config reads back as %r, expected %r' % (got, want))
`, d)
			if err != nil {
				return err
			}
			return gearsrt.SetupShared(t)
		})
		sharedInterp = it
		return err
	})
}

// joinShared makes sess a session of the shared interpreter (its globals are
// made when its script runs) until it ends.
func joinShared(sess *session.Session) {
	sess.Interp, sess.Shared = sharedInterp, true
	key := native(sess).Key()
	sess.OnEnd(func() { leaveShared(sess, key) })
}

// leaveShared drops what an ended session left in the shared interpreter:
// its globals and the runtime's state for it. It runs on a Python thread.
func leaveShared(sess *session.Session, key int64) {
	t, err := sharedInterp.Attach()
	if err != nil {
		return
	}
	defer t.Detach()
	if _, err := t.Call("redisgears", "_end_session", key); err != nil {
		logf("warning", fmt.Sprintf("gears: session %s: %v", sess.ID, err))
	}
	t.Decref(sess.Globals)
}

// sessionOf is the session whose Python calls a host function: the one
// attached on this thread, else its interpreter's (threads that Python
// started; none under IsolationMode shared). The natives ask the same.
func sessionOf(c *interp.Call) *session.Session {
	return sessionOfNative(redismod.SessionAt(c.Interp.Session()))
}

// Threads that Python starts inherit their session (runtime/gears.py,
// _threads_inherit_session): hold_session at Thread.start(), on the
// starting thread, which runs inside the session and so holds a reference;
// enter_session and leave_session on the new thread; release_session if
// the start failed.

func sharedSession(c *interp.Call) *session.Session {
	key, _ := c.Args[0].(int64)
	s, _ := sessionsByKey.Load(key)
	sess, _ := s.(*session.Session)
	return sess
}

func hostHoldSession(c *interp.Call) (any, error) {
	sess := sharedSession(c)
	return sess != nil && sess.Acquire(), nil
}

func hostEnterSession(c *interp.Call) (any, error) {
	if sess := sharedSession(c); sess != nil {
		redismod.CurrentThread().SetSession(native(sess))
	}
	return nil, nil
}

func hostLeaveSession(c *interp.Call) (any, error) {
	redismod.CurrentThread().SetSession(redismod.Session{})
	return hostReleaseSession(c)
}

func hostReleaseSession(c *interp.Call) (any, error) {
	if sess := sharedSession(c); sess != nil {
		sess.Release(g.threads.Go)
	}
	return nil, nil
}

// noSession is a host function's error when sessionOf found none.
func noSession(name string) error {
	if sharedInterp != nil {
		return fmt.Errorf("%s is not available on threads started by Python under IsolationMode shared (gears cannot tell their session)", name)
	}
	return fmt.Errorf("%s is not available here", name)
}
