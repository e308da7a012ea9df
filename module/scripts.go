package main

import (
	"fmt"
	"sort"
	"sync"
	"time"

	"gears/builder"
	"gears/session"
)

// scriptRun is a session's top-level script while it runs: what it asked
// for (its run(), its registrations), and what listing and stopping it
// need. Scripts run on Python threads without the Redis lock; restoring a
// saved session re-runs its script on the main thread (see redismod/busy.c for that).
type scriptRun struct {
	unblocking bool
	exec       *builder.Execution
	regs       []*builder.Registration // made live when the script succeeds
	restoring  bool                    // re-running a saved session after a restart
	restoreIDs []string                // then: the ids register() gives, in order

	sess   *session.Session
	client uint64 // the client that sent RG.PYEXECUTE

	mu      sync.Mutex
	started time.Time // when its Python began
	tid     uint64    // the Python thread running it, 0 when not in Python
	aborted bool
	reason  string // why, when not by RG.ABORTEXECUTION

	interrupting session.Interrupting
}

var scripts sync.Map // *session.Session -> *scriptRun, while its script runs

// enter records that the script's Python runs on thread tid; false when it
// was aborted before it began.
func (sr *scriptRun) enter(tid uint64) bool {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.tid, sr.started = tid, time.Now()
	return !sr.aborted
}

// leave records that its Python has ended; true when it was aborted (an
// interrupt it ended before seeing must then be cleared).
func (sr *scriptRun) leave() bool {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	sr.tid = 0
	return sr.aborted
}

// abortError is the script's reply when it was aborted, else nil.
func (sr *scriptRun) abortError() error {
	sr.mu.Lock()
	defer sr.mu.Unlock()
	if !sr.aborted {
		return nil
	}
	if sr.reason != "" {
		return fmt.Errorf("%s: %s", builder.AbortedText, sr.reason)
	}
	return errAborted
}

// abort stops the script: its Python is interrupted now, and again by the
// watchdog until it has stopped.
func (sr *scriptRun) abort(reason string) {
	sr.mu.Lock()
	if !sr.aborted {
		sr.aborted, sr.reason = true, reason
	}
	tid := sr.tid
	sr.mu.Unlock()
	if tid != 0 {
		sr.interrupt(tid)
	}
}

func (sr *scriptRun) interrupt(tid uint64) {
	sr.interrupting.Start(g.threads.Go, func() {
		sr.sess.Interp.Interrupt(tid, func() bool {
			sr.mu.Lock()
			defer sr.mu.Unlock()
			return sr.tid == tid
		})
	})
}

// watch is the watchdog's look at a running script: interrupt it again if
// it was aborted, abort it past limit (0: no limit).
func (sr *scriptRun) watch(limit time.Duration) {
	sr.mu.Lock()
	tid, aborted, started := sr.tid, sr.aborted, sr.started
	sr.mu.Unlock()
	switch {
	case tid == 0:
	case aborted:
		sr.interrupt(tid)
	case limit > 0 && time.Since(started) > limit:
		sr.abort(builder.OverTimeReason(limit))
	}
}

// runningScripts are the scripts of RG.PYEXECUTE running now.
func runningScripts() []*scriptRun {
	var out []*scriptRun
	scripts.Range(func(_, v any) bool {
		if sr := v.(*scriptRun); !sr.restoring {
			out = append(out, sr)
		}
		return true
	})
	return out
}

// abortOverdue is the watchdog's look at executions and scripts.
func abortOverdue() {
	limit := g.cfg.ExecutionMaxTime()
	g.engine.Watch(limit)
	for _, sr := range runningScripts() {
		sr.watch(limit)
	}
}

// RG.PYDUMPSCRIPTS: the scripts of RG.PYEXECUTE running now, each with its
// session, user and client, for RG.ABORTEXECUTION <session>.
func cmdPyDumpScripts(c Ctx, argv []string) {
	if len(argv) != 1 {
		c.WrongArity()
		return
	}
	type shown struct {
		sr      *scriptRun
		started time.Time
		aborted bool
	}
	var list []shown
	for _, sr := range runningScripts() {
		sr.mu.Lock()
		list = append(list, shown{sr, sr.started, sr.aborted})
		sr.mu.Unlock()
	}
	sort.Slice(list, func(i, j int) bool { return list[i].started.Before(list[j].started) }) // oldest first
	c.Array(len(list))
	for _, s := range list {
		ms := int64(0) // its Python has not begun yet
		if !s.started.IsZero() {
			ms = time.Since(s.started).Milliseconds()
		}
		status := "running"
		if s.aborted {
			status = "aborting"
		}
		c.Array(12)
		c.Bulk("session")
		c.Bulk(s.sr.sess.ID)
		c.Bulk("description")
		c.BulkOrNull(s.sr.sess.Description)
		c.Bulk("user")
		c.Bulk(s.sr.sess.User)
		c.Bulk("client")
		c.Int(int64(s.sr.client))
		c.Bulk("runningMS")
		c.Int(ms)
		c.Bulk("status")
		c.Bulk(status)
	}
}

// scriptOfSession is the running script of session id.
func scriptOfSession(id string) *scriptRun {
	for _, sr := range runningScripts() {
		if sr.sess.ID == id {
			return sr
		}
	}
	return nil
}
