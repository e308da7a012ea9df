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
	"strings"
	"sync"
	"sync/atomic"
	"time"

	"gears/builder"
	"gears/session"
)

const (
	msgRegister   byte = 6 // a saved session, and the session it replaces
	msgUnregister byte = 7 // a registration id
	msgRegistered byte = 8 // the answer to a msgRegister: its request id and error
)

type clusterSession struct {
	Saved        savedSession
	Replacing    string
	Request      int64  `json:",omitempty"`
	AbortPending bool   `json:",omitempty"`
	Unregister   string `json:",omitempty"`
	Error        string `json:",omitempty"`
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
	req := &shareRequest{answers: make(chan clusterSession, 16)}
	id := shareSeq.Add(1)
	shareRequests.Store(id, req)
	defer shareRequests.Delete(id)
	n := postToShards(msgRegister, clusterSession{Saved: saveSession(sess, regs), Replacing: replacing, Request: id})
	var failed []string
	timeout := time.After(max(g.cfg.ExecutionMaxIdleTime(), 5*time.Second))
	for range n {
		select {
		case a := <-req.answers:
			if a.Error != "" {
				failed = append(failed, a.Error)
			}
		case <-timeout:
			return errors.New("ERR some shards did not answer the registration")
		}
	}
	if len(failed) > 0 {
		return shardErrors(failed)
	}
	return nil
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
	if kind == msgRegistered {
		if v, ok := shareRequests.Load(m.Request); ok {
			select {
			case v.(*shareRequest).answers <- m:
			default:
			}
		}
		return
	}
	if kind == msgUnregister {
		unregister(m.Unregister, m.AbortPending)
		return
	}
	g.threads.Go(func() {
		answer := clusterSession{Request: m.Request}
		defer func() {
			data, _ := json.Marshal(answer)
			_ = gearsCluster.transport.Post(from, append([]byte{msgRegistered}, data...))
		}()
		if err := restoreSession(m.Saved, m.Replacing); err != nil {
			answer.Error = "shard " + gearsCluster.myID + ": " + err.Error()
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
