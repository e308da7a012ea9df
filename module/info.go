package main

import (
	"gears/interp"
	"gears/redismod"
)

// writeInfo fills INFO's rg section. Python's memory is reported here
// because Redis's used_memory does not see it.
func writeInfo(w redismod.Info) {
	total, peak, cur := interp.Memory()
	ready := 0
	if g.pool != nil { // none under IsolationMode shared
		ready = g.pool.Ready()
	}
	w.Section("")
	for _, f := range []struct {
		name string
		v    int64
	}{
		{"nexecutions", int64(g.engine.Len())},
		{"nregistrations", int64(g.regs.Len())},
		{"sessions", int64(g.sessions.Len())},
		{"live_interpreters", interp.Live()},
		{"ready_interpreters", int64(ready)},
		{"ending_sessions", int64(g.reaper.Pending())},
		{"python_threads", int64(g.threads.Running())},
		{"scripts_running", g.scriptsRunning.Load()},
		{"scripts_total", g.scriptsTotal.Load()},
		{"python_memory", cur},
		{"python_memory_peak", peak},
		{"python_memory_limit", g.cfg.MaxPythonMemory()},
		{"python_memory_refused", interp.MemoryRefused()},
		{"TotalAllocated", total},
		{"PeakAllocated", peak},
		{"CurrAllocated", cur},
	} {
		w.Int(f.name, f.v)
	}
}
