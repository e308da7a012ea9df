package main

// Registrations live on every shard (as in RedisGears 1.2): a session whose
// script registers is sent to the other shards, which restore it as a
// replica does (re-running its script without writes, with the same
// registration ids) and pass it on to their own replicas and AOF;
// unregistering goes everywhere too. Events stay local to the shard that
// owns the key.

import (
	"encoding/json"
	"errors"
	"fmt"
	"strings"
	"sync"
	"sync/atomic"
	"syscall"
	"time"

	"gears/builder"
	"gears/interp"
	"gears/reqs"
	"gears/session"
)

const (
	msgRegister   byte = 6  // a saved session, and the session it replaces
	msgUnregister byte = 7  // a registration id
	msgAnswer     byte = 8  // the answer to a request (msgRegister, msgPause, msgGetExec): its id, error, entry
	msgPause      byte = 10 // RG.(UN)PAUSEREGISTRATIONS of a registration
	msgClearStats byte = 11 // RG.CLEARREGISTRATIONSSTATS
	msgLive       byte = 12 // a registration a session's running code made
	msgGetExec    byte = 13 // RG.GETEXECUTION ... CLUSTER: this shard's entry, please
)

type clusterSession struct {
	Saved        savedSession
	Replacing    string
	Request      int64             `json:",omitempty"`
	Seq          int64             `json:",omitempty"` // the sender's next execution id: ids here go on above it, as RedisGears'
	AbortPending bool              `json:",omitempty"`
	Unregister   string            `json:",omitempty"`
	Error        string            `json:",omitempty"`
	Pause        string            `json:",omitempty"` // a registration to pause or unpause
	Paused       bool              `json:",omitempty"`
	Live         *liveRegistration `json:",omitempty"`
	Exec         string            `json:",omitempty"` // an execution id (msgGetExec)
	Requirements [][]byte          `json:",omitempty"` // the session's, wheels included (msgRegister)
	Data         []byte            `json:",omitempty"` // and the values of its globals its registrations use
	Entry        *planEntry        `json:",omitempty"` // and the answer
}

// liveRegistration is a registration a session's running code made (not
// its script): its plan travels by value, into the same session elsewhere.
type liveRegistration struct {
	Session, User, ID, Desc string
	Plan                    []byte
}

// liveFromShard marks the Python thread (by OS thread id) registering
// another shard's live registration, with the id it gets.
var liveFromShard sync.Map

// shareLiveRegistration registers r, which sess's running code made here,
// in sess on the other shards (in the background: the code that made it may
// hold the interpreter).
func shareLiveRegistration(sess *session.Session, r *builder.Registration) {
	if !gearsCluster.distributed() || !sess.Acquire() {
		return
	}
	g.threads.Go(func() {
		defer sess.Release(g.threads.Go)
		var plan any
		err := withSession(sess, func(t *interp.Thread) (err error) {
			plan, err = t.Call("redisgears", "_dist_dump_registered", r.Token)
			return err
		})
		b, _ := plan.([]byte)
		if err != nil || b == nil {
			logf("warning", fmt.Sprintf("gears: registration %s stays on this shard: %v", r.ID, err))
			return
		}
		postToShards(msgLive, clusterSession{Live: &liveRegistration{Session: sess.ID, User: sess.User, ID: r.ID, Desc: r.Desc, Plan: b}})
	})
}

// receiveLiveRegistration makes here a live registration of another shard,
// in the same session (which registered, so it lives here too).
func receiveLiveRegistration(from string, l *liveRegistration) {
	g.threads.Go(func() {
		sess, ok := g.sessions.Acquire(l.Session)
		if !ok {
			logf("warning", "gears: registration "+l.ID+" from shard "+from+": its session "+l.Session+" is not here")
			return
		}
		defer sess.Release(g.threads.Go)
		if sess.User != l.User {
			return
		}
		err := withSession(sess, func(t *interp.Thread) error {
			tid := syscall.Gettid() // withSession keeps this goroutine on its thread
			liveFromShard.Store(tid, l.ID)
			defer liveFromShard.Delete(tid)
			globals, err := sessionGlobals(t, sess)
			if err == nil {
				_, err = t.Call("redisgears", "_dist_register", l.Plan, l.Desc, globals)
			}
			return err
		})
		if err != nil {
			logf("warning", "gears: registration "+l.ID+" from shard "+from+" could not be made: "+err.Error())
		}
	})
}

// postToShards sends m to every other shard; it returns how many.
func postToShards(kind byte, m clusterSession) int {
	if !gearsCluster.distributed() {
		return 0
	}
	data, _ := json.Marshal(m)
	msg := append([]byte{kind}, data...)
	n := 0
	for _, sh := range gearsCluster.Shards() {
		if sh.id != gearsCluster.myID {
			_ = gearsCluster.transport.Post(sh.id, msg)
			n++
		}
	}
	return n
}

// A registration's request waits for every shard's answer.
type shareRequest struct {
	answers chan clusterSession
}

var (
	shareRequests sync.Map // request id -> *shareRequest
	shareSeq      atomic.Int64
)

// shareSession registers a session on the other shards too and waits for
// their answers (as RedisGears 1.2's RG.PYEXECUTE does): each shard's
// failure is reported, though what registered anywhere stays (a
// registration is atomic per shard, not across the cluster).
func shareSession(sess *session.Session, regs []*builder.Registration, replacing string) error {
	if !gearsCluster.distributed() {
		return nil // no other shard: nothing to make (sessionData runs Python)
	}
	m := clusterSession{Saved: saveSession(sess, regs), Replacing: replacing, Seq: g.engine.Seq()}
	for _, r := range sess.Requirements { // with their wheels: the other shards may not reach an index
		blob, err := r.Marshal()
		if err != nil {
			return fmt.Errorf("requirement %s cannot be sent to the other shards: %w", r.Name, err)
		}
		m.Requirements = append(m.Requirements, blob)
	}
	m.Data = sessionData(sess, regs)
	return askShards(msgRegister, m)
}

// sessionData is the plain data among sess's globals that regs use, for
// the other shards (runtime/distributed.py, _dist_session_data).
func sessionData(sess *session.Session, regs []*builder.Registration) []byte {
	if len(regs) == 0 {
		return nil
	}
	tokens := make([]any, len(regs))
	for i, r := range regs {
		tokens[i] = r.Token
	}
	var data []byte
	err := withSession(sess, func(t *interp.Thread) error {
		globals, err := sessionGlobals(t, sess)
		if err != nil {
			return err
		}
		v, err := t.Call("redisgears", "_dist_session_data", tokens, globals)
		data, _ = v.([]byte)
		return err
	})
	if err != nil {
		logf("warning", "gears: session "+sess.ID+": its globals' values stay this shard's: "+err.Error())
	}
	return data
}

// askShards sends m to every other shard and waits until each has applied
// it and answered (msgAnswer); the failures are a shardErrors.
func askShards(kind byte, m clusterSession) error {
	answers, err := askShardsFor(kind, m)
	if err != nil {
		return err
	}
	var failed shardErrors
	for _, a := range answers {
		if a.Error != "" {
			failed = append(failed, a.Error)
		}
	}
	if len(failed) > 0 {
		return failed
	}
	return nil
}

// askShardsFor sends m to every other shard and returns their answers.
func askShardsFor(kind byte, m clusterSession) ([]clusterSession, error) {
	req := &shareRequest{answers: make(chan clusterSession, 16)}
	m.Request = shareSeq.Add(1)
	shareRequests.Store(m.Request, req)
	defer shareRequests.Delete(m.Request)
	n := postToShards(kind, m)
	var answers []clusterSession
	timeout := time.After(max(g.cfg.ExecutionMaxIdleTime(), 5*time.Second))
	for range n {
		select {
		case a := <-req.answers:
			answers = append(answers, a)
		case <-timeout:
			return answers, errors.New("ERR some shards did not answer")
		}
	}
	return answers, nil
}

// askExecutionEntries is the other shards' RG.GETEXECUTION entries of
// execution id (those that have it).
func askExecutionEntries(id string) []planEntry {
	answers, _ := askShardsFor(msgGetExec, clusterSession{Exec: id})
	var out []planEntry
	for _, a := range answers {
		if a.Entry != nil {
			out = append(out, *a.Entry)
		}
	}
	return out
}

// answer tells shard `to` that its request m was applied here (err nil) or not.
func answer(to string, m clusterSession, err error) {
	a := clusterSession{}
	if err != nil {
		a.Error = "shard " + gearsCluster.myID + ": " + err.Error()
	}
	answerWith(to, m, a)
}

// answerWith answers request m of shard `to` with a.
func answerWith(to string, m clusterSession, a clusterSession) {
	a.Request = m.Request
	data, _ := json.Marshal(a)
	_ = gearsCluster.transport.Post(to, append([]byte{msgAnswer}, data...))
}

// takeSessionData gives session id's globals the registering shard's
// values (sessionData): the registration's functions see what they saw
// there, as RedisGears 1.2's pickled functions did.
func takeSessionData(id string, data []byte) error {
	sess, ok := g.sessions.Acquire(id)
	if !ok {
		return nil
	}
	defer sess.Release(g.threads.Go)
	return withSession(sess, func(t *interp.Thread) error {
		globals, err := sessionGlobals(t, sess)
		if err == nil {
			_, err = t.Call("redisgears", "_dist_set_session_data", data, globals)
		}
		return err
	})
}

// shardErrors are the shards' failures to register, which RG.PYEXECUTE
// replies as an array of errors, one per shard, as RedisGears 1.2 does.
type shardErrors []string

func (e shardErrors) Error() string { return strings.Join(e, "; ") }

// shareUnregister unregisters id on the other shards.
func shareUnregister(id string, abortPending bool) {
	postToShards(msgUnregister, clusterSession{Unregister: id, AbortPending: abortPending})
}

// receiveSharedSession applies a registration or an unregistration another
// shard made (on the transport's delivering goroutine: Python runs on a
// Python thread).
func receiveSharedSession(from string, kind byte, data []byte) {
	var m clusterSession
	if err := json.Unmarshal(data, &m); err != nil {
		logf("warning", "gears: a bad registration message from shard "+from+": "+err.Error())
		return
	}
	if kind == msgAnswer {
		if v, ok := shareRequests.Load(m.Request); ok {
			select {
			case v.(*shareRequest).answers <- m:
			default:
			}
		}
		return
	}
	switch kind {
	case msgUnregister:
		unregister(m.Unregister, m.AbortPending)
		return
	case msgPause:
		if r, ok := g.regs.Get(m.Pause); ok && r.Reader == "StreamReader" {
			setPaused(r, m.Paused)
		}
		answer(from, m, nil)
		return
	case msgClearStats:
		clearRegistrationsStats()
		return
	case msgLive:
		if m.Live != nil {
			receiveLiveRegistration(from, m.Live)
		}
		return
	case msgGetExec:
		var a clusterSession
		if e, ok := g.engine.Get(m.Exec); ok {
			p := planEntryOf(e)
			a.Entry = &p
		}
		answerWith(from, m, a)
		return
	}
	g.engine.RaiseSeq(m.Seq)
	g.threads.Go(func() {
		var err error
		defer func() { answer(from, m, err) }() // once its streams are read too
		for _, blob := range m.Requirements {
			var r *reqs.Requirement
			if r, err = importRequirement(string(blob)); err != nil {
				return
			}
			replicateRequirement(r)
		}
		err = restoreSession(m.Saved, m.Replacing)
		if err == nil && m.Data != nil {
			err = takeSessionData(m.Saved.ID, m.Data)
		}
		if err != nil {
			logf("warning", "gears: session "+m.Saved.ID+" from shard "+from+" could not be registered: "+err.Error())
			return
		}
		data, _ := json.Marshal(m.Saved)
		replicate("RG.INNERREGISTER", string(data), m.Replacing)
		if sess, ok := g.sessions.Get(m.Saved.ID); ok {
			for _, r := range g.regs.OfSession(sess) {
				if r.Reader == "StreamReader" {
					startStreams(r)
				}
			}
		}
	})
}
