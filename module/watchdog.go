package main

import (
	"fmt"
	"runtime"
	"time"

	"gears/builder"
	"gears/interp"
	"gears/redismod"
	"gears/session"
)

// The watchdog stops what runs too long: every tick it lets Redis serve
// clients while Python has kept the Redis lock past busy-reply-threshold
// (redismod/busy.c), interrupts what RG.PYKILL, RG.ABORTEXECUTION or
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
		w := &watchdog{tick: time.NewTicker(watchdogTick)}
		for range w.tick.C {
			w.once()
		}
	}()
}

type watchdog struct {
	tick     *time.Ticker
	refused  int64     // allocations refused, as last reported
	reported time.Time // when the log had its last line
}

// once is one tick. A Go panic here would end the process (and Redis with
// it): it is logged instead.
func (w *watchdog) once() {
	defer func() {
		if r := recover(); r != nil {
			logPanic("watchdog", r)
		}
	}()
	if watchBusy() {
		w.tick.Reset(busyTick)
	} else {
		w.tick.Reset(watchdogTick)
	}
	abortOverdue()
	if time.Since(w.reported) < time.Second { // a line a second at most
		return
	}
	w.reported = time.Now()
	if n := interp.MemoryRefused(); n != w.refused {
		logf("warning", fmt.Sprintf("gears: MaxPythonMemory (%d bytes) refused %d allocations since the last report: Python code got MemoryError",
			g.cfg.MaxPythonMemory(), n-w.refused))
		w.refused = n
	}
	if n := droppedDeep.Swap(0); n > 0 {
		logf("warning", fmt.Sprintf("gears: %d events ran nothing: registrations triggered by each other's writes nested %d deep", n, maxEventDepth))
	}
	if n := droppedQueue.Swap(0); n > 0 {
		logf("warning", fmt.Sprintf("gears: %d events ran nothing: too many executions were waiting already (MaxQueuedExecutions %d, or %d of one registration for events its own kind caused)",
			n, g.cfg.MaxQueuedExecutions(), builder.CascadeWaiting))
	}
}

var busyInterrupting session.Interrupting

// watchBusy runs the busy tick and interrupts the run it says to stop; it
// reports whether Python keeps Redis busy now.
func watchBusy() bool {
	run, key, tid, busy := redismod.BusyTick(g.cfg.ExecutionMaxTime().Microseconds())
	v, _ := sessionsByKey.Load(key)
	sess, _ := v.(*session.Session)
	if run != 0 && sess != nil {
		busyInterrupting.Start(g.threads.Go, func() {
			sess.Interp.Interrupt(tid, func() bool { return redismod.BusyRunning(run) })
		})
	}
	return busy
}

// explainBusyAbort gives the abort of a run under the Redis lock its
// reason, read while that run is still under way: ExecutionMaxTime's, or
// RG.PYKILL's.
func explainBusyAbort(errs []string) {
	switch redismod.BusyKillWhy() {
	case redismod.Killed:
		builder.ExplainAbort(errs, "stopped by RG.PYKILL")
	case redismod.Overtime:
		builder.ExplainAbort(errs, builder.OverTimeReason(g.cfg.ExecutionMaxTime()))
	}
}

// RG.PYKILL: stops the Python code that keeps Redis busy (allowed while
// Redis answers BUSY, as SCRIPT KILL is for Lua).
func cmdPyKill(c Ctx, argv []string) {
	if len(argv) != 1 {
		c.WrongArity()
		return
	}
	switch redismod.BusyKill() {
	case 1:
		c.OK()
	case -1:
		c.Error("UNKILLABLE the running Python code does not stop: it is inside a C function that Python cannot interrupt " +
			"(such as any(iter(int, 1)) or a C extension's loop). SHUTDOWN NOSAVE ends it with the server.")
	default:
		c.Error("NOTBUSY No gears Python code is keeping Redis busy right now.")
	}
}
