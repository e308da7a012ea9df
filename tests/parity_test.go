package tests

// Details of RedisGears 1.2's behaviour that its users' scripts and tests
// rely on.

import (
	"fmt"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

// RG.ABORTEXECUTION of a running execution replies once it has stopped: it
// is then done, with the abort as its one error.
func TestAbortOfARunningExecutionRepliesWhenItStopped(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("ExecutionThreads", "1"))
	c := s.Client
	loop := "import time\ndef forever(r):\n    while True:\n        time.sleep(0.1)\nGB('ShardsIDReader').map(forever).run()"
	running := exUnblocking(t, c, loop)
	queued := exUnblocking(t, c, loop)
	exWaitStatus(t, c, running, "running", 10*time.Second)
	require.Equal(t, "created", exStatus(t, c, queued))
	exRequireOK(t, c, "RG.ABORTEXECUTION", queued)
	require.Equal(t, "aborted", exStatus(t, c, queued))
	exRequireOK(t, c, "RG.ABORTEXECUTION", running)
	plan := exGetExecution(t, c, running)
	require.Equal(t, "done", plan.Status)
	require.Equal(t, []string{"Execution was aborted"}, plan.Errors)
	exRequireOK(t, c, "RG.DROPEXECUTION", running)
	exRequireOK(t, c, "RG.DROPEXECUTION", queued)
}

// redisgears.registerTimeEvent is registerTE; shardReaderCallback is the
// ShardsIDReader's function; a KeysReader cannot watch a command whose keys
// move.
func TestRedisGearsRuntimeNames(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "redisgears.registerTimeEvent(1, lambda: execute('INCR', 'ticks'), 'te')")
	eventually(t, 5*time.Second, func() bool { return c.Get(bg(), "ticks").Val() != "" }, "the time event never ran")
	require.Equal(t, []string{"1"}, gbRunStrings(t, c, "GB('PythonReader').run(shardReaderCallback)"))
	gbPyErr(t, s, "GB('PythonReader', shardReaderCallback).run('*')", "pyreader argument must be a function")
	gbPyErr(t, s, "GB().register(commands=['xread'])", "Can not hook a command with moveable keys by key prefix")
}

// A registration's own read of a deleted key fires no keymiss event: a
// registration on every key that counts events counts each write once.
func TestReadingAKeyFiresNoEvent(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB().filter(lambda x: x['key'] != 'n').foreach(lambda x: execute('incrby', 'n', -1 if x['event'] == 'del' else 1)).register(mode='async_local')")
	for i := 0; i < 5; i++ {
		require.NoError(t, c.Set(bg(), "k", "v", 0).Err())
		require.NoError(t, c.Del(bg(), "k").Err())
	}
	// 10 writes, and the 10 increments of n (filtered out).
	eventually(t, 5*time.Second, func() bool { return regStat(t, regOnly(t, c), "numSuccess") == 20 }, "the 20 events did not run")
	require.Equal(t, "0", getKey(t, c, "n"))
	time.Sleep(100 * time.Millisecond)
	require.Equal(t, int64(20), regStat(t, regOnly(t, c), "numTriggered"))
}

// Ids count from 0, executions and registrations apart; registering uses
// up an id of each (RedisGears' registering plan and its execution), and
// MaxExecutions bounds every kept execution.
func TestExecutionIDsAndMaxExecutions(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("MaxExecutions", "3"))
	c := s.Client
	requirePyOK(t, c, "GB().register('*', mode='async_local')")
	require.Equal(t, shardZero+"-1", regOnly(t, c).ID) // the registering plan took -0
	ids := func() []string {
		var out []string
		for _, e := range gbDumpExecutions(t, c) {
			out = append(out, e.([]any)[1].(string))
		}
		return out
	}
	for i := 0; i < 4; i++ {
		require.NoError(t, c.Set(bg(), "x", i, 0).Err())
		n := i
		eventually(t, 5*time.Second, func() bool { return regStat(t, regOnly(t, c), "numSuccess") == int64(n+1) }, "event %d", i)
	}
	require.Equal(t, []string{shardZero + "-2", shardZero + "-3", shardZero + "-4"}, ids())
}

// A StreamReader batch failing with an error that begins "PAUSE" pauses
// the registration, and its entries are read again once it is unpaused.
func TestStreamPauseFromItsOwnCode(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, py(
		"def f(x):",
		"    if execute('get', 'paused') == 'yes':",
		"        flat_error('PAUSE')",
		"    execute('incr', 'counter')",
		"GB('StreamReader').foreach(f).register(prefix='s', mode='sync')",
	))
	id := registrationIDs(t, s)[0]
	status := func() string { return fmt.Sprint(c.Do(bg(), "RG.DUMPREGISTRATIONS").Val()) }
	require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"a", "1"}}).Err())
	require.Equal(t, "1", getKey(t, c, "counter"))
	require.NoError(t, c.Set(bg(), "paused", "yes", 0).Err())
	require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"a", "2"}}).Err())
	require.Equal(t, "1", getKey(t, c, "counter"))
	require.Contains(t, status(), "status PAUSED")
	require.NoError(t, c.Set(bg(), "paused", "no", 0).Err())
	exRequireOK(t, c, "RG.UNPAUSEREGISTRATIONS", id)
	eventually(t, 5*time.Second, func() bool { return getKey(t, c, "counter") == "2" }, "the paused entry was not read again")
}

// register() inside a step joins the session at once (it lives until a
// restart: the session is saved as its script).
func TestRegisterInsideAStep(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('CommandReader').foreach(lambda x: GB('CommandReader').map(lambda x: '+OK').register(trigger=x[1], mode='sync')).map(lambda x: '+OK').register(trigger='test', mode='sync')", "ID", "test")
	regRequireTrigger(t, c, []any{"OK"}, "test", "test1")
	regRequireTrigger(t, c, []any{"OK"}, "test1")
	sessions := c.Do(bg(), "RG.PYDUMPSESSIONS").Val().([]any)
	require.Len(t, sessions[0].([]any)[len(sessions[0].([]any))-1], 2)
	_, err := c.Do(bg(), "RG.TRIGGER", "test", "test1").Result()
	require.ErrorContains(t, err, "trigger already registered")
	s.WaitLog(t, "is not saved with the data nor sent to replicas", 5*time.Second)
}

// A StreamReader begins each stream by reading what earlier batches left
// unacknowledged, as RedisGears does; with trimming off, an upgraded
// registration does not read the same entries again and again.
func TestStreamUntrimmedUpgradeDoesNotLoop(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	script := "GB('StreamReader').foreach(lambda x: execute('incr', 'x')).register(batch=2, onFailedPolicy='retry', trimStream=False)"
	requirePyOK(t, c, script, "ID", "test")
	stat := func(name string) int64 { return regDataOf(t, c)[0][name].(int64) }
	for i := 0; i < 2; i++ {
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"foo", "bar"}}).Err())
	}
	// The first entry starts a batch of what was pending (nothing), the
	// second completes a batch of two.
	eventually(t, 5*time.Second, func() bool { return stat("numSuccess") == 2 }, "the batches did not run")
	require.Equal(t, "2", getKey(t, c, "x"))
	requirePyOK(t, c, script, "ID", "test", "UPGRADE")
	time.Sleep(time.Second)
	require.LessOrEqual(t, stat("numTriggered"), int64(2))
	for i := 0; i < 2; i++ {
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"foo", "bar"}}).Err())
	}
	eventually(t, 5*time.Second, func() bool { return getKey(t, c, "x") == "4" }, "the new entries were not read")
	time.Sleep(500 * time.Millisecond)
	require.Equal(t, int64(3), stat("numTriggered"))
	require.Equal(t, "4", getKey(t, c, "x"))
}
