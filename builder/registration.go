package builder

import (
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gears/session"
)

// Registration is a plan that runs on every event of its reader.
type Registration struct {
	ID      string
	Reader  string // KeysReader or CommandReader
	Mode    string // sync, async or async_local (async is local on one shard)
	Desc    string
	Session *session.Session
	Token   int64 // the plan's key in the interpreter (runtime/execution.py)
	Steps   []Step

	// KeysReader
	Prefix     string
	EventTypes []string // nil: every event
	KeyTypes   []string // nil: every type
	ReadValue  bool
	Commands   []string // non-nil: only events caused by these commands (lower case) fire
	// CommandReader
	Trigger   string
	Inorder   bool
	Hook      string // a hooked command (lower case), instead of a trigger
	KeyPrefix string // the hook fires only when a key of the command starts with it
	// StreamReader
	Stream StreamArgs

	// OnRelease runs when the last reference is released: the registration
	// is no longer live and nothing runs it. Set it before Add.
	OnRelease func()
	refs      session.Refs // one while live (Add to ForgetRegistration), one per execution or sync run

	mu        sync.Mutex
	stats     Stats        // but Triggered: triggered
	triggered atomic.Int64 // counted on the main thread for each event, without mu (which the workers take)
	waiting   atomic.Int64 // its executions made and not finished
	streams   *streamState
	removed   bool // unregistered
}

// Acquire takes a reference for an execution or a sync run, unless the
// registration was never made live or has been let go of entirely.
func (r *Registration) Acquire() bool { return r.refs.Acquire() }

// Release drops a reference; the last one runs OnRelease.
func (r *Registration) Release() {
	if r.refs.Release() && r.OnRelease != nil {
		r.OnRelease()
	}
}

func (r *Registration) markRemoved() {
	r.mu.Lock()
	r.removed = true
	r.mu.Unlock()
}

// Removed reports whether r was unregistered.
func (r *Registration) Removed() bool {
	r.mu.Lock()
	defer r.mu.Unlock()
	return r.removed
}

// Stats are a registration's counters, as RG.DUMPREGISTRATIONS shows them.
type Stats struct {
	Triggered, Success, Failures, Aborted int64
	LastRun, TotalRun                     time.Duration
	LastError                             string
}

// Matches reports whether a keyspace event on key concerns a KeysReader
// registration: a prefix ending in '*' matches by prefix, any other exactly;
// event names compare case-insensitively.
func (r *Registration) Matches(key, event string) bool {
	if p, ok := strings.CutSuffix(r.Prefix, "*"); ok {
		if !strings.HasPrefix(key, p) {
			return false
		}
	} else if key != r.Prefix {
		return false
	}
	if r.EventTypes == nil {
		return true
	}
	for _, t := range r.EventTypes {
		if strings.EqualFold(t, event) {
			return true
		}
	}
	return false
}

// MatchesType reports whether the key type (RedisGears' names) is wanted.
func (r *Registration) MatchesType(keyType string) bool {
	if r.KeyTypes == nil {
		return true
	}
	for _, t := range r.KeyTypes {
		if t == keyType {
			return true
		}
	}
	return false
}

// Triggered counts an event that starts an execution.
func (r *Registration) Triggered() { r.triggered.Add(1) }

// Finished records an execution's outcome.
func (r *Registration) Finished(o Outcome, err error, took time.Duration) {
	r.mu.Lock()
	defer r.mu.Unlock()
	r.stats.LastRun = took
	r.stats.TotalRun += took
	switch {
	case err != nil:
		r.stats.Failures++
		r.stats.LastError = err.Error()
	case len(o.Errors) > 0:
		r.stats.Failures++
		r.stats.LastError = o.Errors[0]
	default:
		r.stats.Success++
		r.stats.LastError = "" // as RedisGears: a success clears it
	}
}

// CountAborted counts an execution of r aborted before it started.
func (r *Registration) CountAborted() {
	r.mu.Lock()
	r.stats.Aborted++
	r.mu.Unlock()
}

// Stats copies the counters.
func (r *Registration) Stats() Stats {
	r.mu.Lock()
	st := r.stats
	r.mu.Unlock()
	// Read last: every outcome counted above was triggered before.
	st.Triggered = r.triggered.Load()
	return st
}

// ClearStats resets the counters (RG.CLEARREGISTRATIONSSTATS).
func (r *Registration) ClearStats() {
	r.mu.Lock()
	r.stats = Stats{}
	r.triggered.Store(0)
	st := r.streams
	r.mu.Unlock()
	if st != nil {
		st.clearLag()
	}
}

// Registrations are the live registrations of this shard.
type Registrations struct {
	mu       sync.RWMutex
	list     []*Registration
	triggers map[string]*Registration
	hooks    map[string][]*Registration // per command, the last registered first
}

// NewRegistrations returns an empty set.
func NewRegistrations() *Registrations {
	return &Registrations{triggers: map[string]*Registration{}, hooks: map[string][]*Registration{}}
}

// Add makes regs live together, or none of them (a trigger name is taken);
// replacing are the registrations of an upgraded session, removed in the
// same step (their triggers may be reused).
func (rs *Registrations) Add(regs, replacing []*Registration) error {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	leaving := map[*Registration]bool{}
	for _, r := range replacing {
		leaving[r] = true
	}
	seen := map[string]bool{}
	for _, r := range regs {
		if r.Trigger == "" {
			continue
		}
		if seen[r.Trigger] {
			return fmt.Errorf("trigger already registered in this session")
		}
		seen[r.Trigger] = true
		if old, ok := rs.triggers[r.Trigger]; ok && !leaving[old] {
			return fmt.Errorf("trigger already registered")
		}
	}
	if err := rs.checkHooksLocked(regs, leaving); err != nil {
		return err
	}
	for _, r := range replacing {
		rs.removeLocked(r)
	}
	for _, r := range regs {
		r.refs.Set(1) // the live list's, released by Engine.ForgetRegistration
		rs.list = append(rs.list, r)
		if r.Trigger != "" {
			rs.triggers[r.Trigger] = r
		}
		if r.Hook != "" {
			rs.hooks[r.Hook] = append([]*Registration{r}, rs.hooks[r.Hook]...)
		}
	}
	return nil
}

// checkHooksLocked refuses to stack a hook over a non-sync one: its client
// waits for an execution, and call_next could not run inside it in order.
func (rs *Registrations) checkHooksLocked(regs []*Registration, leaving map[*Registration]bool) error {
	top := map[string]*Registration{}
	for cmd, chain := range rs.hooks {
		for _, h := range chain {
			if !leaving[h] {
				top[cmd] = h
				break
			}
		}
	}
	for _, r := range regs {
		if r.Hook == "" {
			continue
		}
		if prev := top[r.Hook]; prev != nil && prev.Mode != "sync" {
			if prev.Session == r.Session {
				return fmt.Errorf("Can not override a none sync registration which already created on this session")
			}
			return fmt.Errorf("Can not override a none sync registration")
		}
		top[r.Hook] = r
	}
	return nil
}

// Hooks is the chain of hooks of a command (lower case), the one to run first
// first.
func (rs *Registrations) Hooks(cmd string) []*Registration {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return rs.hooks[cmd]
}

// HookedCommands is every command that has hooks or that KeysReader
// registrations watch (commands=).
func (rs *Registrations) HookedCommands() []string {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	seen := map[string]bool{}
	for cmd := range rs.hooks {
		seen[cmd] = true
	}
	for _, r := range rs.list {
		for _, cmd := range r.Commands {
			seen[cmd] = true
		}
	}
	out := make([]string, 0, len(seen))
	for cmd := range seen {
		out = append(out, cmd)
	}
	return out
}

// Watched reports whether KeysReader registrations watch command cmd.
func (rs *Registrations) Watched(cmd string) bool {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, r := range rs.list {
		if r.Watches(cmd) {
			return true
		}
	}
	return false
}

// Watches reports whether r is limited to events of command cmd, among others.
func (r *Registration) Watches(cmd string) bool {
	for _, c := range r.Commands {
		if c == cmd {
			return true
		}
	}
	return false
}

func (rs *Registrations) removeLocked(r *Registration) bool {
	for i, x := range rs.list {
		if x == r {
			rs.list = append(rs.list[:i], rs.list[i+1:]...)
			if r.Trigger != "" && rs.triggers[r.Trigger] == r {
				delete(rs.triggers, r.Trigger)
			}
			if r.Hook != "" {
				chain := rs.hooks[r.Hook]
				for j, h := range chain {
					if h == r {
						chain = append(chain[:j:j], chain[j+1:]...)
						break
					}
				}
				if len(chain) == 0 {
					delete(rs.hooks, r.Hook)
				} else {
					rs.hooks[r.Hook] = chain
				}
			}
			return true
		}
	}
	return false
}

// Remove takes registration id out; false if it is not live.
func (rs *Registrations) Remove(id string) (*Registration, bool) {
	rs.mu.Lock()
	defer rs.mu.Unlock()
	for _, r := range rs.list {
		if r.ID == id {
			rs.removeLocked(r)
			return r, true
		}
	}
	return nil, false
}

// List is every live registration, oldest first.
func (rs *Registrations) List() []*Registration {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return append([]*Registration(nil), rs.list...)
}

// OfSession is sess's live registrations.
func (rs *Registrations) OfSession(sess *session.Session) []*Registration {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	var out []*Registration
	for _, r := range rs.list {
		if r.Session == sess {
			out = append(out, r)
		}
	}
	return out
}

// Trigger is the CommandReader registration of a trigger name.
func (rs *Registrations) Trigger(name string) (*Registration, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	r, ok := rs.triggers[name]
	return r, ok
}

// KeyEvent appends to out the registrations that a keyspace event concerns:
// KeysReader ones by prefix and event type, StreamReader ones on xadd by
// prefix.
func (rs *Registrations) KeyEvent(key, event string, out []*Registration) []*Registration {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, r := range rs.list {
		switch r.Reader {
		case "KeysReader":
			if r.Matches(key, event) {
				out = append(out, r)
			}
		case "StreamReader":
			if event == "xadd" && r.Matches(key, event) {
				out = append(out, r)
			}
		}
	}
	return out
}

// Get returns a live registration by id.
func (rs *Registrations) Get(id string) (*Registration, bool) {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	for _, r := range rs.list {
		if r.ID == id {
			return r, true
		}
	}
	return nil, false
}

// Len is the number of live registrations.
func (rs *Registrations) Len() int {
	rs.mu.RLock()
	defer rs.mu.RUnlock()
	return len(rs.list)
}
