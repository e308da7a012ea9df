// Package session holds what one RG.PYEXECUTE call creates: its interpreter,
// its globals and its lifetime, plus the pool of ready interpreters and the
// OS threads that run Python.
package session

import (
	"runtime"
	"sync"
	"time"

	"gears/interp"
)

// Pool keeps interpreters ready, so a new session never waits the ~4 ms an
// interpreter takes to create and never creates one on the Redis main thread.
// A pool that runs dry grows (up to growth times its size) while calls keep
// coming.
type Pool struct {
	iso   interp.Isolation
	setup func(*interp.Thread) error
	size  func() int   // wanted number of ready interpreters, read on each refill
	run   func(func()) // runs a function on a locked OS thread

	mu        sync.Mutex
	ready     []*interp.Interp
	filling   int // creators running now
	extra     int // interpreters wanted beyond size(): the pool ran dry lately
	drainedAt time.Time
	onError   func(error)

	// Pressure, when set, says memory is short: the pool does not grow.
	Pressure func() bool
}

// A pool that runs dry wants one more interpreter each time, up to growth
// times its size, until it has not run dry for growthLasts.
const (
	growth      = 4
	growthLasts = 10 * time.Second
)

// wantedLocked is how many ready interpreters the pool keeps.
func (p *Pool) wantedLocked() int {
	size := p.size()
	if size == 0 || (p.extra > 0 && time.Since(p.drainedAt) > growthLasts) {
		p.extra = 0 // no pool wanted (InterpreterPoolSize 0), or calls slowed down
	}
	return size + min(p.extra, (growth-1)*size)
}

// NewPool returns a pool that creates interpreters with iso and runs setup in
// each, refilling on threads started by run; onError reports failures of the
// background refill.
func NewPool(iso interp.Isolation, setup func(*interp.Thread) error, size func() int,
	run func(func()), onError func(error)) *Pool {
	return &Pool{iso: iso, setup: setup, size: size, run: run, onError: onError}
}

// Get returns a ready interpreter, or creates one when none is ready. It may
// block for the creation: call it on a locked thread, off the main thread.
func (p *Pool) Get() (*interp.Interp, error) {
	p.mu.Lock()
	var it *interp.Interp
	if n := len(p.ready); n > 0 {
		it = p.ready[n-1]
		p.ready = p.ready[:n-1]
	}
	if len(p.ready) == 0 && (p.Pressure == nil || !p.Pressure()) { // drained: keep more ready while calls come this fast
		p.extra = min(p.extra+1, (growth-1)*p.size())
		p.drainedAt = time.Now()
	}
	p.mu.Unlock()
	p.Refill()
	if it != nil {
		return it, nil
	}
	return interp.New(p.iso, p.setup)
}

// Ready is the number of interpreters waiting in the pool.
func (p *Pool) Ready() int {
	p.mu.Lock()
	defer p.mu.Unlock()
	return len(p.ready)
}

// Refill starts creating interpreters in the background up to the wanted
// size, one creator per core (creation is CPU-bound and runs in parallel).
func (p *Pool) Refill() {
	p.mu.Lock()
	defer p.mu.Unlock()
	for missing := p.wantedLocked() - len(p.ready) - p.filling; missing > 0 && p.filling < runtime.NumCPU(); missing-- {
		p.filling++
		p.run(p.fill)
	}
}

func (p *Pool) fill() {
	for {
		p.mu.Lock()
		if len(p.ready)+p.filling > p.wantedLocked() {
			p.filling--
			p.mu.Unlock()
			return
		}
		p.mu.Unlock()
		it, err := interp.New(p.iso, p.setup)
		p.mu.Lock()
		if err != nil {
			p.filling--
			p.mu.Unlock()
			p.onError(err)
			return
		}
		p.ready = append(p.ready, it)
		p.mu.Unlock()
	}
}
