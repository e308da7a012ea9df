package main

import (
	"errors"
	"sync"
	"sync/atomic"

	"gears/builder"
	"gears/interp"
	"gears/redismod"
	"gears/session"
)

// The host side of async records (runtime/futures.py): an execution that
// waits for futures or coroutines is resumed through the engine once its
// interpreter says they have all been continued.

// _gears.resume(sid): the async records that suspended execution `sid` of
// this interpreter waited for have all been continued. It keeps the GIL:
// the code that continued the last one goes on before the execution can (as
// in RedisGears, where it resumes later).
func hostResume(c *interp.Call) (any, error) {
	sid, ok := firstArg(c).(int64)
	if !ok {
		return nil, errors.New("resume takes an execution's suspension id")
	}
	g.engine.Wake(builder.WaitKey{Interp: c.Interp, SID: sid})
	return nil, nil
}

// async_allowed(): whether the step running on this thread may go async.
// An execution thread's own execution may; a sync registration's run may
// only where its command could be blocked (the run continues in the
// background, and a trigger's client waits for it).
func hostAsyncAllowed(*interp.Call) (any, error) {
	ts := redismod.CurrentThread()
	switch {
	case ts.NoAsync() > 0:
		return false, nil
	case ts.SyncDepth() == 0:
		return true, nil
	}
	l := redismod.Lock() // held already by the sync run's thread
	defer l.Unlock()
	return redismod.MayBlockHere(l), nil
}

// A coroutine's scope: the client command and the command hook that the
// execution which started it serves, for override_reply, get_command and
// call_next on the loop's thread (see runtime/futures.py, _scope).
type scope struct {
	cc *commandCall
	hc *hookCall
}

var (
	scopes   sync.Map // id -> scope
	scopeSeq atomic.Int64
)

// maxScopes bounds the scopes alive at once (each is a coroutine of an
// execution that serves a command or hook): Python code can capture without
// releasing.
const maxScopes = 100_000

var liveScopes atomic.Int64

// scope_capture(): an id for this thread's command and hook (0: none).
func hostScopeCapture(*interp.Call) (any, error) {
	tid := interp.ThreadID()
	var s scope
	if v, ok := commandCalls.Load(tid); ok {
		s.cc = v.(*commandCall)
	}
	if v, ok := hookCalls.Load(tid); ok {
		s.hc = v.(*hookCall)
	}
	if s.cc == nil && s.hc == nil {
		return int64(0), nil
	}
	if liveScopes.Add(1) > maxScopes {
		liveScopes.Add(-1)
		return nil, errors.New("too many coroutines serve commands or hooks now")
	}
	id := scopeSeq.Add(1)
	scopes.Store(id, s)
	return id, nil
}

func hostScopeRelease(c *interp.Call) (any, error) {
	id, _ := firstArg(c).(int64)
	if _, ok := scopes.LoadAndDelete(id); ok {
		liveScopes.Add(-1)
	}
	return nil, nil
}

// scopeOf is the scope a host function's argument i names, if any.
func scopeOf(c *interp.Call, i int) (scope, bool) {
	if i >= len(c.Args) {
		return scope{}, false
	}
	id, _ := c.Args[i].(int64)
	if id == 0 {
		return scope{}, false
	}
	v, ok := scopes.Load(id)
	if !ok {
		return scope{}, false
	}
	return v.(scope), true
}

// loop_started(): the session made an event loop; before its interpreter
// ends, the loop's coroutines are cancelled so that its thread ends (an
// interpreter ends only after its threads).
func hostLoopStarted(c *interp.Call) (any, error) {
	sess := sessionOf(c)
	if sess == nil || sess.Shared {
		return nil, nil // the shared interpreter stops a session's loop in _end_session
	}
	if _, hooked := loopSessions.LoadOrStore(sess, true); !hooked { // once, however often it is called
		sess.OnClose(func() {
			stopLoops(sess)
			loopSessions.Delete(sess)
		})
	}
	return nil, nil
}

var loopSessions sync.Map // *session.Session -> true: its end stops its loop

func stopLoops(sess *session.Session) {
	err := withSession(sess, func(t *interp.Thread) error {
		_, err := t.Call("redisgears", "_stop_loops", int64(0))
		return err
	})
	if err != nil && !errors.Is(err, interp.ErrClosed) {
		logf("warning", "gears: session "+sess.ID+": stopping its event loop: "+err.Error())
	}
}

func registerAsyncHost() {
	interp.RegisterHostKeepingGIL("resume", hostResume)
	interp.RegisterHost("async_allowed", hostAsyncAllowed)
	interp.RegisterHost("scope_capture", hostScopeCapture)
	interp.RegisterHost("scope_release", hostScopeRelease)
	interp.RegisterHost("loop_started", hostLoopStarted)
}
