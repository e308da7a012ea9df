// Package builder schedules and keeps GearsBuilder executions: ids, states,
// results, the pool of execution threads, eviction and abort. The per-record
// work runs in Python (runtime/steps.py, execution.py); this package decides when and
// where, and keeps what RG.GETEXECUTION and RG.GETRESULTS report.
package builder

import (
	"sync"
	"sync/atomic"
	"time"

	"gears/session"
)

// Status is an execution's state, named as RedisGears names it.
type Status string

const (
	Created Status = "created"
	Running Status = "running"
	Done    Status = "done"
	Aborted Status = "aborted"
)

// Step is one line of an execution plan as RG.GETEXECUTION shows it.
type Step struct {
	Type, Name, Arg string
	Duration        time.Duration
}

// Execution is one run() of a plan.
type Execution struct {
	ID      string
	Session *session.Session
	Token   int64 // the plan's key in the interpreter (runtime/execution.py)
	Desc    string
	// An event's execution of a registration, and the event.
	Registration *Registration
	Payload      any
	// Depth is 1 for an event of a client's write, n+1 for one that an
	// execution of depth n caused: registrations that trigger each other
	// stop at a bound instead of growing without end.
	Depth int

	mu           sync.Mutex
	status       Status
	steps        []Step
	results      []any
	errors       []string
	total        time.Duration
	read         time.Duration
	threadID     uint64 // Python thread running it, for abort
	abort        bool
	reason       string    // why it was aborted, when not by RG.ABORTEXECUTION
	started      time.Time // when it began to run
	interrupting session.Interrupting
	done         chan struct{} // made by Done() for whoever waits; closed when finished
	finished     atomic.Bool   // set with mu held
	kept         bool          // listed by RG.DUMPEXECUTIONS until dropped
	wait         *WaitKey      // set while it waits for async records (and when resumed)
	listed       bool          // in the engine's kept and class lists (under the engine's mu)
	links        [2]links      // in those lists
	across       []string      // the other shards it runs on, in a cluster
}

// SetAcross records the other shards e runs on (a run() or event across a
// cluster's shards): a drop or abort of e reaches them too.
func (e *Execution) SetAcross(shards []string) {
	e.mu.Lock()
	e.across = shards
	e.mu.Unlock()
}

// Across is what SetAcross recorded.
func (e *Execution) Across() []string {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.across
}

// Snapshot is an execution's state at one moment.
type Snapshot struct {
	ID      string
	Status  Status
	Steps   []Step
	Results []any // nil until done
	Errors  []string
	Total   time.Duration
	Read    time.Duration
}

// Snapshot copies the execution's state.
func (e *Execution) Snapshot() Snapshot {
	e.mu.Lock()
	defer e.mu.Unlock()
	s := Snapshot{ID: e.ID, Status: e.status, Steps: e.steps, Errors: e.errors, Total: e.total, Read: e.read}
	if e.status == Done || e.status == Aborted {
		s.Results = e.results
		if s.Results == nil {
			s.Results = []any{}
		}
	}
	return s
}

// Status is the current state.
func (e *Execution) Status() Status {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.status
}

// Done is closed when the execution has finished (done or aborted). The
// channel is made for the few executions someone waits on, not for each
// event's.
func (e *Execution) Done() <-chan struct{} {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.done == nil {
		e.done = make(chan struct{})
		if e.finished.Load() {
			close(e.done)
		}
	}
	return e.done
}

// finishLocked marks e finished, with e.mu held.
func (e *Execution) finishLocked() {
	if e.Registration != nil {
		e.Registration.waiting.Add(-1)
	}
	e.finished.Store(true)
	if e.done != nil {
		close(e.done)
	}
}

// Kept reports whether e is listed until dropped (RG.DUMPEXECUTIONS).
func (e *Execution) Kept() bool { return e.kept }

// Finished reports whether the execution has finished (done or aborted).
func (e *Execution) Finished() bool { return e.finished.Load() }

// Outcome is what running a plan produced.
type Outcome struct {
	Results []any
	Errors  []string
	Total   time.Duration
	Read    time.Duration
	Steps   []time.Duration // per step of the plan, reader first
	// A StreamReader batch: entries read, the first one's age, and whether
	// the batch was acknowledged.
	StreamRead  int
	StreamLag   time.Duration
	StreamAcked bool
	// Suspended is non-zero when the plan waits for async records (futures,
	// coroutines): the id its interpreter resumes it by.
	Suspended int64
	// Later is the execution a sync run that went async goes on as.
	Later *Execution
}

// WaitKey names an execution waiting for async records: its interpreter
// (*interp.Interp) and the suspension id there.
type WaitKey struct {
	Interp any
	SID    int64
}

// Started is when e began to run (the first time, when it waited).
func (e *Execution) Started() time.Time {
	e.mu.Lock()
	defer e.mu.Unlock()
	return e.started
}

// Waiting is what the Runner needs to resume e: the suspension id (0 when
// e has not waited) and whether it was aborted meanwhile.
func (e *Execution) Waiting() (sid int64, aborted bool) {
	e.mu.Lock()
	defer e.mu.Unlock()
	if e.wait == nil {
		return 0, false
	}
	return e.wait.SID, e.abort
}
