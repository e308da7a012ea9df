package redismod

/*
#include "redismod.h"
*/
import "C"

// Python that runs while its thread holds the Redis lock (busy.c): the
// watchdog lets Redis serve clients past busy-reply-threshold, and stops
// runs that RG.PYKILL or ExecutionMaxTime asked to stop.

// Busy is a run of Python entered under the Redis lock (nothing when the
// thread does not hold it); Leave ends it.
type Busy struct{ p C.uintptr_t }

// EnterPython marks that this thread, if it holds the Redis lock, runs
// Python for s from now: it keeps Redis busy, waiting for the GIL included.
func EnterPython(s Session) Busy { return Busy{C.gears_busy_enter_h(s.p)} }

// Leave ends the run.
func (b Busy) Leave() { C.gears_busy_leave_h(b.p) }

// Why a run was asked to stop.
const (
	Killed   = C.BUSY_KILLED   // RG.PYKILL
	Overtime = C.BUSY_OVERTIME // ExecutionMaxTime
)

// BusyTick is the watchdog's tick: past busy-reply-threshold of Python
// under the lock Redis serves clients for a moment, and past maxMicros
// (0: no limit) the run is asked to stop. It returns the run to interrupt
// (0: none), its session's key and its thread, and whether Python holds
// Redis busy now.
func BusyTick(maxMicros int64) (run, sessionKey int64, tid uint64, busy bool) {
	var key C.longlong
	var t C.ulong
	var b C.int
	r := C.gears_busy_tick(C.longlong(maxMicros), &key, &t, &b)
	return int64(r), int64(key), uint64(t), b != 0
}

// BusyRunning reports whether run is still under way.
func BusyRunning(run int64) bool { return C.gears_busy_running(C.longlong(run)) == 1 }

// BusyKillWhy is why the run on this thread was asked to stop (0: it was
// not).
func BusyKillWhy() int { return int(C.gears_busy_kill_why()) }

// BusyKill is RG.PYKILL: 1 asked to stop, 0 nothing runs under the lock,
// -1 asked over a second ago in vain.
func BusyKill() int { return int(C.gears_busy_kill()) }
