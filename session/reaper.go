package session

import (
	"sync"
	"time"
)

// Reaper ends sessions when gears is idle. Destroying an interpreter costs
// 1–2 ms of CPU, which would otherwise compete with the calls that follow
// (each RG.PYEXECUTE ends a session). At most max() ends wait; beyond that
// the oldest runs at once, so a steady load cannot pile up interpreters.
type Reaper struct {
	run  func(func()) // runs an end on a locked OS thread
	idle func() bool  // whether nothing would compete now
	max  func() int

	mu    sync.Mutex
	queue []func()
	kick  chan struct{}
}

// NewReaper starts a reaper: ends wait until idle() or for room under max().
func NewReaper(run func(func()), idle func() bool, max func() int) *Reaper {
	r := &Reaper{run: run, idle: idle, max: max, kick: make(chan struct{}, 1)}
	go r.loop()
	return r
}

// Go queues fn, a session's end (Session.Release's run).
func (r *Reaper) Go(fn func()) {
	r.mu.Lock()
	r.queue = append(r.queue, fn)
	var now func()
	if len(r.queue) > r.max() {
		now = r.popLocked()
	}
	r.mu.Unlock()
	if now != nil {
		r.run(now)
	}
	select {
	case r.kick <- struct{}{}:
	default:
	}
}

// Pending is the number of ends waiting.
func (r *Reaper) Pending() int {
	r.mu.Lock()
	defer r.mu.Unlock()
	return len(r.queue)
}

func (r *Reaper) popLocked() func() {
	fn := r.queue[0]
	r.queue[0] = nil
	r.queue = r.queue[1:]
	return fn
}

// idleCheck is how often a waiting end looks for an idle moment.
const idleCheck = 2 * time.Millisecond

func (r *Reaper) loop() {
	for {
		r.mu.Lock()
		n := len(r.queue)
		r.mu.Unlock()
		if n == 0 {
			<-r.kick
			continue
		}
		if !r.idle() {
			time.Sleep(idleCheck)
			continue
		}
		r.mu.Lock()
		var fn func()
		if len(r.queue) > 0 {
			fn = r.popLocked()
		}
		r.mu.Unlock()
		if fn == nil {
			continue
		}
		// One at a time, each waited for: the next waits for another idle moment.
		done := make(chan struct{})
		r.run(func() {
			defer close(done)
			fn()
		})
		<-done
	}
}
