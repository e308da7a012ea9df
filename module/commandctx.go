package main

import (
	"errors"
	"strings"
	"sync"

	"gears/builder"
	"gears/interp"
)

// A client command watched by KeysReader registrations (commands=): its
// events fire them, get_command() returns it, override_reply() replaces its
// reply, and the client waits for the executions it started.
type commandCall struct {
	name string   // lower case
	argv []string // as the client sent it

	mu         sync.Mutex
	override   any
	overridden bool
	pending    []*builder.Execution
}

var (
	commandCalls   sync.Map // Python thread id -> *commandCall
	pendingCommand sync.Map // *builder.Execution -> *commandCall, until it runs
)

func currentCommand() *commandCall {
	if v, ok := commandCalls.Load(interp.ThreadID()); ok {
		return v.(*commandCall)
	}
	return nil
}

func (cc *commandCall) add(e *builder.Execution) {
	if e == nil {
		return
	}
	cc.mu.Lock()
	cc.pending = append(cc.pending, e)
	cc.mu.Unlock()
}

func startCommandEvent(r *builder.Registration, payload any, cc *commandCall, depth int) *builder.Execution {
	e, _ := startEventWith(r, payload, &pendingCommand, cc, depth)
	return e
}

// withCommand makes cc the current command of this thread while fn runs.
func withCommand(cc *commandCall, fn func()) {
	tid := interp.ThreadID()
	prev, had := commandCalls.Load(tid)
	commandCalls.Store(tid, cc)
	defer func() {
		if had {
			commandCalls.Store(tid, prev)
		} else {
			commandCalls.Delete(tid)
		}
	}()
	fn()
}

// runWatched runs a command that KeysReader registrations watch, on the
// client's behalf, and replies (after the executions it caused, if any).
func runWatched(c Ctx, argv []string) {
	cc := &commandCall{name: strings.ToLower(argv[0]), argv: argv}
	var v any
	var err error
	withCommand(cc, func() { v, err = callReplicated(argv[0], argv[1:]...) })
	reply := func(c Ctx) {
		cc.mu.Lock()
		defer cc.mu.Unlock()
		switch {
		case cc.overridden:
			c.Value(cc.override)
		case err != nil:
			c.Error(err.Error())
		default:
			c.Value(v)
		}
	}
	cc.mu.Lock()
	pending := cc.pending
	cc.mu.Unlock()
	if len(pending) == 0 || c.Flags()&noBlockingFlags != 0 {
		reply(c)
		return
	}
	replyWhenDone(c, func() func(Ctx) {
		for _, e := range pending {
			<-e.Done()
		}
		return reply
	})
}

// commandOf is the command a host function serves: its scope argument's
// (a coroutine's), else this thread's.
func commandOf(c *interp.Call, scopeArg int) *commandCall {
	if s, ok := scopeOf(c, scopeArg); ok {
		return s.cc
	}
	return currentCommand()
}

func hostGetCommand(c *interp.Call) (any, error) {
	cc := commandOf(c, 0)
	if cc == nil {
		return nil, errors.New("Can not get command ctx")
	}
	return cc.argv, nil
}

func hostOverrideReply(c *interp.Call) (any, error) {
	cc := commandOf(c, 1)
	if cc == nil {
		return nil, errors.New("Can not get command ctx")
	}
	cc.mu.Lock()
	defer cc.mu.Unlock()
	if cc.overridden {
		return nil, errors.New("Can only override reply once")
	}
	cc.override, cc.overridden = firstArg(c), true
	return nil, nil
}
