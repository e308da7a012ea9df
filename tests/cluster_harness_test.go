package tests

import (
	"fmt"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// startCluster starts n redis-servers with the module as a Redis Cluster on
// loopback, each a master of an equal share of the slots, and returns once
// every node sees all slots served. Each gets an explicit --cluster-port:
// the default (port + 10000) does not exist above port 55535. The long node
// timeout keeps a slow run from marking nodes failed; tests that want a
// failure pass a shorter one.
func startCluster(t *testing.T, n int, opts ...serverOpt) []*server {
	t.Helper()
	nodes := make([]*server, n)
	busPorts := make([]int, n)
	for i := range nodes {
		busPorts[i] = freePort(t)
		nodes[i] = startServer(t, append([]serverOpt{clusterNode(busPorts[i])}, opts...)...)
	}
	for i, s := range nodes {
		from, to := i*16384/n, (i+1)*16384/n-1
		require.NoError(t, s.Client.Do(bg(), "CLUSTER", "ADDSLOTSRANGE", from, to).Err())
		require.NoError(t, s.Client.Do(bg(), "CLUSTER", "SET-CONFIG-EPOCH", i+1).Err())
	}
	for i, s := range nodes[1:] {
		require.NoError(t, nodes[0].Client.Do(bg(), "CLUSTER", "MEET", "127.0.0.1", s.Port, busPorts[i+1]).Err())
	}
	eventually(t, 30*time.Second, func() bool {
		for _, s := range nodes {
			info, err := s.Client.Do(bg(), "CLUSTER", "INFO").Text()
			if err != nil || !containsLine(info, "cluster_state:ok") || !containsLine(info, fmt.Sprintf("cluster_known_nodes:%d", n)) {
				return false
			}
		}
		return true
	}, "the cluster did not form")
	// gears reads the shards every second; RG.REFRESHCLUSTER makes it now.
	eventually(t, 30*time.Second, func() bool {
		for _, s := range nodes {
			if s.Client.Do(bg(), "RG.REFRESHCLUSTER").Err() != nil {
				return false
			}
			v, err := s.Client.Do(bg(), "RG.INFOCLUSTER").Slice()
			if err != nil || len(v) != 5 {
				return false
			}
			for _, node := range v[4].([]any) {
				if node.([]any)[9] == nil { // a peer's run id: heard from it
					return false
				}
			}
		}
		return true
	}, "gears did not see every shard")
	return nodes
}

// clusterNode makes a server a cluster node with bus port busPort.
func clusterNode(busPort int) serverOpt {
	return withServerArgs(
		"--cluster-enabled", "yes",
		"--cluster-config-file", "nodes.conf",
		"--cluster-port", strconv.Itoa(busPort),
		"--cluster-node-timeout", "60000",
	)
}

func containsLine(text, line string) bool {
	for _, l := range strings.Split(text, "\n") {
		if strings.TrimSpace(l) == line {
			return true
		}
	}
	return false
}
