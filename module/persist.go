package main

import (
	"encoding/json"
	"errors"
	"strconv"
	"strings"

	"gears/builder"
	"gears/redismod"
	"gears/reqs"
	"gears/session"
)

// Registrations survive restarts as their sessions' scripts: the RDB keeps
// each session's id, description, user, script and registration ids, and
// loading re-runs the scripts in restore mode (run() starts nothing,
// execute() does not write; register() gets the saved ids). See
// docs/persistence.md for why scripts and not serialized functions.

type savedSession struct {
	ID, Desc, User, Script string
	Registrations          []string
	Requirements           []string `json:",omitempty"`
}

type savedState struct {
	Seq          int64 // execution/registration ids continue above it
	Sessions     []savedSession
	Requirements []reqs.Saved    `json:",omitempty"`
	Wheels       []reqs.WheelRef `json:",omitempty"` // their wheels, whose bytes follow the JSON
}

var toRestore *savedState // read by aux_load, restored when loading ends

// saveSnapshot rebuilds the bytes aux_save writes. It takes the Redis lock
// (unless this thread holds it) so a fork never sees a half-replaced one.
func saveSnapshot() {
	st := savedState{Seq: g.engine.Seq()}
	for _, s := range g.sessions.List() {
		regs := g.regs.OfSession(s)
		if len(regs) == 0 && s.Kept() == 0 {
			continue
		}
		st.Sessions = append(st.Sessions, saveSession(s, regs))
	}
	// Every requirement is kept, used or not, with each wheel once.
	var paths []string
	seen := map[string]bool{}
	for _, r := range g.reqs.List() {
		st.Requirements = append(st.Requirements, r.Saved())
		for _, d := range r.Dists {
			if !seen[d.SHA256] {
				seen[d.SHA256] = true
				st.Wheels = append(st.Wheels, reqs.WheelRef{File: d.File, SHA256: d.SHA256})
				paths = append(paths, d.Wheel)
			}
		}
	}
	data, _ := json.Marshal(st)
	l := redismod.Lock()
	defer l.Unlock()
	redismod.SetSnapshot(l, data, paths)
}

// saveSession is what is kept of a session to restore it.
func saveSession(s *session.Session, regs []*builder.Registration) savedSession {
	saved := savedSession{ID: s.ID, Desc: s.Description, User: s.User, Script: s.Script}
	for _, r := range regs {
		saved.Registrations = append(saved.Registrations, r.ID)
	}
	for _, r := range s.Requirements {
		saved.Requirements = append(saved.Requirements, r.Name)
	}
	return saved
}

// auxLoad reads the RDB's aux data: the snapshot and the wheels it names.
func auxLoad(snapshot []byte, wheelBytes [][]byte) error {
	var st savedState
	if len(snapshot) > 0 {
		if err := json.Unmarshal(snapshot, &st); err != nil {
			return errors.New("the RDB's registrations cannot be read: " + err.Error())
		}
	}
	if len(wheelBytes) != len(st.Wheels) {
		return errors.New("the RDB's requirement wheels do not match their list")
	}
	// Requirements are installed now: the sessions restored when loading
	// ends import them.
	wheels := map[string][]byte{}
	for i, w := range st.Wheels {
		wheels[w.SHA256] = wheelBytes[i]
	}
	for _, saved := range st.Requirements {
		if _, err := g.reqs.Restore(saved, wheels); err != nil {
			logf("warning", "gears: requirement "+saved.Name+" could not be restored: "+err.Error())
		}
	}
	toRestore = &st
	return nil
}

func serverEvent(e redismod.ServerEvent) {
	switch e {
	case redismod.ForkedChild:
		rewriteRegistrationsIntoAOF()
	case redismod.BecameMaster:
		startAllStreams() // a promoted replica processes what its streams have pending
	case redismod.LoadingStarted:
		// The dataset is replaced: so are the registrations and sessions.
		for _, s := range g.sessions.List() {
			g.sessions.Remove(s)
		}
		for _, r := range g.regs.List() {
			if _, ok := g.regs.Remove(r.ID); ok {
				forget(r)
			}
		}
		refreshHooks()
		g.reqs.Clear()
		toRestore = nil
	case redismod.LoadingEnded:
		if toRestore != nil {
			restore(toRestore)
			toRestore = nil
			saveSnapshot()
		}
		// Whether the registrations came from the RDB or from the AOF's
		// RG.INNERREGISTER (replayed before the entries that follow it),
		// what their streams hold now was added and is not acknowledged.
		if isMaster() {
			startAllStreams()
		}
	}
}

// startAllStreams makes every StreamReader registration read what its
// streams hold.
func startAllStreams() {
	for _, r := range g.regs.List() {
		if r.Reader == "StreamReader" {
			startStreams(r)
		}
	}
}

// restore re-runs the saved sessions' scripts, on the main thread before
// Redis serves clients, so no event is missed.
func restore(st *savedState) {
	g.engine.RaiseSeq(st.Seq)
	for _, saved := range st.Sessions {
		if err := restoreSession(saved, ""); err != nil {
			logf("warning", "gears: session "+saved.ID+" could not be restored: "+err.Error())
		}
	}
}

// restoreSession re-runs a saved session's script in restore mode and makes
// its registrations live, replacing those of session `replacing` (an
// upgrade replicated from the master) or of a session with the same id.
// raiseRegistrationSeq makes later registration ids here continue above id's.
func raiseRegistrationSeq(id string) {
	if i := strings.LastIndexByte(id, '-'); i >= 0 {
		n, _ := strconv.ParseInt(id[i+1:], 10, 64)
		g.engine.RaiseRegistrationSeq(n)
	}
}

func restoreSession(saved savedSession, replacing string) error {
	sess := session.New(saved.ID, saved.Desc, nil)
	defer sess.Release(g.threads.Go)
	sess.Script, sess.User = saved.Script, saved.User
	list, err := requirementsByName(saved.Requirements)
	if err != nil {
		return err
	}
	useRequirements(sess, list)
	giveNative(sess, saved.User, saved.User != "")
	for _, id := range saved.Registrations {
		raiseRegistrationSeq(id)
	}
	sr := &scriptRun{restoring: true, restoreIDs: saved.Registrations, sess: sess}
	scripts.Store(sess, sr)
	t := redismod.CurrentThread() // the main thread
	t.SetRestoring(true)
	err = runScript(sess, saved.Script)
	t.SetRestoring(false)
	scripts.Delete(sess)
	if err != nil {
		return err
	}
	t.SetRestoring(true) // commit without replicating again
	defer t.SetRestoring(false)
	return commitRegistrations(sess, sr.regs, &pyExecuteArgs{id: saved.ID, upgrade: true, replaceWith: replacing})
}

// rewriteRegistrationsIntoAOF runs right after the fork of an AOF rewrite:
// without an RDB preamble the rewritten file has no aux data, so every
// session is written again as RG.INNERREGISTER into the new AOF increment
// (Redis opened it before forking). Replicas get them too and restore the
// same sessions again: a rewrite is rare enough.
func rewriteRegistrationsIntoAOF() {
	if g.regs.Len() == 0 && len(g.reqs.List()) == 0 {
		return
	}
	info, err := call("INFO", "persistence")
	if s, _ := info.(string); err != nil || !strings.Contains(s, "aof_rewrite_in_progress:1") {
		return
	}
	if v, err := call("CONFIG", "GET", "aof-use-rdb-preamble"); err == nil {
		if kv := asList(v); len(kv) == 2 && kv[1] == "yes" {
			return // the aux data is in the preamble
		}
	}
	for _, r := range g.reqs.List() {
		replicateRequirement(r)
	}
	for _, s := range g.sessions.List() {
		if regs := g.regs.OfSession(s); len(regs) > 0 {
			replicateSession(s, regs, "")
		}
	}
}

// Registrations reach replicas and the AOF as commands: RG.INNERREGISTER
// carries a saved session (and the session it replaces), RG.INNERUNREGISTER
// a registration id.

func replicateSession(sess *session.Session, regs []*builder.Registration, replacing string) {
	data, _ := json.Marshal(saveSession(sess, regs))
	replicate("RG.INNERREGISTER", string(data), replacing)
}

// RG.INNERREGISTER <saved session> <replaced session id>: a registration made
// on the master (or in the AOF).
func cmdInnerRegister(c Ctx, argv []string) {
	if len(argv) != 3 {
		c.WrongArity()
		return
	}
	var saved savedSession
	if err := json.Unmarshal([]byte(argv[1]), &saved); err != nil {
		c.Error("ERR bad registration data: " + err.Error())
		return
	}
	if err := restoreSession(saved, argv[2]); err != nil {
		c.Error("ERR session " + saved.ID + " could not be registered: " + err.Error())
		return
	}
	c.OK()
}

// RG.INNERUNREGISTER <registration id>
func cmdInnerUnregister(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	if r, ok := g.regs.Remove(argv[1]); ok {
		forget(r)
		saveSnapshot()
		refreshHooks()
	}
	c.OK()
}
