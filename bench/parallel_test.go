package bench

import (
	"fmt"
	"math/big"
	"sync"
	"sync/atomic"
	"testing"
	"time"
)

// TestBenchParallel runs two CPU-bound UNBLOCKING executions (~1 s each)
// one after the other, then both at once; with own-GIL sub-interpreters on
// 2 execution threads the second should take about half (target <= 0.6).
func TestBenchParallel(t *testing.T) {
	guard(t)
	r := newReport(t, "parallel")
	s := startServer(t, "ExecutionThreads", "2")
	c := s.Client

	script := func(n int) string {
		return fmt.Sprintf("def f(x):\n    s = 0\n    for i in range(%d):\n        s += i * i\n    return s\nGB('ShardsIDReader').map(f).run()", n)
	}
	// sum of i*i for i < n = (n-1) n (2n-1) / 6
	want := func(n int) string {
		v := new(big.Int).Mul(big.NewInt(int64(n-1)), big.NewInt(int64(n)))
		v.Mul(v, big.NewInt(int64(2*n-1)))
		return v.Div(v, big.NewInt(6)).String()
	}
	send := func(n int) (string, error) {
		id, err := c.Do(bg(), "RG.PYEXECUTE", script(n), "UNBLOCKING").Text()
		if err != nil {
			return "", fmt.Errorf("RG.PYEXECUTE ... UNBLOCKING: %w", err)
		}
		return id, nil
	}
	wait := func(id string, n int) error {
		res, err := c.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
		if err != nil {
			return fmt.Errorf("RG.GETRESULTSBLOCKING %s: %w", id, err)
		}
		results, errs, err := gearsReply(res)
		if err != nil {
			return err
		}
		if len(errs) != 0 || len(results) != 1 || results[0] != want(n) {
			return fmt.Errorf("execution %s: results=%q errors=%q, want [%s] []", id, results, errs, want(n))
		}
		return c.Do(bg(), "RG.DROPEXECUTION", id).Err()
	}
	one := func(n int) error {
		id, err := send(n)
		if err != nil {
			return err
		}
		return wait(id, n)
	}

	// Size N so that one execution takes about 1 s.
	const probeN = 2_000_000
	probe, _ := bestOf(t, 2, func() error { return one(probeN) })
	n := int(float64(probeN)*float64(time.Second)/float64(probe)) / 100_000 * 100_000
	n = max(100_000, min(n, 200_000_000))
	single, singleAll := bestOf(t, 3, func() error { return one(n) })

	sequential := func() error {
		if err := one(n); err != nil {
			return err
		}
		return one(n)
	}
	parallel := func() error {
		a, err := send(n)
		if err != nil {
			return err
		}
		b, err := send(n)
		if err != nil {
			return err
		}
		if err := wait(a, n); err != nil {
			return err
		}
		return wait(b, n)
	}
	// Control: the same pattern with two Go busy loops in this process, to
	// show whether the machine had two free cores at the time.
	const probeSpin = 50_000_000
	spinProbe, _ := bestOf(t, 2, func() error { spin(probeSpin); return nil })
	spinN := int(float64(probeSpin) * float64(500*time.Millisecond) / float64(spinProbe))
	spinSeq := func() error { spin(spinN); spin(spinN); return nil }
	spinPar := func() error {
		var wg sync.WaitGroup
		for range 2 {
			wg.Go(func() { spin(spinN) })
		}
		wg.Wait()
		return nil
	}

	// Interleaved, so drift on a shared machine hits all; the server's CPU
	// time per wall time shows how many cores it really used.
	var seqAll, parAll, ctlSeqAll, ctlParAll []time.Duration
	var seqCores, parCores []string
	timed := func(f func() error, walls *[]time.Duration, cores *[]string) {
		cpu0 := cpuTime(t, s.Pid())
		_, d := bestOf(t, 1, f)
		*walls = append(*walls, d[0])
		*cores = append(*cores, fmt.Sprintf("%.2f", float64(cpuTime(t, s.Pid())-cpu0)/float64(d[0])))
	}
	for i := 0; i < 3; i++ {
		timed(sequential, &seqAll, &seqCores)
		timed(parallel, &parAll, &parCores)
		_, d := bestOf(t, 1, spinSeq)
		ctlSeqAll = append(ctlSeqAll, d...)
		_, d = bestOf(t, 1, spinPar)
		ctlParAll = append(ctlParAll, d...)
	}
	seq, par := minOf(seqAll), minOf(parAll)
	ctlSeq, ctlPar := minOf(ctlSeqAll), minOf(ctlParAll)

	r.line("server:    ExecutionThreads 2")
	r.line("script:    RG.PYEXECUTE %q UNBLOCKING", script(n))
	r.line("N:         %d (sized from a probe: N=%d took %s)", n, probeN, ms(probe))
	r.line("check:     each execution must return [%s] with no errors", want(n))
	r.line("sequential send A, GETRESULTSBLOCKING A, send B, GETRESULTSBLOCKING B")
	r.line("parallel   send A, send B, GETRESULTSBLOCKING A, GETRESULTSBLOCKING B")
	r.line("")
	r.line("%-11s %-12s %-28s %s", "", "best of 3", "all runs", "server CPU cores used per run")
	r.line("%-11s %-12s %-28s", "single", ms(single), msList(singleAll))
	r.line("%-11s %-12s %-28s %v", "sequential", ms(seq), msList(seqAll), seqCores)
	r.line("%-11s %-12s %-28s %v", "parallel", ms(par), msList(parAll), parCores)
	r.line("%-11s %-12s %-28s", "ctl seq", ms(ctlSeq), msList(ctlSeqAll))
	r.line("%-11s %-12s %-28s", "ctl par", ms(ctlPar), msList(ctlParAll))
	r.line("(ctl = control, two Go busy loops of ~0.5 s each in the benchmark process, same pattern)")
	r.line("")
	r.verdict("ratio parallel/sequential:", float64(par)/float64(seq), "<=", 0.6)
	var rounds, ctlRounds []string
	for i := range seqAll {
		rounds = append(rounds, fmt.Sprintf("%.3f", float64(parAll[i])/float64(seqAll[i])))
		ctlRounds = append(ctlRounds, fmt.Sprintf("%.3f", float64(ctlParAll[i])/float64(ctlSeqAll[i])))
	}
	r.line("%-34s %v   (parallel_i/sequential_i, for noise)", "per-round ratios:", rounds)
	r.line("%-34s %.3f   (near 1.0 = the machine had no 2 free cores; then the ratio above says nothing)",
		"control ratio parallel/sequential:", float64(ctlPar)/float64(ctlSeq))
	r.line("%-34s %v", "control per-round ratios:", ctlRounds)
}

var spinSink atomic.Uint64

// spin burns CPU: n steps of a linear congruential generator.
func spin(n int) {
	x := uint64(1)
	for i := 0; i < n; i++ {
		x = x*6364136223846793005 + 1442695040888963407
	}
	spinSink.Add(x)
}

func minOf(ds []time.Duration) time.Duration {
	m := ds[0]
	for _, d := range ds {
		m = min(m, d)
	}
	return m
}
