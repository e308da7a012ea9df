package builder

import (
	"sync"
	"time"
)

// Stream registration statuses, as RG.DUMPREGISTRATIONS shows them.
const (
	StreamOK       = "OK"
	StreamRetrying = "WAITING_FOR_RETRY_ON_FAILURE"
	StreamAborted  = "ABORTED"
	StreamPaused   = "PAUSED"
)

// StreamArgs are a StreamReader registration's arguments.
type StreamArgs struct {
	Batch         int
	Duration      time.Duration // 0: run only when Batch entries are pending
	Policy        string        // continue, abort or retry
	RetryInterval time.Duration
	Trim          bool
}

// streamState decides when a StreamReader registration reads a stream: a
// batch runs when Batch entries are pending (or Duration after the first of
// fewer), one batch at a time per stream.
type streamState struct {
	mu      sync.Mutex
	status  string
	keys    map[string]*streamKey
	lastLag time.Duration
	lagSum  time.Duration
	lagRuns int64
}

type streamKey struct {
	pending int // entries added and not yet read, as far as events tell
	running bool
	timer   *time.Timer
	// catchUp: what the stream held when reading began (at registration,
	// after a restart, on promotion) is read to the end in batches of any
	// size, not left waiting for a full batch.
	catchUp bool
	// fresh: the next batch reads only the entries read before and never
	// acknowledged (a failed batch's), as RedisGears does first whenever it
	// begins reading a stream (first event, registration, restart,
	// promotion, retry, unpause): it runs whatever the batch size.
	fresh      bool
	pendingRun bool // the batch under way is such a batch
}

func (r *Registration) stream() *streamState {
	r.mu.Lock()
	defer r.mu.Unlock()
	if r.streams == nil {
		r.streams = &streamState{status: StreamOK, keys: map[string]*streamKey{}}
	}
	return r.streams
}

func (st *streamState) key(k string) *streamKey {
	sk := st.keys[k]
	if sk == nil {
		sk = &streamKey{fresh: true}
		st.keys[k] = sk
	}
	return sk
}

// StreamAdded records n new entries of stream key and reports whether a
// batch should start now; wake is called later (from a timer) when a partial
// batch has waited Duration.
func (r *Registration) StreamAdded(key string, n int, wake func()) bool {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	sk := st.key(key)
	sk.pending += n
	return r.readyLocked(st, sk, wake)
}

// StreamCatchUp records that stream key holds n entries not yet read
// (known from the stream, not from events) and reports whether a batch
// should start now: they are read to the end, whatever the batch size.
func (r *Registration) StreamCatchUp(key string, n int, wake func()) bool {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	sk := st.key(key)
	sk.pending = max(sk.pending, n)
	sk.catchUp = sk.pending > 0
	sk.fresh = true
	return r.readyLocked(st, sk, wake)
}

func (r *Registration) readyLocked(st *streamState, sk *streamKey, wake func()) bool {
	if st.status != StreamOK || sk.running || (sk.pending == 0 && !sk.fresh) {
		return false
	}
	if sk.pending >= r.Stream.Batch || sk.catchUp || sk.fresh {
		sk.pendingRun, sk.fresh = sk.fresh, false
		if sk.timer != nil {
			sk.timer.Stop()
			sk.timer = nil
		}
		sk.running = true
		return true
	}
	if r.Stream.Duration > 0 && sk.timer == nil && wake != nil {
		sk.timer = time.AfterFunc(r.Stream.Duration, func() {
			st.mu.Lock()
			sk.timer = nil
			start := st.status == StreamOK && !sk.running && sk.pending > 0
			if start {
				sk.running = true
			}
			st.mu.Unlock()
			if start {
				wake()
			}
		})
	}
	return false
}

// StreamFinished records a batch of key that read `read` entries, ok unless
// it failed under the abort or retry policy. It reports whether another batch
// should start now, and after how long a failed batch is retried (0: not).
func (r *Registration) StreamFinished(key string, read int, ok bool, lag time.Duration, wake func()) (again bool, retry time.Duration) {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	sk := st.key(key)
	sk.running = false
	pendingRun := sk.pendingRun
	sk.pendingRun = false
	if read > 0 {
		st.lastLag = lag
		st.lagSum += lag
		st.lagRuns++
	}
	if st.status == StreamPaused { // paused meanwhile, or by this batch's error
		return false, 0
	}
	if !ok {
		if r.Stream.Policy == "abort" {
			st.status = StreamAborted
			return false, 0
		}
		st.status = StreamRetrying
		return false, max(r.Stream.RetryInterval, 10*time.Millisecond)
	}
	switch {
	case pendingRun: // it read entries of earlier batches, not new ones
	case read == 0:
		sk.pending = 0 // nothing was left, whatever events told
	default:
		sk.pending = max(sk.pending-read, 0)
	}
	if sk.pending == 0 {
		sk.catchUp = false
	}
	return r.readyLocked(st, sk, wake), 0
}

// StreamMayRun is asked when a queued batch of key is about to run: false
// (and the batch is given up) when the registration was paused or aborted
// meanwhile. pendingOnly says the batch reads only what earlier batches
// read and did not acknowledge; a batch run inline (a sync registration's,
// inside the XADD) reads those and new entries at once instead.
func (r *Registration) StreamMayRun(key string, inline bool) (ok, pendingOnly bool) {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	sk := st.key(key)
	if st.status == StreamOK {
		if inline {
			sk.pendingRun = false
		}
		return true, sk.pendingRun
	}
	sk.givenUp()
	return false, false
}

// StreamBatchAborted frees stream key of a batch aborted before it ran.
func (r *Registration) StreamBatchAborted(key string) {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	st.key(key).givenUp()
}

// givenUp is a batch that never ran: the stream may run another, and a
// batch of what was left unacknowledged is still owed.
func (sk *streamKey) givenUp() {
	sk.running = false
	sk.fresh = sk.fresh || sk.pendingRun
	sk.pendingRun = false
}

// StreamRetry ends a retry wait: key's failed batch may run again, and the
// other streams whose batches were aborted meanwhile go on. It returns the
// streams to start a batch of (each then marked running).
func (r *Registration) StreamRetry(key string) []string {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.status != StreamRetrying {
		return nil
	}
	st.status = StreamOK
	for _, sk := range st.keys {
		sk.fresh = true // read again what failed
	}
	return r.startableLocked(st)
}

// SetStreamPaused pauses or unpauses; unpausing returns the streams that
// have entries waiting (each then marked running).
func (r *Registration) SetStreamPaused(paused bool) []string {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	if paused {
		st.status = StreamPaused
		return nil
	}
	if st.status != StreamPaused {
		return nil
	}
	st.status = StreamOK
	for _, sk := range st.keys {
		sk.fresh = true // entries may have arrived, or failed, while paused
	}
	return r.startableLocked(st)
}

// startableLocked marks running and returns the streams with entries to read.
func (r *Registration) startableLocked(st *streamState) []string {
	var ready []string
	for k, sk := range st.keys {
		if r.readyLocked(st, sk, nil) {
			ready = append(ready, k)
		}
	}
	return ready
}

// StreamStatus is the registration's status and its lag statistics.
func (r *Registration) StreamStatus() (status string, lastLag, avgLag time.Duration) {
	st := r.stream()
	st.mu.Lock()
	defer st.mu.Unlock()
	if st.lagRuns > 0 {
		avgLag = st.lagSum / time.Duration(st.lagRuns)
	}
	return st.status, st.lastLag, avgLag
}

func (st *streamState) clearLag() {
	st.mu.Lock()
	st.lastLag, st.lagSum, st.lagRuns = 0, 0, 0
	st.mu.Unlock()
}
