package tests

// Python's memory has a limit (MaxPythonMemory) above which allocations
// fail with MemoryError and the server lives on; every configuration value
// is bounded.

import (
	"bufio"
	"fmt"
	"os"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The reproductions, on the default limit: allocations far beyond
// the machine's memory fail at once.
func TestHugeAllocationsFailWithMemoryError(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	limit := c.Do(bg(), "RG.CONFIGGET", "MaxPythonMemory").Val().([]any)[0].(int64)
	total := memTotal(t)
	require.InDelta(t, float64(total/2), float64(limit), float64(total/100), "the default is half of the machine's memory")

	for _, script := range []string{"bytes(2**40)", "[0]*(2**40)", "bytearray(2**40)", "'x' * 2**40"} {
		msg := requirePyErr(t, c, script)
		require.Contains(t, msg, "MemoryError: Python's memory would exceed MaxPythonMemory", script)
	}
	results, errs := gbRun(t, c, "GB('ShardsIDReader').map(lambda x: [0]*(2**40)).run()")
	require.Empty(t, results)
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], "MemoryError")
	require.Positive(t, infoRG(t, c, "rg_python_memory_refused"))
	requirePyOK(t, c, "execute('SET', 'after', str(len(bytes(10**7))))")
	require.Equal(t, "10000000", getKey(t, c, "after"))
}

// Memory filled little by little up to a low limit: the script that does it
// gets MemoryError, other sessions go on meanwhile (or get MemoryError
// themselves), and everything works again once it is freed.
func TestFillingPythonMemoryToTheLimit(t *testing.T) {
	for _, mode := range isolationModes {
		t.Run(mode.name, func(t *testing.T) {
			t.Parallel()
			const limit = 256 << 20
			s := startServer(t, append(mode.opts, withModuleArgs("MaxPythonMemory", strconv.Itoa(limit)))...)
			c := s.Client
			for range 3 {
				msg := requirePyErr(t, c, "l = []\nwhile True: l.append(object())")
				require.Contains(t, msg, "MemoryError")
			}
			// A session's memory goes with its interpreter, after the reply.
			eventually(t, 20*time.Second, func() bool { return infoRG(t, c, "rg_python_memory") < limit/2 }, "the scripts' memory is freed")
			// A registration whose events fill memory and hold it a while.
			requirePyOK(t, c, py(
				"import time",
				"def hog(r):",
				"    l = []",
				"    try:",
				"        while True: l.append(bytes(1000))",
				"    except MemoryError:",
				"        execute('INCR', 'hogs')",
				"        time.sleep(0.3)",
				"GB().foreach(hog).register('hog:*')",
			))
			var wg sync.WaitGroup
			wg.Add(1)
			go func() {
				defer wg.Done()
				for i := range 5 {
					c.Set(bg(), "hog:"+strconv.Itoa(i), "x", 0)
				}
			}()
			other := s.NewClient()
			defer other.Close()
			deadline := time.Now().Add(2 * time.Second)
			for time.Now().Before(deadline) {
				res, err := pyexec(other, "execute('INCR', 'others')")
				if err != nil {
					require.Contains(t, err.Error(), "MemoryError", "a script failed otherwise than by the limit")
				} else {
					require.Equal(t, "OK", res)
				}
			}
			wg.Wait()
			eventually(t, 20*time.Second, func() bool { return c.Get(bg(), "hogs").Val() == "5" }, "every hog hit the limit")
			eventually(t, 20*time.Second, func() bool { return infoRG(t, c, "rg_python_memory") < limit/2 }, "the hogs' memory is freed")
			requirePyOK(t, c, "execute('SET', 'after', 'ok')")
			require.Equal(t, "ok", getKey(t, c, "after"))
			require.LessOrEqual(t, infoRG(t, c, "rg_python_memory_peak"), int64(limit+16<<20), "the limit held (give or take interpreters)")
		})
	}
}

// The limit can be changed at runtime, and is refused below a floor.
func TestMaxPythonMemoryAtRuntime(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	res := c.Do(bg(), "RG.CONFIGSET", "MaxPythonMemory", "1000").Val().([]any)
	require.Contains(t, res[0], "Failed setting config value MaxPythonMemory")
	require.Equal(t, []any{"OK"}, c.Do(bg(), "RG.CONFIGSET", "MaxPythonMemory", strconv.Itoa(100<<20)).Val())
	require.Contains(t, requirePyErr(t, c, "x = bytes(200 * 2**20)"), "MaxPythonMemory (104857600 bytes")
	require.Equal(t, []any{"OK"}, c.Do(bg(), "RG.CONFIGSET", "MaxPythonMemory", strconv.Itoa(400<<20)).Val())
	requirePyOK(t, c, "x = bytes(200 * 2**20)")
}

// Every key is bounded: the pool of 100,000 interpreters is refused
// and RSS stays where it was.
func TestConfigValuesAreBounded(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	rss := func() int64 { return vmRSS(t, s) }
	before := rss()
	for _, kv := range [][2]string{
		{"InterpreterPoolSize", "100000"}, {"InterpreterPoolSize", "-1"},
		{"MaxExecutions", "0"}, {"MaxExecutions", "9223372036854775807"},
		{"MaxExecutionsPerRegistration", "100000000"}, {"ExecutionMaxIdleTime", "0"},
		{"SendMsgRetries", "1000000"}, {"PythonInstallReqMaxIdleTime", "0"},
		{"ExecutionMaxTime", "-5"}, {"MaxPythonMemory", "-1"},
	} {
		res := c.Do(bg(), "RG.CONFIGSET", kv[0], kv[1]).Val().([]any)
		require.Len(t, res, 1)
		require.Contains(t, res[0], "(error) Failed setting config value", "%s %s", kv[0], kv[1])
	}
	require.Equal(t, []any{int64(2), int64(1000)}, c.Do(bg(), "RG.CONFIGGET", "InterpreterPoolSize", "MaxExecutions").Val())
	time.Sleep(500 * time.Millisecond)
	require.Less(t, rss(), before+50<<20, "RSS grew after a refused value")
	require.Equal(t, []any{"OK"}, c.Do(bg(), "RG.CONFIGSET", "InterpreterPoolSize", "32").Val())

	// At load, a bad value stops the module from loading, with the reason.
	dir := t.TempDir()
	_, err := launch(t, dir, gearsModule(t), 0, nil, []string{"PythonHomeDir", sharedPythonHome(t), "ExecutionThreads", "100000"})
	require.Error(t, err)
	require.Contains(t, tailFile(dir+"/redis.log", 20), "ExecutionThreads: invalid value \"100000\" (an integer from 1 to 128)")
}

func memTotal(t *testing.T) int64 {
	t.Helper()
	f, err := os.Open("/proc/meminfo")
	require.NoError(t, err)
	defer f.Close()
	sc := bufio.NewScanner(f)
	for sc.Scan() {
		if fields := strings.Fields(sc.Text()); len(fields) >= 2 && fields[0] == "MemTotal:" {
			kb, err := strconv.ParseInt(fields[1], 10, 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatal("no MemTotal in /proc/meminfo")
	return 0
}

// vmRSS is the server's resident memory in bytes.
func vmRSS(t *testing.T, s *server) int64 {
	t.Helper()
	b, err := os.ReadFile("/proc/" + strconv.Itoa(s.cmd.Process.Pid) + "/status")
	require.NoError(t, err)
	for _, line := range strings.Split(string(b), "\n") {
		if rest, ok := strings.CutPrefix(line, "VmRSS:"); ok {
			kb, err := strconv.ParseInt(strings.TrimSpace(strings.TrimSuffix(strings.TrimSpace(rest), "kB")), 10, 64)
			require.NoError(t, err)
			return kb * 1024
		}
	}
	t.Fatal("no VmRSS")
	return 0
}

// Registrations that trigger each other through their own writes stop at a
// depth of 16 events instead of running for ever. (A sync registration's
// writes inside a keyspace event fire nothing: Redis does not notify a
// module inside its own notification.)
func TestSelfTriggeringRegistrationsStop(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	for _, mode := range []string{"async_local", "async"} {
		key := "loop" + mode + ":n"
		requirePyOK(t, c, "GB().foreach(lambda r: execute('INCR', r['key'])).register('"+key+"', mode='"+mode+"', eventTypes=['incrby'])")
		// The client's INCR, then one by each of 16 executions.
		require.NoError(t, c.Incr(bg(), key).Err())
		eventually(t, 10*time.Second, func() bool { return c.Get(bg(), key).Val() == "17" }, "%s: the chain did not reach 17", mode)
		time.Sleep(200 * time.Millisecond)
		require.Equal(t, "17", c.Get(bg(), key).Val(), "%s: the chain went on", mode)
	}
	// The dropped event counts as a failure (its error is lastError until
	// the execution that caused it succeeds: a success clears it, as in
	// RedisGears).
	for _, data := range regDataOf(t, c) {
		require.Equal(t, int64(1), data["numFailures"])
	}
	s.WaitLog(t, "events ran nothing: registrations triggered by each other's writes nested 16 deep", 5*time.Second)
}

// Beyond MaxQueuedExecutions waiting executions, events are refused (and
// counted) instead of growing memory without end.
func TestQueuedExecutionsAreBounded(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("MaxQueuedExecutions", "1000"))
	c := s.Client
	// Three registrations each triggering all three: 3^16 events.
	for range 3 {
		requirePyOK(t, c, "GB().foreach(lambda r: execute('INCR', 'fan:n')).register('fan:*', mode='async_local')")
	}
	require.NoError(t, c.Set(bg(), "fan:1", "x", 0).Err())
	eventually(t, 20*time.Second, func() bool {
		for _, data := range regDataOf(t, c) {
			if strings.HasPrefix(fmt.Sprint(data["lastError"]), "event dropped: ") {
				return true
			}
		}
		return false
	}, "no event was refused")
	for range 20 {
		// Queued ones, plus finished ones kept for RG.DUMPEXECUTIONS.
		require.LessOrEqual(t, infoRG(t, c, "rg_nexecutions"), int64(2*(1000+3*100)), "executions beyond the limit")
		requireAlive(t, s)
		time.Sleep(50 * time.Millisecond)
	}
	for _, r := range regDump(t, c) {
		exRequireOK(t, c, "RG.UNREGISTER", r.ID)
	}
	eventually(t, 30*time.Second, func() bool { return infoRG(t, c, "rg_nexecutions") == 0 }, "the queue drains")
	require.Equal(t, []any{"OK"}, c.Do(bg(), "RG.CONFIGSET", "MaxQueuedExecutions", "100000").Val())
}
