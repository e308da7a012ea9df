package tests

// A StreamReader that had a backlog when the server stopped processes it
// after the restart, whatever kept the registration (RDB, AOF with or
// without its RDB preamble) and however the server stopped: nothing added
// to a stream is lost.

import (
	"fmt"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/require"
)

func TestStreamBacklogResumesAfterRestart(t *testing.T) {
	for _, tc := range []struct {
		name string
		args []string
		kill bool
	}{
		{"aof-shutdown-nosave", []string{"--appendonly", "yes", "--appendfsync", "always"}, false},
		{"aof-sigkill", []string{"--appendonly", "yes", "--appendfsync", "always"}, true},
		{"aof-without-preamble-sigkill", []string{"--appendonly", "yes", "--appendfsync", "always", "--aof-use-rdb-preamble", "no"}, true},
		{"rdb-shutdown", []string{"--save", "3600 1"}, false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			s := startServer(t, withDir(dir), withServerArgs(tc.args...))
			// Slow on purpose: the backlog is still there when the server stops.
			requirePyOK(t, s.Client, py(
				"import time",
				"def seen(r):",
				"    time.sleep(0.002)",
				"    execute('SADD', 'processed', r['id'])",
				"GB('StreamReader').foreach(seen).register('cs:*', trimStream=False)",
			))
			const entries = 600
			_, err := s.Client.Pipelined(bg(), func(p redis.Pipeliner) error {
				for i := range entries {
					p.XAdd(bg(), &redis.XAddArgs{Stream: "cs:1", Values: []any{"n", i}})
				}
				return nil
			})
			require.NoError(t, err)
			before := s.Client.SCard(bg(), "processed").Val()
			require.Less(t, before, int64(entries), "no backlog left to test")
			s.stopped = true
			switch {
			case tc.kill:
				require.NoError(t, s.cmd.Process.Signal(syscall.SIGKILL))
				<-s.exited
			case tc.args[0] == "--save":
				s.Shutdown(t)
			default:
				s.Client.ShutdownNoSave(bg())
				<-s.exited
			}

			s = startServer(t, withDir(dir), withServerArgs(tc.args...))
			ids := s.Client.XRange(bg(), "cs:1", "-", "+").Val()
			require.Len(t, ids, entries, "the AOF or RDB lost entries")
			eventually(t, 30*time.Second, func() bool {
				return s.Client.SCard(bg(), "processed").Val() >= int64(len(ids))
			}, fmt.Sprintf("after the restart not all %d entries were processed (%d were before it)", len(ids), before))
			for _, e := range ids {
				require.True(t, s.Client.SIsMember(bg(), "processed", e.ID).Val(), "entry %s never processed", e.ID)
			}
			groups, err := s.Client.XInfoGroups(bg(), "cs:1").Result()
			require.NoError(t, err)
			require.Len(t, groups, 1)
			eventually(t, 5*time.Second, func() bool {
				g, err := s.Client.XInfoGroups(bg(), "cs:1").Result()
				return err == nil && g[0].Pending == 0
			}, "entries stay pending in the consumer group")
			// New entries are processed as they come, not one batch behind.
			require.NoError(t, s.Client.XAdd(bg(), &redis.XAddArgs{Stream: "cs:1", ID: "*", Values: []any{"n", "last"}}).Err())
			eventually(t, 5*time.Second, func() bool { return s.Client.SCard(bg(), "processed").Val() == int64(entries+1) })
		})
	}
}

// Entries that wait for a full batch when the server stops are read after
// the restart, as RedisGears does: what a stream holds when reading begins
// is read to the end, whatever the batch size.
func TestStreamPartialBatchIsReadAfterReload(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client
	requirePyOK(t, c, "GB('StreamReader').foreach(lambda x: execute('INCR', 'n')).register(regex='s', batch=5)")
	for range 5 {
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"f", "v"}}).Err())
	}
	eventually(t, 10*time.Second, func() bool { return c.Get(bg(), "n").Val() == "5" }, "the first batch was not read")
	for range 4 { // less than a batch: nothing runs yet
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"f", "v"}}).Err())
	}
	time.Sleep(200 * time.Millisecond)
	require.Equal(t, "5", c.Get(bg(), "n").Val())
	require.NoError(t, c.Do(bg(), "DEBUG", "RELOAD").Err())
	eventually(t, 10*time.Second, func() bool { return c.Get(bg(), "n").Val() == "9" }, "the partial batch was not read after the reload")
	// Then batches are full ones again.
	for range 4 {
		require.NoError(t, c.XAdd(bg(), &redis.XAddArgs{Stream: "s", Values: []any{"f", "v"}}).Err())
	}
	time.Sleep(300 * time.Millisecond)
	require.Equal(t, "9", c.Get(bg(), "n").Val())
}
