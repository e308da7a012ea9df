package tests

import (
	"fmt"
	"strconv"
	"testing"

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
		tag := pyOne(t, s, "GB('ShardsIDReader').map(lambda x: hashtag()).run()")
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
