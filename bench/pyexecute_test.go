package bench

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBenchPyexecute measures the per-call cost of RG.PYEXECUTE (a fresh
// sub-interpreter per call) against EVAL and FCALL of trivial Lua: p50/p99
// latency with one client sustained over 2,000 calls, the latency of a call
// after a second idle, throughput with 8 clients, and the server's memory;
// against issue 13's targets.
func TestBenchPyexecute(t *testing.T) {
	guard(t)
	const (
		warm, calls = 20, 2000
		idleCalls   = 12 // each after a second without calls
		clients     = 8
		window      = 5 * time.Second
		maxOps      = 2_000_000
	)
	r := newReport(t, "pyexecute")
	s := startServer(t)
	many := s.NewClient(clients, 10*time.Second)
	defer many.Close()

	time.Sleep(time.Second) // let start-up work settle
	snapshot := func(when string) {
		rg := info(t, s.Client, "rg")
		r.line("%-28s rg_python_memory=%-10s rg_live_interpreters=%-4s rg_sessions=%-4s rg_nexecutions=%-5s VmRSS=%d kB",
			when, rg["rg_python_memory"], rg["rg_live_interpreters"], rg["rg_sessions"], rg["rg_nexecutions"], rssKB(t, s.Pid()))
	}
	snapshot("idle after start:")

	lib := "#!lua name=benchlib\nredis.register_function('noop', function() return 1 end)"
	if err := s.Client.FunctionLoadReplace(bg(), lib).Err(); err != nil {
		t.Fatalf("FUNCTION LOAD: %v", err)
	}

	type bench struct {
		name string
		args []any
		ok   func(any) error
	}
	isInt1 := func(res any) error {
		if res != int64(1) {
			return fmt.Errorf("reply %#v, want 1", res)
		}
		return nil
	}
	cases := []bench{
		{"gears count", []any{"RG.PYEXECUTE", "GB('ShardsIDReader').count().run()"}, func(res any) error {
			results, errs, err := gearsReply(res)
			if err == nil && (len(results) != 1 || results[0] != "1" || len(errs) != 0) {
				err = fmt.Errorf("results=%q errors=%q, want [1] []", results, errs)
			}
			return err
		}},
		{"gears pass", []any{"RG.PYEXECUTE", "pass"}, func(res any) error {
			if res != "OK" {
				return fmt.Errorf("reply %#v, want OK", res)
			}
			return nil
		}},
		{"lua EVAL", []any{"EVAL", "return 1", 0}, isInt1},
		{"lua FCALL", []any{"FCALL", "noop", 0}, isInt1},
	}
	call := func(c *redis.Client, b bench) func() error {
		return func() error {
			res, err := c.Do(bg(), b.args...).Result()
			if err == nil {
				err = b.ok(res)
			}
			if err != nil {
				return fmt.Errorf("%q: %w", b.args, err)
			}
			return nil
		}
	}

	lat := map[string]latency{}
	idle := map[string]latency{}
	ops := map[string]float64{}
	var rows []string
	for _, b := range cases {
		idle[b.name] = measureAfterIdle(t, idleCalls, call(s.Client, b))
		l := measureLatency(t, warm, calls, call(s.Client, b))
		cpu0, t0 := cpuTime(t, s.Pid()), time.Now()
		tput, n := throughput(t, clients, window, maxOps, call(many, b))
		cores := float64(cpuTime(t, s.Pid())-cpu0) / float64(time.Since(t0))
		lat[b.name], ops[b.name] = l, tput
		rows = append(rows, fmt.Sprintf("%-12s %-12s %-12s %-12s %-12s %8.0f ops/s  %5.2f cores  (%d calls)",
			b.name, ms(l.P50), ms(l.P99), ms(l.Mean), ms(idle[b.name].P50), tput, cores, n))
		if b.name == "gears pass" {
			snapshot("after the gears runs:")
		}
	}
	time.Sleep(2 * time.Second)
	snapshot("after all runs + 2 s:")

	r.line("")
	r.line("gears count  RG.PYEXECUTE \"GB('ShardsIDReader').count().run()\"  (reply [[\"1\"],[]])")
	r.line("gears pass   RG.PYEXECUTE \"pass\"  (reply OK)")
	r.line("lua EVAL     EVAL \"return 1\" 0")
	r.line("lua FCALL    FCALL noop 0  (FUNCTION LOAD: %q)", lib)
	r.line("latency: 1 client, %d sequential calls after %d warm-up; after idle: p50 of %d calls, each after 1 s without calls;", calls, warm, idleCalls)
	r.line("throughput: %d clients, %s (at most %d calls)", clients, window, maxOps)
	r.line("")
	r.line("%-12s %-12s %-12s %-12s %-12s %s", "", "p50", "p99", "mean", "idle p50", "8 clients: throughput, server CPU")
	for _, row := range rows {
		r.line("%s", row)
	}
	r.line("")
	// Issue 13's targets; "today's" throughput is that of bench/results/pyexecute.txt
	// of 2026-12-07T07:52Z (211 ops/s for the count).
	const baseOps = 211.0
	verdict := func(ok bool) string {
		if ok {
			return "met"
		}
		return "NOT met"
	}
	r.line("targets (count call): p50 sustained <= 2 ms: %s (%s); after a second idle <= 0.5 ms: %s (%s); 8 clients >= 3x %.0f ops/s: %s (%.2fx)",
		ms(lat["gears count"].P50), verdict(lat["gears count"].P50 <= 2*time.Millisecond),
		ms(idle["gears count"].P50), verdict(idle["gears count"].P50 <= 500*time.Microsecond),
		baseOps, verdict(ops["gears count"] >= 3*baseOps), ops["gears count"]/baseOps)
	r.line("ratios vs the Lua peers for context:")
	for _, g := range []string{"gears count", "gears pass"} {
		r.line("  %-12s p50 %.1fx EVAL, %.1fx FCALL; throughput %.3fx EVAL, %.3fx FCALL", g,
			float64(lat[g].P50)/float64(lat["lua EVAL"].P50), float64(lat[g].P50)/float64(lat["lua FCALL"].P50),
			ops[g]/ops["lua EVAL"], ops[g]/ops["lua FCALL"])
	}
}

// measureAfterIdle is the latency of n calls, each after a second without
// calls: what an application that calls now and then sees.
func measureAfterIdle(t *testing.T, n int, call func() error) latency {
	t.Helper()
	var samples []time.Duration
	for range n {
		time.Sleep(time.Second)
		start := time.Now()
		if err := call(); err != nil {
			t.Fatal(err)
		}
		samples = append(samples, time.Since(start))
	}
	return summarize(samples)
}
