// Keyspace events: which registrations an event fires, sync runs inline
// (and their adoption when they go async), and the Python call of one event.

package main

import (
	"errors"
	"fmt"
	"strings"
	"sync/atomic"
	"time"

	"gears/builder"
	"gears/interp"
	"gears/redismod"
)

var (
	errTooDeep = fmt.Errorf("event dropped: registrations triggered by each other's writes nested %d deep", maxEventDepth)
	// Events that ran nothing, for the watchdog's log line.
	droppedDeep, droppedQueue atomic.Int64
)

// refuse records an event of r that runs nothing, and why.
func refuse(r *builder.Registration, err error) {
	switch {
	case errors.Is(err, builder.ErrQueueFull), errors.Is(err, builder.ErrCascade):
		droppedQueue.Add(1)
		err = errors.New("event dropped: " + err.Error())
	default:
		droppedDeep.Add(1)
	}
	r.Triggered()
	r.Finished(builder.Outcome{}, err, 0)
}

// eventDepth is how many registrations' runs the calling thread is inside.
func eventDepth() int { return redismod.CurrentThread().EventDepth() }

// keyspaceEvent runs with the Redis lock held, on the main thread or on a
// thread whose execute() caused the event; flags are the context's. key and
// event are Redis's memory, valid during the call.
func keyspaceEvent(c Ctx, flags int, event, key string, depth int) {
	if g == nil || g.regs.Len() == 0 {
		return
	}
	// Registrations fire on masters only, never while loading.
	if flags&redismod.FlagMaster == 0 || flags&redismod.FlagLoading != 0 {
		return
	}
	ev := eventName(event)
	// The key is matched where Redis keeps it, and copied once it matches.
	var buf [4]*builder.Registration
	regs := g.regs.KeyEvent(key, ev, buf[:0])
	if len(regs) == 0 {
		return
	}
	k := strings.Clone(key)
	var payload any = keyEvent{k, ev}
	keyType := ""
	var cc *commandCall
	for _, r := range regs {
		if r.Commands != nil {
			if cc == nil {
				cc = currentCommand()
			}
			if cc == nil || !r.Watches(cc.name) {
				continue // fires only for events its commands cause
			}
		}
		if r.KeyTypes != nil {
			if keyType == "" {
				keyType = redismod.KeyType(c, k)
			}
			if !r.MatchesType(keyType) {
				continue
			}
		}
		// A registration sees only keys its session's user may read. Its
		// session is read while the registration is held: an upgrade on
		// another thread may be ending both.
		if !r.Acquire() {
			continue
		}
		readable := native(r.Session).MayRead(c.Held(), k)
		r.Release()
		if !readable {
			continue
		}
		if r.Reader == "StreamReader" {
			if r.StreamAdded(k, 1, streamWaker(r, k)) {
				runStream(r, k, r.Mode == "sync")
			}
			continue
		}
		if depth >= maxEventDepth {
			refuse(r, errTooDeep)
			continue
		}
		if cc != nil && r.Commands != nil && r.Mode != "sync" {
			cc.add(startCommandEvent(r, payload, cc, depth+1))
			continue
		}
		if r.Mode == "sync" {
			runSync(r, payload)
			continue
		}
		startEvent(r, payload, depth+1)
	}
}

// keyEvent is a KeysReader event: the record's key and event.
type keyEvent struct{ key, event string }

// eventNames interns event names (a few distinct ones, each seen for every
// write). Guarded by the Redis lock, as keyspaceEvent is.
var eventNames = map[string]string{}

func eventName(event string) string {
	if s, ok := eventNames[event]; ok {
		return s
	}
	s := strings.Clone(event)
	if len(eventNames) < 256 {
		eventNames[s] = s
	}
	return s
}

// runSync runs a registration's execution on this thread, now. If it goes
// async, it goes on in the background as out.Later (stats and a stream's
// next batch follow when that has finished).
func runSync(r *builder.Registration, payload any) (out builder.Outcome, err error) {
	if !r.Acquire() {
		return out, errUnregistered
	}
	defer r.Release()
	return runInline(r, func() any { return payload }, func(t *interp.Thread) (builder.Outcome, error) {
		return callEvent(t, r, payload)
	})
}

// runInline is a sync run of r (held by the caller) on this thread: call is
// its Python part, and payload gives the event for a run that goes async
// (runSync) or finishes a stream batch.
func runInline(r *builder.Registration, payload func() any, call func(*interp.Thread) (builder.Outcome, error)) (out builder.Outcome, err error) {
	r.Triggered()
	start := time.Now()
	// Its writes' events are one deeper.
	ts := redismod.CurrentThread()
	ts.SetEventDepth(ts.EventDepth() + 1)
	ts.SetSyncDepth(ts.SyncDepth() + 1)
	defer func() {
		ts.SetSyncDepth(ts.SyncDepth() - 1)
		ts.SetEventDepth(ts.EventDepth() - 1)
		if rec := recover(); rec != nil {
			logPanic("registration "+r.ID, rec)
			err = errors.New("gears internal error (see the Redis log)")
		}
		if err == nil && out.Suspended != 0 {
			if out.Later, err = adopt(r, payload(), ts.EventDepth()+1, out.Suspended); err == nil {
				return
			}
		}
		finishRun(r, payload(), out, err, start)
	}()
	err = withSession(r.Session, func(t *interp.Thread) error {
		var err error
		out, err = call(t)
		explainBusyAbort(out.Errors)
		return err
	})
	return out, err
}

// finishRun records a finished run of r (started at start); a stream batch
// decides what follows it.
func finishRun(r *builder.Registration, payload any, out builder.Outcome, err error, start time.Time) {
	r.Finished(out, err, time.Since(start))
	if r.Reader == "StreamReader" {
		streamBatchDone(r, payload, out, err)
	}
}

// adopt makes the execution a sync run of r that went async goes on as. It
// keeps the command and the hook the run served on this thread.
func adopt(r *builder.Registration, payload any, depth int, sid int64) (*builder.Execution, error) {
	tid := interp.ThreadID()
	return g.engine.Adopt(r, payload, depth, sid, func(e *builder.Execution) {
		if v, ok := commandCalls.Load(tid); ok && r.Commands != nil {
			cc := v.(*commandCall)
			pendingCommand.Store(e, cc)
			cc.add(e)
		}
		if v, ok := hookCalls.Load(tid); ok && r.Hook != "" {
			pendingHooks.Store(e, v)
		}
	})
}

// callEvent runs a registration's plan on one event in Python. Unless it is
// profiled or a stream batch, it takes the short path (_run_event): no
// timings, and no results unless a trigger's caller reads them.
func callEvent(t *interp.Thread, r *builder.Registration, payload any) (builder.Outcome, error) {
	profile := g.cfg.ProfileExecutions()
	ke, isKeyEvent := payload.(keyEvent)
	if isKeyEvent && !profile {
		return callKeyEvent(t, r, ke)
	}
	if isKeyEvent {
		payload = []any{ke.key, ke.event}
	}
	if profile || r.Reader == "StreamReader" {
		v, err := t.Call("redisgears", "_run_execution", r.Token, profile, payload, keepsResults(r))
		return outcome(v), err
	}
	v, err := t.Call("redisgears", "_run_event", r.Token, payload, keepsResults(r))
	if err != nil {
		return builder.Outcome{}, err
	}
	return eventOutcome(r, v), nil
}

// callKeyEvent is callEvent's short path for a keyspace event: interp makes
// the arguments in C, and a result of None (no errors) stays there.
func callKeyEvent(t *interp.Thread, r *builder.Registration, ke keyEvent) (builder.Outcome, error) {
	v, none, err := t.KeyEvent("redisgears", "_run_event", r.Token, ke.key, ke.event, keepsResults(r))
	if err != nil || none {
		return builder.Outcome{}, err
	}
	return eventOutcome(r, v), nil
}

// eventOutcome reads _run_event's [results, errors] (or errors alone when
// nobody reads the results).
func eventOutcome(r *builder.Registration, v any) builder.Outcome {
	var o builder.Outcome
	if sid, ok := v.(int64); ok { // waiting for async records
		o.Suspended = sid
		return o
	}
	if l := asList(v); keepsResults(r) && len(l) == 2 {
		o.Results, _ = l[0].([]any)
		o.Errors = errorTexts(l[1])
	} else {
		o.Errors = errorTexts(v)
	}
	return o
}

func errorTexts(v any) []string {
	var out []string
	for _, e := range asList(v) {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// startEvent queues a registration's execution on an execution thread. An
// event that raced the registration's unregistering is dropped
// (builder.ErrLetGo); one beyond MaxQueuedExecutions is refused.
func startEvent(r *builder.Registration, payload any, depth int) (*builder.Execution, error) {
	e, err := g.engine.StartEvent(r, payload, depth)
	switch {
	case err == nil:
		r.Triggered()
	case !errors.Is(err, builder.ErrLetGo):
		refuse(r, err)
	}
	return e, err
}

var errUnregistered = builder.ErrLetGo
