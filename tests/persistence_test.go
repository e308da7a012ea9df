package tests

import (
	"slices"
	"strconv"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// A session with a trigger, a sync KeysReader registration and a top-level
// write that must not happen again when the session is restored.
const persistedScript = `execute('incr', 'toplevel')
GB('CommandReader').map(lambda x: 'hello ' + x[1]).register(trigger='hello')
GB().foreach(lambda x: execute('incr', 'seen')).register('w*', mode='sync')`

func registrationIDs(t *testing.T, s *server) []string {
	return listedIDs(t, s, "RG.DUMPREGISTRATIONS")
}

// listedIDs is the ids RG.DUMPEXECUTIONS or RG.DUMPREGISTRATIONS lists.
func listedIDs(t *testing.T, s *server, cmd string) []string {
	t.Helper()
	v, err := s.Client.Do(bg(), cmd).Slice()
	require.NoError(t, err)
	var ids []string
	for _, r := range v {
		ids = append(ids, r.([]any)[1].(string))
	}
	return ids
}

// requireRestored checks that the session of persistedScript works as before.
func requireRestored(t *testing.T, s *server, ids []string) {
	t.Helper()
	assert.Equal(t, ids, registrationIDs(t, s), "the same registrations, with the same ids")
	v, err := s.Client.Do(bg(), "RG.TRIGGER", "hello", "again").Slice()
	require.NoError(t, err)
	assert.Equal(t, []any{"hello again"}, v)
	require.NoError(t, s.Client.Set(bg(), "w2", "1", 0).Err())
	assert.Equal(t, "2", getKey(t, s.Client, "seen"), "the sync registration fires again")
	assert.Equal(t, "1", getKey(t, s.Client, "toplevel"), "the script's top-level write is not repeated")
	sessions, err := s.Client.Do(bg(), "RG.PYDUMPSESSIONS", "SESSIONS", "kept").Slice()
	require.NoError(t, err)
	require.Len(t, sessions, 1)
	assert.Equal(t, "kept", sessions[0].([]any)[1])
}

func registerPersisted(t *testing.T, s *server) []string {
	t.Helper()
	requirePyOK(t, s.Client, persistedScript, "ID", "kept")
	require.NoError(t, s.Client.Set(bg(), "w1", "1", 0).Err())
	assert.Equal(t, "1", getKey(t, s.Client, "seen"))
	ids := registrationIDs(t, s)
	require.Len(t, ids, 2)
	return ids
}

func TestRegistrationsSurviveDebugReload(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	ids := registerPersisted(t, s)
	require.NoError(t, s.Client.Do(bg(), "DEBUG", "RELOAD").Err())
	requireRestored(t, s, ids)
	// New registration ids continue above the restored ones.
	requirePyOK(t, s.Client, "GB().register('another:*')")
	top := max(exSeq(t, ids[0]), exSeq(t, ids[1]))
	for _, id := range registrationIDs(t, s) {
		if !slices.Contains(ids, id) {
			require.Greater(t, exSeq(t, id), top)
		}
	}
	require.Len(t, registrationIDs(t, s), len(ids)+1)
}

func TestRegistrationsSurviveRestart(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, withDir(dir))
	ids := registerPersisted(t, s)
	require.NoError(t, s.Client.Save(bg()).Err())
	s.Shutdown(t)
	requireRestored(t, startServer(t, withDir(dir)), ids)
}

func TestRegistrationsSurviveRestartFromAOF(t *testing.T) {
	for _, preamble := range []string{"yes", "no"} {
		t.Run("preamble "+preamble, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			args := withServerArgs("--appendonly", "yes", "--aof-use-rdb-preamble", preamble, "--appendfsync", "always")
			s := startServer(t, withDir(dir), args)
			ids := registerPersisted(t, s)
			s.Shutdown(t)
			requireRestored(t, startServer(t, withDir(dir), args), ids)
		})
	}
}

func TestReplicaGetsRegistrationsAndFiresOnlyWhenPromoted(t *testing.T) {
	t.Parallel()
	master := startServer(t, withServerArgs("--repl-diskless-sync-delay", "0"))
	// Made before the replica syncs: it arrives in the RDB.
	requirePyOK(t, master.Client, "GB('CommandReader').map(lambda x: 'early').register(trigger='early')", "ID", "early")
	replica := startServer(t, withServerArgs("--replicaof", "127.0.0.1", itoa(master.Port)))
	eventually(t, 10*time.Second, func() bool {
		return infoFields(t, replica.Client, "replication")["master_link_status"] == "up"
	}, "the replica syncs")
	// Made after: it arrives as a replicated RG.INNERREGISTER.
	requirePyOK(t, master.Client, "GB().foreach(lambda x: execute('incr', 'fired')).register('k*', mode='sync')", "ID", "late")
	eventually(t, 5*time.Second, func() bool { return len(registrationIDs(t, replica)) == 2 }, "both registrations reach the replica")
	assert.ElementsMatch(t, registrationIDs(t, master), registrationIDs(t, replica))

	require.NoError(t, master.Client.Set(bg(), "k1", "v", 0).Err())
	eventually(t, 5*time.Second, func() bool { return replica.Client.Get(bg(), "k1").Val() == "v" })
	assert.Equal(t, "1", getKey(t, replica.Client, "fired"), "registrations do not fire on a replica: the master's write is replicated once")

	require.NoError(t, replica.Client.Do(bg(), "REPLICAOF", "NO", "ONE").Err())
	require.NoError(t, replica.Client.Set(bg(), "k2", "v", 0).Err())
	assert.Equal(t, "2", getKey(t, replica.Client, "fired"), "the promoted replica's registration fires")
	v, err := replica.Client.Do(bg(), "RG.TRIGGER", "early").Slice()
	require.NoError(t, err)
	assert.Equal(t, []any{"early"}, v)
}

func TestUnregisterReachesReplica(t *testing.T) {
	t.Parallel()
	master := startServer(t, withServerArgs("--repl-diskless-sync-delay", "0"))
	replica := startServer(t, withServerArgs("--replicaof", "127.0.0.1", itoa(master.Port)))
	eventually(t, 10*time.Second, func() bool {
		return infoFields(t, replica.Client, "replication")["master_link_status"] == "up"
	}, "the replica syncs")
	requirePyOK(t, master.Client, "GB('CommandReader').register(trigger='t')")
	eventually(t, 5*time.Second, func() bool { return len(registrationIDs(t, replica)) == 1 })
	require.NoError(t, master.Client.Do(bg(), "RG.UNREGISTER", registrationIDs(t, master)[0]).Err())
	eventually(t, 5*time.Second, func() bool { return len(registrationIDs(t, replica)) == 0 }, "the unregister is replicated")
}

func TestInorderTriggerRunsInArrivalOrder(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	requirePyOK(t, s.Client, py(
		"import time",
		"def f(x):",
		"    time.sleep(0.3 if x[1] == 'slow' else 0)",
		"    execute('rpush', 'order', x[1])",
		"GB('CommandReader').foreach(f).register(trigger='t', mode='async_local', inorder=True)"))
	slow := make(chan error, 1)
	go func() {
		c := s.NewClient()
		defer c.Close()
		slow <- c.Do(bg(), "RG.TRIGGER", "t", "slow").Err()
	}()
	eventually(t, 5*time.Second, func() bool {
		v, _ := s.Client.Do(bg(), "RG.DUMPEXECUTIONS").Slice()
		return len(v) >= 1
	})
	require.NoError(t, s.Client.Do(bg(), "RG.TRIGGER", "t", "fast").Err())
	require.NoError(t, <-slow)
	assert.Equal(t, []string{"slow", "fast"}, s.Client.LRange(bg(), "order", 0, -1).Val())
}

func itoa(n int) string { return strconv.Itoa(n) }

func TestRegistrationsSurviveAOFRewriteWithoutPreamble(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	args := withServerArgs("--appendonly", "yes", "--aof-use-rdb-preamble", "no", "--appendfsync", "always")
	s := startServer(t, withDir(dir), args)
	ids := registerPersisted(t, s)
	// The rewritten AOF has no aux data: the registrations must be written again.
	rewriteAOF(t, s)
	s.Shutdown(t)
	requireRestored(t, startServer(t, withDir(dir), args), ids)
}

// rewriteAOF runs BGREWRITEAOF and waits until it has succeeded.
func rewriteAOF(t *testing.T, s *server) {
	t.Helper()
	require.NoError(t, s.Client.BgRewriteAOF(bg()).Err())
	eventually(t, 10*time.Second, func() bool {
		p := infoFields(t, s.Client, "persistence")
		return p["aof_rewrite_in_progress"] == "0" && p["aof_rewrite_scheduled"] == "0" && p["aof_last_bgrewrite_status"] == "ok"
	}, "the AOF rewrite finishes")
}

func TestKeyedTimeEventSurvivesRestartAndStopsWithItsKey(t *testing.T) {
	t.Parallel()
	dir := t.TempDir()
	s := startServer(t, withDir(dir))
	requirePyOK(t, s.Client, py(
		"def tick():",
		"    execute('incr', 'ticks')",
		"execute('set', 'first', str(registerTE(1, tick, 'timeEvent')))",
		"execute('set', 'second', str(registerTE(1, tick, 'timeEvent')))"))
	assert.Equal(t, []any{"True", "False"}, s.Client.MGet(bg(), "first", "second").Val(), "a taken key name is refused")
	eventually(t, 5*time.Second, func() bool { return s.Client.Get(bg(), "ticks").Val() >= "1" })
	assert.Equal(t, "rg_timeev", s.Client.Type(bg(), "timeEvent").Val()) // RedisGears' type name
	require.NoError(t, s.Client.Save(bg()).Err())
	s.Shutdown(t)

	s = startServer(t, withDir(dir))
	before, _ := s.Client.Get(bg(), "ticks").Int()
	eventually(t, 5*time.Second, func() bool {
		n, _ := s.Client.Get(bg(), "ticks").Int()
		return n > before
	}, "the time event runs again after the restart")
	assert.Equal(t, "True", getKey(t, s.Client, "first"), "restoring does not repeat the script's writes")

	require.NoError(t, s.Client.Del(bg(), "timeEvent").Err())
	time.Sleep(1500 * time.Millisecond) // a tick may be under way
	stopped, _ := s.Client.Get(bg(), "ticks").Int()
	time.Sleep(2500 * time.Millisecond)
	n, _ := s.Client.Get(bg(), "ticks").Int()
	assert.Equal(t, stopped, n, "deleting the key stops the time event")
	eventually(t, 5*time.Second, func() bool { return infoRG(t, s.Client, "rg_sessions") == 0 }, "and its session ends")
}
