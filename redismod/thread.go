package redismod

/*
#include "redismod.h"
*/
import "C"

import "unsafe"

// Thread is gears' state of the calling OS thread (gears_thread, C
// thread-local, read by the natives without Go): what it runs and what it
// may do with Redis. Get it with CurrentThread on a goroutine locked to its
// thread; it is only valid there.
type Thread struct{ t *C.gears_thread }

// CurrentThread is this OS thread's state. The goroutine must stay on the
// thread (an attached interpreter or a held lock pins it).
func CurrentThread() Thread { return Thread{C.gears_thread_state()} }

// EventDepth is how many registration runs on this thread are under way,
// nested: the events their writes fire are one deeper.
func (t Thread) EventDepth() int       { return int(t.t.event_depth) }
func (t Thread) SetEventDepth(d int)   { t.t.event_depth = C.int(d) }
func (t Thread) SyncDepth() int        { return int(t.t.sync_depth) }
func (t Thread) SetSyncDepth(d int)    { t.t.sync_depth = C.int(d) }
func (t Thread) NoAsync() int          { return int(t.t.no_async) }
func (t Thread) SetNoAsync(n int)      { t.t.no_async = C.int(n) }
func (t Thread) InExecution() bool     { return t.t.in_execution != 0 }
func (t Thread) SetInExecution(b bool) { t.t.in_execution = cBool(b) }

// Restoring: re-running a session's script after a restart, whose writes
// happened already (execute() refuses them).
func (t Thread) Restoring() bool     { return t.t.restoring != 0 }
func (t Thread) SetRestoring(b bool) { t.t.restoring = cBool(b) }

// InAtomic reports whether Python on this thread is inside atomic().
func (t Thread) InAtomic() bool { return t.t.atomic_depth != 0 || t.t.atomic_locked != 0 }

// ReleaseAtomic leaves an atomic() block that Python left open.
func (t Thread) ReleaseAtomic() { C.gears_release_atomic() }

// Session is the session this thread runs Python for now (set by every
// attach for a session), zero when none.
func (t Thread) Session() Session { return Session{t.t.session} }

// SetSession says whose Python runs here now; it returns the previous one
// to restore.
func (t Thread) SetSession(s Session) Session {
	prev := Session{t.t.session}
	t.t.session = s.p
	return prev
}

func cBool(b bool) C.int {
	if b {
		return 1
	}
	return 0
}

// SetSharedMode says that every session runs in one interpreter
// (IsolationMode shared): only the thread can tell whose Python runs.
func SetSharedMode() { C.gears_shared_mode = 1 }

// Session is Redis's half of a gears session, in C memory so the natives
// read it without Go: its key and the ACL user it runs as.
type Session struct{ p *C.gears_session }

// NewSession makes a session's half with a key unique for the process's
// life, running as user (all users' rights when hasUser is false). Free it
// when the session ends.
func NewSession(key int64, user string, hasUser bool) Session {
	s := (*C.gears_session)(C.calloc(1, C.size_t(unsafe.Sizeof(C.gears_session{}))))
	if hasUser {
		s.user = redisString(user)
	}
	s.key = C.longlong(key)
	return Session{s}
}

// Free releases the session's half.
func (s Session) Free() {
	if s.p == nil {
		return
	}
	if s.p.user != nil {
		C.w_FreeString(s.p.user)
	}
	C.free(unsafe.Pointer(s.p))
}

// IsZero reports whether s is no session.
func (s Session) IsZero() bool { return s.p == nil }

// Key is the session's key (0 for none).
func (s Session) Key() int64 {
	if s.p == nil {
		return 0
	}
	return int64(s.p.key)
}

// Handle is the session for an interpreter's session cell
// (interp.Interp.SetSession).
func (s Session) Handle() uintptr { return uintptr(unsafe.Pointer(s.p)) }

// SessionAt is whose Python runs on this thread, for an interpreter whose
// session cell holds cell: the one answer natives and host functions both
// use (gears_session_at).
func SessionAt(cell uintptr) Session {
	return Session{C.gears_session_in(C.uintptr_t(cell))}
}
