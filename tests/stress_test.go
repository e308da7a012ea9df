package tests

// Eight clients race everything that makes, changes or ends sessions and
// registrations while events fire: every command gets a reply (a result or
// an error reply), the server never crashes, hangs or logs a fatal Python
// error (the harness checks its log), and afterwards what is listed is
// consistent.

import (
	"errors"
	"fmt"
	"math/rand/v2"
	"net"
	"os"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// GEARS_STRESS_SECONDS runs it longer (6 s by default).
func TestConcurrentLifecycleStress(t *testing.T) {
	d := 6 * time.Second
	if v, err := strconv.Atoi(os.Getenv("GEARS_STRESS_SECONDS")); err == nil {
		d = time.Duration(v) * time.Second
	}
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, mode.opts...)
			stressLifecycle(t, s, d)
		})
	}
}

func stressLifecycle(t *testing.T, s *server, d time.Duration) {
	keys := "GB().foreach(lambda r: execute('INCR', 'stress:n')).register('k:*', mode='sync')"
	trigger := "GB('CommandReader').map(lambda a: len(a)).register(trigger='T', mode='%s')"
	stream := "GB('StreamReader').foreach(lambda r: execute('INCR', 'stress:s')).register('st:*')"
	requirePyOK(t, s.Client, keys, "ID", "k")
	requirePyOK(t, s.Client, fmt.Sprintf(trigger, "sync"), "ID", "T")
	requirePyOK(t, s.Client, stream, "ID", "st")
	// Now and then a script keeps the Redis lock past the threshold: the
	// others get BUSY meanwhile, and RG.PYKILL may stop it.
	require.NoError(t, s.Client.ConfigSet(bg(), "busy-reply-threshold", "100").Err())

	deadline := time.Now().Add(d)
	var wg sync.WaitGroup
	failures := make(chan error, 16)
	counts := make([]int, 8)
	var busy atomic.Int64 // BUSY replies seen
	// Each worker sends commands on its own client until the deadline; a
	// reply that is not a result or an error reply fails the test.
	worker := func(i int, fn func(c *redis.Client, rng *rand.Rand, n int) error) {
		wg.Add(1)
		go func() {
			defer wg.Done()
			c := s.NewClient(func(o *redis.Options) { o.ReadTimeout = 20 * time.Second })
			defer c.Close()
			rng := rand.New(rand.NewPCG(uint64(i), 42))
			for n := 0; time.Now().Before(deadline); n++ {
				err := fn(c, rng, n)
				var rerr redis.Error
				var nerr net.Error
				switch {
				case err == nil, errors.Is(err, redis.Nil), errors.As(err, &rerr) && !errors.As(err, &nerr):
					counts[i]++
					if err != nil && strings.HasPrefix(err.Error(), "BUSY") {
						busy.Add(1)
					}
				default:
					failures <- fmt.Errorf("worker %d, command %d: %w", i, n, err)
					return
				}
			}
		}()
	}
	do := func(c *redis.Client, args ...any) error { return c.Do(bg(), args...).Err() }
	pipe := func(c *redis.Client, n int, args ...any) error {
		cmds, err := c.Pipelined(bg(), func(p redis.Pipeliner) error {
			for range n {
				p.Do(bg(), args...)
			}
			return nil
		})
		for _, cmd := range cmds {
			var rerr redis.Error
			if e := cmd.Err(); e != nil && !errors.Is(e, redis.Nil) && !errors.As(e, &rerr) {
				return e
			}
		}
		var rerr redis.Error
		if errors.As(err, &rerr) {
			return nil
		}
		return err
	}
	worker(0, func(c *redis.Client, _ *rand.Rand, _ int) error {
		return do(c, "RG.PYEXECUTE", keys, "ID", "k", "UPGRADE")
	})
	worker(1, func(c *redis.Client, _ *rand.Rand, n int) error {
		if err := do(c, "RG.PYEXECUTE", keys, "ID", fmt.Sprintf("r%d", n), "REPLACE_WITH", "k"); err != nil {
			return err
		}
		return do(c, "RG.PYEXECUTE", "GB().register('none:*')", "ID", fmt.Sprintf("r%d", n), "UPGRADE")
	})
	// The trigger's code may wait for a coroutine (a sync one then goes on
	// in the background while its client waits), racing its upgrades.
	awaiting := "import asyncio\nasync def n(a):\n    await asyncio.sleep(0.001)\n    return len(a)\nGB('CommandReader').map(n).register(trigger='T', mode='%s')"
	worker(2, func(c *redis.Client, rng *rand.Rand, _ int) error {
		mode := []string{"sync", "async_local", "async"}[rng.IntN(3)]
		script := []string{trigger, awaiting}[rng.IntN(2)]
		return do(c, "RG.PYEXECUTE", fmt.Sprintf(script, mode), "ID", "T", "UPGRADE")
	})
	worker(3, func(c *redis.Client, _ *rand.Rand, _ int) error { return pipe(c, 20, "RG.TRIGGER", "T", "a", "b") })
	worker(4, func(c *redis.Client, rng *rand.Rand, _ int) error {
		regs, err := c.Do(bg(), "RG.DUMPREGISTRATIONS").Slice()
		if err != nil || len(regs) == 0 {
			return err
		}
		id := regs[rng.IntN(len(regs))].([]any)[1]
		if err := do(c, "RG.UNREGISTER", id); err != nil {
			return err
		}
		// Put back what was taken, under a session of its own.
		return do(c, "RG.PYEXECUTE", []string{keys, stream}[rng.IntN(2)])
	})
	worker(5, func(c *redis.Client, rng *rand.Rand, n int) error {
		sess := []string{"k", "T", "st", fmt.Sprintf("r%d", rng.IntN(max(n, 1)))}[rng.IntN(4)]
		if n%50 == 0 {
			if err := do(c, "RG.CONFIGSET", "ProfileExecutions", rng.IntN(2)); err != nil {
				return err
			}
		}
		return do(c, "RG.PYPROFILE", []string{"STATS", "RESET"}[rng.IntN(2)], sess)
	})
	worker(6, func(c *redis.Client, rng *rand.Rand, _ int) error {
		if rng.IntN(4) == 0 {
			return pipe(c, 20, "XADD", "st:1", "*", "f", "v")
		}
		return pipe(c, 50, "SET", fmt.Sprintf("k:%d", rng.IntN(10)), "v")
	})
	worker(7, func(c *redis.Client, rng *rand.Rand, _ int) error {
		if rng.IntN(10) == 0 {
			return do(c, "RG.PYEXECUTE", "import time\nwith atomic():\n    time.sleep(0.4)")
		}
		if rng.IntN(10) == 0 {
			return do(c, "RG.PYKILL")
		}
		run := []string{
			"import time\nGB('ShardsIDReader').foreach(lambda r: time.sleep(0.01)).run()",
			"import asyncio\nasync def w(r):\n    await asyncio.sleep(0.02)\n    return r\nGB('ShardsIDReader').map(w).run()",
		}[rng.IntN(2)]
		res, err := c.Do(bg(), "RG.PYEXECUTE", run, "UNBLOCKING").Result()
		if err != nil {
			return err
		}
		switch rng.IntN(3) {
		case 0:
			return do(c, "RG.ABORTEXECUTION", res)
		case 1:
			if err := do(c, "RG.GETRESULTSBLOCKING", res); err != nil {
				return err
			}
			return do(c, "RG.DROPEXECUTION", res)
		}
		return do(c, "RG.DUMPEXECUTIONS")
	})
	wg.Wait()
	close(failures)
	for err := range failures {
		require.NoError(t, err)
	}
	t.Logf("commands per worker: %v; BUSY replies: %d", counts, busy.Load())
	requireAlive(t, s)

	// What is listed is consistent: every registration's session is listed.
	sessions := map[string]bool{}
	for _, id := range ssIDs(t, s.Client) {
		sessions[id] = true
	}
	for _, r := range s.Client.Do(bg(), "RG.DUMPREGISTRATIONS").Val().([]any) {
		pd := fmt.Sprint(r.([]any)[9])
		name := strings.SplitN(strings.SplitN(pd, "'sessionName':'", 2)[1], "'", 2)[0]
		require.True(t, sessions[name], "a registration belongs to session %s, which RG.PYDUMPSESSIONS does not list", name)
	}
	// The server still does its work.
	require.NoError(t, s.Client.Do(bg(), "RG.CONFIGSET", "ProfileExecutions", "0").Err())
	requirePyOK(t, s.Client, keys, "ID", "k", "UPGRADE")
	before, _ := s.Client.Get(bg(), "stress:n").Int()
	require.NoError(t, s.Client.Set(bg(), "k:final", "v", 0).Err())
	after, _ := s.Client.Get(bg(), "stress:n").Int()
	require.Greater(t, after, before)
}
