package main

/*
#include "module.h"
*/
import "C"

import (
	"fmt"
	"runtime"
	"sync/atomic"
	"time"

	"gears/builder"
	"gears/interp"
	"gears/session"
)

// The watchdog stops what runs too long: every tick it lets Redis serve
// clients while Python has kept the Redis lock past busy-reply-threshold
// (busy.c), interrupts what RG.PYKILL, RG.ABORTEXECUTION or
// ExecutionMaxTime asked to stop (again each tick until it has stopped: an
// interrupt can land in nested code, or just before a sleep), and reports
// the allocations MaxPythonMemory refused.
// While Redis is busy it ticks faster, so that clients wait less between
// the moments it serves them.
const (
	watchdogTick = 50 * time.Millisecond
	busyTick     = 20 * time.Millisecond
)

func startWatchdog() {
	go func() {
		runtime.LockOSThread() // RedisModule_Yield runs client commands on this thread
		var refused int64
		var reported time.Time
		tick := time.NewTicker(watchdogTick)
		for range tick.C {
			if watchBusy() {
				tick.Reset(busyTick)
			} else {
				tick.Reset(watchdogTick)
			}
			abortOverdue()
			if time.Since(reported) < time.Second { // a line a second at most
				continue
			}
			reported = time.Now()
			if n := interp.MemoryRefused(); n != refused {
				logf("warning", fmt.Sprintf("gears: MaxPythonMemory (%d bytes) refused %d allocations since the last report: Python code got MemoryError",
					g.cfg.MaxPythonMemory(), n-refused))
				refused = n
			}
			if n := droppedDeep.Swap(0); n > 0 {
				logf("warning", fmt.Sprintf("gears: %d events ran nothing: registrations triggered by each other's writes nested %d deep", n, maxEventDepth))
			}
			if n := droppedQueue.Swap(0); n > 0 {
				logf("warning", fmt.Sprintf("gears: %d events ran nothing: too many executions were waiting already (MaxQueuedExecutions %d, or %d of one registration for events its own kind caused)",
					n, g.cfg.MaxQueuedExecutions(), builder.CascadeWaiting))
			}
		}
	}()
}

var busyInterrupting atomic.Bool // an interrupt of the busy run waits for its GIL

// watchBusy runs the busy tick and interrupts the run it says to stop; it
// reports whether Python keeps Redis busy now.
func watchBusy() bool {
	var key C.longlong
	var tid C.ulong
	var busy C.int
	run := C.gears_busy_tick(C.longlong(g.cfg.ExecutionMaxTime().Microseconds()), &key, &tid, &busy)
	v, _ := sessionsByKey.Load(int64(key))
	sess, _ := v.(*session.Session)
	if run == 0 || sess == nil || !busyInterrupting.CompareAndSwap(false, true) {
		return busy != 0
	}
	// Attaching waits for the GIL, which the running code gives up at its
	// next bytecode boundary (a C loop never does: then this waits on).
	g.threads.Go(func() {
		defer busyInterrupting.Store(false)
		sess.Interp.Interrupt(uint64(tid), func() bool { return C.gears_busy_running(run) == 1 })
	})
	return busy != 0
}

// explainBusyAbort gives the abort of a run under the Redis lock its
// reason, read while that run is still under way: ExecutionMaxTime's, or
// RG.PYKILL's.
func explainBusyAbort(errs []string) {
	why := C.gears_busy_kill_why()
	if why == 0 {
		return
	}
	reason := builder.AbortedText + ": stopped by RG.PYKILL"
	if why == C.BUSY_OVERTIME {
		reason = builder.AbortedText + ": " + builder.OverTimeReason(g.cfg.ExecutionMaxTime())
	}
	for i, e := range errs {
		if e == builder.AbortedText {
			errs[i] = reason
		}
	}
}

// RG.PYKILL: stops the Python code that keeps Redis busy (allowed while
// Redis answers BUSY, as SCRIPT KILL is for Lua).
func cmdPyKill(c Ctx, argv []string) {
	if len(argv) != 1 {
		c.WrongArity()
		return
	}
	switch C.gears_busy_kill() {
	case 1:
		c.OK()
	case -1:
		c.Error("UNKILLABLE the running Python code does not stop: it is inside a C function that Python cannot interrupt " +
			"(such as any(iter(int, 1)) or a C extension's loop). SHUTDOWN NOSAVE ends it with the server.")
	default:
		c.Error("NOTBUSY No gears Python code is keeping Redis busy right now.")
	}
}
