package session

import (
	"runtime"
	"sync"
	"sync/atomic"
	"time"
)

// Threads runs functions on OS threads reserved for Python: a Python thread
// state belongs to one OS thread, so each worker goroutine stays locked to
// its thread. Idle workers are reused (a thread per call costs more than the
// call); beyond keep, a worker idle for a while exits with its thread.
type Threads struct {
	jobs    chan func()
	keep    int
	onPanic func(any)
	mu      sync.Mutex
	running int
}

const idleTimeout = 30 * time.Second

// NewThreads keeps at least keep workers once they exist. A panic in a job
// goes to onPanic instead of killing the process (and Redis with it).
func NewThreads(keep int, onPanic func(any)) *Threads {
	return &Threads{jobs: make(chan func()), keep: keep, onPanic: onPanic}
}

// Go runs fn on a locked OS thread, starting a new worker when none is idle.
func (t *Threads) Go(fn func()) {
	select {
	case t.jobs <- fn:
		return
	default:
	}
	t.mu.Lock()
	t.running++
	t.mu.Unlock()
	go t.worker(fn)
}

// Running is the number of worker threads alive.
func (t *Threads) Running() int {
	t.mu.Lock()
	defer t.mu.Unlock()
	return t.running
}

func (t *Threads) worker(fn func()) {
	runtime.LockOSThread() // never unlocked: the thread exits with the goroutine
	timer := time.NewTimer(idleTimeout)
	for {
		t.safely(fn)
		timer.Reset(idleTimeout)
		select {
		case fn = <-t.jobs:
			continue
		case <-timer.C:
		}
		t.mu.Lock()
		if t.running > t.keep {
			t.running--
			t.mu.Unlock()
			return
		}
		t.mu.Unlock()
		fn = <-t.jobs
	}
}

func (t *Threads) safely(fn func()) {
	defer func() {
		if r := recover(); r != nil {
			t.onPanic(r)
		}
	}()
	fn()
}

// Interrupting lets one interrupt of some running code be under way at a
// time: an interrupt waits for the code's GIL, which code inside a long C
// call may never give up, and must not pile up threads meanwhile.
type Interrupting struct{ busy atomic.Bool }

// Start runs interrupt with run (on a thread of its own) unless an earlier
// one has not returned yet.
func (x *Interrupting) Start(run func(func()), interrupt func()) {
	if !x.busy.CompareAndSwap(false, true) {
		return
	}
	run(func() {
		defer x.busy.Store(false)
		interrupt()
	})
}
