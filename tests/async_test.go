package tests

// Async records (runtime/futures.py): gearsFuture() and coroutines as step
// callbacks, await on run(), and sync registrations that go async.

import (
	"fmt"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// Both isolation modes: every session has its own event loop either way.
func eachIsolationMode(t *testing.T, fn func(t *testing.T, s *server)) {
	for _, mode := range []string{"subinterpreter", "shared"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			fn(t, startServer(t, withModuleArgs("IsolationMode", mode)))
		})
	}
}

// A coroutine on every step that supports one; the record goes on with its
// result, in order.
func TestAsyncCoroutinesOnSteps(t *testing.T) {
	t.Parallel()
	eachIsolationMode(t, func(t *testing.T, s *server) {
		c := s.Client
		script := py(
			"import asyncio",
			"async def c(r):",
			"    await asyncio.sleep(0.05)",
			"    return r",
			"async def keep(r):",
			"    await asyncio.sleep(0.01)",
			"    return int(r) % 2 == 0",
			"async def acc(a, r):",
			"    await asyncio.sleep(0.01)",
			"    return (a or 0) + int(r)",
			"GB('PythonReader').map(c).flatmap(lambda r: [r, r]).flatmap(c).foreach(c).filter(keep).accumulate(acc).run(lambda: (str(i) for i in range(10)))",
		)
		require.Equal(t, []string{"40"}, gbRunStrings(t, c, script)) // 2*(0+2+4+6+8)
		results, errs := gbRun(t, c, py(
			"async def c(r):",
			"    return 'x%s' % r",
			"GB('PythonReader').map(c).run(lambda: iter(range(1500)))",
		))
		require.Empty(t, errs)
		require.Len(t, results, 1500)
		require.Equal(t, "x0", results[0])
		require.Equal(t, "x1499", results[1499]) // order kept past the 1000 waiting at once
		results, errs = gbRun(t, c, py(
			"async def g(k, a, r):",
			"    return (a or 0) + 1",
			"GB('PythonReader').groupby(lambda r: r % 3, g).run(lambda: iter(range(9)))",
		))
		require.Empty(t, errs)
		require.Len(t, results, 3)
		for _, r := range results {
			require.Contains(t, r, "'value': 3")
		}
	})
}

// A coroutine's exception is its record's error (its text alone); the
// other records go on.
func TestAsyncCoroutineErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	results, errs := gbRun(t, c, py(
		"import asyncio",
		"async def c(r):",
		"    await asyncio.sleep(0.01)",
		"    if r == 1:",
		"        raise Exception('one failed')",
		"    return r",
		"GB('PythonReader').map(c).run(lambda: iter(range(3)))",
	))
	require.Equal(t, []any{"0", "2"}, results)
	require.Equal(t, []string{"one failed"}, errs)

	_, errs = gbRun(t, c, py(
		"async def c(r):",
		"    return r",
		"GB('ShardsIDReader').batchgroupby(lambda x: x, lambda k, l: c(l)).run()",
	))
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], "coroutine are not allow on reduce")
	_, errs = gbRun(t, c, "async def c(r):\n    return r\nGB('ShardsIDReader').repartition(c).run()")
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], "coroutine are not allow on extractor")

	_, errs = gbRun(t, c, py(
		"import asyncio",
		"async def c(r):",
		"    with atomic():",
		"        await asyncio.sleep(0.1)",
		"GB('ShardsIDReader').map(c).run()",
	))
	require.Equal(t, []string{"await is not allow inside atomic block"}, errs)
	_, errs = gbRun(t, c, "async def c(r):\n    return call_next()\nGB('ShardsIDReader').map(c).run()")
	require.Equal(t, []string{"Can not get CommandHook ctx"}, errs)
	requireAlive(t, s)
}

// gearsFuture(): the record waits until another execution continues it;
// meanwhile the execution is running, and no thread waits for it.
func TestAsyncGearsFuture(t *testing.T) {
	t.Parallel()
	eachIsolationMode(t, func(t *testing.T, s *server) {
		c := s.Client
		requirePyOK(t, c, py(
			"waiting = []",
			"def hold(r):",
			"    f = gearsFuture()",
			"    waiting.append((f, r))",
			"    return f",
			"def release(r):",
			"    n = 0",
			"    while waiting:",
			"        f, rec = waiting.pop(0)",
			"        if r[1] == 'fail':",
			"            f.continueFailed('failed: %s' % rec[1])",
			"        else:",
			"            f.continueRun(rec[1:] if r[1] == 'flat' else rec[1])",
			"        n += 1",
			"    return n",
			"GB('CommandReader').map(hold).register(trigger='map', mode='async_local')",
			"GB('CommandReader').flatmap(hold).register(trigger='flatmap', mode='async_local')",
			"GB('CommandReader').filter(hold).register(trigger='filter', mode='async_local')",
			"GB('CommandReader').foreach(hold).map(lambda r: r[1]).register(trigger='foreach', mode='async_local')",
			"GB('CommandReader').accumulate(lambda a, r: hold(r)).register(trigger='acc', mode='async_local')",
			"GB('CommandReader').map(release).register(trigger='release')",
		))
		release := func(how string) {
			eventually(t, 10*time.Second, func() bool {
				n, err := c.Do(bg(), "RG.TRIGGER", "release", how).Slice()
				return err == nil && len(n) == 1 && n[0] != "0"
			}, "nothing waited for release")
		}
		for _, tc := range []struct {
			trigger string
			args    []any
			how     string
			want    any
		}{
			{"map", []any{"a"}, "run", []any{"a"}},
			{"flatmap", []any{"a", "b"}, "flat", []any{"b", "a"}},
			{"filter", []any{"keep"}, "run", []any{"['filter', 'keep']"}},
			{"filter", []any{""}, "run", []any{}},
			{"foreach", []any{"x"}, "run", []any{"x"}},
			{"acc", []any{"v"}, "run", []any{"v"}},
		} {
			done := async(s, func(c *redis.Client) (any, error) {
				v, err := c.Do(bg(), append([]any{"RG.TRIGGER", tc.trigger}, tc.args...)...).Result()
				if err == nil && fmt.Sprint(v) != fmt.Sprint(tc.want) {
					err = fmt.Errorf("%s replied %v, want %v", tc.trigger, v, tc.want)
				}
				return v, err
			})
			release(tc.how)
			require.NoError(t, waitErr(t, done, 10*time.Second, tc.trigger))
		}
		done := async(s, func(c *redis.Client) (any, error) { return c.Do(bg(), "RG.TRIGGER", "map", "z").Result() })
		eventually(t, 5*time.Second, func() bool {
			for _, e := range gbDumpExecutions(t, c) {
				if strings.Contains(fmt.Sprint(e), "running") {
					return true
				}
			}
			return false
		}, "the waiting execution is not listed as running")
		release("fail")
		err := waitErr(t, done, 10*time.Second, "failed map")
		require.ErrorContains(t, err, "failed: z")
	})
}

// gearsFuture()'s errors, as RedisGears words them.
func TestAsyncGearsFutureErrors(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.Contains(t, requirePyErr(t, c, "gearsFuture()"), "Future object can only be created inside certain execution steps")
	for script, want := range map[string]string{
		"GB('ShardsIDReader').map(lambda r: gearsFuture(1)).run()":                                                "Future gets no arguments",
		"GB('ShardsIDReader').repartition(lambda x: gearsFuture()).run()":                                         "Step does not support async",
		"GB('ShardsIDReader').batchgroupby(lambda x: x, lambda k, l: gearsFuture()).run()":                        "Step does not support async",
		"GB('ShardsIDReader').map(lambda r: [gearsFuture(), gearsFuture()]).run()":                                "Can not create async record twice on the same step",
		"def f(r):\n    x = gearsFuture()\n    x.continueRun(r)\n    return x\nGB('ShardsIDReader').map(f).run()": "Can not handle future untill it returned from the callback",
		"GB('ShardsIDReader').map(lambda r: gearsFuture()).run()":                                                 "Async record did not called continue",
	} {
		_, errs := gbRun(t, c, script)
		require.Len(t, errs, 1, script)
		require.Contains(t, errs[0], want, script)
	}
	// Made and not returned: the record goes on with what was returned, and
	// continuing the future later fails.
	requirePyOK(t, c, py(
		"kept = []",
		"def f(r):",
		"    kept.append(gearsFuture())",
		"    return 'plain'",
		"def again(r):",
		"    try:",
		"        kept.pop().continueRun(1)",
		"    except Exception as e:",
		"        return str(e)",
		"GB('CommandReader').map(f).register(trigger='made')",
		"GB('CommandReader').map(again).register(trigger='again')",
	))
	regRequireTrigger(t, c, []any{"plain"}, "made")
	regRequireTrigger(t, c, []any{"Can not continue with the same future twice"}, "again")
}

// Another thread may continue a future before its callback has returned
// it: the record goes on with that value once it has.
func TestAsyncFutureContinuedBeforeReturn(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	require.Equal(t, []string{"early"}, gbRunStrings(t, s.Client, py(
		"import threading, time",
		"def f(r):",
		"    fut = gearsFuture()",
		"    th = threading.Thread(target=lambda: fut.continueRun('early'))",
		"    th.start()",
		"    th.join()",
		"    return fut",
		"GB('ShardsIDReader').map(f).run()",
	)))
}

// await GB().run() inside a coroutine gives [results, errors].
func TestAsyncAwaitRun(t *testing.T) {
	t.Parallel()
	eachIsolationMode(t, func(t *testing.T, s *server) {
		c := s.Client
		requirePyOK(t, c, py(
			"async def keys(x):",
			"    res = await GB().map(lambda x: x['key']).run()",
			"    if res[1]:",
			"        raise Exception(res[1][0])",
			"    return res[0]",
			"GB('CommandReader').map(keys).flatmap(lambda x: x).sort().register(trigger='keys', mode='async_local')",
		))
		for _, k := range []string{"x", "y", "z"} {
			require.NoError(t, c.Set(bg(), k, "1", 0).Err())
		}
		regRequireTrigger(t, c, []any{"x", "y", "z"}, "keys")
	})
}

// A sync registration that goes async goes on in the background, and a
// trigger's client waits for it; inside MULTI it may not go async.
func TestAsyncSyncRegistrationGoesAsync(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"import asyncio",
		"async def c(r):",
		"    await asyncio.sleep(0.05)",
		"    return r",
		"GB('CommandReader').map(c).flatmap(c).count().register(trigger='t', mode='sync')",
		"def allowed(r):",
		"    if isAsyncAllow():",
		"        async def f():",
		"            return 'no multi'",
		"        return f()",
		"    return 'multi'",
		"GB('CommandReader').map(allowed).register(trigger='allowed', mode='sync')",
		"async def later(r):",
		"    await asyncio.sleep(0.05)",
		"    return r",
		"GB('CommandReader').map(later).register(trigger='later', mode='sync')",
		"GB().foreach(lambda r: execute('SET', 'seen:' + r['key'], '1')).map(later).register(prefix='k*', mode='sync')",
	))
	regRequireTrigger(t, c, []any{"1"}, "t")
	regRequireTrigger(t, c, []any{"no multi"}, "allowed")
	pipe := c.TxPipeline()
	allowed := pipe.Do(bg(), "RG.TRIGGER", "allowed")
	later := pipe.Do(bg(), "RG.TRIGGER", "later")
	_, _ = pipe.Exec(bg())
	require.Equal(t, []any{"multi"}, allowed.Val())
	require.ErrorContains(t, later.Err(), "Creating async record is not allowed")
	// A keyspace event's sync run goes on after the write has replied.
	require.NoError(t, c.Set(bg(), "k1", "v", 0).Err())
	require.Equal(t, "1", getKey(t, c, "seen:k1"))
	eventually(t, 5*time.Second, func() bool {
		e := regOnlyWhere(t, c, func(r regEntry) bool { return r.Reader == "KeysReader" })
		return regStat(t, e, "numSuccess") == 1
	}, "the keyspace event's execution did not finish")
	// Outside a step, isAsyncAllow() is False.
	res, err := pyexec(c, "assert not isAsyncAllow()\nGB('ShardsIDReader').map(lambda r: str(isAsyncAllow())).run()")
	require.NoError(t, err)
	require.Equal(t, "[[True] []]", fmt.Sprint(res))
}

// An execution waiting for a coroutine can be aborted (it ends done, with
// the abort as its error, and its coroutine is cancelled) and its
// registration unregistered meanwhile.
func TestAsyncAbortAndUnregisterWhileWaiting(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	id := exUnblocking(t, c, py(
		"import asyncio",
		"async def slow(r):",
		"    await asyncio.sleep(1)",
		"    execute('SET', 'late', '1')",
		"    return r",
		"GB('ShardsIDReader').map(slow).run()",
	))
	exWaitStatus(t, c, id, "running", 5*time.Second)
	exRequireOK(t, c, "RG.ABORTEXECUTION", id)
	plan := exGetExecution(t, c, id)
	require.Equal(t, "done", plan.Status)
	require.Equal(t, []string{"Execution was aborted"}, plan.Errors)

	requirePyOK(t, c, py(
		"async def drop(x):",
		"    for r in execute('RG.DUMPREGISTRATIONS'):",
		"        execute('RG.UNREGISTER', r[1], 'abortpending')",
		"    return x",
		"GB('CommandReader').map(drop).register(trigger='drop')",
	))
	regRequireTrigger(t, c, []any{"['drop']"}, "drop")
	require.Empty(t, regDump(t, c))
	time.Sleep(1200 * time.Millisecond) // the aborted coroutine would have gone on by now
	requireNoKey(t, c, "late")          // it was cancelled with its execution
	requireAlive(t, s)
}

// A command hook and a commands= registration whose code awaits: the
// client's reply waits for it, and override_reply still finds its command.
func TestAsyncOverrideReplyFromCoroutine(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"async def miss(x):",
		"    res = await GB('ShardsIDReader').run()",
		"    override_reply(len(res))",
		"GB().foreach(miss).register(prefix='test*', eventTypes=['keymiss'], commands=['get'], mode='async')",
	))
	require.Equal(t, redis.Nil, c.Get(bg(), "other").Err())
	v, err := c.Do(bg(), "GET", "test1").Result()
	require.NoError(t, err)
	require.Equal(t, int64(2), v)
}

// A script that never goes async never imports asyncio, and a session's loop
// thread ends once its coroutines have.
func TestAsyncCostsNothingUnused(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	require.Equal(t, []string{"False"}, gbRunStrings(t, c, py(
		"import sys",
		"GB('ShardsIDReader').map(lambda r: 'asyncio' in sys.modules).run()",
	)))
	require.Equal(t, []string{"False"}, gbRunStrings(t, c, py(
		"import threading, time",
		"async def c(r):",
		"    return r",
		"def looping():",
		"    return any(t.name == 'gears-asyncio' for t in threading.enumerate())",
		"def threads(r):",
		"    deadline = time.time() + 5",
		"    while looping() and time.time() < deadline:",
		"        time.sleep(0.01)",
		"    return looping()",
		"GB('ShardsIDReader').map(c).map(threads).run()",
	)))
}

// A session whose coroutine awaits forever still ends (its loop is
// cancelled first), and execute() of gears' own commands from inside an
// execution acts for the session's user.
func TestAsyncSessionEndsWithCoroutinePending(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"async def forever():",
		"    await createFuture()",
		"def start(r):",
		"    runCoroutine(forever())",
		"    return 'started'",
		"GB('CommandReader').map(start).register(trigger='start')",
	), "ID", "pending")
	regRequireTrigger(t, c, []any{"started"}, "start")
	inUse := func() int64 { return infoRG(t, c, "rg_live_interpreters") - infoRG(t, c, "rg_ready_interpreters") }
	before := inUse()
	for _, r := range regDump(t, c) {
		exRequireOK(t, c, "RG.UNREGISTER", r.ID)
	}
	eventually(t, 10*time.Second, func() bool { return inUse() < before },
		"the session's interpreter did not end")
	requireAlive(t, s)

	// Another user's registration cannot be unregistered through execute().
	requirePyOK(t, c, "GB('CommandReader').register(trigger='admins')")
	id := regOnly(t, c).ID
	u := aclUser(t, s, "u1", "~*", "+@all", "-@admin", "-@dangerous")
	_, errs := gbRun(t, u, fmt.Sprintf("GB('ShardsIDReader').foreach(lambda r: execute('RG.UNREGISTER', '%s')).run()", id))
	require.Len(t, errs, 1)
	require.Contains(t, errs[0], "NOPERM")
	require.Len(t, regDump(t, c), 1)
}
