package tests

import (
	"fmt"
	"slices"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// Managing executions across a cluster, as RedisGears 1.2: every shard
// lists its part of an execution under the execution's id; a drop or an
// abort on one shard reaches the others; ids continue above the ones seen.
func TestClusterExecutionManagement(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)

	t.Run("every shard lists its part; a drop reaches them", func(t *testing.T) {
		id, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').count().run()", "UNBLOCKING").Text()
		require.NoError(t, err)
		for i, s := range nodes {
			v, err := s.Client.Do(bg(), "RG.GETRESULTSBLOCKING", id).Slice()
			require.NoError(t, err, "shard %d", i)
			if i == 0 {
				assert.Equal(t, []any{[]any{"3"}, []any{}}, v)
			}
			assert.Contains(t, executionIDs(t, s), id, "shard %d", i)
			plan, err := s.Client.Do(bg(), "RG.GETEXECUTION", id, "SHARD").Slice()
			require.NoError(t, err)
			require.Len(t, plan, 1)
			assert.Contains(t, fmt.Sprint(plan), "ShardsIDReader", "shard %d shows the plan", i)
		}
		// In a cluster, every shard's entry by default, this one's first.
		all, err := nodes[1].Client.Do(bg(), "RG.GETEXECUTION", id).Slice()
		require.NoError(t, err)
		require.Len(t, all, 3)
		myID := nodes[1].Client.Do(bg(), "CLUSTER", "MYID").Val()
		assert.Equal(t, myID, all[0].([]any)[1])
		for _, entry := range all {
			assert.Contains(t, fmt.Sprint(entry), "ShardsIDReader")
		}
		// Inside MULTI, which cannot wait for the other shards: this shard's.
		tx := nodes[1].Client.TxPipeline()
		inMulti := tx.Do(bg(), "RG.GETEXECUTION", id)
		_, err = tx.Exec(bg())
		require.NoError(t, err)
		require.Len(t, inMulti.Val(), 1)
		exRequireOK(t, nodes[0].Client, "RG.DROPEXECUTION", id)
		for i, s := range nodes {
			eventually(t, 10*time.Second, func() bool { return !slices.Contains(executionIDs(t, s), id) }, "dropped on shard %d", i)
		}
		// Ids here continue above the ones other shards made.
		seq := func(id string) int64 {
			n, err := strconv.ParseInt(id[strings.LastIndexByte(id, '-')+1:], 10, 64)
			require.NoError(t, err)
			return n
		}
		own, err := nodes[1].Client.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').run()", "UNBLOCKING").Text()
		require.NoError(t, err)
		assert.Greater(t, seq(own), seq(id))
		nodes[1].Client.Do(bg(), "RG.GETRESULTSBLOCKING", own)
		exRequireOK(t, nodes[1].Client, "RG.DROPEXECUTION", own)
	})

	t.Run("an abort stops every shard's part", func(t *testing.T) {
		id, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE",
			"import time\ndef forever(r):\n    while True:\n        time.sleep(0.05)\nGB('ShardsIDReader').foreach(forever).run()", "UNBLOCKING").Text()
		require.NoError(t, err)
		for i, s := range nodes {
			eventually(t, 10*time.Second, func() bool { return slices.Contains(executionIDs(t, s), id) }, "running on shard %d", i)
		}
		exRequireOK(t, nodes[2].Client, "RG.ABORTEXECUTION", id)
		for i, s := range nodes {
			eventually(t, 10*time.Second, func() bool {
				st, _ := s.Client.Do(bg(), "RG.GETEXECUTION", id).Slice()
				return strings.Contains(fmt.Sprint(st), "status done") || strings.Contains(fmt.Sprint(st), "status aborted")
			}, "stopped on shard %d", i)
		}
		exRequireOK(t, nodes[0].Client, "RG.DROPEXECUTION", id)
		for i, s := range nodes {
			eventually(t, 10*time.Second, func() bool { return !slices.Contains(executionIDs(t, s), id) }, "dropped on shard %d", i)
		}
	})

	t.Run("a plan that cannot travel fails the script", func(t *testing.T) {
		_, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE", "import threading\nl = threading.Lock()\nGB().map(lambda x: l).run()").Result()
		require.Error(t, err)
		assert.Contains(t, err.Error(), "Error occured when serialized a python callback")
	})

	t.Run("a blocking run leaves nothing listed", func(t *testing.T) {
		v, err := nodes[1].Client.Do(bg(), "RG.PYEXECUTE", "GB('ShardsIDReader').count().run()").Slice()
		require.NoError(t, err)
		assert.Equal(t, []any{[]any{"3"}, []any{}}, v)
		for i, s := range nodes {
			eventually(t, 10*time.Second, func() bool { return len(executionIDs(t, s)) == 0 }, "nothing left on shard %d", i)
		}
	})
}

func executionIDs(t *testing.T, s *server) []string { return listedIDs(t, s, "RG.DUMPEXECUTIONS") }

// Registrations across a cluster: a StreamReader's batch moves between
// shards and is acknowledged once all are done; pause and unpause reach
// every shard before they answer; a registration's step can await a run()
// that spans the shards; a registration made by running code reaches the
// session on every shard; clearing the statistics clears them everywhere.
func TestClusterRegistrationsAcross(t *testing.T) {
	t.Parallel()
	nodes := startCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}, Protocol: 2})
	defer cc.Close()

	t.Run("stream batches repartition", func(t *testing.T) {
		requirePyOK(t, nodes[0].Client,
			"GB('StreamReader').repartition(lambda x: 'entries').foreach(lambda x: execute('INCR', 'entries')).register(prefix='st:*')")
		for i := range 6 {
			require.NoError(t, cc.XAdd(bg(), &redis.XAddArgs{Stream: fmt.Sprintf("st:%d", i), Values: []any{"f", i}}).Err())
		}
		eventually(t, 20*time.Second, func() bool { return cc.Get(bg(), "entries").Val() == "6" }, "every entry counted on the counter's shard")
		for i := range 6 { // acknowledged and trimmed on their shards
			eventually(t, 10*time.Second, func() bool { return cc.XLen(bg(), fmt.Sprintf("st:%d", i)).Val() == 0 }, "st:%d trimmed", i)
		}
	})

	t.Run("pause and unpause reach every shard", func(t *testing.T) {
		script := "GB('StreamReader').foreach(lambda x: execute('INCR', 'seen{%s}' % x['key'])).register(prefix='p:*', mode='sync')\n" +
			"GB('CommandReader').map(lambda x: 'x').register(trigger='unused', mode='sync')"
		requirePyOK(t, nodes[0].Client, script, "ID", "pausing")
		var id string
		for _, r := range clusterRegs(t, nodes[0]) {
			if strings.Contains(fmt.Sprint(r), "StreamReader") {
				id = r[1].(string)
			}
		}
		require.NotEmpty(t, id)
		keys := []string{"p:a", "p:b", "p:c", "p:d"}
		for _, k := range keys {
			require.NoError(t, cc.XAdd(bg(), &redis.XAddArgs{Stream: k, Values: []any{"f", "v"}}).Err())
			assert.Equal(t, "1", cc.Get(bg(), "seen{"+k+"}").Val())
		}
		exRequireOK(t, nodes[0].Client, "RG.PAUSEREGISTRATIONS", id)
		tx := nodes[0].Client.TxPipeline() // inside MULTI it cannot wait: it tells the others
		paused := tx.Do(bg(), "RG.PAUSEREGISTRATIONS", id)
		_, err := tx.Exec(bg())
		require.NoError(t, err)
		require.Equal(t, "OK", paused.Val())
		for _, k := range keys {
			require.NoError(t, cc.XAdd(bg(), &redis.XAddArgs{Stream: k, Values: []any{"f", "v"}}).Err())
			assert.Equal(t, "1", cc.Get(bg(), "seen{"+k+"}").Val(), "%s paused on its shard at once", k)
		}
		exRequireOK(t, nodes[1].Client, "RG.UNPAUSEREGISTRATIONS", id)
		for _, k := range keys {
			eventually(t, 10*time.Second, func() bool { return cc.Get(bg(), "seen{"+k+"}").Val() == "2" }, "%s unpaused", k)
		}
	})

	t.Run("a step awaits a run across the shards", func(t *testing.T) {
		requirePyOK(t, nodes[0].Client, "async def f(r):\n"+
			"    res = await GB('ShardsIDReader').run()\n"+
			"    execute('SET', 'shards{%s}' % r['key'], len(res[0]))\n"+
			"GB().filter(lambda r: r['key'].startswith('aw:')).foreach(f).register(mode='async_local')")
		for i := range 3 {
			require.NoError(t, cc.Set(bg(), fmt.Sprintf("aw:%d", i), i, 0).Err())
		}
		for i := range 3 {
			k := fmt.Sprintf("shards{aw:%d}", i)
			eventually(t, 10*time.Second, func() bool { return cc.Get(bg(), k).Val() == "3" }, k)
		}
	})

	t.Run("running code registers on every shard", func(t *testing.T) {
		requirePyOK(t, nodes[0].Client,
			"GB('CommandReader').foreach(lambda x: GB('CommandReader').map(lambda y: 'made by '+x[1]).register(trigger=x[1], mode='sync')).register(trigger='make', mode='sync')",
			"ID", "maker")
		v, err := nodes[2].Client.Do(bg(), "RG.TRIGGER", "make", "made").Slice()
		require.NoError(t, err)
		require.Len(t, v, 1)
		for i, s := range nodes {
			eventually(t, 10*time.Second, func() bool {
				v, err := s.Client.Do(bg(), "RG.TRIGGER", "made").Slice()
				return err == nil && fmt.Sprint(v) == "[made by made]"
			}, "the made trigger on shard %d", i)
		}
	})

	t.Run("requirements travel with their wheels", func(t *testing.T) {
		// Only the registering shard has the wheels: the others get them
		// from it.
		require.NoError(t, nodes[0].Client.Do(bg(), "RG.CONFIGSET", "RequirementsWheelDir", wheelDir(t)).Err())
		requirePyOK(t, nodes[0].Client, versionScript("ver"), "ID", "withreq", "REQUIREMENTS", "foo==2.0")
		for i, s := range nodes {
			v, err := s.Client.Do(bg(), "RG.TRIGGER", "ver").Slice()
			require.NoError(t, err)
			assert.Equal(t, []any{"2.0+bar1", "2.0+bar1", "2.0+bar1"}, v, "every shard imports it, asked on shard %d", i)
			assert.Contains(t, dumpReqs(t, s.Client), "foo==2.0", "shard %d", i)
		}
	})

	t.Run("registrations see the registering shard's data", func(t *testing.T) {
		// As RedisGears 1.2's functions, pickled with the values they used.
		requirePyOK(t, nodes[1].Client, "tag = hashtag()\nGB('CommandReader').map(lambda x: tag).register(trigger='tagof')")
		tag := pyOne(t, nodes[1], "GB('ShardsIDReader').map(lambda x: hashtag()).run(mode='async_local')")
		v, err := nodes[2].Client.Do(bg(), "RG.TRIGGER", "tagof").Slice()
		require.NoError(t, err)
		assert.Equal(t, []any{tag, tag, tag}, v)
	})

	t.Run("clearing statistics clears every shard", func(t *testing.T) {
		triggered := func(s *server) string {
			for _, r := range clusterRegs(t, s) {
				if strings.Contains(fmt.Sprint(r), "trigger make") {
					return fmt.Sprint(r)
				}
			}
			return ""
		}
		require.Contains(t, triggered(nodes[2]), "numTriggered 1")
		exRequireOK(t, nodes[0].Client, "RG.CLEARREGISTRATIONSSTATS")
		eventually(t, 10*time.Second, func() bool { return strings.Contains(triggered(nodes[2]), "numTriggered 0") }, "cleared on shard 2")
	})
}

func clusterRegs(t *testing.T, s *server) [][]any {
	t.Helper()
	l, err := s.Client.Do(bg(), "RG.DUMPREGISTRATIONS").Slice()
	require.NoError(t, err)
	var out [][]any
	for _, r := range l {
		out = append(out, r.([]any))
	}
	return out
}
