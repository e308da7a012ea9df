// Executions that wait for async records (futures, coroutines): they hold
// no thread while they wait, and go on when their interpreter wakes them.

package builder

import (
	"time"
)

// maxEarly bounds the early wakes kept per interpreter: a real one is taken
// microseconds after it comes, but Python code can call resume() with any
// number.
const maxEarly = 256

// suspend records that running e waits for async records under id sid of
// its interpreter; Wake queues it again. It stays running (and listed in
// en.run, where Watch finds it) without holding a thread.
func (en *Engine) suspend(e *Execution, sid int64) {
	key := WaitKey{SID: sid}
	if e.Session.Interp != nil {
		key.Interp = e.Session.Interp
	}
	e.mu.Lock()
	e.threadID = 0
	e.wait = &key
	abort := e.abort
	e.mu.Unlock()
	en.mu.Lock()
	woken := en.takeEarlyLocked(key)
	wake := false
	if woken || abort {
		wake = en.queueLocked(e)
	} else {
		en.waits[key] = e
	}
	en.mu.Unlock()
	if wake {
		en.park.Wake()
	}
}

// takeEarlyLocked reports (and forgets) whether key was woken early.
func (en *Engine) takeEarlyLocked(key WaitKey) bool {
	ids := en.early[key.Interp]
	for i, sid := range ids {
		if sid == key.SID {
			ids = append(ids[:i], ids[i+1:]...)
			if len(ids) == 0 {
				delete(en.early, key.Interp)
			} else {
				en.early[key.Interp] = ids
			}
			return true
		}
	}
	return false
}

// Wake resumes the execution waiting under key: its async records have
// all been continued. Called from any thread, maybe before its wait is
// recorded (then suspend queues it at once).
func (en *Engine) Wake(key WaitKey) {
	en.mu.Lock()
	e, ok := en.waits[key]
	wake := false
	if ok {
		delete(en.waits, key)
		wake = en.queueLocked(e)
	} else {
		ids := en.early[key.Interp]
		if len(ids) >= maxEarly {
			ids = ids[1:]
		}
		en.early[key.Interp] = append(ids, key.SID)
	}
	en.mu.Unlock()
	if wake {
		en.park.Wake()
	}
}

// Adopt makes an execution of r for a sync run that went async on event
// payload: it waits under id sid of r's interpreter, and continues on an
// execution thread (as async_local) once woken. prepare runs before it can.
func (en *Engine) Adopt(r *Registration, payload any, depth int, sid int64, prepare func(*Execution)) (*Execution, error) {
	e := en.create(r.Session, r.Token, r.Steps, r.Desc, true, r, payload, false, depth)
	if e == nil {
		return nil, ErrLetGo
	}
	prepare(e)
	e.mu.Lock()
	e.status = Running
	e.started = time.Now()
	e.mu.Unlock()
	en.mu.Lock()
	en.run[e] = struct{}{}
	en.mu.Unlock()
	en.suspend(e, sid)
	return e, nil
}
