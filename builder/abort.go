// Stopping executions: aborts (by RG.ABORTEXECUTION, registrations' pauses
// and failures, ExecutionMaxTime) and what their errors say.

package builder

import (
	"fmt"
	"time"
)

// AbortedText is the error of an aborted execution (runtime/execution.py
// reports it); a reason follows it when the abort had one.
const AbortedText = "Execution was aborted"

// Abort stops an execution: one not started yet never starts, a running one
// has its Python code interrupted; a finished one is left as it is.
func (en *Engine) Abort(id string) error {
	e, ok := en.Get(id)
	if !ok {
		return fmt.Errorf("execution does not exist")
	}
	en.AbortExecution(e, "")
	return nil
}

// AbortExecution is Abort of e, with the reason its error gives ("" for
// none). Until it has stopped, Watch interrupts it again.
func (en *Engine) AbortExecution(e *Execution, reason string) {
	e.mu.Lock()
	e.abort = true
	if e.reason == "" {
		e.reason = reason
	}
	status, thread, wait := e.status, e.threadID, e.wait
	if status == Created {
		e.abortUnstartedLocked()
	}
	e.mu.Unlock()
	if status == Running && thread != 0 {
		en.interruptOnce(e, thread)
	}
	if status == Running && wait != nil {
		en.mu.Lock()
		wake := false
		if en.waits[*wait] == e { // waiting: resumed now, to end as aborted
			delete(en.waits, *wait)
			wake = en.queueLocked(e)
		}
		en.mu.Unlock()
		if wake {
			en.park.Wake()
		}
	}
}

// abortUnstartedLocked ends e, which has not started, as aborted.
func (e *Execution) abortUnstartedLocked() {
	e.status = Aborted
	e.finishLocked()
	if e.Registration != nil {
		e.Registration.CountAborted()
	}
}

// AbortUnstarted aborts r's executions that have not started yet (RedisGears
// does when a stream batch fails, and on RG.PAUSEREGISTRATIONS and
// RG.UNREGISTER ... abortpending) and returns them.
func (en *Engine) AbortUnstarted(r *Registration) []*Execution {
	en.mu.Lock()
	var out []*Execution
	if cl := en.class[r]; cl != nil {
		for e := cl.front; e != nil; e = cl.after(e) {
			e.mu.Lock()
			if e.status == Created {
				e.abortUnstartedLocked()
				out = append(out, e)
			}
			e.mu.Unlock()
		}
	}
	en.mu.Unlock()
	return out
}

// interruptOnce interrupts e unless an interrupt of it is under way.
func (en *Engine) interruptOnce(e *Execution, thread uint64) {
	e.interrupting.Start(en.threads, func() { en.interrupt(e, thread) })
}

// Watch interrupts again the aborted executions that still run (an
// interrupt may land just before a sleep, or in code that catches it), and
// aborts those that have run longer than limit (0: no limit).
func (en *Engine) Watch(limit time.Duration) {
	en.mu.Lock()
	running := make([]*Execution, 0, len(en.run))
	for e := range en.run {
		running = append(running, e)
	}
	en.mu.Unlock()
	for _, e := range running {
		e.mu.Lock()
		abort, thread, started := e.abort, e.threadID, e.started
		e.mu.Unlock()
		switch {
		case abort && thread != 0:
			en.interruptOnce(e, thread)
		case limit > 0 && time.Since(started) > limit:
			en.AbortExecution(e, OverTimeReason(limit))
		}
	}
}

// ExplainAbort gives the abort error in errs the reason e was aborted for,
// if it had one.
func (e *Execution) ExplainAbort(errs []string) {
	e.mu.Lock()
	reason := e.reason
	e.mu.Unlock()
	ExplainAbort(errs, reason)
}

// ExplainAbort adds reason ("" for none) to the abort error in errs.
func ExplainAbort(errs []string, reason string) {
	if reason == "" {
		return
	}
	for i, msg := range errs {
		if msg == AbortedText {
			errs[i] = AbortedText + ": " + reason
		}
	}
}

// OverTimeReason is the reason of an abort by ExecutionMaxTime.
func OverTimeReason(limit time.Duration) string {
	return fmt.Sprintf("it ran longer than ExecutionMaxTime (%d ms)", limit.Milliseconds())
}
