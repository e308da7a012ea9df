package main

/*
#include "module.h"
*/
import "C"

import (
	"errors"
	"sync"
	"sync/atomic"
	"unsafe"

	"gears/builder"
	"gears/interp"
	"gears/session"
)

// The host side of async records (runtime/futures.py): an execution that
// waits for futures or coroutines is resumed through the engine once its
// interpreter says they have all been continued.

// resumeExecution is _gears.resume(sid) (call.c): execution `sid` of the
// interpreter whose slot this is may go on.
func resumeExecution(slot unsafe.Pointer, sid int64) {
	g.engine.Wake(builder.WaitKey{Interp: slot, SID: sid})
}

// async_allowed(): whether the step running on this thread may go async.
// An execution thread's own execution may; a sync registration's run may
// only where its command could be blocked (the run continues in the
// background, and a trigger's client waits for it).
func hostAsyncAllowed(*interp.Call) (any, error) {
	ts := C.gears_thread_state()
	switch {
	case ts.no_async > 0:
		return false, nil
	case ts.sync_depth == 0:
		return true, nil
	}
	return C.gears_may_block_here() == 1, nil
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
	interp.RegisterNative("resume", C.gears_resume, interp.MethO)
	interp.RegisterNative("in_atomic", C.gears_in_atomic, interp.MethNoArgs)
	interp.RegisterHost("async_allowed", hostAsyncAllowed)
	interp.RegisterHost("scope_capture", hostScopeCapture)
	interp.RegisterHost("scope_release", hostScopeRelease)
	interp.RegisterHost("loop_started", hostLoopStarted)
}
