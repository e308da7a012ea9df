package main

/*
#include "module.h"
*/
import "C"

import (
	"errors"
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
	"unsafe"

	"gears/builder"
	"gears/interp"
	"gears/session"
)

// hostRegister is register()'s host half. Registrations made by a script
// become live together when the script succeeds (and none of them when it
// fails); runtime/builder.py has checked the arguments.
func hostRegister(c *interp.Call) (any, error) {
	sess := sessionOf(c)
	if sess == nil && sharedInterp != nil {
		return nil, noSession("register()")
	}
	if sess == nil {
		return nil, errors.New("register() can only be called by the script of RG.PYEXECUTE")
	}
	if len(c.Args) < 6 {
		return nil, errors.New("register() is not available here")
	}
	v, ok := scripts.Load(sess)
	if !ok {
		return registerLive(sess, c)
	}
	sr := v.(*scriptRun)
	r := &builder.Registration{Session: sess}
	if i := len(sr.regs); i < len(sr.restoreIDs) {
		r.ID = sr.restoreIDs[i]
	} else {
		if i == 0 {
			// RedisGears registers a script's registrations through a
			// plan of its own, which takes the first id: users' tests
			// count on the ids that follow.
			g.engine.NextRegistrationID()
		}
		r.ID = g.engine.NextRegistrationID()
	}
	readRegistration(r, c)
	for _, other := range sr.regs {
		if r.Trigger != "" && other.Trigger == r.Trigger {
			return nil, errors.New("trigger already registered in this session")
		}
	}
	sr.regs = append(sr.regs, r)
	return r.ID, nil
}

// registerLive is register() from a session's running code (a step, a
// time event, a thread): the registration joins its session now. It lives
// until a restart: gears saves a session as its script, which does not make
// it (RedisGears 1.2 serialized it), and replicas get the script too.
func registerLive(sess *session.Session, c *interp.Call) (any, error) {
	r := &builder.Registration{Session: sess, ID: g.engine.NextRegistrationID()}
	readRegistration(r, c)
	if !sess.Acquire() {
		return nil, errSessionEnded
	}
	r.OnRelease = unregistered(r)
	if err := g.regs.Add([]*builder.Registration{r}, nil); err != nil {
		sess.Release(g.threads.Go)
		return nil, err
	}
	logf("warning", "gears: registration "+r.ID+" of session "+sess.ID+" was made by running code, not by its script: "+
		"it is not saved with the data nor sent to replicas, and ends at a restart")
	if r.Hook != "" {
		refreshHooks()
	}
	if r.Reader == "StreamReader" {
		startStreams(r)
	}
	return r.ID, nil
}

// readRegistration fills r from register()'s arguments (runtime/builder.py
// has checked them).
func readRegistration(r *builder.Registration, c *interp.Call) {
	r.Token, _ = c.Args[0].(int64)
	r.Reader, _ = c.Args[1].(string)
	r.Mode, _ = c.Args[2].(string)
	r.Desc, _ = c.Args[3].(string)
	r.Steps = planSteps(c.Args[4])
	args, _ := c.Args[5].(map[string]any)
	r.Prefix, _ = args["prefix"].(string)
	r.EventTypes = strings_(args["eventTypes"])
	r.KeyTypes = strings_(args["keyTypes"])
	r.ReadValue, _ = args["readValue"].(bool)
	r.Trigger, _ = args["trigger"].(string)
	r.Inorder, _ = args["inorder"].(bool)
	r.Hook, _ = args["hook"].(string)
	r.Commands = strings_(args["commands"])
	r.KeyPrefix, _ = args["keyprefix"].(string)
	if r.Reader == "StreamReader" {
		r.Stream = builder.StreamArgs{
			Batch:         int(int64Of(args["batch"])),
			Duration:      time.Duration(int64Of(args["duration"])) * time.Millisecond,
			Policy:        stringOf(args["onFailedPolicy"]),
			RetryInterval: time.Duration(int64Of(args["retryInterval"])) * time.Second,
			Trim:          args["trimStream"] == true,
		}
	}
}

func int64Of(v any) int64   { n, _ := v.(int64); return n }
func stringOf(v any) string { s, _ := v.(string); return s }

// strings_ reads a list of strings (nil stays nil: "no filter").
func strings_(v any) []string {
	l, ok := v.([]any)
	if !ok {
		return nil
	}
	out := make([]string, 0, len(l))
	for _, e := range l {
		s, _ := e.(string)
		out = append(out, s)
	}
	return out
}

// maxEventDepth bounds registrations triggered by each other's writes: an
// event that an execution maxEventDepth events away from a client's write
// caused runs nothing (sync runs would nest on the stack, async ones queue
// without end).
const maxEventDepth = 16

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
func eventDepth() int { return int(C.gears_thread_state().event_depth) }

// goKeyspaceEvent runs with the Redis lock held, on the main thread or on a
// thread whose execute() caused the event; flags are the context's.
//
//export goKeyspaceEvent
func goKeyspaceEvent(ctx *C.RedisModuleCtx, flags C.int, event *C.char, eventLen C.int, key *C.char, keyLen C.int, depth C.int) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("keyspace event", r)
		}
	}()
	if g == nil || g.regs.Len() == 0 {
		return
	}
	// Registrations fire on masters only, never while loading.
	if flags&C.REDISMODULE_CTX_FLAGS_MASTER == 0 || flags&C.REDISMODULE_CTX_FLAGS_LOADING != 0 {
		return
	}
	ev := eventName(event, eventLen)
	// The key is matched where Redis keeps it, and copied once it matches.
	var buf [4]*builder.Registration
	regs := g.regs.KeyEvent(unsafe.String((*byte)(unsafe.Pointer(key)), int(keyLen)), ev, buf[:0])
	if len(regs) == 0 {
		return
	}
	k := C.GoStringN(key, keyLen)
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
				keyType = C.GoString(C.gears_key_type(ctx, key, C.size_t(keyLen)))
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
		readable := C.gears_session_may_read((*C.gears_session)(r.Session.Native), key, C.size_t(keyLen)) == 1
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
		if int(depth) >= maxEventDepth {
			refuse(r, errTooDeep)
			continue
		}
		if cc != nil && r.Commands != nil && r.Mode != "sync" {
			cc.add(startCommandEvent(r, payload, cc, int(depth)+1))
			continue
		}
		if r.Mode == "sync" {
			runSync(r, payload)
			continue
		}
		startEvent(r, payload, int(depth)+1)
	}
}

// keyEvent is a KeysReader event: the record's key and event.
type keyEvent struct{ key, event string }

// eventNames interns event names (a few distinct ones, each seen for every
// write). Guarded by the Redis lock, as goKeyspaceEvent is.
var eventNames = map[string]string{}

func eventName(p *C.char, n C.int) string {
	if s, ok := eventNames[unsafe.String((*byte)(unsafe.Pointer(p)), int(n))]; ok {
		return s
	}
	s := C.GoStringN(p, n)
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
	r.Triggered()
	start := time.Now()
	// Its writes' events are one deeper.
	ts := C.gears_thread_state()
	ts.event_depth++
	ts.sync_depth++
	defer func() {
		ts.sync_depth--
		ts.event_depth--
		if rec := recover(); rec != nil {
			logPanic("registration "+r.ID, rec)
			err = errors.New("gears internal error (see the Redis log)")
		}
		if err == nil && out.Suspended != 0 {
			if out.Later, err = adopt(r, payload, int(ts.event_depth)+1, out.Suspended); err == nil {
				return
			}
		}
		r.Finished(out, err, time.Since(start))
		if r.Reader == "StreamReader" {
			streamBatchDone(r, payload, out, err)
		}
	}()
	err = withSession(r.Session, func(t *interp.Thread) error {
		out, err = callEvent(t, r, payload)
		explainBusyAbort(out.Errors)
		return err
	})
	return out, err
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

// afterExecution blocks c's client until e has finished, then replies.
func afterExecution(c Ctx, e *builder.Execution, reply func(Ctx, builder.Snapshot)) {
	b := block(c, nil)
	go func() {
		<-e.Done()
		s := e.Snapshot()
		b.Unblock(func(c Ctx) { reply(c, s) })
	}()
}

func replyTriggerSnapshot(c Ctx, s builder.Snapshot) {
	replyTrigger(c, builder.Outcome{Results: s.Results, Errors: s.Errors}, nil)
}

// streamWaker starts a batch of r on stream key later (a duration timer).
func streamWaker(r *builder.Registration, key string) func() {
	return func() { runStream(r, key, false) }
}

// runStream runs one batch of stream key: inline for a sync registration
// (inside the xadd), else on an execution thread.
func runStream(r *builder.Registration, key string, inline bool) {
	payload := []any{key}
	if !inline || eventDepth() >= maxEventDepth {
		startBatch(r, payload)
		return
	}
	if ok, pendingOnly := r.StreamMayRun(key, true); ok {
		runSync(r, []any{key, pendingOnly})
	}
}

// streamBatchDone decides what follows a batch of a StreamReader
// registration: the next batch, a retry later, or nothing.
func streamBatchDone(r *builder.Registration, payload any, o builder.Outcome, err error) {
	key := streamKeyOf(payload)
	ok := err == nil && o.StreamAcked
	if len(o.Errors) > 0 && strings.HasPrefix(o.Errors[0], "PAUSE") {
		r.SetStreamPaused(true) // RedisGears' convention: an error "PAUSE..." pauses it
	}
	if !ok || r.Removed() {
		// A failed batch stops the registration's other streams until
		// its retry: their batches not started yet are aborted.
		defer abortUnstarted(r)
	}
	if r.Removed() { // unregistered: the batch under way was the last
		r.StreamFinished(key, o.StreamRead, false, o.StreamLag, nil)
		return
	}
	again, retry := r.StreamFinished(key, o.StreamRead, ok, o.StreamLag, streamWaker(r, key))
	switch {
	case again:
		startBatch(r, payload)
	case retry > 0:
		retryStream(r, key, retry)
	}
}

// abortUnstarted aborts r's executions that have not started; a stream's
// aborted batch leaves its stream free for the next one.
func abortUnstarted(r *builder.Registration) {
	for _, e := range g.engine.AbortUnstarted(r) {
		if r.Reader == "StreamReader" {
			r.StreamMayRun(streamKeyOf(e.Payload), false) //nolint:errcheck // frees the stream for its next batch
		}
	}
}

// retryStream runs a failed batch again after the retry interval; a replica
// waits until it is a master again (only masters run registrations).
func retryStream(r *builder.Registration, key string, after time.Duration) {
	time.AfterFunc(after, func() {
		if r.Removed() {
			return
		}
		if !isMaster() {
			retryStream(r, key, after)
			return
		}
		for _, k := range r.StreamRetry(key) {
			startBatch(r, []any{k})
		}
	})
}

// streamKeyOf is the stream of a StreamReader batch's payload.
func streamKeyOf(payload any) string {
	p, _ := payload.([]any)
	if len(p) == 0 {
		return ""
	}
	key, _ := p[0].(string)
	return key
}

// startStreams runs a StreamReader registration over the streams that
// exist already: their entries are processed to the end now (at
// registration, after a restart, on promotion), as RedisGears does.
func startStreams(r *builder.Registration) {
	cursor := "0"
	for {
		v, err := call("SCAN", cursor, "MATCH", globOf(r.Prefix), "TYPE", "stream", "COUNT", "1000")
		reply, _ := v.([]any)
		if err != nil || len(reply) != 2 {
			return
		}
		cursor, _ = reply[0].(string)
		for _, kv := range asList(reply[1]) {
			key, _ := kv.(string)
			if !r.Matches(key, "xadd") || !mayRead(r.Session, key) {
				continue
			}
			n, _ := call("XLEN", key)
			if r.StreamCatchUp(key, int(max(int64Of(n), 1)), streamWaker(r, key)) {
				startBatch(r, []any{key})
			}
		}
		if cursor == "0" {
			return
		}
	}
}

// globOf is a SCAN pattern covering a registration prefix.
func globOf(prefix string) string {
	if strings.HasSuffix(prefix, "*") {
		return prefix
	}
	return strings.NewReplacer(`\`, `\\`, "*", `\*`, "?", `\?`, "[", `\[`).Replace(prefix)
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

// callKeyEvent is callEvent's short path for a keyspace event: gears_key_event
// makes the arguments in C, and a result of None (no errors) stays there.
func callKeyEvent(t *interp.Thread, r *builder.Registration, ke keyEvent) (builder.Outcome, error) {
	fn, err := t.Function("redisgears", "_run_event")
	if err != nil {
		return builder.Outcome{}, err
	}
	var res *C.PyObject
	rc := C.gears_key_event((*C.PyObject)(fn), C.longlong(r.Token),
		(*C.char)(unsafe.Pointer(unsafe.StringData(ke.key))), C.size_t(len(ke.key)),
		(*C.char)(unsafe.Pointer(unsafe.StringData(ke.event))), C.size_t(len(ke.event)),
		C.int(boolInt(keepsResults(r))), &res)
	switch rc {
	case C.EVENT_RAISED:
		return builder.Outcome{}, t.Raised()
	case C.EVENT_NONE:
		return builder.Outcome{}, nil
	}
	v, err := t.Take(unsafe.Pointer(res))
	return eventOutcome(r, v), err
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

// startBatch queues a StreamReader batch (one per stream at a time).
func startBatch(r *builder.Registration, payload any) {
	if _, err := g.engine.StartBatch(r, payload); err == nil {
		r.Triggered()
	}
}

var errUnregistered = builder.ErrLetGo

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
func triggerPayload(argv []string) []any {
	payload := make([]any, len(argv)-1)
	for i, a := range argv[1:] {
		payload[i] = a
	}
	return payload
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
	var out builder.Outcome
	var err error
	replied := false
	r.Triggered()
	start := time.Now()
	ts := C.gears_thread_state()
	ts.sync_depth++
	defer func() {
		ts.sync_depth--
		if rec := recover(); rec != nil {
			logPanic("registration "+r.ID, rec)
			err = errors.New("gears internal error (see the Redis log)")
		}
		if err == nil && out.Suspended != 0 {
			var e *builder.Execution
			if e, err = adopt(r, triggerPayload(args(argv, argc)), int(ts.event_depth)+1, out.Suspended); err == nil {
				afterExecution(c, e, replyTriggerSnapshot)
				return
			}
		}
		r.Finished(out, err, time.Since(start))
		if !replied {
			replyTrigger(c, out, err)
		}
	}()
	err = withSession(r.Session, func(t *interp.Thread) error {
		fn, err := t.Function("redisgears", "_run_event")
		if err != nil {
			return err
		}
		var res *C.PyObject
		switch C.gears_trigger(c.p, (*C.PyObject)(fn), C.longlong(r.Token), argv, argc, &res) {
		case C.TRIGGER_REPLIED:
			replied = true
			return nil
		case C.TRIGGER_RAISED:
			return t.Raised()
		}
		v, err := t.Take(unsafe.Pointer(res))
		out = eventOutcome(r, v)
		explainBusyAbort(out.Errors)
		return err
	})
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

func cmdUnregister(c Ctx, argv []string) {
	if len(argv) < 2 || len(argv) > 3 {
		c.WrongArity()
		return
	}
	if r, ok := g.regs.Get(argv[1]); ok && !mayManage(c, r.Session.User) {
		c.Error(errNotOwner("registration"))
		return
	}
	r, ok := g.regs.Remove(argv[1])
	if !ok {
		c.Error("execution is not registered")
		return
	}
	// As RedisGears: abortpending aborts what has not started; a
	// StreamReader's batches not started are dropped anyway.
	if len(argv) == 3 && strings.EqualFold(argv[2], "abortpending") || r.Reader == "StreamReader" {
		abortUnstarted(r)
	}
	forget(r)
	saveSnapshot()
	if r.Hook != "" {
		refreshHooks()
	}
	replicate("RG.INNERUNREGISTER", r.ID)
	c.OK()
}

// forget lets go of a registration that is no longer live. Its plan and its
// hold on the session go once nothing runs it any more (unregistered). A
// session left without registrations or kept time events is no longer
// found by id.
func forget(r *builder.Registration) {
	g.engine.ForgetRegistration(r)
	if s := r.Session; len(g.regs.OfSession(s)) == 0 && s.Kept() == 0 {
		g.sessions.Remove(s)
	}
}

// unregistered is a registration's OnRelease: its last execution is done.
func unregistered(r *builder.Registration) func() {
	return func() {
		g.threads.Go(func() {
			withSession(r.Session, func(t *interp.Thread) error {
				_, err := t.Call("redisgears", "_unregister", r.Token)
				return err
			})
			if r.Session.Release(g.threads.Go) {
				g.sessions.Remove(r.Session)
			}
		})
	}
}

func cmdClearRegistrationsStats(c Ctx, argv []string) {
	if len(argv) != 1 {
		c.WrongArity()
		return
	}
	for _, r := range g.regs.List() {
		r.ClearStats()
	}
	c.OK()
}

func cmdDumpRegistrations(c Ctx, argv []string) {
	regs := g.regs.List()
	c.Array(len(regs))
	for _, r := range regs {
		writeRegistrationFields(c, r, true)
	}
}

func writeRegistrationFields(c Ctx, r *builder.Registration, withPD bool) {
	st := r.Stats()
	if st.LastError != "" && !mayManage(c, r.Session.User) {
		st.LastError = "(hidden: the registration belongs to another user)" // its text may hold that user's data
	}
	if withPD {
		c.Array(12)
	} else {
		c.Array(10)
	}
	c.Bulk("id")
	c.Bulk(r.ID)
	c.Bulk("reader")
	c.Bulk(r.Reader)
	c.Bulk("desc")
	c.BulkOrNull(r.Desc)
	c.Bulk("RegistrationData")
	if r.Reader == "StreamReader" {
		c.Array(26)
	} else {
		c.Array(20)
	}
	c.Bulk("mode")
	c.Bulk(r.Mode)
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"numTriggered", st.Triggered}, {"numSuccess", st.Success}, {"numFailures", st.Failures},
		{"numAborted", st.Aborted}, {"lastRunDurationMS", st.LastRun.Milliseconds()},
		{"totalRunDurationMS", st.TotalRun.Milliseconds()},
	} {
		c.Bulk(f.name)
		c.Int(f.v)
	}
	c.Bulk("avgRunDurationMS")
	avg := 0.0
	if st.Triggered > 0 {
		avg = float64(st.TotalRun.Microseconds()) / 1000 / float64(st.Triggered)
	}
	c.Bulk(strconv.FormatFloat(avg, 'f', -1, 64))
	switch r.Reader {
	case "StreamReader":
		writeStreamData(c, r, st)
	case "CommandReader":
		writeLastError(c, st)
		c.Bulk("args")
		c.Array(4)
		c.Bulk("trigger")
		c.Bulk(r.Trigger)
		c.Bulk("inorder")
		c.Int(boolInt(r.Inorder))
	default:
		writeLastError(c, st)
		c.Bulk("args")
		c.Array(8)
		c.Bulk("regex")
		c.Bulk(r.Prefix)
		c.Bulk("eventTypes")
		writeOptionalList(c, r.EventTypes)
		c.Bulk("keyTypes")
		writeOptionalList(c, r.KeyTypes)
		c.Bulk("hookCommands")
		writeOptionalList(c, r.Commands)
	}
	if withPD {
		c.Bulk("PD")
		c.Bulk(sessionPD(r))
	}
	c.Bulk("ExecutionThreadPool")
	c.Bulk("DefaultPool")
}

func writeLastError(c Ctx, st builder.Stats) {
	c.Bulk("lastError")
	c.BulkOrNull(st.LastError)
}

func boolInt(b bool) int64 {
	if b {
		return 1
	}
	return 0
}
func writeOptionalList(c Ctx, l []string) {
	if l == nil {
		c.Null()
		return
	}
	c.Value(l)
}

// sessionPD is RedisGears' description of a registration's session.
func sessionPD(r *builder.Registration) string {
	s := r.Session
	var ids []string
	for _, o := range g.regs.OfSession(s) {
		ids = append(ids, "'"+o.ID+"'")
	}
	desc := "null"
	if s.Description != "" {
		desc = "'" + s.Description + "'"
	}
	return fmt.Sprintf("{'sessionName':'%s', 'sessionDescription':%s, 'refCount': %d, 'linkedTo': primary, 'dead': false, 'isInstallationNeeded':0, 'registrationsList':[%s], 'depsList':[]}",
		s.ID, desc, s.Refs(), strings.Join(ids, ", "))
}

// RG.PYDUMPSESSIONS [VERBOSE] [DEAD] [SESSIONS id ...]
func cmdPyDumpSessions(c Ctx, argv []string) {
	verbose := false
	var ids []string
	selected := false
	for i := 1; i < len(argv); i++ {
		switch strings.ToUpper(argv[i]) {
		case "VERBOSE":
			verbose = true
		case "DEAD":
			// Sessions end with their last reference: none is ever dead here.
		case "SESSIONS":
			ids, selected = argv[i+1:], true
			i = len(argv)
		default:
			c.Error("Unknown option " + argv[i])
			return
		}
	}
	var list []*session.Session
	if selected {
		c.Array(len(ids))
		for _, id := range ids {
			if s, ok := g.sessions.Get(id); ok {
				writeSession(c, s, verbose)
			} else {
				c.Bulk("Session " + id + " does not exists")
			}
		}
		return
	}
	list = g.sessions.List()
	c.Array(len(list))
	for _, s := range list {
		writeSession(c, s, verbose)
	}
}

func writeSession(c Ctx, s *session.Session, verbose bool) {
	regs := g.regs.OfSession(s)
	c.Array(16)
	c.Bulk("ID")
	c.Bulk(s.ID)
	c.Bulk("sessionDescription")
	c.BulkOrNull(s.Description)
	c.Bulk("refCount")
	c.Int(int64(s.Refs()))
	c.Bulk("linked")
	c.Bulk("primary")
	c.Bulk("dead")
	c.Bulk("false")
	c.Bulk("requirementInstallationNeeded")
	c.Int(0)
	c.Bulk("requirements")
	c.Array(len(s.Requirements))
	for _, r := range s.Requirements {
		if verbose {
			writeRequirement(c, r)
		} else {
			c.Bulk(r.Name)
		}
	}
	c.Bulk("registrations")
	c.Array(len(regs))
	for _, r := range regs {
		if verbose {
			writeRegistrationFields(c, r, false)
		} else {
			c.Bulk(r.ID)
		}
	}
}

// The StreamReader's part of RegistrationData, after the common counters.
func writeStreamData(c Ctx, r *builder.Registration, st builder.Stats) {
	status, lastLag, avgLag := r.StreamStatus()
	c.Bulk("lastEstimatedLagMS")
	c.Int(lastLag.Milliseconds())
	c.Bulk("avgEstimatedLagMS")
	c.Bulk(strconv.FormatFloat(float64(avgLag.Microseconds())/1000, 'f', -1, 64))
	writeLastError(c, st)
	c.Bulk("args")
	c.Array(12)
	c.Bulk("batchSize")
	c.Int(int64(r.Stream.Batch))
	c.Bulk("durationMS")
	c.Int(r.Stream.Duration.Milliseconds())
	c.Bulk("stream")
	c.Bulk(r.Prefix)
	c.Bulk("trimStream")
	c.Int(boolInt(r.Stream.Trim))
	c.Bulk("onFailedPolicy")
	c.Bulk(r.Stream.Policy)
	c.Bulk("retryInterval")
	c.Int(int64(r.Stream.RetryInterval.Seconds()))
	c.Bulk("status")
	c.Bulk(status)
}

// RG.PAUSEREGISTRATIONS <id> / RG.UNPAUSEREGISTRATIONS <id>: StreamReader
// registrations only.
func cmdPauseRegistrations(c Ctx, argv []string) { pauseRegistration(c, argv, true) }

func cmdUnpauseRegistrations(c Ctx, argv []string) { pauseRegistration(c, argv, false) }

func pauseRegistration(c Ctx, argv []string, pause bool) {
	if len(argv) != 2 {
		c.WrongArity()
		return
	}
	r, ok := g.regs.Get(argv[1])
	if !ok {
		c.Error(fmt.Sprintf("Execution %s does not exists on shard %s", argv[1], g.engine.ShardID()))
		return
	}
	if !mayManage(c, r.Session.User) {
		c.Error(errNotOwner("registration"))
		return
	}
	verb := "unpause"
	if pause {
		verb = "pause"
	}
	if r.Reader != "StreamReader" {
		c.Error(fmt.Sprintf("Reader %s does not support %s", r.Reader, verb))
		return
	}
	ready := r.SetStreamPaused(pause)
	if pause {
		abortUnstarted(r)
	}
	for _, key := range ready {
		startBatch(r, []any{key})
	}
	c.OK()
}
