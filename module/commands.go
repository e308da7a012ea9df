package main

import (
	"fmt"
	"strings"

	"gears/config"
	"gears/interp"
	"gears/redismod"
)

type command struct {
	name  string
	flags string
	run   func(c Ctx, argv []string)
	// fast, when set, may serve the command from Redis's arguments as they
	// are; false leaves it to run.
	fast   func(c Ctx, args redismod.Args) bool
	access access
	// like, when set, is a Redis command whose permission the client needs
	// too: RG.CONFIGSET changes every user's server as CONFIG SET does,
	// RG.PYIMPORTREQ adds code every session may import as MODULE LOAD does.
	// (Redis 7.0 gives module commands no ACL category but @all.)
	like []string
}

// access says who may send a command.
type access int

const (
	anyClient access = iota
	// internal commands come from the master or the AOF only: what they do
	// (register code to run as any user, import packages) is gears' own
	// business, checked on the master when it happened there.
	internal
	// hookOnly: RG.INNERHOOK, made by gears' command filter out of a hooked
	// command (or replayed from the master or the AOF).
	hookOnly
)

// commands is indexed by the id Redis calls back with (serveCommand).
var commands = []command{
	{"rg.pyexecute", "readonly", cmdPyExecute, nil, anyClient, nil},
	{"rg.configget", "readonly", cmdConfigGet, nil, anyClient, nil},
	{"rg.configset", "readonly", cmdConfigSet, nil, anyClient, []string{"CONFIG", "SET", "x", "y"}},
	{"rg.pystats", "readonly", cmdPyStats, nil, anyClient, nil},
	{"rg.dumpexecutions", "readonly", cmdDumpExecutions, nil, anyClient, nil},
	{"rg.getexecution", "readonly", cmdGetExecution, nil, anyClient, nil},
	{"rg.getresults", "readonly", cmdGetResults, nil, anyClient, nil},
	{"rg.getresultsblocking", "readonly", cmdGetResultsBlocking, nil, anyClient, nil},
	{"rg.dropexecution", "readonly", cmdDropExecution, nil, anyClient, nil},
	{"rg.abortexecution", "readonly", cmdAbortExecution, nil, anyClient, nil},
	{"rg.pyprofile", "readonly", cmdPyProfile, nil, anyClient, nil},
	{"rg.trigger", "readonly", cmdTrigger, triggerFast, anyClient, nil},
	{"rg.triggeronkey", "readonly", cmdTrigger, triggerFast, anyClient, nil},
	{"rg.dumpregistrations", "readonly", cmdDumpRegistrations, nil, anyClient, nil},
	{"rg.unregister", "readonly", cmdUnregister, nil, anyClient, nil},
	{"rg.clearregistrationsstats", "readonly", cmdClearRegistrationsStats, nil, anyClient, nil},
	{"rg.pydumpsessions", "readonly", cmdPyDumpSessions, nil, anyClient, nil},
	{"rg.pauseregistrations", "readonly", cmdPauseRegistrations, nil, anyClient, nil},
	{"rg.unpauseregistrations", "readonly", cmdUnpauseRegistrations, nil, anyClient, nil},
	{"rg.pydumpreqs", "readonly", cmdPyDumpReqs, nil, anyClient, nil},
	{"rg.pyexportreq", "readonly", cmdPyExportReq, nil, anyClient, nil},
	{"rg.pyimportreq", "write", cmdPyImportReq, nil, anyClient, []string{"MODULE", "LOAD", "x"}},
	{"rg.innerimportreq", "write", cmdInnerImportReq, nil, internal, nil},
	{"rg.innerregister", "write", cmdInnerRegister, nil, internal, nil},
	{"rg.innerunregister", "write", cmdInnerUnregister, nil, internal, nil},
	{"rg.innerhook", "write", cmdInnerHook, nil, hookOnly, nil},
	{"rg.pykill", "readonly allow-busy", cmdPyKill, nil, anyClient, nil},
	{"rg.pydumpscripts", "readonly", cmdPyDumpScripts, nil, anyClient, nil},
	{"rg.infocluster", "readonly", cmdInfoCluster, nil, anyClient, nil},
	{"rg.refreshcluster", "readonly", cmdRefreshCluster, nil, anyClient, nil},
}

// mayCall refuses (with an error reply) a command that its client may not
// send: an internal one from anything but replication or the AOF, or a
// hooked command the client's user may not run.
func mayCall(c Ctx, cmd command, args redismod.Args) bool {
	if cmd.like != nil && !c.CallerMayRun(cmd.like) {
		c.Error(fmt.Sprintf("NOPERM this user has no permissions to run the '%s' command (it needs those of '%s')",
			cmd.name, strings.ToLower(strings.Join(cmd.like[:2], " "))))
		return false
	}
	if cmd.access == anyClient || c.FromReplicationOrAOF() {
		return true
	}
	if cmd.access == hookOnly && args.Len() >= 2 && args.IsHookMarker() {
		// Redis checked the client's ACL against RG.INNERHOOK; the hooked
		// command is what it asked for.
		if c.CallerMayRunFrom(args, 1) {
			return true
		}
		c.Error(noPerm(args.View(1)))
		return false
	}
	c.Error(fmt.Sprintf("ERR %s is internal to gears: only the master's replication link and the AOF send it",
		strings.ToUpper(cmd.name)))
	return false
}

// commandKeys is where a command's key is, for those that have one: Redis
// Cluster redirects them (MOVED) to the shard that owns it, and ACLs check it.
var commandKeys = map[string]int{"rg.triggeronkey": 2}

func registerCommands(c Ctx) error {
	for id, cmd := range commands {
		if err := redismod.RegisterCommand(c, id, cmd.name, cmd.flags, commandKeys[cmd.name]); err != nil {
			return err
		}
	}
	return nil
}

// serveCommand is every gears command (redismod's Handlers.Command).
func serveCommand(id int, c Ctx, args redismod.Args) {
	if id >= len(commands) {
		c.Error("ERR unknown gears command")
		return
	}
	cmd := commands[id]
	if !mayCall(c, cmd, args) {
		return
	}
	if cmd.fast != nil && cmd.fast(c, args) {
		return
	}
	cmd.run(c, args.Strings())
}

func cmdConfigGet(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	replyEntries(c, g.cfg.Get(argv[1:]))
}

func cmdConfigSet(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	replyEntries(c, g.cfg.Set(argv[1:]))
	interp.SetMemoryLimit(g.cfg.MaxPythonMemory())
}

func replyEntries(c redismod.Replier, entries []config.Entry) {
	c.Array(len(entries))
	for _, e := range entries {
		switch {
		case e.Err != "":
			c.Error(e.Err)
		case e.IsInt:
			c.Int(e.Int)
		default:
			c.Bulk(e.Str)
		}
	}
}

// RG.PYSTATS: bytes Python allocated (counted by gears' allocator hooks).
func cmdPyStats(c Ctx, argv []string) {
	if len(argv) != 1 {
		c.WrongArity()
		return
	}
	total, peak, cur := interp.Memory()
	c.Array(6)
	c.Bulk("TotalAllocated")
	c.Int(total)
	c.Bulk("PeakAllocated")
	c.Int(peak)
	c.Bulk("CurrAllocated")
	c.Int(cur)
}
