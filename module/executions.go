package main

import (
	"errors"
	"fmt"
	"strings"
	"time"

	"gears/builder"
	"gears/interp"
	"gears/redismod"
	"gears/session"
)

// hostRun is run()'s host half: it creates the execution of plan `token`.
// The script's own run() starts when the script has finished (its reply
// depends on it); a run() from inside a step starts now and is dropped
// once done.
func hostRun(c *interp.Call) (any, error) {
	sess := sessionOf(c)
	if sess == nil {
		return nil, noSession("run()")
	}
	if len(c.Args) < 3 {
		return nil, errors.New("run() is not available here")
	}
	token, _ := c.Args[0].(int64)
	steps := planSteps(c.Args[1])
	desc, _ := c.Args[2].(string)
	if v, ok := scripts.Load(sess); ok {
		sr := v.(*scriptRun)
		if sr.restoring {
			return nil, nil // restoring a session: its run() already happened
		}
		if sr.exec != nil {
			return nil, errors.New("Can not run more then 1 executions in a single script")
		}
		// Listed while it runs, blocking or not: RG.ABORTEXECUTION finds it.
		sr.exec = g.engine.Create(sess, token, steps, desc, true)
		if sr.exec == nil {
			return nil, errSessionEnded
		}
		return nil, nil
	}
	// A run() inside a step: as events do, nested runs stop at a depth, and
	// none queues beyond MaxQueuedExecutions.
	depth := eventDepth() + 1
	if depth > maxEventDepth {
		return nil, fmt.Errorf("run() inside a step nested %d deep: not run", maxEventDepth)
	}
	if g.engine.QueueFull() {
		return nil, builder.ErrQueueFull
	}
	e := g.engine.Create(sess, token, steps, desc, false)
	if e == nil {
		return nil, errSessionEnded
	}
	e.Depth = depth
	g.engine.Start(e)
	return true, nil // run() returns what awaits it
}

// planSteps reads runtime/execution.py's plan description: [type, name, arg] each.
func planSteps(v any) []builder.Step {
	rows, _ := v.([]any)
	steps := make([]builder.Step, 0, len(rows))
	for _, r := range rows {
		f, _ := r.([]any)
		var s [3]string
		for i := range s {
			if i < len(f) {
				s[i], _ = f[i].(string)
			}
		}
		steps = append(steps, builder.Step{Type: s[0], Name: s[1], Arg: s[2]})
	}
	return steps
}

var (
	errAborted      = errors.New("Execution was aborted")
	errSessionEnded = errors.New("the session has ended (its registrations were unregistered or upgraded)")
)

// keepsResults reports whether someone reads a registration's results: a
// trigger's or hook's caller does; keyspace and stream events only count
// errors.
func keepsResults(r *builder.Registration) bool { return r.Reader == "CommandReader" }

// attachSession attaches this execution thread to sess's interpreter for the
// executions of sess the engine runs one after the other (its Attacher).
func attachSession(sess *session.Session) (builder.Runner, func()) {
	t, err := sess.Interp.Attach()
	if err != nil { // cannot happen while executions hold the session; fail them cleanly anyway
		return func(*builder.Execution) (builder.Outcome, error) { return builder.Outcome{}, err }, func() {}
	}
	run := func(e *builder.Execution) (builder.Outcome, error) { return runExecution(e, t) }
	return run, t.Detach
}

// runExecution runs e's plan on this execution thread, attached as t, or
// resumes it once the async records it waited for have been continued.
func runExecution(e *builder.Execution, t *interp.Thread) (out builder.Outcome, err error) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("execution "+e.ID, r)
			err = errors.New("gears internal error (see the Redis log)")
		}
	}()
	sid, aborted := e.Waiting()
	payload := e.Payload
	if r := e.Registration; r != nil {
		if sid == 0 && r.Reader == "StreamReader" {
			key := streamKeyOf(payload)
			ok, pendingOnly := r.StreamMayRun(key, false)
			if !ok {
				r.CountAborted() // paused or failed meanwhile
				return out, nil
			}
			payload = []any{key, pendingOnly}
		}
		defer func() {
			if out.Suspended != 0 && err == nil {
				return // not finished: it goes on when resumed
			}
			e.ExplainAbort(out.Errors)
			finishRun(r, e.Payload, out, err, e.Started()) // an execution that waited counts from its start
		}()
	}
	// Only the events of commands= and hook registrations run with a
	// context; it stays with the execution until it has finished.
	if r := e.Registration; r != nil && r.Commands != nil {
		if cc, ok := pendingCommand.Load(e); ok {
			commandCalls.Store(t.ID(), cc)
			defer func() {
				commandCalls.Delete(t.ID())
				if out.Suspended == 0 {
					pendingCommand.Delete(e)
				}
			}()
		}
	}
	if r := e.Registration; r != nil && r.Hook != "" {
		if hc, ok := pendingHooks.Load(e); ok {
			hookCalls.Store(t.ID(), hc)
			defer func() {
				hookCalls.Delete(t.ID())
				if out.Suspended == 0 {
					pendingHooks.Delete(e)
				}
			}()
		}
	}
	// Events of its writes are one deeper than it.
	ts := redismod.CurrentThread()
	prevDepth, prevIn := ts.EventDepth(), ts.InExecution()
	ts.SetEventDepth(e.Depth)
	ts.SetInExecution(true)
	defer func() {
		ts.SetEventDepth(prevDepth)
		ts.SetInExecution(prevIn)
	}()
	err = inInterp(t, e.Session, func(t *interp.Thread) error {
		if !e.SetThread(t.ID()) && sid == 0 {
			return errAborted
		}
		defer func() {
			if !e.SetThread(0) {
				// Aborted: an interrupt it did not see must not reach the
				// next execution of this attach.
				t.ClearInterrupt()
			}
		}()
		var v any
		var err error
		switch {
		case sid != 0:
			v, err = t.Call("redisgears", "_resume", sid, aborted)
		case e.Registration != nil:
			var across bool
			if out, across, err = runDistributedEvent(e, t, payload); across {
				return err
			}
			out, err = callEvent(t, e.Registration, payload)
			return err
		default:
			var across bool
			if out, across, err = runDistributed(e, t); across {
				return err
			}
			v, err = t.Call("redisgears", "_run_execution", e.Token, g.cfg.ProfileExecutions())
		}
		if err != nil {
			return err
		}
		out = outcome(v)
		if out.Suspended == 0 && e.Registration == nil {
			e.ExplainAbort(out.Errors)
		}
		if !g.cfg.ProfileExecutions() {
			out.Steps = nil // durations are reported only when profiling
		}
		return nil
	})
	return out, err
}

// outcome reads _run_execution's [results, errors, total_ms, read_ms, step_ms].
// An int instead means the execution waits for async records (its
// suspension id).
func outcome(v any) builder.Outcome {
	var o builder.Outcome
	if sid, ok := v.(int64); ok {
		o.Suspended = sid
		return o
	}
	f, _ := v.([]any)
	if len(f) < 5 {
		return o
	}
	o.Results, _ = f[0].([]any)
	o.Errors = errorTexts(f[1])
	o.Total = ms(f[2])
	o.Read = ms(f[3])
	for _, d := range asList(f[4]) {
		o.Steps = append(o.Steps, ms(d))
	}
	if len(f) > 5 {
		readStreamBatch(&o, f[5])
	}
	return o
}

// readStreamBatch reads a stream batch's [entries read, lag ms, acknowledged].
func readStreamBatch(o *builder.Outcome, v any) {
	if sb := asList(v); len(sb) == 3 {
		n, _ := sb[0].(int64)
		o.StreamRead, o.StreamLag, o.StreamAcked = int(n), ms(sb[1]), sb[2] == true
	}
}

func asList(v any) []any { l, _ := v.([]any); return l }

func ms(v any) time.Duration { n, _ := v.(int64); return time.Duration(n) * time.Millisecond }

func interruptExecution(e *builder.Execution, thread uint64) {
	e.Session.Interp.Interrupt(thread, func() bool { return e.RunsOn(thread) })
}

// replyResults writes [[results...], [errors...]].
func replyResults(c redismod.Replier, s builder.Snapshot) {
	c.Array(2)
	redismod.WriteValue(c, s.Results)
	redismod.WriteValue(c, s.Errors)
}

func cmdDumpExecutions(c Ctx, argv []string) {
	list := g.engine.List()
	c.Array(len(list))
	for _, e := range list {
		c.Array(6)
		c.Bulk("executionId")
		c.Bulk(e.ID)
		c.Bulk("status")
		c.Bulk(string(e.Status()))
		c.Bulk("registered")
		c.Int(boolInt(e.Registration != nil))
	}
}

func lookupExecution(c Ctx, argv []string) *builder.Execution {
	if len(argv) != 2 {
		c.WrongArity()
		return nil
	}
	return ownExecution(c, argv[1])
}

// ownExecution finds execution id for a client that may see it (mayManage),
// or replies an error.
func ownExecution(c Ctx, id string) *builder.Execution {
	e, ok := g.engine.Get(id)
	if !ok {
		c.Error("execution plan does not exist")
		return nil
	}
	if !mayManage(c, e.Session.User) {
		c.Error(errNotOwner("execution"))
		return nil
	}
	return e
}

func cmdGetResults(c Ctx, argv []string) {
	if e := lookupExecution(c, argv); e != nil {
		if !e.Finished() {
			c.Error("execution is still running")
			return
		}
		replyResults(c, e.Snapshot())
	}
}

func cmdGetResultsBlocking(c Ctx, argv []string) {
	e := lookupExecution(c, argv)
	if e == nil {
		return
	}
	if e.Finished() {
		replyResults(c, e.Snapshot())
		return
	}
	afterExecution(c, e, replyResults)
}

func cmdDropExecution(c Ctx, argv []string) {
	if lookupExecution(c, argv) == nil {
		return
	}
	if err := dropExecution(argv[1]); err != nil {
		c.Error(err.Error())
		return
	}
	c.OK()
}

func cmdAbortExecution(c Ctx, argv []string) {
	if len(argv) != 2 {
		c.WrongArity()
		return
	}
	e, ok := g.engine.Get(argv[1])
	if !ok {
		// A running script is aborted by its session's id (RG.PYDUMPSCRIPTS).
		if sr := scriptOfSession(argv[1]); sr != nil {
			if !mayManage(c, sr.sess.User) {
				c.Error(errNotOwner("script"))
				return
			}
			sr.abort("")
			c.OK()
			return
		}
		c.Error("execution does not exist")
		return
	}
	if !mayManage(c, e.Session.User) {
		c.Error(errNotOwner("execution"))
		return
	}
	abortExecution(e, "")
	if e.Finished() || c.Flags()&noBlockingFlags != 0 {
		c.OK()
		return
	}
	// As RedisGears, the reply comes once the execution has stopped (ended
	// "done", with the abort as its error); code that Python cannot
	// interrupt is not waited for long.
	replyWhenDone(c, func() func(Ctx) {
		select {
		case <-e.Done():
		case <-time.After(abortWait):
		}
		return Ctx.OK
	})
}

// abortWait bounds how long RG.ABORTEXECUTION waits for a running execution
// to stop.
const abortWait = 2 * time.Second

func cmdGetExecution(c Ctx, argv []string) {
	if len(argv) < 2 || len(argv) > 3 {
		c.WrongArity()
		return
	}
	e := ownExecution(c, argv[1])
	if e == nil {
		return
	}
	across := gearsCluster.distributed() // RedisGears' default in a cluster
	if len(argv) == 3 {
		switch strings.ToUpper(argv[2]) {
		case "SHARD":
			across = false
		case "CLUSTER":
			if !g.cluster {
				c.Error("no cluster detected - use `RG.GETEXECUTION <id> [SHARD]` instead")
				return
			}
		default:
			c.Error("unknown subcommand")
			return
		}
	}
	mine := planEntryOf(e)
	if !across || len(e.Across()) == 0 || c.Flags()&noBlockingFlags != 0 { // MULTI, a script: this shard's only
		writePlanEntries(c, []planEntry{mine})
		return
	}
	// Every shard's entry, this one's first, as RedisGears collects them.
	replyWhenDone(c, func() func(Ctx) {
		entries := append([]planEntry{mine}, askExecutionEntries(e.ID)...)
		return func(c Ctx) { writePlanEntries(c, entries) }
	})
}

// planEntry is one shard's entry of RG.GETEXECUTION.
type planEntry struct {
	Shard              string
	Status             builder.Status
	Results, Completed int64
	Errors             []string
	Total, Read        int64 // ms
	Steps              []builder.Step
}

func planEntryOf(e *builder.Execution) planEntry {
	s := e.Snapshot()
	p := planEntry{Shard: g.engine.ShardID(), Status: s.Status, Results: -1, Errors: s.Errors,
		Total: s.Total.Milliseconds(), Read: s.Read.Milliseconds(), Steps: s.Steps}
	if s.Status == builder.Done || s.Status == builder.Aborted {
		p.Results, p.Completed = int64(len(s.Results)), 1
	}
	return p
}

func writePlanEntries(c redismod.Replier, entries []planEntry) {
	c.Array(len(entries))
	for _, p := range entries {
		c.Array(4)
		c.Bulk("shard_id")
		c.Bulk(p.Shard)
		c.Bulk("execution_plan")
		c.Array(16)
		c.Bulk("status")
		c.Bulk(string(p.Status))
		c.Bulk("shards_received")
		c.Int(1)
		c.Bulk("shards_completed")
		c.Int(p.Completed)
		c.Bulk("results")
		c.Int(p.Results)
		c.Bulk("errors")
		redismod.WriteValue(c, p.Errors)
		c.Bulk("total_duration")
		c.Int(p.Total)
		c.Bulk("read_duration")
		c.Int(p.Read)
		c.Bulk("steps")
		c.Array(len(p.Steps))
		for i := len(p.Steps) - 1; i >= 0; i-- { // last step first, as RedisGears lists them
			st := p.Steps[i]
			c.Array(8)
			c.Bulk("type")
			c.Bulk(st.Type)
			c.Bulk("duration")
			c.Int(st.Duration.Milliseconds())
			c.Bulk("name")
			c.Bulk(st.Name)
			c.Bulk("arg")
			c.Bulk(st.Arg)
		}
	}
}
