// RG.TRIGGER and RG.TRIGGERONKEY: CommandReader triggers, inline or queued,
// in order when asked, and their replies.

package main

/*
#include "module.h"
*/
import "C"

import (
	"sync"
	"unsafe"

	"gears/builder"
	"gears/interp"
)

// afterExecution blocks c's client until e has finished, then replies.
func afterExecution(c Ctx, e *builder.Execution, reply func(Ctx, builder.Snapshot)) {
	b := block(c)
	go func() {
		<-e.Done()
		s := e.Snapshot()
		b.Unblock(func(c Ctx) { reply(c, s) })
	}()
}

func replyTriggerSnapshot(c Ctx, s builder.Snapshot) {
	replyTrigger(c, builder.Outcome{Results: s.Results, Errors: s.Errors}, nil)
}

// RG.TRIGGER <trigger> [arg ...] and RG.TRIGGERONKEY <trigger> <key> [arg ...]:
// the record is the command's arguments from the trigger name on.
func cmdTrigger(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	r, ok := liveTrigger(argv[1])
	if !ok {
		c.Error("ERR subcommand not found")
		return
	}
	defer r.Release()
	payload := triggerPayload(argv)
	if r.Mode == "sync" {
		out, err := runSync(r, payload)
		if out.Later != nil {
			afterExecution(c, out.Later, replyTriggerSnapshot)
			return
		}
		replyTrigger(c, out, err)
		return
	}
	if c.Flags()&(noBlockingFlags|C.REDISMODULE_CTX_FLAGS_LOADING) != 0 {
		c.Error("ERR can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) or on loading.")
		return
	}
	var e *builder.Execution
	var err error
	if r.Inorder {
		e, err = startInOrder(r, payload)
	} else {
		e, err = startEvent(r, payload, eventDepth()+1)
	}
	if err != nil {
		replyTrigger(c, builder.Outcome{}, err)
		return
	}
	afterExecution(c, e, replyTriggerSnapshot)
}

// triggerPayload is a trigger's record: its arguments from the trigger name on.
func triggerPayload(argv []string) []any { return anyStrings(argv[1:]) }

// anyStrings is a command's arguments as a record (a list of str).
func anyStrings(argv []string) []any {
	out := make([]any, len(argv))
	for i, a := range argv {
		out[i] = a
	}
	return out
}

// liveTrigger is the registration of trigger name, acquired (release it):
// an upgrade may replace it between the lookup and its use, and then the
// registry holds its successor already.
func liveTrigger(name string) (*builder.Registration, bool) {
	for {
		r, ok := g.regs.Trigger(name)
		if !ok {
			return nil, false
		}
		if r.Acquire() {
			return r, true
		}
	}
}

// triggerFast serves RG.TRIGGER and RG.TRIGGERONKEY of a sync registration
// (not profiled) in C: gears_trigger reads the arguments and writes the reply
// unless the outcome needs the generic path (errors, unusual results).
func triggerFast(c Ctx, argv **C.RedisModuleString, argc C.int) bool {
	if argc < 2 || g.cfg.ProfileExecutions() {
		return false
	}
	var n C.size_t
	p := C.w_StringPtrLen(C.gears_arg(argv, 1), &n)
	// Only looked up, never kept: no copy of the name.
	r, ok := g.regs.Trigger(unsafe.String((*byte)(unsafe.Pointer(p)), int(n)))
	if !ok || r.Mode != "sync" || !r.Acquire() {
		return false
	}
	defer r.Release()
	replied := false
	out, err := runInline(r, func() any { return triggerPayload(args(argv, argc)) }, func(t *interp.Thread) (builder.Outcome, error) {
		fn, err := t.Function("redisgears", "_run_event")
		if err != nil {
			return builder.Outcome{}, err
		}
		var res *C.PyObject
		switch C.gears_trigger(c.p, (*C.PyObject)(fn), C.longlong(r.Token), argv, argc, &res) {
		case C.TRIGGER_REPLIED:
			replied = true
			return builder.Outcome{}, nil
		case C.TRIGGER_RAISED:
			return builder.Outcome{}, t.Raised()
		}
		v, err := t.Take(unsafe.Pointer(res))
		return eventOutcome(r, v), err
	})
	switch {
	case out.Later != nil:
		afterExecution(c, out.Later, replyTriggerSnapshot)
	case !replied:
		replyTrigger(c, out, err)
	}
	return true
}

// inOrder runs the executions of an `inorder` trigger one at a time, in the
// order the triggers arrived.
type inOrder struct {
	mu      sync.Mutex
	queue   []*builder.Execution
	running bool
}

var inOrders sync.Map // *builder.Registration -> *inOrder

func startInOrder(r *builder.Registration, payload any) (*builder.Execution, error) {
	e, err := g.engine.CreateEvent(r, payload, eventDepth()+1)
	if err != nil {
		return nil, err
	}
	r.Triggered()
	v, _ := inOrders.LoadOrStore(r, &inOrder{})
	q := v.(*inOrder)
	q.mu.Lock()
	q.queue = append(q.queue, e)
	start := !q.running
	q.running = true
	q.mu.Unlock()
	if start {
		go q.drain()
	}
	return e, nil
}

func (q *inOrder) drain() {
	for {
		q.mu.Lock()
		if len(q.queue) == 0 {
			q.running = false
			q.mu.Unlock()
			return
		}
		e := q.queue[0]
		q.queue = q.queue[1:]
		q.mu.Unlock()
		g.engine.Start(e)
		<-e.Done()
	}
}

// A trigger replies with its first error, else with its results.
func replyTrigger(c Ctx, out builder.Outcome, err error) {
	switch {
	case err != nil:
		c.Error("ERR Could not trigger execution, " + err.Error())
	case len(out.Errors) > 0:
		c.Error(out.Errors[0])
	default:
		if out.Results == nil {
			out.Results = []any{}
		}
		c.Value(out.Results)
	}
}
