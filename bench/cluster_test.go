package bench

import (
	"fmt"
	"net"
	"strconv"
	"strings"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
)

// TestBenchCluster compares the batch map+aggregate over 1,000,000 keys on
// a 3-shard cluster (on this machine's cores) with the same on one server,
// and measures repartition: every record sent to the shard of a new key.
func TestBenchCluster(t *testing.T) {
	guard(t)
	const nKeys = 1_000_000
	const want = int64(nKeys) * (nKeys - 1) / 2
	r := newReport(t, "cluster")

	nodes := startBenchCluster(t, 3)
	cc := redis.NewClusterClient(&redis.ClusterOptions{Addrs: []string{nodes[0].Addr}, Protocol: 2, ReadTimeout: 10 * time.Minute})
	defer cc.Close()
	start := time.Now()
	for lo := 0; lo < nKeys; lo += 10_000 {
		p := cc.Pipeline()
		for i := lo; i < lo+10_000; i++ {
			p.Set(bg(), "k:"+strconv.Itoa(i), i, 0)
		}
		if _, err := p.Exec(bg()); err != nil {
			t.Fatalf("loading keys: %v", err)
		}
	}
	r.line("cluster:   3 shards (masters, equal slot ranges) on loopback, one machine: %s", cpuModel())
	r.line("keys:      %d string keys k:<i> = <i> spread by slot, loaded in %s", nKeys, time.Since(start).Round(time.Millisecond))

	single := startServer(t)
	const load = `for i = tonumber(ARGV[1]), tonumber(ARGV[2]) do
  redis.call('SET', 'k:' .. string.format('%d', i), string.format('%d', i))
end
return 1`
	for lo := 0; lo < nKeys; lo += 100_000 {
		if err := single.Client.Eval(bg(), load, nil, lo, lo+100_000-1).Err(); err != nil {
			t.Fatalf("loading keys: %v", err)
		}
	}

	script := "import operator\nGB().map(lambda r: int(r['value'])).aggregate(0, operator.add, operator.add).run()"
	sum := func(c *redis.Client) func() error {
		return func() error {
			res, err := c.Do(bg(), "RG.PYEXECUTE", script).Result()
			if err != nil {
				return err
			}
			results, errs, err := gearsReply(res)
			if err != nil {
				return err
			}
			if len(errs) != 0 || len(results) != 1 || results[0] != strconv.FormatInt(want, 10) {
				return fmt.Errorf("results=%q errors=%q, want [%d]", results, errs, want)
			}
			return nil
		}
	}
	cBest, cAll := bestOf(t, 3, sum(nodes[0].Client))
	sBest, sAll := bestOf(t, 3, sum(single.Client))
	// Where the cluster's time goes: one shard's own third alone (the
	// same plan, async_local), while the others idle.
	local := strings.Replace(script, ".run()", ".run(mode='async_local')", 1)
	lBest, lAll := bestOf(t, 3, func() error {
		return nodes[0].Client.Do(bg(), "RG.PYEXECUTE", local).Err()
	})
	r.line("")
	r.line("batch      RG.PYEXECUTE %q", script)
	r.line("%-10s %-12s %s", "", "best of 3", "all runs")
	r.line("%-10s %-12s %s", "cluster", ms(cBest), msList(cAll))
	r.line("%-10s %-12s %s", "one server", ms(sBest), msList(sAll))
	r.line("%-10s %-12s %s", "one shard", ms(lBest), msList(lAll)+"   (its third alone, async_local: the reading and Python part)")
	r.line("%-34s %.3f   (each shard reads a third; on 2 cores the three shards share them)", "ratio cluster/one server:", float64(cBest)/float64(sBest))
	r.line("where the time goes: 3 shards x %s of reading and Python on 2 cores = %s of CPU over %s of wall time;", ms(lBest), ms(3*lBest), ms(cBest))
	r.line("the rest is sending the plan, the per-shard partial sums and the coordination between segments")

	// Repartition: each record goes to the shard of 'k:<i>x' (two thirds of
	// them to another shard), then every shard counts what it got.
	rep := "GB().repartition(lambda r: r['key'] + 'x').count().run()"
	size, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE",
		"import pickle\nGB('ShardsIDReader').map(lambda x: len(pickle.dumps([{'key': 'k:%d' % i, 'value': str(i), 'type': 'string', 'event': None} for i in range(500000, 501000)], 5))//1000).run(mode='async_local')").Result()
	if err != nil {
		t.Fatal(err)
	}
	recBytes, _ := strconv.Atoi(fmt.Sprint(size.([]any)[0].([]any)[0]))
	moved := func() error {
		res, err := nodes[0].Client.Do(bg(), "RG.PYEXECUTE", rep).Result()
		if err != nil {
			return err
		}
		results, errs, err := gearsReply(res)
		if err != nil {
			return err
		}
		if len(errs) != 0 || len(results) != 1 || results[0] != strconv.Itoa(nKeys) {
			return fmt.Errorf("results=%q errors=%q", results, errs)
		}
		return nil
	}
	rBest, rAll := bestOf(t, 3, moved)
	crossing := float64(nKeys) * 2 / 3
	r.line("")
	r.line("repartition RG.PYEXECUTE %q", rep)
	r.line("%-10s %-12s %s", "", "best of 3", "all runs")
	r.line("%-10s %-12s %s", "cluster", ms(rBest), msList(rAll))
	r.line("records/s moved between shards:   %.0f   (2/3 of %d records cross; ~%d bytes each pickled)", crossing/rBest.Seconds(), nKeys, recBytes)
	r.line("MB/s between shards:              %.1f", crossing*float64(recBytes)/rBest.Seconds()/1e6)
}

// startBenchCluster starts n nodes as a Redis Cluster with explicit bus
// ports and equal slot ranges, and waits until gears sees every shard.
func startBenchCluster(t *testing.T, n int) []*server {
	nodes := make([]*server, n)
	bus := make([]int, n)
	for i := range nodes {
		l, err := net.Listen("tcp", "127.0.0.1:0")
		if err != nil {
			t.Fatal(err)
		}
		bus[i] = l.Addr().(*net.TCPAddr).Port
		l.Close()
		nodes[i] = startServerWith(t, []string{"--cluster-enabled", "yes", "--cluster-config-file", "nodes.conf",
			"--cluster-port", strconv.Itoa(bus[i]), "--cluster-node-timeout", "60000"})
	}
	for i, s := range nodes {
		s.Client.Do(bg(), "CLUSTER", "ADDSLOTSRANGE", i*16384/n, (i+1)*16384/n-1)
		s.Client.Do(bg(), "CLUSTER", "SET-CONFIG-EPOCH", i+1)
	}
	for i, s := range nodes[1:] {
		if err := nodes[0].Client.Do(bg(), "CLUSTER", "MEET", "127.0.0.1", s.Port, bus[i+1]).Err(); err != nil {
			t.Fatal(err)
		}
	}
	deadline := time.Now().Add(60 * time.Second)
	for _, s := range nodes {
		for {
			s.Client.Do(bg(), "RG.REFRESHCLUSTER")
			info, _ := s.Client.Do(bg(), "CLUSTER", "INFO").Text()
			v, _ := s.Client.Do(bg(), "RG.INFOCLUSTER").Slice()
			if strings.Contains(info, "cluster_state:ok") && len(v) == 5 && len(v[4].([]any)) == n {
				break
			}
			if time.Now().After(deadline) {
				t.Fatal("the cluster did not form")
			}
			time.Sleep(100 * time.Millisecond)
		}
	}
	return nodes
}
