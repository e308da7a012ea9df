package tests

// Runaway code can always be stopped: a script is listed (RG.PYDUMPSCRIPTS)
// and stops on RG.ABORTEXECUTION <session> or when its client is killed; a
// blocking run() is listed and abortable like any execution; time.sleep()
// does not delay an abort; Python that keeps the Redis lock past
// busy-reply-threshold gets other clients BUSY instead of a frozen server,
// RG.PYKILL stops it and SHUTDOWN NOSAVE works; ExecutionMaxTime aborts
// whatever runs longer.

import (
	"errors"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// stopBound is how long anything stopped may take to end: far above what it
// takes (about one watchdog tick, 50 ms), so that a loaded machine does not
// fail the test, and far below "never".
const stopBound = 3 * time.Second

// async runs fn on its own client and returns its reply when it comes.
func async(s *server, fn func(c *redis.Client) (any, error)) <-chan error {
	out := make(chan error, 1)
	c := s.NewClient(func(o *redis.Options) { o.ReadTimeout = 60 * time.Second })
	go func() {
		defer c.Close()
		_, err := fn(c)
		out <- err
	}()
	return out
}

func waitErr(t *testing.T, ch <-chan error, within time.Duration, what string) error {
	t.Helper()
	select {
	case err := <-ch:
		return err
	case <-time.After(within):
		t.Fatalf("%s did not end within %v", what, within)
		return nil
	}
}

// scriptsRunning is RG.PYDUMPSCRIPTS, as field maps.
func scriptsRunning(t *testing.T, c *redis.Client) []map[string]any {
	t.Helper()
	var out []map[string]any
	for _, e := range c.Do(bg(), "RG.PYDUMPSCRIPTS").Val().([]any) {
		out = append(out, regPairs(t, e, "RG.PYDUMPSCRIPTS entry"))
	}
	return out
}

func waitScript(t *testing.T, c *redis.Client, session string) map[string]any {
	t.Helper()
	var found map[string]any
	eventually(t, 10*time.Second, func() bool {
		for _, e := range scriptsRunning(t, c) {
			if e["session"] == session && e["runningMS"].(int64) > 0 {
				found = e
				return true
			}
		}
		return false
	}, "script %s is not listed", session)
	return found
}

func TestScriptsAreListedAndAbortable(t *testing.T) {
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, mode.opts...)
			c := s.Client
			for _, script := range []string{"while True: pass", "import time\ntime.sleep(3600)"} {
				done := async(s, func(c *redis.Client) (any, error) { return pyexec(c, script, "ID", "runaway") })
				e := waitScript(t, c, "runaway")
				require.Equal(t, "default", e["user"])
				require.Equal(t, "running", e["status"])
				start := time.Now()
				exRequireOK(t, c, "RG.ABORTEXECUTION", "runaway")
				err := waitErr(t, done, stopBound, "the aborted script")
				t.Logf("%q stopped %v after RG.ABORTEXECUTION", script, time.Since(start))
				requireErrText(t, "Execution was aborted", err)
				require.Empty(t, scriptsRunning(t, c))
			}

			// Killing its client stops it too.
			done := async(s, func(c *redis.Client) (any, error) { return pyexec(c, "while True: pass", "ID", "orphan") })
			e := waitScript(t, c, "orphan")
			require.NoError(t, c.Do(bg(), "CLIENT", "KILL", "ID", strconv.FormatInt(e["client"].(int64), 10)).Err())
			require.Error(t, waitErr(t, done, stopBound, "the killed client"))
			eventually(t, stopBound, func() bool { return len(scriptsRunning(t, c)) == 0 && infoRG(t, c, "rg_scripts_running") == 0 },
				"the script of a killed client still runs")

			// Another user may not abort it.
			u3 := aclUser(t, s, "u3", "~*", "+@all", "-@admin", "-@dangerous")
			done = async(s, func(c *redis.Client) (any, error) { return pyexec(c, "while True: pass", "ID", "mine") })
			waitScript(t, c, "mine")
			err := u3.Do(bg(), "RG.ABORTEXECUTION", "mine").Err()
			require.Error(t, err)
			require.Contains(t, err.Error(), "NOPERM")
			exRequireOK(t, c, "RG.ABORTEXECUTION", "mine")
			requireErrText(t, "Execution was aborted", waitErr(t, done, stopBound, "the aborted script"))
			requireAlive(t, s)
		})
	}
}

// A blocking run() is listed while it runs and stops on RG.ABORTEXECUTION
// or when its client leaves, even asleep in a step.
func TestBlockingRunIsListedAndAbortable(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	script := "import time\nGB('ShardsIDReader').foreach(lambda r: time.sleep(3600)).run()"
	var reply any
	done := async(s, func(c *redis.Client) (r any, err error) { reply, err = pyexec(c, script); return reply, err })
	var id string
	eventually(t, 10*time.Second, func() bool { return listedRunning(t, c, &id) }, "RG.DUMPEXECUTIONS does not list the blocking run()")
	exRequireOK(t, c, "RG.ABORTEXECUTION", id)
	require.NoError(t, waitErr(t, done, stopBound, "the aborted run()"))
	require.Equal(t, []any{[]any{}, []any{"Execution was aborted"}}, reply)
	eventually(t, stopBound, func() bool { return len(gbDumpExecutions(t, c)) == 0 }, "the blocking run() is still listed")

	// Its client leaves: it is aborted.
	other := s.NewClient()
	done = async(s, func(c *redis.Client) (any, error) {
		id, _ := c.Do(bg(), "CLIENT", "ID").Int64()
		other.Set(bg(), "client", id, 0)
		return pyexec(c, script)
	})
	eventually(t, 10*time.Second, func() bool { return listedRunning(t, c, &id) }, "RG.DUMPEXECUTIONS does not list the blocking run()")
	require.NoError(t, c.Do(bg(), "CLIENT", "KILL", "ID", getKey(t, c, "client")).Err())
	require.Error(t, waitErr(t, done, stopBound, "the killed client"))
	// Done (a blocking run()'s execution is dropped once done), long before
	// its hour of sleep.
	eventually(t, stopBound, func() bool { return len(gbDumpExecutions(t, c)) == 0 }, "the run() of a killed client still runs")
	other.Close()
}

// listedRunning finds a running execution in RG.DUMPEXECUTIONS.
func listedRunning(t *testing.T, c *redis.Client, id *string) bool {
	t.Helper()
	for _, e := range gbDumpExecutions(t, c) {
		f := regPairs(t, e, "RG.DUMPEXECUTIONS entry")
		if f["status"] == "running" {
			*id = f["executionId"].(string)
			return true
		}
	}
	return false
}

// Python that keeps the Redis lock: past busy-reply-threshold other clients
// get BUSY, RG.PYKILL stops it, and the server serves on.
func TestBusyPythonUnderTheLockCanBeKilled(t *testing.T) {
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, mode.opts...)
			c := s.Client
			require.NoError(t, c.ConfigSet(bg(), "busy-reply-threshold", "300").Err())
			err := c.Do(bg(), "RG.PYKILL").Err()
			require.Error(t, err)
			require.True(t, strings.HasPrefix(err.Error(), "NOTBUSY"), err.Error())

			requirePyOK(t, c, "GB().foreach(lambda r: exec('while True: pass')).register('sl:*', mode='sync')")
			requirePyOK(t, c, "GB('CommandReader').map(lambda a: exec('import time\\nwhile True: time.sleep(1)')).register(trigger='spin', mode='sync')")
			requirePyOK(t, c, "GB('CommandReader').map(lambda a: call_next(*a[1:]) if exec('while True: pass') else 0).register(hook='hset', mode='sync')")
			cases := []struct {
				name string
				cmd  []any
				done func(error)
			}{
				{"sync registration", []any{"SET", "sl:1", "x"}, func(err error) { require.NoError(t, err) }},
				{"sync trigger asleep", []any{"RG.TRIGGER", "spin"}, func(err error) {
					requireErrText(t, "Execution was aborted: stopped by RG.PYKILL", err)
				}},
				{"command hook", []any{"HSET", "h", "f", "v"}, func(err error) { require.Error(t, err) }},
				{"atomic block", []any{"RG.PYEXECUTE", "with atomic():\n    while True: pass"}, func(err error) {
					requireErrText(t, "Execution was aborted", err)
				}},
			}
			for _, tc := range cases {
				done := async(s, func(c *redis.Client) (any, error) { return c.Do(bg(), tc.cmd...).Result() })
				// Other clients are answered BUSY, not left waiting.
				var busy error
				eventually(t, 10*time.Second, func() bool {
					busy = s.NewClient().Ping(bg()).Err()
					return busy != nil
				}, "%s: PING is answered while it runs", tc.name)
				require.True(t, strings.HasPrefix(busy.Error(), "BUSY"), "%s: %v", tc.name, busy)
				require.Contains(t, busy.Error(), "RG.PYKILL")
				start := time.Now()
				exRequireOK(t, c, "RG.PYKILL")
				tc.done(waitErr(t, done, stopBound, tc.name))
				t.Logf("%s stopped %v after RG.PYKILL", tc.name, time.Since(start))
				requireAlive(t, s)
			}
			data := regDataOf(t, c)
			require.Equal(t, "Execution was aborted: stopped by RG.PYKILL", data[0]["lastError"])
			require.Zero(t, c.Exists(bg(), "h").Val(), "the hooked HSET ran")
		})
	}
}

// Code inside one long C call cannot be interrupted: RG.PYKILL says so, the
// server still answers BUSY, and SHUTDOWN NOSAVE ends it cleanly.
func TestUninterruptibleCodeEndsWithShutdownNoSave(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.NoError(t, c.ConfigSet(bg(), "busy-reply-threshold", "300").Err())
	requirePyOK(t, c, "GB().foreach(lambda r: any(iter(int, 1))).register('cl:*', mode='sync')")
	async(s, func(c *redis.Client) (any, error) { return c.Set(bg(), "cl:1", "x", 0).Result() })
	eventually(t, 10*time.Second, func() bool { return c.Ping(bg()).Err() != nil }, "PING is answered while it runs")
	exRequireOK(t, c, "RG.PYKILL")
	time.Sleep(1200 * time.Millisecond)
	err := c.Do(bg(), "RG.PYKILL").Err()
	require.Error(t, err)
	require.True(t, strings.HasPrefix(err.Error(), "UNKILLABLE"), err.Error())
	err = c.Do(bg(), "SHUTDOWN").Err()
	require.Error(t, err, "SHUTDOWN without NOSAVE is refused while busy, as for Lua")
	s.stopped = true
	c.Do(bg(), "SHUTDOWN", "NOSAVE")
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("SHUTDOWN NOSAVE did not end the server")
	}
	require.True(t, s.cmd.ProcessState.Exited(), "the server ended by %v", s.cmd.ProcessState)
	require.Zero(t, s.cmd.ProcessState.ExitCode())
	require.NotContains(t, s.Log(), "crashed by signal")
}

// ExecutionMaxTime aborts scripts, executions and registrations' runs that
// run longer, saying why.
func TestExecutionMaxTime(t *testing.T) {
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			s := startServer(t, append(mode.opts, withModuleArgs("ExecutionMaxTime", "300"))...)
			c := s.Client
			const reason = "Execution was aborted: it ran longer than ExecutionMaxTime (300 ms)"
			requireErrText(t, reason, errors.New(requirePyErr(t, c, "while True: pass")))
			requireErrText(t, reason, errors.New(requirePyErr(t, c, "import time\ntime.sleep(3600)")))
			_, errs := gbRun(t, c, "GB('ShardsIDReader').foreach(lambda r: exec('while True: pass')).run()")
			require.Equal(t, []string{reason}, errs)

			requirePyOK(t, c, "GB().foreach(lambda r: exec('while True: pass')).register('sync:*', mode='sync')")
			requirePyOK(t, c, "GB().foreach(lambda r: __import__('time').sleep(3600)).register('async:*')")
			requirePyOK(t, c, "GB('CommandReader').map(lambda a: exec('while True: pass')).register(trigger='spin', mode='sync')")
			require.NoError(t, c.Set(bg(), "sync:1", "x", 0).Err())
			require.NoError(t, c.Set(bg(), "async:1", "x", 0).Err())
			requireErrText(t, reason, c.Do(bg(), "RG.TRIGGER", "spin").Err())
			eventually(t, 10*time.Second, func() bool {
				for _, d := range regDataOf(t, c) {
					if d["lastError"] != reason {
						return false
					}
				}
				return true
			}, "a registration's run was not aborted by ExecutionMaxTime")

			// Off by default, and settable at runtime.
			require.Equal(t, []any{"OK"}, c.Do(bg(), "RG.CONFIGSET", "ExecutionMaxTime", "0").Val())
			requirePyOK(t, c, "import time\ntime.sleep(0.5)")
			requireAlive(t, s)
		})
	}
}

// The server survives being stopped while Python keeps it busy (SIGTERM is
// left for when the code ends, as Redis does for a busy script).
func TestSigtermWhileBusyWaitsForTheCodeToStop(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.NoError(t, c.ConfigSet(bg(), "busy-reply-threshold", "200").Err())
	requirePyOK(t, c, "GB().foreach(lambda r: exec('while True: pass')).register('sl:*', mode='sync')")
	async(s, func(c *redis.Client) (any, error) { return c.Set(bg(), "sl:1", "x", 0).Result() })
	eventually(t, 10*time.Second, func() bool { return c.Ping(bg()).Err() != nil }, "PING is answered while it runs")
	require.NoError(t, s.cmd.Process.Signal(syscall.SIGTERM))
	time.Sleep(300 * time.Millisecond)
	exRequireOK(t, c, "RG.PYKILL")
	// SIGTERM then takes effect: the server saves nothing (--save "") and exits.
	s.stopped = true
	select {
	case <-s.exited:
	case <-time.After(10 * time.Second):
		t.Fatal("SIGTERM was lost")
	}
	require.NotContains(t, s.Log(), "crashed by signal")
}
