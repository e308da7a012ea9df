package tests

import (
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// The default mode refuses single-phase C extensions and says what to do.
func TestIsolationModeSubinterpreterNamesTheWayOut(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	msg := requirePyErr(t, c, "import _testsinglephase")
	require.Contains(t, msg, "module _testsinglephase does not support loading in subinterpreters", "CPython's text is kept")
	require.Contains(t, msg, "IsolationMode shared")

	requirePyOK(t, c, "import _testmultiphase")
	msg = requirePyErr(t, c, "import gears_no_such_module")
	require.Contains(t, msg, "No module named 'gears_no_such_module'")
	require.NotContains(t, msg, "IsolationMode", "other import errors are left alone")
}

func startShared(t *testing.T, opts ...serverOpt) *server {
	return startServer(t, append(opts, withModuleArgs("IsolationMode", "shared"))...)
}

// IsolationMode shared: one interpreter, a globals dict per session.
func TestIsolationModeShared(t *testing.T) {
	t.Parallel()
	s := startShared(t)
	c := s.Client

	t.Run("config and one interpreter", func(t *testing.T) {
		v, err := c.Do(bg(), "RG.CONFIGGET", "IsolationMode").Slice()
		require.NoError(t, err)
		require.Equal(t, []any{"shared"}, v)
		requirePyOK(t, c, "pass")
		requirePyOK(t, c, "pass")
		require.Equal(t, int64(1), infoRG(t, c, "rg_live_interpreters"))
	})

	t.Run("single-phase extension loads", func(t *testing.T) {
		requirePyOK(t, c, "import _testsinglephase\nexecute('SET', 'sp', _testsinglephase.sum(1, 2))")
		require.Equal(t, "3", getKey(t, c, "sp"))
	})

	t.Run("sessions have their own globals and share modules", func(t *testing.T) {
		requirePyOK(t, c, "mine = 1\nimport json\njson.gears_marker = 'm'")
		requirePyOK(t, c, "import json\nexecute('SET', 'seen', repr(('mine' in globals(), json.gears_marker, 'execute' in globals())))")
		require.Equal(t, "(False, 'm', True)", getKey(t, c, "seen"))
		// A script deleting an API name does not take it from the next one.
		requirePyOK(t, c, "del execute")
		requirePyOK(t, c, "execute('SET', 'api', 'back')")
		require.Equal(t, "back", getKey(t, c, "api"))
	})

	t.Run("registrations keep their session's globals", func(t *testing.T) {
		for _, name := range []string{"a", "b"} {
			requirePyOK(t, c, py(
				"who = '"+name+"'",
				"def whoami(x):",
				"    return who",
				"GB('CommandReader').map(whoami).register(trigger='who_"+name+"')",
			))
		}
		for _, name := range []string{"a", "b"} {
			v, err := c.Do(bg(), "RG.TRIGGER", "who_"+name).Slice()
			require.NoError(t, err)
			require.Equal(t, []any{name}, v)
		}
	})

	t.Run("batch execution", func(t *testing.T) {
		require.NoError(t, c.Set(bg(), "batch:1", "one", 0).Err())
		res, err := pyexec(c, "GB().map(lambda r: r['key'] + '=' + r['value']).run('batch:*')")
		require.NoError(t, err)
		require.Equal(t, []any{[]any{"batch:1=one"}, []any{}}, res)
	})

	t.Run("keys registrations", func(t *testing.T) {
		requirePyOK(t, c, py(
			"seen = 0",
			"def count(r):",
			"    global seen",
			"    seen += 1",
			"    execute('SET', 'sync_seen', seen)",
			"GB().foreach(count).register('sync:*', mode='sync')",
		))
		requirePyOK(t, c, "GB().foreach(lambda r: execute('INCR', 'async_seen')).register('async:*', mode='async_local')")
		for _, k := range []string{"sync:1", "sync:2", "async:1"} {
			require.NoError(t, c.Set(bg(), k, "x", 0).Err())
		}
		require.Equal(t, "2", getKey(t, c, "sync_seen"))
		eventually(t, 10*time.Second, func() bool { return c.Get(bg(), "async_seen").Val() == "1" }, "the async_local registration never ran")
	})

	t.Run("stream registration", func(t *testing.T) {
		requirePyOK(t, c, "GB('StreamReader').foreach(lambda r: execute('SET', 'streamed', r['value']['f'])).register('st:*')")
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "st:1", Values: []any{"f", "v"}}).Err())
		eventually(t, 10*time.Second, func() bool { return c.Get(bg(), "streamed").Val() == "v" }, "the stream registration never ran")
	})

	t.Run("command hook", func(t *testing.T) {
		requirePyOK(t, c, py(
			"def stamp(r):",
			"    execute('HINCRBY', r[1], 'times', 1)",
			"    return call_next(*r[1:])",
			"GB('CommandReader').map(stamp).register(hook='hset', keyprefix='hooked:', mode='sync')",
		))
		require.NoError(t, c.HSet(bg(), "hooked:1", "f", "v").Err())
		require.Equal(t, map[string]string{"f": "v", "times": "1"}, c.HGetAll(bg(), "hooked:1").Val())
	})

	t.Run("time event", func(t *testing.T) {
		requirePyOK(t, c, "registerTE(1, lambda: execute('INCR', 'ticks'), 'te_key')")
		eventually(t, 10*time.Second, func() bool { return c.Exists(bg(), "ticks").Val() == 1 }, "the time event never fired")
		require.NoError(t, c.Del(bg(), "te_key").Err())
	})

	t.Run("upgrade", func(t *testing.T) {
		requirePyOK(t, c, "v = 'v1'\nGB('CommandReader').map(lambda x: v).register(trigger='ver')", "ID", "upg")
		requireTrigger(t, c, "ver", "v1")
		requirePyOK(t, c, "v = 'v2'\nGB('CommandReader').map(lambda x: v).register(trigger='ver')", "ID", "upg", "UPGRADE")
		requireTrigger(t, c, "ver", "v2")
		ids, err := c.Do(bg(), "RG.PYDUMPSESSIONS", "SESSIONS", "upg").Slice()
		require.NoError(t, err)
		require.Len(t, ids, 1)
	})

	t.Run("an ended session's globals and plans are dropped", func(t *testing.T) {
		probe := func(name string) string {
			return py(
				"import json",
				"class Probe:",
				"    def __del__(self):",
				"        json.gears_dropped = getattr(json, 'gears_dropped', ()) + ('"+name+"',)",
				"probe = Probe()",
			)
		}
		requirePyOK(t, c, probe("globals"))
		// The plans of a failed script hold its functions, and so its globals.
		requirePyErr(t, c, py(probe("plans"),
			"GB('CommandReader').map(lambda x: probe).register(trigger='never')",
			"GB('ShardsIDReader').map(lambda x: probe).run()",
			"raise Exception('fails after register() and run()')",
		))
		eventually(t, 10*time.Second, func() bool {
			requirePyOK(t, c, "import gc, json\ngc.collect()\nexecute('SET', 'dropped', repr(sorted(getattr(json, 'gears_dropped', ()))))")
			return getKey(t, c, "dropped") == "['globals', 'plans']"
		}, "an ended session's globals were never freed")
	})

	t.Run("profile per session", func(t *testing.T) {
		require.NoError(t, c.Do(bg(), "RG.CONFIGSET", "ProfileExecutions", "1").Err())
		defer c.Do(bg(), "RG.CONFIGSET", "ProfileExecutions", "0")
		requirePyOK(t, c, "GB('CommandReader').map(lambda x: sum(range(100))).register(trigger='prof')", "ID", "prof")
		requirePyOK(t, c, "GB('CommandReader').register(trigger='noprof')", "ID", "noprof")
		requireTrigger(t, c, "prof", "4950")
		stats, err := c.Do(bg(), "RG.PYPROFILE", "STATS", "prof").Text()
		require.NoError(t, err)
		require.Contains(t, stats, "function calls")
		require.Error(t, c.Do(bg(), "RG.PYPROFILE", "STATS", "noprof").Err(), "a session sees only its own profile")
	})

	t.Run("abort", func(t *testing.T) {
		id, err := c.Do(bg(), "RG.PYEXECUTE", py(
			"import time",
			"def spin(x):",
			"    while True:",
			"        time.sleep(0.01)",
			"GB('ShardsIDReader').map(spin).run()",
		), "UNBLOCKING").Text()
		require.NoError(t, err)
		time.Sleep(200 * time.Millisecond)
		require.NoError(t, c.Do(bg(), "RG.ABORTEXECUTION", id).Err())
		res, err := c.Do(bg(), "RG.GETRESULTSBLOCKING", id).Result()
		require.NoError(t, err)
		require.Contains(t, res.([]any)[1], "Execution was aborted")
	})

	t.Run("Python threads run as their session", func(t *testing.T) {
		requirePyOK(t, c, py(
			"import threading, _thread",
			"def work():",
			"    execute('SET', 'from_thread', '1')",
			"th = threading.Thread(target=work)",
			"th.start()",
			"th.join()",
			// A thread made without threading.Thread has no session: a clear error.
			"done = threading.Event()",
			"def raw():",
			"    try:",
			"        execute('SET', 'from_raw_thread', '1')",
			"    except Exception as e:",
			"        log(str(e))",
			"        err.append(str(e))",
			"    done.set()",
			"err = []",
			"_thread.start_new_thread(raw, ())",
			"done.wait(5)",
			"execute('SET', 'raw_thread_error', err[0] if err else '')",
		))
		require.Equal(t, "1", getKey(t, c, "from_thread"))
		require.Contains(t, getKey(t, c, "raw_thread_error"), "IsolationMode shared")
		// A thread holds its session alive after the script has ended.
		requirePyOK(t, c, py(
			"import threading, time",
			"def late():",
			"    time.sleep(0.3)",
			"    execute('SET', 'late_thread', 'ok')",
			"threading.Thread(target=late).start()",
		))
		eventually(t, 5*time.Second, func() bool { return c.Get(bg(), "late_thread").Val() == "ok" })
		require.Zero(t, c.Exists(bg(), "from_raw_thread").Val())
	})

	t.Run("execute() runs as the session's user", func(t *testing.T) {
		require.NoError(t, c.Do(bg(), "ACL", "SETUSER", "limited", "on", ">pw", "~allowed:*", "+@all").Err())
		limited := s.NewClient(func(o *redis.Options) { o.Username, o.Password = "limited", "pw" })
		t.Cleanup(func() { limited.Close() })
		requirePyOK(t, limited, "execute('SET', 'allowed:1', 'x')")
		require.Contains(t, requirePyErr(t, limited, "execute('SET', 'forbidden', 'x')"), "NOPERM")
		// A thread it starts runs as the same user.
		requirePyOK(t, limited, py(
			"import threading",
			"out = []",
			"def work():",
			"    try:",
			"        execute('SET', 'forbidden', 'x')",
			"    except Exception as e:",
			"        out.append(str(e))",
			"th = threading.Thread(target=work)",
			"th.start()",
			"th.join()",
			"execute('SET', 'allowed:thread', out[0])",
		))
		require.Contains(t, getKey(t, c, "allowed:thread"), "NOPERM")
		// A sync registration of the default user runs as that user inside
		// the limited session's execute().
		requirePyOK(t, c, "GB().foreach(lambda r: execute('SET', 'nested_write', '1')).register('allowed:nested', mode='sync')")
		requirePyOK(t, limited, "execute('SET', 'allowed:nested', 'x')\nexecute('SET', 'allowed:after', 'x')")
		require.Equal(t, "1", getKey(t, c, "nested_write"))
		require.Contains(t, requirePyErr(t, limited, "execute('SET', 'allowed:nested', 'y')\nexecute('SET', 'forbidden', 'x')"), "NOPERM",
			"the session is the limited one again after the nested registration")
	})

	requireAlive(t, s)
}

func requireTrigger(t *testing.T, c *redis.Client, trigger string, want string) {
	t.Helper()
	v, err := c.Do(bg(), "RG.TRIGGER", trigger).Slice()
	require.NoError(t, err)
	require.Equal(t, []any{want}, v)
}

// Shared mode's sessions come back from the RDB with their own globals.
func TestIsolationModeSharedDebugReload(t *testing.T) {
	t.Parallel()
	s := startShared(t)
	c := s.Client
	for _, name := range []string{"a", "b"} {
		requirePyOK(t, c, py(
			"import _testsinglephase",
			"who = '"+name+"'",
			"GB('CommandReader').map(lambda x: who + str(_testsinglephase.sum(1, 1))).register(trigger='who_"+name+"')",
		), "ID", "reload_"+name)
	}
	requirePyOK(t, c, "GB().foreach(lambda r: execute('INCR', 'reload_events')).register('rl:*', mode='sync')")
	before := registrationIDs(t, s)
	require.Len(t, before, 3)

	require.NoError(t, c.Do(bg(), "DEBUG", "RELOAD").Err())

	require.ElementsMatch(t, before, registrationIDs(t, s))
	requireTrigger(t, c, "who_a", "a2")
	requireTrigger(t, c, "who_b", "b2")
	require.NoError(t, c.Set(bg(), "rl:1", "x", 0).Err())
	require.Equal(t, "1", getKey(t, c, "reload_events"))
	requirePyOK(t, c, "GB('CommandReader').map(lambda x: 'upgraded').register(trigger='who_a')", "ID", "reload_a", "UPGRADE")
	requireTrigger(t, c, "who_a", "upgraded")
	requireTrigger(t, c, "who_b", "b2")
}
