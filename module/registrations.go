// register() and RG.UNREGISTER, RG.CLEARREGISTRATIONSSTATS,
// RG.PAUSEREGISTRATIONS and RG.UNPAUSEREGISTRATIONS.

package main

import (
	"errors"
	"fmt"
	"strings"
	"syscall"
	"time"

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
// time event, a thread): the registration joins its session now, and the
// session's on the other shards of a cluster. It lives until a restart:
// gears saves a session as its script, which does not make it (RedisGears
// 1.2 serialized it), and replicas get the script too.
func registerLive(sess *session.Session, c *interp.Call) (any, error) {
	r := &builder.Registration{Session: sess}
	fromShard, shared := liveFromShard.Load(syscall.Gettid())
	if shared {
		r.ID = fromShard.(string)
		raiseRegistrationSeq(r.ID)
	} else {
		r.ID = g.engine.NextRegistrationID()
	}
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
	if !shared {
		shareLiveRegistration(sess, r)
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

func int64Of(v any) int64 { n, _ := v.(int64); return n }

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

// abortUnstarted aborts r's executions that have not started; a stream's
// aborted batch leaves its stream free for the next one.
func abortUnstarted(r *builder.Registration) {
	for _, e := range g.engine.AbortUnstarted(r) {
		if r.Reader == "StreamReader" {
			r.StreamBatchAborted(streamKeyOf(e.Payload))
		}
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
	abortPending := len(argv) == 3 && strings.EqualFold(argv[2], "abortpending")
	if !unregister(argv[1], abortPending) {
		c.Error("execution is not registered")
		return
	}
	shareUnregister(argv[1], abortPending)
	c.OK()
}

// unregister removes registration id from this shard (and its replicas and
// AOF); false when there is none.
func unregister(id string, abortPending bool) bool {
	r, ok := g.regs.Remove(id)
	if !ok {
		return false
	}
	// As RedisGears: abortpending aborts what has not started; a
	// StreamReader's batches not started are dropped anyway.
	if abortPending || r.Reader == "StreamReader" {
		abortUnstarted(r)
	}
	forget(r)
	saveSnapshot()
	if r.Hook != "" {
		refreshHooks()
	}
	replicate("RG.INNERUNREGISTER", r.ID)
	return true
}

// forget lets go of a registration that is no longer live. Its plan and its
// hold on the session go once nothing runs it any more (unregistered). A
// session left without registrations or kept time events is no longer
// found by id.
func forget(r *builder.Registration) {
	g.engine.ForgetRegistration(r)
	inOrders.Delete(r) // a queue draining now goes on without the map
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
	clearRegistrationsStats()
	postToShards(msgClearStats, clusterSession{})
	c.OK()
}

func clearRegistrationsStats() {
	for _, r := range g.regs.List() {
		r.ClearStats()
	}
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
	setPaused(r, pause)
	if !gearsCluster.distributed() {
		c.OK()
		return
	}
	if c.Flags()&noBlockingFlags != 0 { // MULTI, a script: the other shards are told, not waited for
		postToShards(msgPause, clusterSession{Pause: r.ID, Paused: pause})
		c.OK()
		return
	}
	// As RedisGears, the reply comes once every shard has done it.
	replyWhenDone(c, func() func(Ctx) {
		if err := askShards(msgPause, clusterSession{Pause: r.ID, Paused: pause}); err != nil {
			msg := err.Error()
			return func(c Ctx) { c.Error(msg) }
		}
		return Ctx.OK
	})
}

// setPaused pauses or unpauses StreamReader registration r on this shard.
func setPaused(r *builder.Registration, pause bool) {
	ready := r.SetStreamPaused(pause)
	if pause {
		abortUnstarted(r)
	}
	for _, key := range ready {
		startBatch(r, []any{key})
	}
}
