package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Forking (BGSAVE, BGREWRITEAOF) while a script runs and calls execute().
func TestForkDuringScript(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	runner := s.NewClient()
	t.Cleanup(func() { runner.Close() })
	done := make(chan error, 1)
	go func() {
		res, err := pyexec(runner, py(
			"import time",
			"end = time.time() + 2",
			"i = 0",
			"while time.time() < end:",
			"    i += 1",
			"    if i % 10000 == 0:",
			"        execute('INCR','c')",
			"execute('SET','fork_script_done','1')",
		))
		if err == nil && res != "OK" {
			err = fmt.Errorf("script replied %v", res)
		}
		done <- err
	}()
	eventually(t, 10*time.Second, func() bool {
		n, err := c.Exists(bg(), "c").Result()
		return err == nil && n == 1
	}, "the script never incremented c")

	require.NoError(t, c.BgSave(bg()).Err())
	eventually(t, 20*time.Second, func() bool {
		return infoFields(t, c, "persistence")["rdb_bgsave_in_progress"] == "0"
	}, "BGSAVE did not finish")
	require.Equal(t, "ok", infoFields(t, c, "persistence")["rdb_last_bgsave_status"])

	require.NoError(t, c.BgRewriteAOF(bg()).Err())
	eventually(t, 20*time.Second, func() bool {
		f := infoFields(t, c, "persistence")
		return f["aof_rewrite_in_progress"] == "0" && f["aof_rewrite_scheduled"] == "0"
	}, "BGREWRITEAOF did not finish")
	require.Equal(t, "ok", infoFields(t, c, "persistence")["aof_last_bgrewrite_status"])

	select {
	case err := <-done:
		require.NoError(t, err)
	case <-time.After(30 * time.Second):
		t.Fatal("the script did not return")
	}
	require.Equal(t, "1", getKey(t, c, "fork_script_done"))
	n, err := strconv.Atoi(getKey(t, c, "c"))
	require.NoError(t, err)
	require.Positive(t, n)
	requireAlive(t, s)
}

// Interpreters of finished scripts are destroyed.
func TestInterpretersAreReclaimed(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	// Baseline once the pool is filled: the ready count stopped changing.
	stable, last := 0, int64(-1)
	eventually(t, 10*time.Second, func() bool {
		r := infoRG(t, c, "rg_ready_interpreters")
		if r == last {
			stable++
		} else {
			stable, last = 0, r
		}
		return stable >= 5
	}, "rg_ready_interpreters never settled")
	baseline := infoRG(t, c, "rg_live_interpreters")
	require.Positive(t, baseline)

	for i := 0; i < 200; i++ {
		res, err := pyexec(c, "x=1")
		require.NoError(t, err, "call %d", i)
		require.Equal(t, "OK", res, "call %d", i)
	}

	// Every live interpreter is a ready one again (the pool may have grown
	// while the calls drained it, up to 4 times its size).
	var live, sessions int64
	eventually(t, 10*time.Second, func() bool {
		live = infoRG(t, c, "rg_live_interpreters")
		sessions = infoRG(t, c, "rg_sessions")
		return live == infoRG(t, c, "rg_ready_interpreters") && live <= 4*baseline && sessions == 0
	}, "interpreters or sessions leak")
	requireAlive(t, s)
}

func TestInfoAndStats(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "import json")

	t.Run("info rg", func(t *testing.T) {
		f := infoFields(t, c, "rg")
		for _, name := range []string{"rg_live_interpreters", "rg_ready_interpreters", "rg_sessions", "rg_python_memory"} {
			v, ok := f[name]
			require.True(t, ok, "INFO rg lacks %s: %v", name, f)
			_, err := strconv.ParseInt(v, 10, 64)
			require.NoError(t, err, "%s = %q", name, v)
		}
		require.Positive(t, infoRG(t, c, "rg_python_memory"))
	})

	t.Run("info everything includes rg", func(t *testing.T) {
		txt, err := c.Info(bg(), "everything").Result()
		require.NoError(t, err)
		require.Contains(t, txt, "rg_python_memory:")
	})

	t.Run("pystats", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.PYSTATS").Result()
		require.NoError(t, err)
		arr, ok := res.([]any)
		require.True(t, ok, "RG.PYSTATS replied %#v", res)
		require.Len(t, arr, 6)
		require.Equal(t, "TotalAllocated", arr[0])
		require.Equal(t, "PeakAllocated", arr[2])
		require.Equal(t, "CurrAllocated", arr[4])
		total, ok0 := arr[1].(int64)
		peak, ok1 := arr[3].(int64)
		cur, ok2 := arr[5].(int64)
		require.True(t, ok0 && ok1 && ok2, "values must be integers: %#v", arr)
		require.Positive(t, cur)
		require.GreaterOrEqual(t, peak, cur)
		require.GreaterOrEqual(t, total, peak)
	})

	t.Run("pystats arity", func(t *testing.T) {
		_, err := c.Do(bg(), "RG.PYSTATS", "extra").Result()
		require.Error(t, err)
		require.Contains(t, err.Error(), "wrong number of arguments")
	})
}

func TestModuleListAndUnload(t *testing.T) {
	t.Parallel()
	s := startServer(t, withServerArgs("--enable-module-command", "yes"))
	c := s.Client

	hasRG := func() bool {
		res, err := c.Do(bg(), "MODULE", "LIST").Result()
		require.NoError(t, err)
		mods, ok := res.([]any)
		require.True(t, ok, "MODULE LIST replied %#v", res)
		for _, m := range mods {
			fields, ok := m.([]any)
			require.True(t, ok)
			for i := 0; i+1 < len(fields); i += 2 {
				if fields[i] == "name" && fields[i+1] == "rg" {
					return true
				}
			}
		}
		return false
	}
	require.True(t, hasRG(), "MODULE LIST has no module named rg")

	_, err := c.Do(bg(), "MODULE", "UNLOAD", "rg").Result()
	require.Error(t, err, "MODULE UNLOAD rg must be refused")
	requireAlive(t, s)
	require.True(t, hasRG(), "rg is gone after a refused unload")
	requirePyOK(t, c, "execute('SET','after_unload','1')")
	require.Equal(t, "1", getKey(t, c, "after_unload"))
}

func TestConfigCommands(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("get core key", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.CONFIGGET", "MaxExecutions").Result()
		require.NoError(t, err)
		require.Equal(t, []any{int64(1000)}, res)
	})

	t.Run("set unknown key", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.CONFIGSET", "foo", "bar").Result()
		require.NoError(t, err)
		require.Equal(t, []any{"OK - value was saved in extra config dictionary"}, res)
		res, err = c.Do(bg(), "RG.CONFIGGET", "foo").Result()
		require.NoError(t, err)
		require.Equal(t, []any{"bar"}, res)
	})

	t.Run("get unknown key", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.CONFIGGET", "nosuch").Result()
		require.NoError(t, err)
		arr, ok := res.([]any)
		require.True(t, ok, "RG.CONFIGGET replied %#v", res)
		require.Len(t, arr, 1)
		e, ok := arr[0].(error)
		require.True(t, ok, "entry must be an error, got %#v", arr[0])
		require.Contains(t, e.Error(), "Unsupported config parameter: nosuch")
	})

	t.Run("mixed", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.CONFIGGET", "nosuch", "MaxExecutions").Result()
		require.NoError(t, err)
		arr := res.([]any)
		require.Len(t, arr, 2)
		_, isErr := arr[0].(error)
		require.True(t, isErr)
		require.Equal(t, int64(1000), arr[1])
	})

	t.Run("set core key", func(t *testing.T) {
		res, err := c.Do(bg(), "RG.CONFIGSET", "MaxExecutions", "10").Result()
		require.NoError(t, err)
		require.Equal(t, []any{"OK"}, res)
		res, err = c.Do(bg(), "RG.CONFIGGET", "MaxExecutions").Result()
		require.NoError(t, err)
		require.Equal(t, []any{int64(10)}, res)
	})

	t.Run("arity", func(t *testing.T) {
		_, err := c.Do(bg(), "RG.CONFIGGET").Result()
		require.Error(t, err)
		require.Contains(t, err.Error(), "wrong number of arguments")
		_, err = c.Do(bg(), "RG.CONFIGSET").Result()
		require.Error(t, err)
		require.Contains(t, err.Error(), "wrong number of arguments")
	})
}

// A slow script shows in SLOWLOG with its command line.
func TestSlowlog(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	require.NoError(t, c.ConfigSet(bg(), "slowlog-log-slower-than", "10000").Err())
	require.NoError(t, c.Do(bg(), "SLOWLOG", "RESET").Err())
	requirePyOK(t, c, "import time; time.sleep(0.05)")

	logs, err := c.SlowLogGet(bg(), 128).Result()
	require.NoError(t, err)
	found := false
	for _, l := range logs {
		if len(l.Args) > 0 && strings.EqualFold(l.Args[0], "RG.PYEXECUTE") {
			found = true
			require.GreaterOrEqual(t, l.Duration, 10*time.Millisecond)
		}
	}
	require.True(t, found, "SLOWLOG has no RG.PYEXECUTE entry: %+v", logs)
}

// execute() runs with the permissions of the user who sent RG.PYEXECUTE.
func TestACL(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := s.Client
	require.NoError(t, admin.Do(bg(), "ACL", "SETUSER", "limited", "on", ">pw", "~allowed:*", "+@all").Err())

	limited := s.NewClient(func(o *redis.Options) {
		o.Username = "limited"
		o.Password = "pw"
	})
	t.Cleanup(func() { limited.Close() })
	require.NoError(t, limited.Ping(bg()).Err())

	requirePyOK(t, limited, "execute('SET','allowed:1','x')")
	require.Equal(t, "x", getKey(t, admin, "allowed:1"))

	msg := requirePyErr(t, limited, "execute('SET','forbidden','x')")
	require.Contains(t, msg, "NOPERM")
	n, err := admin.Exists(bg(), "forbidden").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the forbidden key was written")
	requireAlive(t, s)

	// A thread that outlives its script still runs as the script's user.
	requirePyOK(t, limited, py(
		"import threading, time",
		"def later():",
		"    time.sleep(0.2)",
		"    try:",
		"        execute('SET','forbidden_late','x')",
		"        r = 'written'",
		"    except Exception as e:",
		"        r = str(e)",
		"    execute('SET','allowed:late', r)",
		"threading.Thread(target=later).start()",
	))
	var late string
	eventually(t, 10*time.Second, func() bool {
		v, err := admin.Get(bg(), "allowed:late").Result()
		late = v
		return err == nil
	}, "the thread never reported")
	require.Contains(t, late, "NOPERM")
	n, err = admin.Exists(bg(), "forbidden_late").Result()
	require.NoError(t, err)
	require.Zero(t, n, "the thread wrote the forbidden key")

	// The default user is unrestricted.
	requirePyOK(t, admin, "execute('SET','forbidden_admin','x')")
}

// execute() obeys maxmemory like a client does.
func TestMaxmemory(t *testing.T) {
	t.Parallel()
	s := startServer(t, withServerArgs("--maxmemory", "1mb", "--maxmemory-policy", "noeviction"))
	c := s.Client

	// k may already be refused if the empty server is near the limit.
	_ = c.Set(bg(), "k", "v", 0).Err()
	big := strings.Repeat("x", 100*1024)
	oom := false
	for i := 0; i < 200 && !oom; i++ {
		err := c.Set(bg(), fmt.Sprintf("fill:%d", i), big, 0).Err()
		if err != nil {
			require.Contains(t, err.Error(), "OOM")
			oom = true
		}
	}
	require.True(t, oom, "could not fill memory")

	msg := requirePyErr(t, c, "execute('SET','more','x')")
	require.Contains(t, msg, "OOM")
	n, err := c.Exists(bg(), "more").Result()
	require.NoError(t, err)
	require.Zero(t, n)

	requirePyOK(t, c, "execute('GET','k')")
	requirePyOK(t, c, "execute('DBSIZE')")
	requireAlive(t, s)
}
