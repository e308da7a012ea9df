package builder

import (
	"fmt"
	"strings"
	"sync"

	"gears/session"
)

// Runner runs an execution's plan in its session's interpreter, on the
// calling (locked) thread, and reports what it produced.
type Runner func(e *Execution) (Outcome, error)

// Interrupter stops the Python code of a running execution.
type Interrupter func(e *Execution, threadID uint64)

// Engine owns every execution of this shard.
type Engine struct {
	shardID   string
	run       Runner
	interrupt Interrupter
	maxKept   func() int64
	threads   func(func()) // runs a function on a locked OS thread

	mu    sync.Mutex
	seq   int64
	byID  map[string]*Execution
	kept  []*Execution // oldest first, for RG.DUMPEXECUTIONS and eviction
	queue chan *Execution
}

// NewEngine starts workers execution threads (ExecutionThreads) on threads
// started by spawn.
func NewEngine(shardID string, workers int, maxKept func() int64, spawn func(func()), run Runner, interrupt Interrupter) *Engine {
	en := &Engine{
		shardID: shardID, run: run, interrupt: interrupt, maxKept: maxKept, threads: spawn,
		byID:  map[string]*Execution{},
		queue: make(chan *Execution, 1<<16),
	}
	for range workers {
		spawn(en.worker)
	}
	return en
}

// Create registers a new execution of a plan of sess (holding a session
// reference until the execution is dropped). kept executions are listed by
// RG.DUMPEXECUTIONS and evicted beyond MaxExecutions.
func (en *Engine) Create(sess *session.Session, token int64, steps []Step, desc string, kept bool) *Execution {
	sess.Hold()
	en.mu.Lock()
	e := &Execution{
		ID: en.nextIDLocked(), Session: sess, Token: token, Desc: desc,
		status: Created, steps: steps, done: make(chan struct{}), kept: kept,
	}
	en.byID[e.ID] = e
	var evicted []*Execution
	if kept {
		en.kept = append(en.kept, e)
		evicted = en.evictLocked()
	}
	en.mu.Unlock()
	for _, old := range evicted {
		old.Session.Release(en.threads)
	}
	return e
}

// CreateEvent registers the execution of registration r on one event.
func (en *Engine) CreateEvent(r *Registration, payload any) *Execution {
	steps := append([]Step(nil), r.Steps...)
	e := en.Create(r.Session, r.Token, steps, r.Desc, false)
	e.Registration, e.Payload = r, payload
	return e
}

// NextID is a new id for an execution or a registration ("<shard>-<n>").
func (en *Engine) NextID() string {
	en.mu.Lock()
	defer en.mu.Unlock()
	return en.nextIDLocked()
}

func (en *Engine) nextIDLocked() string {
	en.seq++
	return fmt.Sprintf("%s-%d", en.shardID, en.seq)
}

// evictLocked drops the oldest finished executions beyond MaxExecutions.
func (en *Engine) evictLocked() []*Execution {
	var out []*Execution
	excess := int64(len(en.kept)) - en.maxKept()
	for i := 0; i < len(en.kept) && excess > 0; {
		if e := en.kept[i]; e.Finished() {
			en.kept = append(en.kept[:i], en.kept[i+1:]...)
			delete(en.byID, e.ID)
			out = append(out, e)
			excess--
			continue
		}
		i++
	}
	return out
}

// Start queues e for an execution thread.
func (en *Engine) Start(e *Execution) { en.queue <- e }

func (en *Engine) worker() {
	for e := range en.queue {
		en.execute(e)
	}
}

func (en *Engine) execute(e *Execution) {
	// Executions nobody lists are forgotten once finished (whoever waits on
	// them holds the execution itself).
	if !e.kept {
		defer en.Drop(e.ID) //nolint:errcheck // finished by then
	}
	e.mu.Lock()
	if e.status != Created { // aborted while queued
		e.mu.Unlock()
		return
	}
	e.status = Running
	e.mu.Unlock()

	out, err := en.run(e)

	e.mu.Lock()
	e.status = Done
	e.threadID = 0
	if err != nil {
		e.errors = []string{err.Error()}
	} else {
		e.results, e.errors, e.total, e.read = out.Results, out.Errors, out.Total, out.Read
		for i := range e.steps {
			if i < len(out.Steps) {
				e.steps[i].Duration = out.Steps[i]
			}
		}
	}
	e.mu.Unlock()
	close(e.done)
}

// SetThread records the Python thread running e, so an abort can interrupt
// it. The Runner calls it while attached to the interpreter: with the thread
// id before running the plan (false means the execution was aborted meanwhile
// and must not run), and with 0 after.
func (e *Execution) SetThread(id uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	e.threadID = id
	return !e.abort
}

// RunsOn reports whether e is running Python on thread id.
func (e *Execution) RunsOn(id uint64) bool {
	e.mu.Lock()
	defer e.mu.Unlock()
	return id != 0 && e.threadID == id
}

// Get returns the execution with this id.
func (en *Engine) Get(id string) (*Execution, bool) {
	en.mu.Lock()
	defer en.mu.Unlock()
	e, ok := en.byID[id]
	return e, ok
}

// List is the kept executions, oldest first.
func (en *Engine) List() []*Execution {
	en.mu.Lock()
	defer en.mu.Unlock()
	return append([]*Execution(nil), en.kept...)
}

// Len is the number of executions that exist (kept or still running).
func (en *Engine) Len() int {
	en.mu.Lock()
	defer en.mu.Unlock()
	return len(en.byID)
}

// Drop forgets a finished execution and releases its session reference.
func (en *Engine) Drop(id string) error {
	en.mu.Lock()
	e, ok := en.byID[id]
	if !ok {
		en.mu.Unlock()
		return fmt.Errorf("execution plan does not exist")
	}
	if !e.Finished() {
		en.mu.Unlock()
		return fmt.Errorf("can not drop a not yet finished execution, abort it first.")
	}
	delete(en.byID, id)
	for i, k := range en.kept {
		if k == e {
			en.kept = append(en.kept[:i], en.kept[i+1:]...)
			break
		}
	}
	en.mu.Unlock()
	e.Session.Release(en.threads)
	return nil
}

// Discard forgets an execution that was created but will never start (its
// script failed after calling run()).
func (en *Engine) Discard(e *Execution) {
	e.mu.Lock()
	if e.status == Created {
		e.status = Aborted
		close(e.done)
	}
	e.mu.Unlock()
	en.Drop(e.ID) //nolint:errcheck // finished now, so Drop cannot refuse
}

// Abort stops an execution: one not started yet never starts, a running one
// has its Python code interrupted; a finished one is left as it is.
func (en *Engine) Abort(id string) error {
	e, ok := en.Get(id)
	if !ok {
		return fmt.Errorf("execution does not exist")
	}
	e.mu.Lock()
	e.abort = true
	status, thread := e.status, e.threadID
	if status == Created {
		e.status = Aborted
		close(e.done)
	}
	e.mu.Unlock()
	if status == Running && thread != 0 {
		en.threads(func() { en.interrupt(e, thread) })
	}
	return nil
}

// ShardID is this shard's 40-character id.
func (en *Engine) ShardID() string { return en.shardID }

// StandaloneShardID is RedisGears' shard id outside a cluster.
var StandaloneShardID = strings.Repeat("0", 40)
