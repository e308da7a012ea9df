package tests

import (
	"context"
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Every RG.PYEXECUTE runs in a fresh interpreter.
func TestSessionIsolation(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("sequential scripts share nothing", func(t *testing.T) {
		requirePyOK(t, c, "import sys; sys.gears_marker = 1; import json; json.marker = 2; x_global = 3")
		requirePyOK(t, c, py(
			"import sys",
			"execute('SET','iso', repr((hasattr(sys,'gears_marker'), hasattr(__import__('json'),'marker'), 'x_global' in globals())))",
		))
		require.Equal(t, "(False, False, False)", getKey(t, c, "iso"))
	})

	t.Run("api names are back after being deleted", func(t *testing.T) {
		requirePyOK(t, c, "del execute; import builtins; builtins.gears_leak = 1")
		requirePyOK(t, c, "import builtins; execute('SET','iso2', repr(hasattr(builtins,'gears_leak')))")
		require.Equal(t, "False", getKey(t, c, "iso2"))
	})

	t.Run("concurrent scripts share nothing", func(t *testing.T) {
		// Each script announces itself, waits (up to 5 s) until the other
		// one runs too, then checks for ~0.5 s that it never sees the
		// other's module attribute or global.
		script := func(me, other string) string {
			return py(
				"import sys, time",
				fmt.Sprintf("sys.conc_marker = '%s'", me),
				fmt.Sprintf("mine_%s = 1", me),
				fmt.Sprintf("execute('SET','conc_started_%s','1')", me),
				"deadline = time.time() + 5",
				fmt.Sprintf("while execute('GET','conc_started_%s') is None and time.time() < deadline:", other),
				"    time.sleep(0.005)",
				fmt.Sprintf("partner = execute('GET','conc_started_%s') is not None", other),
				"leak = []",
				"end = time.time() + 0.5",
				"while time.time() < end:",
				fmt.Sprintf("    if getattr(sys, 'conc_marker', None) != '%s': leak.append('sys')", me),
				fmt.Sprintf("    if 'mine_%s' in globals(): leak.append('globals')", other),
				"    if leak: break",
				"    time.sleep(0.002)",
				fmt.Sprintf("execute('SET','conc_result_%s', repr((partner, leak)))", me),
			)
		}
		c2 := s.NewClient()
		t.Cleanup(func() { c2.Close() })
		errs := make(chan error, 2)
		for _, p := range []struct {
			cl        *redis.Client
			me, other string
		}{{c, "A", "B"}, {c2, "B", "A"}} {
			go func() {
				res, err := pyexec(p.cl, script(p.me, p.other))
				if err == nil && res != "OK" {
					err = fmt.Errorf("script %s replied %v", p.me, res)
				}
				errs <- err
			}()
		}
		for range 2 {
			require.NoError(t, <-errs)
		}
		require.Equal(t, "(True, [])", getKey(t, c, "conc_result_A"), "(ran concurrently with B, leaks seen)")
		require.Equal(t, "(True, [])", getKey(t, c, "conc_result_B"), "(ran concurrently with A, leaks seen)")
	})
}

// A script that never ends must not block Redis.
func TestLoopingScriptDoesNotBlockRedis(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	looper := s.NewClient()
	t.Cleanup(func() { looper.Close() })
	go func() {
		// Never replies; the connection dies with the server at cleanup.
		looper.Do(bg(), "RG.PYEXECUTE", "execute('SET','loop_started','1')\nwhile True: pass")
	}()
	eventually(t, 10*time.Second, func() bool {
		n, err := s.Client.Exists(bg(), "loop_started").Result()
		return err == nil && n == 1
	}, "the looping script never started")

	ctx, cancel := context.WithTimeout(bg(), 2*time.Second)
	defer cancel()
	res, err := s.Client.Ping(ctx).Result()
	require.NoError(t, err)
	require.Equal(t, "PONG", res)
	require.NoError(t, s.Client.Set(ctx, "while_looping", "1", 0).Err())

	// Another script still runs next to it.
	requirePyOK(t, s.Client, "execute('SET','beside_loop','1')")
	require.Equal(t, "1", getKey(t, s.Client, "beside_loop"))
}

func TestPythonThreads(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("joined thread calls execute and log", func(t *testing.T) {
		requirePyOK(t, c, py(
			"import threading",
			"def work():",
			"    execute('SET','from_thread','1')",
			"    log('thread-log-4d2e')",
			"th = threading.Thread(target=work)",
			"th.start()",
			"th.join()",
		))
		require.Equal(t, "1", getKey(t, c, "from_thread"))
		s.WaitLog(t, "GEARS: thread-log-4d2e", 5*time.Second)
	})

	t.Run("thread outliving the script", func(t *testing.T) {
		requirePyOK(t, c, py(
			"import threading, time",
			"def later():",
			"    time.sleep(0.3)",
			"    execute('SET','late_thread','1')",
			"threading.Thread(target=later).start()",
		))
		eventually(t, 10*time.Second, func() bool {
			v, err := c.Get(bg(), "late_thread").Result()
			return err == nil && v == "1"
		}, "the thread that outlived its script never set its key")
		requireAlive(t, s)
		requirePyOK(t, c, "pass")
	})

	t.Run("daemon thread is refused", func(t *testing.T) {
		requirePyErr(t, c, py(
			"import threading",
			"threading.Thread(target=lambda: None, daemon=True).start()",
		))
		requireAlive(t, s)
		requirePyOK(t, c, "pass")
	})

	t.Run("many threads calling execute", func(t *testing.T) {
		requirePyOK(t, c, py(
			"import threading",
			"def work():",
			"    for _ in range(200):",
			"        execute('INCR','thread_counter')",
			"ths = [threading.Thread(target=work) for _ in range(4)]",
			"for th in ths: th.start()",
			"for th in ths: th.join()",
		))
		require.Equal(t, "800", getKey(t, c, "thread_counter"))
	})
}
