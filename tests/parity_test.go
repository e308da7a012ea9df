package tests

// Details of RedisGears 1.2's behaviour that its users' scripts and tests
// rely on.

import (
	"testing"
	"time"

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
