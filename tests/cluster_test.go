package tests

import (
	"fmt"
	"strconv"
	"strings"
	"syscall"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Each shard reports the cluster as RedisGears 1.2 does, with every shard's
// run id learnt over the cluster bus, and hashtag() names a slot it serves.
func TestClusterTopology(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	var ids []string
	for _, s := range nodes {
		id, err := s.Client.Do(bg(), "CLUSTER", "MYID").Text()
		require.NoError(t, err)
		ids = append(ids, id)
	}
	for i, s := range nodes {
		v, err := s.Client.Do(bg(), "RG.INFOCLUSTER").Slice()
		require.NoError(t, err)
		require.Len(t, v, 5)
		assert.Equal(t, "MyId", v[0])
		assert.Equal(t, ids[i], v[1])
		info, err := s.Client.Info(bg(), "server").Result()
		require.NoError(t, err)
		assert.Contains(t, info, "run_id:"+v[3].(string))
		list := v[4].([]any)
		require.Len(t, list, 3)
		for j, n := range list {
			node := n.([]any)
			assert.Equal(t, []any{"id", ids[j], "ip", "127.0.0.1", "port", int64(nodes[j].Port), "unixSocket", "None"}, node[:8])
			assert.Equal(t, int64(j*16384/3), node[11], "minHslot")
			assert.Equal(t, int64((j+1)*16384/3-1), node[13], "maxHslot")
			peerInfo, err := nodes[j].Client.Info(bg(), "server").Result()
			require.NoError(t, err)
			assert.Contains(t, peerInfo, "run_id:"+node[9].(string), "runid of shard %d as shard %d knows it", j, i)
		}

		// A key tagged with hashtag() lives on the shard that made it.
		tag := pyOne(t, s, "GB('ShardsIDReader').map(lambda x: hashtag()).run(mode='async_local')")
		slot, err := s.Client.ClusterKeySlot(bg(), fmt.Sprintf("x{%s}", tag)).Result()
		require.NoError(t, err)
		assert.Equal(t, int64(i*16384/3), slot, "hashtag %q of shard %d", tag, i)
	}
	// Stand-alone there is no cluster.
	assert.Equal(t, "no cluster mode", startServer(t).Client.Do(bg(), "RG.INFOCLUSTER").Val())
}

// pyOne runs a script whose run() yields one record and returns it.
func pyOne(t *testing.T, s *server, script string) string {
	t.Helper()
	v, err := s.Client.Do(bg(), "RG.PYEXECUTE", script).Slice()
	require.NoError(t, err)
	require.Len(t, v, 2)
	require.Empty(t, v[1], "errors")
	res := v[0].([]any)
	require.Len(t, res, 1, strconv.Quote(script))
	return res[0].(string)
}

// A run() spans the shards: the reader reads on each, collect() brings the
// records to the shard that ran it, repartition() moves each record to the
// shard of its key, and aggregations combine every shard's part.
func TestClusterExecutions(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}, Protocol: 2})
	defer cc.Close()
	for i := range 300 {
		require.NoError(t, cc.Set(bg(), fmt.Sprintf("k%d", i), i, 0).Err())
	}
	for _, s := range nodes {
		assert.Equal(t, "3", pyOne(t, s, "GB('ShardsIDReader').count().run()"))
		assert.Equal(t, "300", pyOne(t, s, "GB().count().run()"))
		assert.Equal(t, "44850", pyOne(t, s, "GB().map(lambda r: int(r['value'])).aggregate(0, lambda a, r: a + r, lambda a, r: a + r).run()"))
		// Local only: this shard's keys.
		n, err := s.Client.DBSize(bg()).Result()
		require.NoError(t, err)
		assert.Equal(t, strconv.FormatInt(n, 10), pyOne(t, s, "GB().count().run(mode='async_local')"))
	}
	// countby groups on the shard that owns each group's key.
	v, err := nodes[1].Client.Do(bg(), "RG.PYEXECUTE", "GB().countby(lambda r: str(int(r['value']) % 3)).run()").Slice()
	require.NoError(t, err)
	assert.Empty(t, v[1])
	assert.ElementsMatch(t, []any{"{'key': '0', 'value': 100}", "{'key': '1', 'value': 100}", "{'key': '2', 'value': 100}"}, v[0])
	// repartition: each record is written on the shard that owns its new key.
	v, err = nodes[2].Client.Do(bg(), "RG.PYEXECUTE",
		"GB().repartition(lambda r: 'copy:' + r['key']).foreach(lambda r: execute('SET', 'copy:' + r['key'], r['value'])).count().run()").Slice()
	require.NoError(t, err)
	assert.Empty(t, v[1])
	assert.Equal(t, []any{"300"}, v[0])
	got, err := cc.Get(bg(), "copy:k7").Result()
	require.NoError(t, err)
	assert.Equal(t, "7", got)
}

// A registration made on one shard lives on every shard before
// RG.PYEXECUTE answers; unregistering removes it everywhere; an async
// trigger's execution runs on every shard.
func TestClusterRegistrations(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	requirePyOK(t, nodes[0].Client, "GB('CommandReader').count().register(trigger='shards')")
	var id string
	for _, s := range nodes {
		regs := registrationIDs(t, s)
		require.Len(t, regs, 1)
		if id == "" {
			id = regs[0]
		}
		assert.Equal(t, id, regs[0], "the same id on every shard")
		v, err := s.Client.Do(bg(), "RG.TRIGGER", "shards").Result()
		require.NoError(t, err)
		assert.Equal(t, []any{"3"}, v)
	}
	exRequireOK(t, nodes[1].Client, "RG.UNREGISTER", id)
	for _, s := range nodes {
		eventually(t, 10*time.Second, func() bool { return len(registrationIDs(t, s)) == 0 }, "unregistered everywhere")
	}
	// A sync trigger on a key runs on the key's shard; elsewhere Redis redirects.
	requirePyOK(t, nodes[2].Client, "GB('CommandReader').map(lambda x: execute('SET', x[1], x[2])).register(trigger='put', mode='sync')")
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}, Protocol: 2})
	defer cc.Close()
	require.NoError(t, cc.Do(bg(), "RG.TRIGGERONKEY", "put", "somekey", "v").Err())
	got, err := cc.Get(bg(), "somekey").Result()
	require.NoError(t, err)
	assert.Equal(t, "v", got)
}

// A shard that stops answering (SIGSTOP past the cluster's node timeout)
// ends an execution with "Execution max idle reached" after
// ExecutionMaxIdleTime, never a hang; once it answers again, executions
// span every shard again. A shard killed mid-execution ends it the same way.
func TestClusterShardStopsAnswering(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3, withModuleArgs("ExecutionMaxIdleTime", "1500"))
	for _, s := range nodes {
		require.NoError(t, s.Client.Do(bg(), "CONFIG", "SET", "cluster-node-timeout", "1000").Err())
		// The other shards go on serving while one is down.
		require.NoError(t, s.Client.Do(bg(), "CONFIG", "SET", "cluster-require-full-coverage", "no").Err())
	}
	require.NoError(t, nodes[2].cmd.Process.Signal(syscall.SIGSTOP))
	stopped := true
	defer func() {
		if stopped {
			nodes[2].cmd.Process.Signal(syscall.SIGCONT)
		}
	}()
	time.Sleep(2500 * time.Millisecond) // past the node timeout: marked failing
	start := time.Now()
	v, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').count().run()").Slice()
	require.NoError(t, err)
	assert.Less(t, time.Since(start), 10*time.Second)
	assert.Contains(t, fmt.Sprint(v[1]), "Execution max idle reached")
	requireAlive(t, nodes[0])

	require.NoError(t, nodes[2].cmd.Process.Signal(syscall.SIGCONT))
	stopped = false
	eventually(t, 30*time.Second, func() bool {
		v, err := nodes[1].Client.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').count().run()").Slice()
		return err == nil && fmt.Sprint(v) == "[[3] []]"
	}, "executions span the three shards again")

	// Killed while an execution runs on it.
	done := make(chan []any, 1)
	go func() {
		v, _ := nodes[0].Client.Do(bg(), "RG.PYEXECUTE",
			"import time\nGB('ShardsIDReader').map(lambda x: time.sleep(1) or x).count().run()").Slice()
		done <- v
	}()
	time.Sleep(300 * time.Millisecond)
	nodes[2].stopped = true // on purpose
	nodes[2].kill()
	select {
	case v := <-done:
		require.Len(t, v, 2)
		assert.NotEmpty(t, v[1], "the execution reports the lost shard")
	case <-time.After(20 * time.Second):
		t.Fatal("the execution hung after a shard was killed")
	}
	requireAlive(t, nodes[0])
	requireAlive(t, nodes[1])
}

// An async KeysReader registration's execution spans the shards: the
// event's record moves to the shard that owns the key it writes.
func TestClusterKeyEventRepartition(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	requirePyOK(t, nodes[0].Client, "GB().repartition(lambda x: 'counter').foreach(lambda x: execute('INCR', 'counter')).register(prefix='ev:*')")
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}, Protocol: 2})
	defer cc.Close()
	for i := range 10 {
		require.NoError(t, cc.Set(bg(), fmt.Sprintf("ev:%d", i), i, 0).Err())
	}
	eventually(t, 20*time.Second, func() bool { return cc.Get(bg(), "counter").Val() == "10" }, "every event counted on the counter's shard")
}

// A hooked command (and a keymiss registration's watched command) on a key
// of another shard keeps Redis' redirection.
func TestClusterHooksKeepMoved(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 2)
	requirePyOK(t, nodes[0].Client, "GB('CommandReader').register(hook='get', mode='sync')")
	requirePyOK(t, nodes[0].Client, "GB().register(commands=['hget'], eventTypes=['keymiss'])")
	for _, cmd := range [][]any{{"GET", "x"}, {"HGET", "x", "f"}} {
		moved := 0
		for _, s := range nodes {
			err := s.Client.Do(bg(), cmd...).Err()
			if err != nil && strings.HasPrefix(err.Error(), "MOVED ") {
				moved++
			}
		}
		assert.Equal(t, 1, moved, "%v: exactly the shard that does not own x redirects", cmd)
	}
}

// A shard killed and restarted (same node id, new process) while an
// execution waits for it ends that execution with an error naming the
// restart, long before ExecutionMaxIdleTime; the restarted shard then
// takes part in executions again.
func TestClusterShardRestarts(t *testing.T) {
	t.Parallel()
	moduleArgs := withModuleArgs("ExecutionMaxIdleTime", "60000")
	nodes := startCluster(t, 3, moduleArgs)
	for _, s := range nodes {
		require.NoError(t, s.Client.Do(bg(), "CONFIG", "SET", "cluster-require-full-coverage", "no").Err())
	}
	busPort, err := strconv.Atoi(nodes[2].Client.ConfigGet(bg(), "cluster-port").Val()["cluster-port"])
	require.NoError(t, err)
	oldRun := strings.TrimSpace(strings.Split(strings.Split(nodes[2].Client.Info(bg(), "server").Val(), "run_id:")[1], "\n")[0])

	done := make(chan []any, 1)
	go func() {
		v, _ := nodes[0].Client.Do(bg(), "RG.PYEXECUTE",
			"import time\nGB('ShardsIDReader').map(lambda x: time.sleep(3) or x).count().run()").Slice()
		done <- v
	}()
	time.Sleep(500 * time.Millisecond)
	nodes[2].stopped = true // on purpose
	nodes[2].kill()
	restarted := startServer(t, withDir(nodes[2].Dir), withPort(nodes[2].Port), clusterNode(busPort), moduleArgs)
	select {
	case v := <-done:
		require.Len(t, v, 2)
		assert.Contains(t, fmt.Sprint(v[1]), "restarted", "the execution names the restart")
	case <-time.After(30 * time.Second):
		t.Fatal("the execution waited for the restarted shard")
	}
	eventually(t, 30*time.Second, func() bool {
		nodes[0].Client.Do(bg(), "RG.REFRESHCLUSTER")
		v, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').count().run()").Slice()
		return err == nil && fmt.Sprint(v) == "[[3] []]"
	}, "executions span the three shards again")
	info, err := nodes[0].Client.Do(bg(), "RG.INFOCLUSTER").Slice()
	require.NoError(t, err)
	newRun := info[4].([]any)[2].([]any)[9]
	assert.NotEqual(t, oldRun, newRun, "the restarted shard's new run id is known")
	assert.Contains(t, restarted.Client.Info(bg(), "server").Val(), fmt.Sprintf("run_id:%v", newRun))
	requireAlive(t, nodes[0])
	requireAlive(t, nodes[1])
}
