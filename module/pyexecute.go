package main

import (
	"errors"
	"time"

	"fmt"
	"gears/builder"
	"gears/redismod"
	"strings"

	"gears/interp"
	"gears/session"
)

// pyExecuteArgs is RG.PYEXECUTE's parsed command line.
type pyExecuteArgs struct {
	script       string
	unblocking   bool
	id           string
	description  string
	upgrade      bool
	replaceWith  string
	forceReqs    bool
	requirements []string
}

// parsePyExecute follows RedisGears 1.2: options in any order, case
// insensitive, until the first unknown token, which must be REQUIREMENTS.
func parsePyExecute(argv []string) (*pyExecuteArgs, error) {
	a := &pyExecuteArgs{script: argv[1]}
	rest := argv[2:]
	value := func(name string) (string, error) {
		if len(rest) < 2 {
			return "", errors.New(name + " is missing")
		}
		v := rest[1]
		rest = rest[1:]
		return v, nil
	}
	for ; len(rest) > 0; rest = rest[1:] {
		var err error
		switch strings.ToUpper(rest[0]) {
		case "UNBLOCKING":
			a.unblocking = true
		case "ID":
			a.id, err = value("ID")
			if err == nil && !validSessionID(a.id) {
				err = errors.New("ID must be compose of: ['A'-'Z' | 'a'-'z' | '0' - '9' | '-' | '_']")
			}
		case "DESCRIPTION":
			a.description, err = value("DESCRIPTION")
		case "UPGRADE":
			a.upgrade = true
		case "REPLACE_WITH":
			a.replaceWith, err = value("REPLACE_WITH")
		case "FORCE_REINSTALL_REQUIREMENTS":
			a.forceReqs = true
		case "REQUIREMENTS":
			a.requirements = rest[1:]
			return a, nil
		default:
			return nil, fmt.Errorf("Unknown arguments were given: %s", rest[0])
		}
		if err != nil {
			return nil, err
		}
	}
	return a, nil
}

func validSessionID(id string) bool {
	for _, r := range id {
		if !(r >= 'a' && r <= 'z' || r >= 'A' && r <= 'Z' || r >= '0' && r <= '9' || r == '-' || r == '_') {
			return false
		}
	}
	return true
}

const noBlockingFlags = redismod.FlagMulti | redismod.FlagLua | redismod.FlagDenyBlocking

// RG.PYEXECUTE: the script runs on a Python thread with the client blocked,
// so a slow or looping script never blocks Redis.
func cmdPyExecute(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	if c.Flags()&noBlockingFlags != 0 {
		c.Error("Can not run gears inside a multi exec, lua, or when blocking is not allowed")
		return
	}
	a, err := parsePyExecute(argv)
	if err != nil {
		c.Error(err.Error())
		return
	}
	id := a.id
	if a.replaceWith != "" {
		if _, ok := g.sessions.Get(a.id); ok && a.id != "" {
			c.Error(fmt.Sprintf("Can not replace an existing session %s with %s", a.id, a.replaceWith))
			return
		}
		if _, ok := g.sessions.Get(a.replaceWith); !ok {
			c.Error(fmt.Sprintf("Can not replace with %s, session does not exists.", a.replaceWith))
			return
		}
	}
	if id == "" {
		id = session.RandomID()
	} else if _, ok := g.sessions.Get(id); ok && !a.upgrade {
		c.Error(fmt.Sprintf("Session %s already exists", id))
		return
	}
	// Upgrading or replacing a session replaces what its user registered.
	for _, old := range []string{id, a.replaceWith} {
		if s, ok := g.sessions.Get(old); ok && old != "" && !mayManage(c, s.User) {
			c.Error(errNotOwner("session"))
			return
		}
	}

	sess := session.New(id, a.description, nil)
	sess.Script = a.script
	user, hasUser := c.CallerName()
	sess.User = user
	giveNative(sess, user, hasUser)
	g.scriptsRunning.Add(1)
	g.scriptsTotal.Add(1)
	g.lastScript.Store(time.Now().UnixNano())
	b := redismod.Block(c)
	sr := &scriptRun{unblocking: a.unblocking, sess: sess, client: c.ClientID()}
	// A client that leaves stops its script.
	b.OnDisconnect(func() { sr.abort("its client disconnected") })
	g.threads.Go(func() {
		defer g.scriptsRunning.Add(-1)
		if len(a.requirements) > 0 {
			list, err := ensureRequirements(a.requirements, a.forceReqs)
			if err != nil {
				sess.Release(g.threads.Go)
				b.Unblock(func(c Ctx) { c.Error(err.Error()) })
				return
			}
			useRequirements(sess, list)
		}
		b.Unblock(finishScript(sess, a, sr, b))
	})
}

// finishScript runs the script and then the run() it asked for, and returns
// the reply: OK, the execution id (UNBLOCKING) or [[results], [errors]].
func finishScript(sess *session.Session, a *pyExecuteArgs, sr *scriptRun, b *redismod.Blocked) func(Ctx) {
	// The script's own reference: ending the session (destroying its
	// interpreter) waits for an idle moment, after the reply.
	defer sess.Release(g.reaper.Go)
	scripts.Store(sess, sr)
	err := runScript(sess, a.script)
	scripts.Delete(sess)
	if aborted := sr.abortError(); aborted != nil {
		err = aborted
	}
	e := sr.exec
	if err == nil {
		err = commitRegistrations(sess, sr.regs, a)
	}
	if err != nil {
		if e != nil {
			g.engine.Discard(e)
		}
		var failed shardErrors
		if errors.As(err, &failed) {
			return func(c Ctx) {
				c.Array(len(failed))
				for _, f := range failed {
					c.Error(f)
				}
			}
		}
		msg := err.Error()
		return func(c Ctx) { c.Error(msg) }
	}
	if e == nil {
		return Ctx.OK
	}
	if a.unblocking {
		g.engine.Start(e)
		return func(c Ctx) { c.Bulk(e.ID) }
	}
	// A client that leaves stops the run() it waits for.
	b.OnDisconnect(func() { abortExecution(e, "its client disconnected") })
	g.engine.RunHere(e) // this thread would only wait for it
	<-e.Done()
	s := e.Snapshot()
	dropExecution(e.ID) //nolint:errcheck // done
	return func(c Ctx) { replyResults(c, s) }
}

// commitRegistrations makes a script's registrations live, replacing those of
// the session it upgrades, atomically; the session then stays registered
// under its id for as long as it has registrations.
func commitRegistrations(sess *session.Session, regs []*builder.Registration, a *pyExecuteArgs) error {
	oldID := sess.ID
	if a.replaceWith != "" {
		oldID = a.replaceWith
	}
	old, upgrading := g.sessions.Get(oldID)
	upgrading = upgrading && (a.upgrade || a.replaceWith != "")
	if len(regs) == 0 && !upgrading && sess.Kept() == 0 {
		return nil
	}
	var replacing []*builder.Registration
	if upgrading {
		replacing = g.regs.OfSession(old)
	}
	for _, r := range regs {
		r.OnRelease = unregistered(r)
	}
	if err := g.regs.Add(regs, replacing); err != nil {
		return err
	}
	for range regs {
		sess.Acquire() // each registration's: the script holds one, so this cannot fail
	}
	if upgrading {
		g.sessions.Remove(old)
		for _, r := range replacing {
			forget(r)
		}
	}
	if len(regs) > 0 || sess.Kept() > 0 {
		g.sessions.Add(sess)
	}
	saveSnapshot()
	refreshHooks()
	if !redismod.CurrentThread().Restoring() {
		if len(regs) > 0 {
			g.engine.SkipID() // RedisGears' registering execution
		}
		replicateSession(sess, regs, oldID)
		if err := shareSession(sess, regs, oldID); err != nil {
			return err
		}
		// A new StreamReader reads what its streams hold already. Restored
		// ones (at load, from the AOF, on a replica) wait for the loading's
		// end or a promotion: startAllStreams.
		for _, r := range regs {
			if r.Reader == "StreamReader" {
				startStreams(r)
			}
		}
	}
	return nil
}

// runScript gives the session an interpreter and runs its top-level code.
// It runs on a locked Python thread.
func runScript(sess *session.Session, src string) (err error) {
	defer func() {
		if r := recover(); r != nil {
			logPanic("RG.PYEXECUTE", r)
			err = errors.New("ERR gears internal error (see the Redis log)")
		}
	}()
	if err := giveInterpreter(sess); err != nil {
		return err
	}
	sr, _ := scripts.Load(sess)
	run, _ := sr.(*scriptRun)
	return withSession(sess, func(t *interp.Thread) error {
		if run != nil && !run.restoring {
			// Listed and abortable while its Python runs.
			if !run.enter(t.ID()) {
				return errAborted
			}
			defer func() {
				if run.leave() {
					t.ClearInterrupt()
				}
			}()
		}
		globals, err := t.MainGlobals()
		if err == nil && sess.Shared {
			sess.Globals, err = t.CopyDict(globals)
			globals = sess.Globals
		}
		if err != nil {
			return err
		}
		if len(sess.Requirements) > 0 {
			d := t.NewDict()
			err := t.Exec(sysPathCode(sess.Requirements), d)
			t.Decref(d)
			if err != nil {
				return err
			}
		}
		return t.Exec(src, globals)
	})
}

// sessionGlobals is the globals dict of sess's script (borrowed), attached as t.
func sessionGlobals(t *interp.Thread, sess *session.Session) (interp.Object, error) {
	if sess.Shared {
		return sess.Globals, nil
	}
	return t.MainGlobals()
}

// giveInterpreter gives a session its interpreter: a ready one of its own,
// or under IsolationMode shared its place in the shared one.
func giveInterpreter(sess *session.Session) error {
	if sharedInterp != nil {
		joinShared(sess)
		return nil
	}
	it, err := g.pool.Get()
	if err != nil {
		return fmt.Errorf("ERR cannot create a Python interpreter: %w", err)
	}
	it.SetSession(native(sess).Handle())
	sess.Interp = it
	return nil
}

// withSession runs fn with the session's interpreter attached to this
// thread, and makes sure an atomic() block that fn left open cannot keep
// Redis locked afterwards (one opened around this call, by code that caused
// it, stays as it is).
func withSession(sess *session.Session, fn func(*interp.Thread) error) error {
	// Under the Redis lock, Python keeps Redis busy from here, waiting for
	// the GIL included (redismod/busy.c).
	busy := redismod.EnterPython(native(sess))
	defer busy.Leave()
	t, err := sess.Interp.Attach()
	if err != nil {
		return err
	}
	defer t.Detach()
	return inInterp(t, sess, fn)
}

// inInterp is withSession on a thread attached already to sess's
// interpreter.
func inInterp(t *interp.Thread, sess *session.Session, fn func(*interp.Thread) error) error {
	// The attach says whose code runs here: the one answer to "which
	// session?" for natives and host functions (redismod.SessionAt). A sync
	// registration may run inside another session's execute().
	ts := redismod.CurrentThread()
	prev := ts.SetSession(native(sess))
	defer ts.SetSession(prev)
	if !ts.InAtomic() {
		defer func() {
			if ts.InAtomic() {
				ts.ReleaseAtomic()
			}
		}()
	}
	return fn(t)
}
