package main

// Executions across the shards of a cluster (a run() in mode async with
// more than one shard). The initiator sends the plan to every shard; each
// runs it in segments (runtime/distributed.py), ships each segment's output
// records to the shards they are for, and tells every shard it is done with
// the segment; a shard starts the next segment once all have. The last
// segment's records stay on the initiator, which replies once every shard
// has finished, with all shards' errors. A shard that stops answering ends
// the execution with "Execution max idle reached" after ExecutionMaxIdleTime.

import (
	"encoding/binary"
	"encoding/json"
	"errors"
	"fmt"
	"slices"
	"sync"
	"time"

	"gears/builder"
	"gears/interp"
	"gears/session"
)

const (
	msgStart   byte = 2 // the plan, the shards and the user
	msgRecords byte = 3 // pickled records for a segment
	msgDone    byte = 4 // the sender finished a segment (with its errors)
	msgAbort   byte = 5 // the execution ended: stop
	msgDrop    byte = 9 // the execution was dropped: drop this shard's part once done
)

type distMsg struct {
	Exec    string         `json:"e"`
	Seg     int            `json:"s,omitempty"`
	From    int            `json:"f,omitempty"`
	Shards  []string       `json:"sh,omitempty"`
	Init    int            `json:"i,omitempty"`
	User    string         `json:"u,omitempty"`
	HasUser bool           `json:"hu,omitempty"`
	Errors  []string       `json:"er,omitempty"`
	Routing []byte         `json:"r,omitempty"`
	Reason  string         `json:"why,omitempty"`
	Reg     string         `json:"reg,omitempty"` // a registration's execution: its id here too
	Event   any            `json:"ev,omitempty"`  // and the event every shard runs on (a trigger's)
	Steps   []builder.Step `json:"st,omitempty"`  // a run()'s plan, as RG.GETEXECUTION shows it
	Desc    string         `json:"d,omitempty"`
	Session string         `json:"ss,omitempty"` // the run()'s session, when registered on every shard
	Kept    bool           `json:"k,omitempty"`  // listed until dropped (else dropped once done)
	body    []byte
}

func (m *distMsg) encode(kind byte) []byte {
	head, _ := json.Marshal(m)
	b := make([]byte, 5, 5+len(head)+len(m.body))
	b[0] = kind
	binary.LittleEndian.PutUint32(b[1:], uint32(len(head)))
	return append(append(b, head...), m.body...)
}

func decodeDist(b []byte) (*distMsg, error) {
	if len(b) < 5 {
		return nil, errors.New("short message")
	}
	n := int(binary.LittleEndian.Uint32(b[1:]))
	if 5+n > len(b) {
		return nil, errors.New("short message")
	}
	m := &distMsg{}
	if err := json.Unmarshal(b[5:5+n], m); err != nil {
		return nil, err
	}
	m.body = b[5+n:]
	return m, nil
}

// distExec is one distributed execution as one shard sees it.
type distExec struct {
	id       string
	shards   []string
	routing  []byte
	me, init int
	mu       sync.Mutex
	changed  *sync.Cond
	inputs   map[int][][]byte     // segment -> record batches for it
	done     map[int]map[int]bool // segment -> shards that finished it
	errs     []string             // the other shards' errors (initiator)
	ended    string               // why it stopped early ("": it did not)
	heard    time.Time            // last message of it
	started  bool                 // false: messages came before its start (a placeholder)
}

var dists sync.Map // execution id -> *distExec

func newDist(id string, shards []string, routing []byte, me, init int) *distExec {
	v, _ := dists.LoadOrStore(id, placeholder(id))
	d := v.(*distExec)
	d.mu.Lock()
	d.shards, d.routing, d.me, d.init, d.started, d.heard = shards, routing, me, init, true, time.Now()
	d.mu.Unlock()
	return d
}

// placeholder keeps what arrives for an execution before its start does
// (records from a shard whose link is faster than the initiator's).
func placeholder(id string) *distExec {
	d := &distExec{id: id, inputs: map[int][][]byte{}, done: map[int]map[int]bool{}, heard: time.Now()}
	d.changed = sync.NewCond(&d.mu)
	return d
}

// sweepPlaceholders drops what arrived for executions that never started
// here (they ended first): run every second.
func sweepPlaceholders() {
	dists.Range(func(k, v any) bool {
		d := v.(*distExec)
		d.mu.Lock()
		stale := !d.started && time.Since(d.heard) > 2*g.cfg.ExecutionMaxIdleTime()
		d.mu.Unlock()
		if stale {
			dists.CompareAndDelete(k, v)
		}
		return true
	})
}

func (d *distExec) forget() { dists.Delete(d.id) }

func (d *distExec) stop(why string) {
	d.mu.Lock()
	if d.ended == "" {
		d.ended = why
	}
	d.changed.Broadcast()
	d.mu.Unlock()
}

// waitSegment waits until every shard finished segment seg (or the
// execution ended, or stayed idle too long); "" when it may go on.
func (d *distExec) waitSegment(seg int) string {
	d.mu.Lock()
	defer d.mu.Unlock()
	for len(d.done[seg]) < len(d.shards) && d.ended == "" {
		idle := g.cfg.ExecutionMaxIdleTime()
		if time.Since(d.heard) > idle {
			d.ended = idleReached
			break
		}
		timer := time.AfterFunc(time.Until(d.heard.Add(idle))+time.Millisecond, d.changed.Broadcast)
		d.changed.Wait()
		timer.Stop()
	}
	return d.ended
}

const idleReached = "Execution max idle reached"

// heardLocked notes a message from another shard. One that comes after
// ExecutionMaxIdleTime of silence is too late: the execution was idle
// then, however soon its waiter would have woken to see it.
func (d *distExec) heardLocked() {
	if d.started && d.ended == "" && time.Since(d.heard) > g.cfg.ExecutionMaxIdleTime() {
		d.ended = idleReached
		d.changed.Broadcast()
	}
	d.heard = time.Now()
}

func (d *distExec) markDone(seg, shard int, errs []string) {
	d.mu.Lock()
	if d.done[seg] == nil {
		d.done[seg] = map[int]bool{}
	}
	d.done[seg][shard] = true
	d.errs = append(d.errs, errs...)
	if shard != d.me { // idle means not hearing from the others
		d.heardLocked()
	}
	d.changed.Broadcast()
	d.mu.Unlock()
}

func (d *distExec) takeInputs(seg int) []any {
	d.mu.Lock()
	defer d.mu.Unlock()
	in := make([]any, len(d.inputs[seg]))
	for i, b := range d.inputs[seg] {
		in[i] = b
	}
	delete(d.inputs, seg)
	return in
}

func (d *distExec) send(to int, kind byte, m *distMsg) error {
	if to == d.me {
		return nil
	}
	m.Exec, m.From = d.id, d.me
	return gearsCluster.transport.Send(d.shards[to], m.encode(kind))
}

// runSegments runs every segment of plan token on this shard, attached as
// t; the last segment's output and this shard's errors are returned. When
// the other shards stop answering (or the execution is ended), the rest
// runs on what arrived so far, without waiting: RedisGears' initiator
// replies with the records it has and the reason.
func (d *distExec) runSegments(t *interp.Thread, token int64, nseg int, event any, registered bool) ([]any, []string) {
	var errs []string
	stopped := false
	for seg := 0; seg < nseg; seg++ {
		if seg > 0 && !stopped {
			var why string
			t.WithoutGIL(func() { why = d.waitSegment(seg - 1) })
			if why == builder.AbortedText {
				return nil, append(errs, why)
			}
			if why != "" {
				errs, stopped = append(errs, why), true
			}
		}
		v, err := t.Call("redisgears", "_dist_segment", token, int64(seg), d.takeInputs(seg), d.routing,
			int64(len(d.shards)), int64(d.me), int64(d.init), event, registered)
		if err != nil {
			return nil, append(errs, err.Error())
		}
		out := asList(v)
		if len(out) != 2 {
			return nil, append(errs, "bad segment outcome")
		}
		errs = append(errs, errorTexts(out[1])...)
		if seg == nseg-1 {
			d.markDone(seg, d.me, nil)
			return asList(out[0]), errs
		}
		var sendErr error
		t.WithoutGIL(func() {
			for i, rv := range asList(out[0]) {
				b, _ := rv.([]byte)
				if b == nil {
					continue
				}
				if i == d.me {
					d.mu.Lock()
					d.inputs[seg+1] = append(d.inputs[seg+1], b)
					d.mu.Unlock()
				} else if !stopped {
					if err := d.send(i, msgRecords, &distMsg{Seg: seg + 1, body: b}); err != nil {
						sendErr = err
					}
				}
			}
			if !stopped {
				for i := range d.shards {
					if err := d.send(i, msgDone, &distMsg{Seg: seg}); err != nil {
						sendErr = err
					}
				}
			}
			d.markDone(seg, d.me, nil)
		})
		if sendErr != nil {
			return nil, append(errs, sendErr.Error())
		}
	}
	return nil, errs
}

// runDistributed is the initiator's side of run() `token` of e, attached as
// t: ok is false when the plan runs on this shard only (mode async_local).
func runDistributed(e *builder.Execution, t *interp.Thread) (out builder.Outcome, ok bool, err error) {
	if !gearsCluster.distributed() {
		return out, false, nil
	}
	plan, err := t.Call("redisgears", "_dist_prepare", e.Token)
	if err != nil || plan == nil {
		return out, err != nil, err
	}
	start := &distMsg{body: plan.([]byte), Steps: e.Snapshot().Steps, Desc: e.Desc}
	if s, ok := g.sessions.Get(e.Session.ID); ok && s == e.Session {
		start.Session = s.ID // a run() of a registered session: it runs there on every shard
	}
	out, err = distribute(e, t, start, nil, false)
	errs := out.Errors
	if err != nil {
		errs = append(errs, err.Error())
	}
	if _, endErr := t.Call("redisgears", "_dist_end", e.Token, errs); endErr != nil {
		logf("warning", "gears: ending execution "+e.ID+": "+endErr.Error())
	}
	return out, true, err
}

// runDistributedEvent is the initiator's side of an async registration's
// execution in a cluster: every shard runs it, a trigger's on its
// arguments, a keyspace event's with its record here only (ok is false for
// the others: hooks, commands=, streams run here).
func runDistributedEvent(e *builder.Execution, t *interp.Thread, payload any) (out builder.Outcome, ok bool, err error) {
	r := e.Registration
	if !gearsCluster.distributed() || r.Mode != "async" || r.Hook != "" || r.Commands != nil {
		return out, false, nil
	}
	start := &distMsg{Reg: r.ID}
	switch r.Reader {
	case "CommandReader":
		start.Event = payload // every shard runs on the trigger's arguments
	case "KeysReader":
		if ke, isKey := payload.(keyEvent); isKey {
			payload = []any{ke.key, ke.event}
		}
	case "StreamReader": // the batch is read here, and acknowledged once every shard is done
	default:
		return out, false, nil
	}
	out, err = distribute(e, t, start, payload, true)
	return out, true, err
}

// distribute starts e's plan on every shard with start and runs it here.
func distribute(e *builder.Execution, t *interp.Thread, start *distMsg, event any, registered bool) (out builder.Outcome, err error) {
	began := time.Now()
	nsegV, err := t.Call("redisgears", "_dist_segments", e.Token, registered)
	if err != nil {
		return out, err
	}
	nseg := int(nsegV.(int64))
	shards, routing := gearsCluster.view()
	ids := make([]string, len(shards))
	me := -1
	for i, sh := range shards {
		ids[i] = sh.id
		if sh.id == gearsCluster.myID {
			me = i
		}
	}
	if me < 0 {
		return out, errors.New("this node serves no slots: it cannot run an execution across shards")
	}
	d := newDist(e.ID, ids, routing, me, me)
	defer d.forget()
	e.SetAcross(othersThan(ids, me))
	start.Shards, start.Init, start.Routing, start.Seg, start.Kept = ids, me, routing, nseg, e.Kept()
	start.User, start.HasUser = e.Session.User, e.Session.User != ""
	var sendErr error
	t.WithoutGIL(func() {
		for i := range ids {
			if err := d.send(i, msgStart, start); err != nil {
				sendErr = err
			}
		}
	})
	if sendErr != nil {
		return out, sendErr
	}
	results, errs := d.runSegments(t, e.Token, nseg, event, registered)
	var why string
	t.WithoutGIL(func() { why = d.waitSegment(nseg - 1) })
	if why != "" {
		if !slices.Contains(errs, why) {
			errs = append(errs, why)
		}
		t.WithoutGIL(func() { d.abortOthers(why) })
	}
	d.mu.Lock()
	errs = append(errs, d.errs...)
	d.mu.Unlock()
	if r := e.Registration; r != nil && r.Reader == "StreamReader" {
		v, err := t.Call("redisgears", "_dist_stream_end", e.Token, asList(event)[0], errs)
		if err != nil {
			errs = append(errs, err.Error())
		}
		readStreamBatch(&out, v)
	}
	out.Results, out.Errors, out.Total = results, errs, time.Since(began)
	return out, nil
}

// othersThan is ids but the me'th.
func othersThan(ids []string, me int) []string {
	return slices.Delete(slices.Clone(ids), me, me+1)
}

// abortExecution aborts e here and on the other shards it runs on.
func abortExecution(e *builder.Execution, reason string) {
	g.engine.AbortExecution(e, reason)
	if v, ok := dists.Load(e.ID); ok {
		v.(*distExec).stop(builder.AbortedText)
	}
	for _, sh := range e.Across() {
		_ = gearsCluster.transport.Post(sh, (&distMsg{Exec: e.ID, Reason: builder.AbortedText}).encode(msgAbort))
	}
}

// dropExecution drops a finished execution here, and its parts on the
// other shards it ran on (once they are done), as RedisGears does.
func dropExecution(id string) error {
	e, ok := g.engine.Get(id)
	if err := g.engine.Drop(id); err != nil {
		return err
	}
	if ok {
		for _, sh := range e.Across() {
			_ = gearsCluster.transport.Post(sh, (&distMsg{Exec: id}).encode(msgDrop))
		}
	}
	return nil
}

// dropWhenDone drops this shard's part of an execution another shard
// dropped, once it has finished.
func dropWhenDone(id string) {
	e, ok := g.engine.Get(id)
	if !ok {
		return
	}
	if e.Finished() {
		g.engine.Drop(id) //nolint:errcheck // finished
		return
	}
	go func() {
		<-e.Done()
		g.engine.Drop(id) //nolint:errcheck // finished
	}()
}

func (d *distExec) abortOthers(why string) {
	for i := range d.shards {
		_ = d.send(i, msgAbort, &distMsg{Reason: why})
	}
}

// distReceive handles a message of a distributed execution (on the
// transport's delivering goroutine: it never runs Python).
func distReceive(from string, b []byte) {
	m, err := decodeDist(b)
	if err != nil {
		logf("warning", "gears: a bad execution message from shard "+from+": "+err.Error())
		return
	}
	switch b[0] {
	case msgStart:
		startRemote(from, m)
		return
	case msgDrop:
		dropWhenDone(m.Exec)
		return
	}
	v, _ := dists.LoadOrStore(m.Exec, placeholder(m.Exec))
	d := v.(*distExec)
	switch b[0] {
	case msgRecords:
		d.mu.Lock()
		d.inputs[m.Seg] = append(d.inputs[m.Seg], m.body)
		d.heardLocked()
		d.mu.Unlock()
	case msgDone:
		d.markDone(m.Seg, m.From, m.Errors)
	case msgAbort:
		d.stop(m.Reason)
		if m.Reason == builder.AbortedText { // RG.ABORTEXECUTION on another shard
			if e, ok := g.engine.Get(m.Exec); ok {
				g.engine.AbortExecution(e, "")
			}
		}
	}
}

// startRemote runs a plan another shard started, in a session of its own
// that runs as the same user, on a Python thread.
func startRemote(from string, m *distMsg) {
	me := -1
	for i, id := range m.Shards {
		if id == gearsCluster.myID {
			me = i
		}
	}
	if me < 0 || m.Init < 0 || m.Init >= len(m.Shards) {
		return
	}
	d := newDist(m.Exec, m.Shards, m.Routing, me, m.Init)
	nseg := m.Seg
	if m.Reg != "" {
		startRemoteEvent(d, m, nseg)
		return
	}
	sess, own := sessionForRemote(m)
	e := g.engine.Join(sess, m.Exec, 0, m.Steps, m.Desc, m.Kept, nil)
	if e == nil { // its session ended meanwhile
		sess.Release(g.threads.Go)
		d.finishRemote(nseg, []string{errSessionEnded.Error()})
		d.forget()
		return
	}
	e.SetAcross(othersThan(m.Shards, me))
	plan := m.body
	g.threads.Go(func() {
		defer d.forget()
		defer sess.Release(g.threads.Go) // the execution holds it until dropped
		began := time.Now()
		var errs []string
		fail := func(err error) { errs = append(errs, err.Error()) }
		var err error
		if !own {
			err = giveInterpreter(sess)
		}
		if err != nil {
			fail(err)
		} else if err := withSession(sess, func(t *interp.Thread) error {
			return runPart(e, t, func() {
				token, err := loadPlan(t, sess, own, plan)
				if err != nil {
					fail(err)
					return
				}
				defer t.Call("redisgears", "_dist_end", token)
				_, segErrs := d.runSegments(t, token, nseg, nil, false)
				errs = append(errs, segErrs...)
			})
		}); err != nil {
			fail(err)
		}
		d.finishRemote(nseg, errs)
		g.engine.Complete(e, builder.Outcome{Errors: errs, Total: time.Since(began)}, nil)
	})
}

// loadPlan loads a plan another shard sent into sess's interpreter (its
// script's globals when own), attached as t; it returns the plan's token.
func loadPlan(t *interp.Thread, sess *session.Session, own bool, plan []byte) (int64, error) {
	var globals any // nil: a globals dict of the plan's own
	if own {
		g, err := sessionGlobals(t, sess)
		if err != nil {
			return 0, err
		}
		globals = g
	}
	tok, err := t.Call("redisgears", "_dist_load", plan, globals)
	if err != nil {
		return 0, err
	}
	return tok.(int64), nil
}

// sessionForRemote is the session a plan from another shard runs in here,
// holding a reference: the run()'s own session when it registered (it lives
// on every shard, as the same user: own is true), else a new one that runs
// as the same user.
func sessionForRemote(m *distMsg) (sess *session.Session, own bool) {
	if m.Session != "" {
		if s, ok := g.sessions.Acquire(m.Session); ok {
			if s.User == m.User {
				return s, true
			}
			s.Release(g.threads.Go)
		}
	}
	sess = session.New(m.Exec, "", nil)
	sess.User = m.User
	giveNative(sess, m.User, m.HasUser)
	return sess, false
}

// runPart runs this shard's part of execution e, attached as t, where an
// abort can interrupt it.
func runPart(e *builder.Execution, t *interp.Thread, run func()) error {
	if !e.SetThread(t.ID()) {
		return errAborted
	}
	defer func() {
		if !e.SetThread(0) {
			t.ClearInterrupt() // aborted: an interrupt it did not see stays here
		}
	}()
	run()
	return nil
}

// startRemoteEvent runs this shard's part of a registration's execution
// another shard started: the same registration, here, on the same event.
func startRemoteEvent(d *distExec, m *distMsg, nseg int) {
	r, ok := g.regs.Get(m.Reg)
	var e *builder.Execution
	if ok {
		e = g.engine.Join(r.Session, m.Exec, r.Token, r.Steps, r.Desc, true, r)
	}
	if e == nil {
		d.finishRemote(nseg, []string{"registration " + m.Reg + " does not exist on shard " + gearsCluster.myID})
		d.forget()
		return
	}
	e.SetAcross(othersThan(m.Shards, d.me))
	g.threads.Go(func() {
		defer d.forget()
		began := time.Now()
		var errs []string
		err := withSession(r.Session, func(t *interp.Thread) error {
			return runPart(e, t, func() {
				_, segErrs := d.runSegments(t, r.Token, nseg, m.Event, true)
				errs = append(errs, segErrs...)
			})
		})
		if err != nil {
			errs = append(errs, err.Error())
		}
		d.finishRemote(nseg, errs)
		g.engine.Complete(e, builder.Outcome{Errors: errs, Total: time.Since(began)}, nil)
	})
}

// finishRemote tells the other shards this one is done: the segments it
// did not reach (it failed) count as done, so nobody waits for them, and
// the last one's done carries its errors to the initiator.
func (d *distExec) finishRemote(nseg int, errs []string) {
	for seg := 0; seg < nseg-1; seg++ {
		d.mu.Lock()
		mine := d.done[seg][d.me]
		d.mu.Unlock()
		if !mine {
			for i := range d.shards {
				_ = d.send(i, msgDone, &distMsg{Seg: seg})
			}
			d.markDone(seg, d.me, nil)
		}
	}
	_ = d.send(d.init, msgDone, &distMsg{Seg: nseg - 1, Errors: errs})
}

// distPeerLost ends the executions a restarted shard took part in.
func distPeerLost(peer string) {
	dists.Range(func(_, v any) bool {
		d := v.(*distExec)
		for _, id := range d.shards {
			if id == peer {
				d.stop(fmt.Sprintf("shard %s restarted during the execution", peer))
			}
		}
		return true
	})
}
