package builder

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gears/interp"
	"gears/session"
)

// Runner runs an execution's plan in its session's interpreter, on the
// calling (locked) thread, and reports what it produced.
type Runner func(e *Execution) (Outcome, error)

// Attacher readies the calling (locked) thread to run executions of sess: it
// returns their Runner and the function that ends it. Executions of one
// session queued one behind the other share one attach (making a thread
// state costs more than a no-op event's Python).
type Attacher func(sess *session.Session) (run Runner, detach func())

// Interrupter stops the Python code of a running execution.
type Interrupter func(e *Execution, threadID uint64)

// Engine owns every execution of this shard.
type Engine struct {
	shardID   string
	attach    Attacher
	interrupt Interrupter
	maxKept   func() int64 // MaxExecutions
	maxPerReg func() int64 // MaxExecutionsPerRegistration
	maxQueued func() int64 // MaxQueuedExecutions (nil: no limit)
	threads   func(func()) // runs a function on a locked OS thread

	mu     sync.Mutex
	seq    int64 // the next execution id's number
	regSeq int64 // the next registration id's number (RedisGears counts them apart)
	byID   map[string]*Execution
	kept   execList                    // oldest first: RG.DUMPEXECUTIONS
	class  map[*Registration]*execList // the same per registration (nil: run()s), for eviction
	events int                         // event executions alive (not in byID)
	queue  []*Execution                // waiting for a worker; unbounded: Start never blocks
	queued atomic.Int64                // len(queue), read without mu by events on the main thread
	run    map[*Execution]struct{}     // running now
	idle   int                         // workers parked and not yet woken
	park   *interp.Parking             // where idle workers wait
	waits  map[WaitKey]*Execution      // waiting for async records
	early  map[any][]int64             // per interpreter, ids woken before their wait was recorded
}

// NewEngine starts workers execution threads (ExecutionThreads) on threads
// started by spawn. Finished executions are kept up to maxKept (run()s) and
// maxPerReg (per registration).
func NewEngine(shardID string, workers int, maxKept, maxPerReg func() int64, spawn func(func()), attach Attacher, interrupt Interrupter) *Engine {
	en := &Engine{
		shardID: shardID, attach: attach, interrupt: interrupt, maxKept: maxKept, maxPerReg: maxPerReg, threads: spawn,
		byID:  map[string]*Execution{},
		run:   map[*Execution]struct{}{},
		kept:  execList{which: keptList},
		class: map[*Registration]*execList{},
		waits: map[WaitKey]*Execution{},
		early: map[any][]int64{},
	}
	en.park = interp.NewParking()
	for range workers {
		spawn(en.worker)
	}
	return en
}

// Create registers a new execution of a plan of sess (holding a session
// reference until the execution is dropped), or returns nil when sess has
// ended. kept executions are listed by RG.DUMPEXECUTIONS and evicted beyond
// MaxExecutions.
func (en *Engine) Create(sess *session.Session, token int64, steps []Step, desc string, kept bool) *Execution {
	return en.create(sess, token, steps, desc, kept, nil, nil, false, 0)
}

// Join lists this shard's part of an execution another shard started (a
// run() or r's event across the cluster), under that execution's id, as
// running, kept as the other shard's is: the caller runs it and ends it
// with Complete. Later ids here continue above the joined one's number, as RedisGears' do. nil means sess
// (or r) has ended.
func (en *Engine) Join(sess *session.Session, id string, token int64, steps []Step, desc string, kept bool, r *Registration) *Execution {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		if n, err := strconv.ParseInt(id[i+1:], 10, 64); err == nil && n >= 0 {
			en.RaiseSeq(n + 1)
		}
	}
	e := en.createWithID(id, sess, token, steps, desc, kept, r, nil, false, 0)
	if e == nil {
		return nil
	}
	e.mu.Lock()
	e.status, e.started = Running, time.Now()
	e.mu.Unlock()
	return e
}

// Why an event's execution was not made.
var (
	ErrLetGo     = errors.New("the registration was unregistered")
	ErrQueueFull = errors.New("too many executions are waiting for an execution thread (MaxQueuedExecutions)")
	ErrCascade   = fmt.Errorf("%d executions of the registration are waiting already, and registrations' own writes caused this event", CascadeWaiting)
)

// CascadeWaiting bounds the unfinished executions a registration may have
// for events that executions caused (Depth > 1): registrations that trigger
// each other would otherwise fill the queue, and every client's trigger
// would wait behind them. Events of clients' writes only meet
// MaxQueuedExecutions.
const CascadeWaiting = 1000

// CreateEvent registers the execution of registration r on one event; it is
// listed (as registered) until evicted beyond MaxExecutionsPerRegistration.
// The execution holds r: ErrLetGo means r was let go of meanwhile. With
// MaxQueuedExecutions executions waiting already, it makes none (ErrQueueFull):
// events cannot pile up without bound. depth counts the executions whose
// writes led to this event (see Execution.Depth).
func (en *Engine) CreateEvent(r *Registration, payload any, depth int) (*Execution, error) {
	return en.createEvent(r, payload, depth, false)
}

// StartEvent is CreateEvent then Start, taking the engine's lock once (the
// main thread does it for every event).
func (en *Engine) StartEvent(r *Registration, payload any, depth int) (*Execution, error) {
	return en.createEvent(r, payload, depth, true)
}

// StartBatch is StartEvent for a StreamReader batch: never refused for the
// queue's length, since each stream has one batch at a time.
func (en *Engine) StartBatch(r *Registration, payload any) (*Execution, error) {
	return en.createEvent(r, payload, 0, true)
}

func (en *Engine) createEvent(r *Registration, payload any, depth int, start bool) (*Execution, error) {
	if depth > 1 && r.waiting.Load() >= CascadeWaiting {
		return nil, ErrCascade
	}
	if depth > 0 && en.QueueFull() {
		return nil, ErrQueueFull
	}
	e := en.create(r.Session, r.Token, r.Steps, r.Desc, true, r, payload, start, depth) // steps shared until profiled
	if e == nil {
		return nil, ErrLetGo
	}
	return e, nil
}

// Queued is the number of executions waiting for an execution thread.
func (en *Engine) Queued() int { return int(en.queued.Load()) }

// QueueFull reports whether the queue has reached its limit.
func (en *Engine) QueueFull() bool { return en.maxQueued != nil && en.queued.Load() >= en.maxQueued() }

// LimitQueue makes events beyond max() queued executions fail (ErrQueueFull).
func (en *Engine) LimitQueue(max func() int64) { en.maxQueued = max }

func (en *Engine) create(sess *session.Session, token int64, steps []Step, desc string, kept bool, r *Registration, payload any, start bool, depth int) *Execution {
	return en.createWithID("", sess, token, steps, desc, kept, r, payload, start, depth)
}

// createWithID is create under a given id ("": a new one).
func (en *Engine) createWithID(id string, sess *session.Session, token int64, steps []Step, desc string, kept bool, r *Registration, payload any, start bool, depth int) *Execution {
	if r != nil && !r.Acquire() {
		return nil
	}
	if !sess.Acquire() {
		if r != nil {
			r.Release()
		}
		return nil
	}
	e := &Execution{
		Session: sess, Token: token, Desc: desc, Registration: r, Payload: payload, Depth: depth,
		status: Created, steps: steps, kept: kept,
	}
	if r != nil {
		r.waiting.Add(1) // until finishLocked
	}
	en.mu.Lock()
	e.ID = id
	if id == "" {
		e.ID = en.nextIDLocked()
	}
	if r == nil {
		en.byID[e.ID] = e
	} else {
		// An event's execution is found through the kept list (getLocked):
		// indexing each one costs the main thread more than the rare lookup.
		en.events++
	}
	var evicted []*Execution
	if kept {
		en.kept.pushBack(e)
		cl := en.class[r]
		if cl == nil {
			cl = &execList{which: classList}
			en.class[r] = cl
		}
		cl.pushBack(e)
		e.listed = true
		evicted = en.evictLocked(r)
	}
	wake := start && en.queueLocked(e)
	en.mu.Unlock()
	if wake {
		en.park.Wake()
	}
	en.release(evicted)
	return e
}

// release lets go of what dropped executions held: their session and
// registration.
func (en *Engine) release(dropped []*Execution) {
	for _, e := range dropped {
		e.Session.Release(en.threads)
		if e.Registration != nil {
			e.Registration.Release()
		}
	}
}

// Seq is the number the next execution id gets.
func (en *Engine) Seq() int64 {
	en.mu.Lock()
	defer en.mu.Unlock()
	return en.seq
}

// maxSeq bounds the number in ids: a restored or replicated id above it
// does not move the sequence, which could otherwise be made to overflow.
const maxSeq = 1 << 53

// RaiseSeq makes later execution ids continue from n (a restart's).
func (en *Engine) RaiseSeq(n int64) {
	if n > maxSeq {
		return
	}
	en.mu.Lock()
	en.seq = max(en.seq, n)
	en.mu.Unlock()
}

// RaiseRegistrationSeq makes later registration ids continue above id n
// (ids restored after a restart).
func (en *Engine) RaiseRegistrationSeq(n int64) {
	if n > maxSeq {
		return
	}
	en.mu.Lock()
	en.regSeq = max(en.regSeq, n+1)
	en.mu.Unlock()
}

// ForgetRegistration lets go of an unregistered registration: its finished
// executions are dropped and its live reference released (executions still
// queued or running keep it until they are dropped).
func (en *Engine) ForgetRegistration(r *Registration) {
	defer r.Release()
	r.markRemoved()
	en.mu.Lock()
	var dropped []*Execution
	if cl := en.class[r]; cl != nil {
		for e := cl.front; e != nil; {
			next := cl.after(e)
			if e.Finished() {
				en.forgetLocked(e)
				dropped = append(dropped, e)
			}
			e = next
		}
	}
	en.mu.Unlock()
	en.release(dropped)
}

// NextRegistrationID is a new registration id ("<shard>-<n>").
func (en *Engine) NextRegistrationID() string {
	en.mu.Lock()
	defer en.mu.Unlock()
	return en.idLocked(&en.regSeq)
}

// SkipID uses up an execution id: RedisGears registers a script's
// registrations through an execution of its own, and users' tests count
// the ids that follow.
func (en *Engine) SkipID() {
	en.mu.Lock()
	en.seq++
	en.mu.Unlock()
}

func (en *Engine) nextIDLocked() string { return en.idLocked(&en.seq) }

// idLocked formats an id from sequence *n (from 0, as RedisGears) and
// advances it.
func (en *Engine) idLocked(n *int64) string {
	// One allocation: every event's execution gets an id on the main thread.
	var id strings.Builder
	id.Grow(len(en.shardID) + 21)
	id.WriteString(en.shardID)
	id.WriteByte('-')
	var b [20]byte
	id.Write(strconv.AppendInt(b[:0], *n, 10))
	*n++
	return id.String()
}

// evictLocked drops the oldest finished executions beyond the limits: r's
// own beyond MaxExecutionsPerRegistration (for an event's execution), then
// all of them beyond MaxExecutions, as RedisGears counts them. Each stops at
// the oldest unfinished one: executions finish roughly in order, and each
// finish evicts again.
func (en *Engine) evictLocked(r *Registration) []*Execution {
	var out []*Execution
	if r != nil {
		out = en.trimLocked(en.class[r], en.maxPerReg(), out)
	}
	return en.trimLocked(&en.kept, en.maxKept(), out)
}

func (en *Engine) trimLocked(l *execList, limit int64, out []*Execution) []*Execution {
	for l != nil && l.front != nil && int64(l.n) > limit {
		e := l.front
		if !e.Finished() {
			break
		}
		en.forgetLocked(e)
		out = append(out, e)
	}
	return out
}

// forgetLocked removes e from the engine's maps and lists.
func (en *Engine) forgetLocked(e *Execution) {
	if e.Registration != nil {
		en.events--
	}
	delete(en.byID, e.ID)
	if e.listed {
		en.kept.remove(e)
		cl := en.class[e.Registration]
		cl.remove(e)
		if cl.n == 0 {
			delete(en.class, e.Registration)
		}
		e.listed = false
	}
}

// Start queues e for an execution thread. It never blocks: it is called on
// the Redis main thread, which the execution threads may wait for.
func (en *Engine) Start(e *Execution) {
	en.mu.Lock()
	wake := en.queueLocked(e)
	en.mu.Unlock()
	if wake {
		en.park.Wake()
	}
}

// queueLocked queues e and reports whether an idle worker must be woken.
func (en *Engine) queueLocked(e *Execution) bool {
	en.queue = append(en.queue, e)
	en.queued.Store(int64(len(en.queue)))
	if en.idle == 0 {
		return false
	}
	en.idle-- // one wake-up per idle worker: a woken one may find the queue empty
	return true
}

// next waits for a queued execution.
func (en *Engine) next() *Execution {
	en.mu.Lock()
	defer en.mu.Unlock()
	for len(en.queue) == 0 {
		en.idle++
		en.mu.Unlock()
		en.park.Wait()
		en.mu.Lock()
	}
	return en.popLocked()
}

// nextOf takes the first queued execution if it is of sess, without waiting:
// the queue stays first in, first out.
func (en *Engine) nextOf(sess *session.Session) *Execution {
	en.mu.Lock()
	defer en.mu.Unlock()
	if len(en.queue) == 0 || en.queue[0].Session != sess {
		return nil
	}
	return en.popLocked()
}

func (en *Engine) popLocked() *Execution {
	e := en.queue[0]
	en.queue[0] = nil
	en.queue = en.queue[1:]
	en.queued.Store(int64(len(en.queue)))
	return e
}

// RunHere runs e on the calling (locked) thread, not on an execution
// thread: whoever waits for e there gains nothing by handing it over, and
// waking another thread costs more than a small plan's whole run. Should e
// wait for async records, it goes on on an execution thread once resumed.
func (en *Engine) RunHere(e *Execution) {
	run, detach := en.attach(e.Session)
	en.execute(e, run)
	detach()
}

func (en *Engine) worker() {
	for {
		e := en.next()
		run, detach := en.attach(e.Session)
		for ; e != nil; e = en.nextOf(e.Session) {
			en.execute(e, run)
		}
		detach()
	}
}

func (en *Engine) execute(e *Execution, run Runner) {
	e.mu.Lock()
	switch {
	case e.status == Created:
		e.status = Running
		e.started = time.Now()
	case e.status == Running && e.wait != nil: // resumed after waiting
	default: // aborted while queued
		e.mu.Unlock()
		en.finished(e)
		return
	}
	e.mu.Unlock()
	en.mu.Lock()
	en.run[e] = struct{}{}
	en.mu.Unlock()

	out, err := run(e)

	if err == nil && out.Suspended != 0 {
		en.suspend(e, out.Suspended)
		return
	}
	en.mu.Lock()
	delete(en.run, e)
	en.mu.Unlock()
	en.Complete(e, out, err)
}

// Complete ends e, run to its end: done, with what it produced (or err).
func (en *Engine) Complete(e *Execution, out Outcome, err error) {
	e.mu.Lock()
	e.status = Done
	e.threadID = 0
	if err != nil {
		e.errors = []string{err.Error()}
	} else {
		e.results, e.errors, e.total, e.read = out.Results, out.Errors, out.Total, out.Read
		if len(out.Steps) > 0 {
			e.steps = append([]Step(nil), e.steps...) // may be a registration's, shared
			for i := range e.steps {
				if i < len(out.Steps) {
					e.steps[i].Duration = out.Steps[i]
				}
			}
		}
	}
	e.finishLocked()
	e.mu.Unlock()
	en.finished(e)
}

// finished lets go of a finished execution nobody lists (whoever waits on
// it holds the execution itself); listed ones may now be evicted.
func (en *Engine) finished(e *Execution) {
	if !e.kept || (e.Registration != nil && e.Registration.Removed()) {
		en.Drop(e.ID) //nolint:errcheck // finished by then
		return
	}
	en.mu.Lock()
	evicted := en.evictLocked(e.Registration)
	en.mu.Unlock()
	en.release(evicted)
}

// SetThread records the Python thread running e, so an abort can interrupt
// it. The Runner calls it while attached to the interpreter: with the thread
// id before running the plan, and with 0 after. False means an abort was
// asked for: the execution must not run, or may have been interrupted.
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
	return en.getLocked(id)
}

func (en *Engine) getLocked(id string) (*Execution, bool) {
	if e, ok := en.byID[id]; ok {
		return e, true
	}
	for e := en.kept.front; e != nil; e = en.kept.after(e) {
		if e.ID == id {
			return e, true
		}
	}
	return nil, false
}

// List is the kept executions, oldest first.
func (en *Engine) List() []*Execution {
	en.mu.Lock()
	defer en.mu.Unlock()
	out := make([]*Execution, 0, en.kept.n)
	for e := en.kept.front; e != nil; e = en.kept.after(e) {
		out = append(out, e)
	}
	return out
}

// Len is the number of executions that exist (kept or still running).
func (en *Engine) Len() int {
	en.mu.Lock()
	defer en.mu.Unlock()
	return len(en.byID) + en.events
}

// Drop forgets a finished execution and releases its session reference.
func (en *Engine) Drop(id string) error {
	en.mu.Lock()
	e, ok := en.getLocked(id)
	if !ok {
		en.mu.Unlock()
		return fmt.Errorf("execution plan does not exist")
	}
	if !e.Finished() {
		en.mu.Unlock()
		return fmt.Errorf("can not drop a not yet finished execution, abort it first.")
	}
	en.forgetLocked(e)
	en.mu.Unlock()
	en.release([]*Execution{e})
	return nil
}

// Discard forgets an execution that was created but will never start (its
// script failed after calling run()).
func (en *Engine) Discard(e *Execution) {
	e.mu.Lock()
	if e.status == Created {
		e.status = Aborted
		e.finishLocked()
	}
	e.mu.Unlock()
	en.Drop(e.ID) //nolint:errcheck // finished now, so Drop cannot refuse
}

// ShardID is this shard's 40-character id.
func (en *Engine) ShardID() string { return en.shardID }

// StandaloneShardID is RedisGears' shard id outside a cluster.
var StandaloneShardID = strings.Repeat("0", 40)
