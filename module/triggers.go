// RG.TRIGGER and RG.TRIGGERONKEY: CommandReader triggers, inline or queued,
// in order when asked, and their replies.

package main

import (
	"sync"

	"gears/builder"
	"gears/interp"
	"gears/redismod"
)

// replyWhenDone blocks c's client while wait runs on a goroutine of its
// own; the writer wait returns then replies, on the main thread.
func replyWhenDone(c Ctx, wait func() func(Ctx)) {
	b := redismod.Block(c)
	go func() { b.Unblock(wait()) }()
}

// afterExecution blocks c's client until e has finished, then replies.
func afterExecution(c Ctx, e *builder.Execution, reply func(redismod.Replier, builder.Snapshot)) {
	replyWhenDone(c, func() func(Ctx) {
		<-e.Done()
		s := e.Snapshot()
		return func(c Ctx) { reply(c, s) }
	})
}

func replyTriggerSnapshot(c redismod.Replier, s builder.Snapshot) {
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
	if c.Flags()&(noBlockingFlags|redismod.FlagLoading) != 0 {
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
// (not profiled) in C: interp reads the arguments and writes the reply
// unless the outcome needs the generic path (errors, unusual results).
func triggerFast(c Ctx, args redismod.Args) bool {
	if args.Len() < 2 || g.cfg.ProfileExecutions() {
		return false
	}
	// Only looked up, never kept: no copy of the name.
	r, ok := g.regs.Trigger(args.View(1))
	if !ok || r.Mode != "sync" || !r.Acquire() {
		return false
	}
	defer r.Release()
	replied := false
	out, err := runInline(r, func() any { return triggerPayload(args.Strings()) }, func(t *interp.Thread) (builder.Outcome, error) {
		var v any
		var err error
		replied, v, err = t.Trigger("redisgears", "_run_event", r.Token, c.Handle(), args.Handle(), args.Len())
		if err != nil || replied {
			return builder.Outcome{}, err
		}
		return eventOutcome(r, v), nil
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
func replyTrigger(c redismod.Replier, out builder.Outcome, err error) {
	switch {
	case err != nil:
		c.Error("ERR Could not trigger execution, " + err.Error())
	case len(out.Errors) > 0:
		c.Error(out.Errors[0])
	default:
		if out.Results == nil {
			out.Results = []any{}
		}
		redismod.WriteValue(c, out.Results)
	}
}
