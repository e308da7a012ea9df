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
}

// commands is indexed by the id C uses to call back (goCommand).
var commands = []command{
	{"rg.pyexecute", "readonly", cmdPyExecute},
	{"rg.configget", "readonly", cmdConfigGet},
	{"rg.configset", "readonly", cmdConfigSet},
	{"rg.pystats", "readonly", cmdPyStats},
	{"rg.dumpexecutions", "readonly", cmdDumpExecutions},
	{"rg.getexecution", "readonly", cmdGetExecution},
	{"rg.getresults", "readonly", cmdGetResults},
	{"rg.getresultsblocking", "readonly", cmdGetResultsBlocking},
	{"rg.dropexecution", "readonly", cmdDropExecution},
	{"rg.abortexecution", "readonly", cmdAbortExecution},
	{"rg.pyprofile", "readonly", cmdPyProfile},
	{"rg.trigger", "readonly", cmdTrigger},
	{"rg.triggeronkey", "readonly", cmdTrigger},
	{"rg.dumpregistrations", "readonly", cmdDumpRegistrations},
	{"rg.unregister", "readonly", cmdUnregister},
	{"rg.clearregistrationsstats", "readonly", cmdClearRegistrationsStats},
	{"rg.pydumpsessions", "readonly", cmdPyDumpSessions},
	{"rg.pauseregistrations", "readonly", cmdPauseRegistrations},
	{"rg.unpauseregistrations", "readonly", cmdUnpauseRegistrations},
	{"rg.pydumpreqs", "readonly", cmdPyDumpReqs},
	{"rg.pyexportreq", "readonly", cmdPyExportReq},
	{"rg.pyimportreq", "write", cmdPyImportReq},
	{"rg.innerimportreq", "write", cmdInnerImportReq},
	{"rg.innerregister", "write", cmdInnerRegister},
	{"rg.innerunregister", "write", cmdInnerUnregister},
	{"rg.innerhook", "write", cmdInnerHook},
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
