package main

import (
	"errors"
	"strings"
	"sync"

	"gears/builder"
	"gears/interp"
	"gears/redismod"
)

// A hook running on a thread: call_next() there goes down its chain.
type hookCall struct {
	chain []*builder.Registration
	next  int    // the chain position call_next runs
	cmd   string // the hooked command
}

var hookCalls sync.Map // Python thread id -> *hookCall

// refreshHooks gives the command filter the hooked command names.
func refreshHooks() {
	l := redismod.Lock()
	defer l.Unlock()
	redismod.SetHooked(l, g.regs.HookedCommands())
}

// RG.INNERHOOK <command> <args...>: what the command filter makes of a
// hooked command. Commands from the master or the AOF run as they are.
func cmdInnerHook(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	cmd := strings.ToLower(argv[1])
	chain := g.regs.Hooks(cmd)
	if c.Flags()&(redismod.FlagReplicated|redismod.FlagLoading) != 0 {
		replyCall(c, argv[1], argv[2:])
		return
	}
	// In a cluster, a hooked command of another shard's key gets Redis'
	// own redirection, as it would without the hook.
	if moved := gearsCluster.movedFor(c.Held(), argv[1:]); moved != "" {
		c.Error(moved)
		return
	}
	if len(chain) == 0 && g.regs.Watched(cmd) {
		runWatched(c, argv[1:])
		return
	}
	hc := &hookCall{chain: chain, cmd: argv[1]}
	args := argv[2:]
	i := hc.firstFrom(c.Held(), 0, argv[1:])
	if i < 0 {
		replyCall(c, argv[1], args)
		return
	}
	r := chain[i]
	hc.next = i + 1
	payload := anyStrings(argv[1:])
	if r.Mode == "sync" {
		tid := interp.ThreadID()
		prev, hadPrev := hookCalls.Load(tid)
		hookCalls.Store(tid, hc)
		out, err := runSync(r, payload)
		if hadPrev {
			hookCalls.Store(tid, prev)
		} else {
			hookCalls.Delete(tid)
		}
		if err == errUnregistered {
			cmdInnerHook(c, argv) // upgraded meanwhile: the chain has its successor (or not) now
			return
		}
		if out.Later != nil {
			afterExecution(c, out.Later, replyHookSnapshot)
			return
		}
		replyHook(c, out.Results, out.Errors, err)
		return
	}
	if c.Flags()&noBlockingFlags != 0 {
		c.Error("ERR can not run a non-sync execution inside a MULTI/LUA (blocking is not allowed) or on loading.")
		return
	}
	e, err := startHookEvent(r, payload, hc)
	if errors.Is(err, errUnregistered) {
		cmdInnerHook(c, argv) // as above
		return
	}
	if err != nil {
		c.Error("ERR " + err.Error())
		return
	}
	afterExecution(c, e, replyHookSnapshot)
}

func replyHookSnapshot(c redismod.Replier, s builder.Snapshot) {
	replyHook(c, s.Results, s.Errors, nil)
}

var pendingHooks sync.Map // *builder.Execution -> *hookCall, until it runs

func startHookEvent(r *builder.Registration, payload any, hc *hookCall) (*builder.Execution, error) {
	return startEventWith(r, payload, &pendingHooks, hc, eventDepth()+1)
}

// startEventWith queues an execution of r that runs with a context (a hook
// chain, a client command) its thread looks up in pending.
func startEventWith(r *builder.Registration, payload any, pending *sync.Map, ctx any, depth int) (*builder.Execution, error) {
	e, err := g.engine.CreateEvent(r, payload, depth)
	if err != nil {
		if !errors.Is(err, builder.ErrLetGo) {
			refuse(r, err)
		}
		return nil, err
	}
	r.Triggered()
	pending.Store(e, ctx)
	g.engine.Start(e)
	return e, nil
}

// firstFrom is the first hook of the chain from position i whose key prefix
// (if any) matches one of the command's keys, or -1. A hook sees only
// commands its session's user may run itself: others pass it by (a hook
// sees the command's keys and values).
func (hc *hookCall) firstFrom(l redismod.Locked, i int, argv []string) int {
	for ; i < len(hc.chain); i++ {
		r := hc.chain[i]
		if r.KeyPrefix != "" && !redismod.HasKeyPrefix(l, argv, r.KeyPrefix) {
			continue
		}
		// Held while its session is read: an upgrade may be ending both.
		if !r.Acquire() {
			continue
		}
		ok := sessionMayRun(l, r.Session, argv)
		r.Release()
		if ok {
			return i
		}
	}
	return -1
}

// A hook replies with its only result, or its first error.
func replyHook(c redismod.Replier, results []any, errs []string, err error) {
	switch {
	case err != nil:
		c.Error(err.Error())
	case len(errs) > 0:
		c.Error(errs[0])
	case len(results) != 1:
		c.Error("Command hook must return exactly one result")
	default:
		redismod.WriteValue(c, results[0])
	}
}

// replyCall runs the original command and relays its reply.
func replyCall(c Ctx, cmd string, args []string) {
	v, err := callReplicated(cmd, args...)
	if err != nil {
		c.Error(err.Error())
		return
	}
	c.Value(v)
}

// hostCallNext is call_next(): the next hook of the chain, or the command.
func hostCallNext(c *interp.Call) (any, error) {
	var hc *hookCall
	if s, ok := scopeOf(c, 1); ok {
		hc = s.hc
	} else if v, ok := hookCalls.Load(interp.ThreadID()); ok {
		hc = v.(*hookCall)
	}
	if hc == nil {
		return nil, errors.New("Can not get CommandHook ctx")
	}
	var args []string
	for _, a := range asList(firstArg(c)) {
		switch x := a.(type) {
		case string:
			args = append(args, x)
		case []byte:
			args = append(args, string(x))
		}
	}
	argv := append([]string{hc.cmd}, args...)
	// The hook's own code chose these arguments: they run as its user.
	sess := sessionOf(c)
	i, denied := -1, false
	func() {
		l := redismod.Lock()
		defer l.Unlock()
		denied = sess != nil && !sessionMayRun(l, sess, argv)
		if !denied {
			i = hc.firstFrom(l, hc.next, argv)
		}
	}()
	if denied {
		return nil, errors.New(noPerm(hc.cmd))
	}
	if i < 0 {
		return callReplicated(hc.cmd, args...)
	}
	r := hc.chain[i]
	payload := anyStrings(argv)
	saved := hc.next
	hc.next = i + 1
	// A hook below a sync one is sync too, and its caller waits for its
	// reply here: it may not go async.
	ts := redismod.CurrentThread()
	ts.SetNoAsync(ts.NoAsync() + 1)
	out, err := runSync(r, payload)
	ts.SetNoAsync(ts.NoAsync() - 1)
	hc.next = saved
	switch {
	case err != nil:
		return nil, err
	case len(out.Errors) > 0:
		return nil, errors.New(out.Errors[0])
	case len(out.Results) != 1:
		return nil, errors.New("Command hook must return exactly one result")
	}
	return out.Results[0], nil
}

func firstArg(c *interp.Call) any {
	if len(c.Args) > 0 {
		return c.Args[0]
	}
	return nil
}
