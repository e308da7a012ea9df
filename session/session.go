package session

import (
	"crypto/rand"
	"encoding/hex"
	"sort"
	"sync"
	"sync/atomic"

	"gears/interp"
	"gears/reqs"
)

// Session is what one RG.PYEXECUTE call creates: an interpreter with its
// globals, alive while anything of it (the running script, later its
// executions and registrations) holds a reference.
type Session struct {
	ID          string
	Description string
	Script      string // its RG.PYEXECUTE script: re-run to restore it after a restart
	User        string // the ACL user that ran it
	Interp      *interp.Interp
	Native      any // the module's handle of the session in the Redis binding
	// Requirements are what its REQUIREMENTS resolved to; their directories
	// are on its interpreter's sys.path.
	Requirements []*reqs.Requirement

	// Under IsolationMode shared every session runs in one interpreter,
	// which outlives them; a session's namespace is then Globals, its own
	// dict there (else it is its interpreter's __main__).
	Shared  bool
	Globals interp.Object

	refs    Refs
	kept    atomic.Int32 // things saved with the data besides registrations (keyed time events)
	mu      sync.Mutex
	onEnd   []func()
	onClose []func() // before its own interpreter is destroyed
}

// Keep counts things of the session saved with the data (n = +1 or -1);
// it returns the count.
func (s *Session) Keep(n int32) int32 { return s.kept.Add(n) }

// Kept is that count.
func (s *Session) Kept() int32 { return s.kept.Load() }

// New returns a session holding one reference (the caller's).
func New(id, desc string, it *interp.Interp) *Session {
	s := &Session{ID: id, Description: desc, Interp: it}
	s.refs.Set(1)
	return s
}

// RandomID is a 40-hex-char session id, as RedisGears generates.
func RandomID() string {
	b := make([]byte, 20)
	rand.Read(b)
	return hex.EncodeToString(b)
}

// Acquire adds a reference unless the session has ended already (its last
// reference was released): whoever finds a session through a lookup that
// can race its end must acquire it before using it.
func (s *Session) Acquire() bool { return s.refs.Acquire() }

// Refs is the number of references held now.
func (s *Session) Refs() int { return s.refs.Count() }

// OnEnd runs fn once the session has ended and its interpreter is gone
// (or, when shared, is no longer used for it).
func (s *Session) OnEnd(fn func()) {
	s.mu.Lock()
	s.onEnd = append(s.onEnd, fn)
	s.mu.Unlock()
}

// OnClose runs fn before the session's own interpreter is destroyed (not
// for a shared one), attached to nothing.
func (s *Session) OnClose(fn func()) {
	s.mu.Lock()
	s.onClose = append(s.onClose, fn)
	s.mu.Unlock()
}

// Release drops a reference; the last one ends the session, destroying its
// interpreter (unless shared) on a thread started by run. It reports whether
// the session ended.
func (s *Session) Release(run func(func())) bool {
	if !s.refs.Release() {
		return false
	}
	run(func() {
		if s.Interp != nil && !s.Shared {
			s.mu.Lock()
			before := s.onClose
			s.onClose = nil
			s.mu.Unlock()
			for _, fn := range before {
				fn()
			}
			s.Interp.Close()
		}
		s.mu.Lock()
		fns := s.onEnd
		s.onEnd = nil
		s.mu.Unlock()
		for _, fn := range fns {
			fn()
		}
	})
	return true
}

// Registry maps session ids to live sessions. Used on the Redis main thread
// and read elsewhere, so it locks.
type Registry struct {
	mu       sync.Mutex
	sessions map[string]*Session
}

// NewRegistry returns an empty registry.
func NewRegistry() *Registry { return &Registry{sessions: map[string]*Session{}} }

// Add records s under its id; false if the id is taken.
func (r *Registry) Add(s *Session) bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	if _, ok := r.sessions[s.ID]; ok {
		return false
	}
	r.sessions[s.ID] = s
	return true
}

// Get returns the session with this id, if it is live.
func (r *Registry) Get(id string) (*Session, bool) {
	r.mu.Lock()
	defer r.mu.Unlock()
	s, ok := r.sessions[id]
	return s, ok
}

// Acquire returns the session with this id holding a reference for the
// caller (who releases it), or false when there is none or it is ending.
func (r *Registry) Acquire(id string) (*Session, bool) {
	s, ok := r.Get(id)
	if !ok || !s.Acquire() {
		return nil, false
	}
	return s, true
}

// Remove forgets s (only if id still maps to s).
func (r *Registry) Remove(s *Session) {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.sessions[s.ID] == s {
		delete(r.sessions, s.ID)
	}
}

// Len is the number of live sessions.
func (r *Registry) Len() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.sessions)
}

// List is every live session, ordered by id.
func (r *Registry) List() []*Session {
	r.mu.Lock()
	defer r.mu.Unlock()
	out := make([]*Session, 0, len(r.sessions))
	for _, s := range r.sessions {
		out = append(out, s)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].ID < out[j].ID })
	return out
}
