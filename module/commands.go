package main

/*
#include "module.h"
*/
import "C"

import (
	"fmt"
	"unsafe"

	"gears/config"
	"gears/interp"
)

type command struct {
	name  string
	flags string
	run   func(c Ctx, argv []string)
	// fast, when set, may serve the command from Redis's arguments as they
	// are; false leaves it to run.
	fast func(c Ctx, argv **C.RedisModuleString, argc C.int) bool
}

// commands is indexed by the id C uses to call back (goCommand).
var commands = []command{
	{"rg.pyexecute", "readonly", cmdPyExecute, nil},
	{"rg.configget", "readonly", cmdConfigGet, nil},
	{"rg.configset", "readonly", cmdConfigSet, nil},
	{"rg.pystats", "readonly", cmdPyStats, nil},
	{"rg.dumpexecutions", "readonly", cmdDumpExecutions, nil},
	{"rg.getexecution", "readonly", cmdGetExecution, nil},
	{"rg.getresults", "readonly", cmdGetResults, nil},
	{"rg.getresultsblocking", "readonly", cmdGetResultsBlocking, nil},
	{"rg.dropexecution", "readonly", cmdDropExecution, nil},
	{"rg.abortexecution", "readonly", cmdAbortExecution, nil},
	{"rg.pyprofile", "readonly", cmdPyProfile, nil},
	{"rg.trigger", "readonly", cmdTrigger, triggerFast},
	{"rg.triggeronkey", "readonly", cmdTrigger, triggerFast},
	{"rg.dumpregistrations", "readonly", cmdDumpRegistrations, nil},
	{"rg.unregister", "readonly", cmdUnregister, nil},
	{"rg.clearregistrationsstats", "readonly", cmdClearRegistrationsStats, nil},
	{"rg.pydumpsessions", "readonly", cmdPyDumpSessions, nil},
	{"rg.pauseregistrations", "readonly", cmdPauseRegistrations, nil},
	{"rg.unpauseregistrations", "readonly", cmdUnpauseRegistrations, nil},
	{"rg.pydumpreqs", "readonly", cmdPyDumpReqs, nil},
	{"rg.pyexportreq", "readonly", cmdPyExportReq, nil},
	{"rg.pyimportreq", "write", cmdPyImportReq, nil},
	{"rg.innerimportreq", "write", cmdInnerImportReq, nil},
	{"rg.innerregister", "write", cmdInnerRegister, nil},
	{"rg.innerunregister", "write", cmdInnerUnregister, nil},
	{"rg.innerhook", "write", cmdInnerHook, nil},
}

func registerCommands(c Ctx) error {
	for id, cmd := range commands {
		name, flags := C.CString(cmd.name), C.CString(cmd.flags)
		rc := C.gears_register_command(c.p, C.int(id), name, flags, 0, 0, 0)
		C.free(unsafe.Pointer(name))
		C.free(unsafe.Pointer(flags))
		if rc != C.REDISMODULE_OK {
			return fmt.Errorf("cannot register command %s", cmd.name)
		}
	}
	return nil
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
}

func replyEntries(c Ctx, entries []config.Entry) {
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
