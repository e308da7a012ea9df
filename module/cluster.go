package main

// Redis Cluster: the shards gears knows (from CLUSTER SLOTS), and its
// messages between them over Redis's cluster bus, made reliable by package
// cluster. Stand-alone, none of this runs. Rules: never Send to the
// transport holding the Redis lock (it may wait for acknowledgements that
// the main thread receives); the main thread uses Post.

import (
	"errors"
	"fmt"
	"sort"
	"strings"
	"sync"
	"time"

	"gears/cluster"
	"gears/redismod"
	gearsrt "gears/runtime"
)

// shard is a master that serves slots.
type shard struct {
	id, ip           string
	port             int
	minSlot, maxSlot int
}

type clusterState struct {
	myID, myRun string
	transport   *cluster.Transport

	mu      sync.Mutex
	shards  []shard     // by lowest slot
	routing [16384]byte // slot -> index in shards
}

var gearsCluster *clusterState // nil stand-alone

// Messages between shards: the first byte says what the rest is.
const (
	msgHello byte = 1 // nothing else: makes the peer known (and its run id)
)

// startCluster runs at load when Redis has cluster-enabled: the transport,
// and a refresh of the shards every second (there is no topology event in
// Redis 7.0), the first one now.
func startCluster() error {
	myRun, err := redisRunID()
	if err != nil {
		return err
	}
	s := &clusterState{myID: redismod.MyClusterID(), myRun: myRun}
	if len(s.myID) != cluster.RunIDLen {
		return errors.New("cluster-enabled, but Redis gives no node id")
	}
	s.transport = cluster.New(cluster.Config{
		MyID: s.myID, MyRun: myRun,
		Deliver:       s.deliver,
		PeerRestarted: s.peerRestarted,
		Panic:         logPanic,
	}, redisBus{})
	gearsCluster = s
	go func() {
		for range time.Tick(time.Second) {
			s.tick()
		}
	}()
	return nil
}

// tick is the cluster's once-a-second work; a panic in it is logged, not
// fatal (it runs on a goroutine of its own).
func (s *clusterState) tick() {
	defer func() {
		if r := recover(); r != nil {
			logPanic("cluster refresh", r)
		}
	}()
	sweepPlaceholders()
	if err := s.refresh(); err != nil {
		logf("verbose", "gears: refreshing the cluster's shards: "+err.Error())
	}
}

// redisRunID is this process's run id (INFO server), which peers see
// change when it restarts.
func redisRunID() (string, error) {
	v, err := call("INFO", "server")
	if err != nil {
		return "", err
	}
	info, _ := v.(string)
	for _, line := range strings.Split(info, "\n") {
		if id, ok := strings.CutPrefix(strings.TrimSpace(line), "run_id:"); ok {
			return id, nil
		}
	}
	return "", errors.New("INFO server has no run_id")
}

// redisBus sends frames on Redis's cluster bus, under one hold of the Redis
// lock per batch. A refused send (an unknown or unlinked node) is like a
// lost one: the transport sends it again.
type redisBus struct{}

func (redisBus) Send(frames []cluster.Outgoing) {
	l := redismod.Lock()
	defer l.Unlock()
	for _, f := range frames {
		_ = redismod.ClusterSend(l, f.To, f.Frame)
	}
}

// onClusterMessage is a frame from the bus, on the main thread.
func onClusterMessage(from string, msg []byte) {
	if gearsCluster != nil {
		gearsCluster.transport.Receive(from, msg)
	}
}

// refresh reads the shards from CLUSTER SLOTS; new peers are greeted, gone
// ones forgotten. It takes the Redis lock unless this thread holds it.
func (s *clusterState) refresh() error {
	v, err := call("CLUSTER", "SLOTS")
	if err != nil {
		return err
	}
	byID := map[string]*shard{}
	type slotRange struct {
		id         string
		start, end int
	}
	var ranges []slotRange
	for _, rv := range asList(v) {
		r := asList(rv)
		if len(r) < 3 {
			continue
		}
		start, _ := r[0].(int64)
		end, _ := r[1].(int64)
		m := asList(r[2])
		if len(m) < 3 {
			continue
		}
		id, _ := m[2].(string)
		ip, _ := m[0].(string)
		port, _ := m[1].(int64)
		sh := byID[id]
		if sh == nil {
			sh = &shard{id: id, ip: ip, port: int(port), minSlot: int(start), maxSlot: int(end)}
			byID[id] = sh
		}
		sh.minSlot, sh.maxSlot = min(sh.minSlot, int(start)), max(sh.maxSlot, int(end))
		ranges = append(ranges, slotRange{id, int(start), int(end)})
	}
	shards := make([]shard, 0, len(byID))
	for _, sh := range byID {
		shards = append(shards, *sh)
	}
	sort.Slice(shards, func(i, j int) bool { return shards[i].minSlot < shards[j].minSlot })
	index := map[string]byte{}
	for i, sh := range shards {
		index[sh.id] = byte(i)
	}
	var routing [16384]byte
	for _, r := range ranges {
		for slot := r.start; slot <= r.end && slot < len(routing); slot++ {
			routing[slot] = index[r.id]
		}
	}

	s.mu.Lock()
	old := s.shards
	s.shards, s.routing = shards, routing
	s.mu.Unlock()
	for _, o := range old {
		if byID[o.id] == nil {
			s.transport.Forget(o.id)
		}
	}
	for _, sh := range shards {
		if sh.id != s.myID && s.transport.PeerRun(sh.id) == "" && s.transport.Pending(sh.id) == 0 {
			_ = s.transport.Post(sh.id, []byte{msgHello})
		}
	}
	return nil
}

// Shards is the shards known now, by lowest slot.
func (s *clusterState) Shards() []shard {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]shard(nil), s.shards...)
}

// view is the shards and which of them serves each slot, as one snapshot.
func (s *clusterState) view() ([]shard, []byte) {
	s.mu.Lock()
	defer s.mu.Unlock()
	return append([]shard(nil), s.shards...), append([]byte(nil), s.routing[:]...)
}

// distributed reports whether executions span shards: RedisGears' cluster
// mode needs more than one.
func (s *clusterState) distributed() bool { return s != nil && len(s.Shards()) > 1 }

func (s *clusterState) deliver(from string, msg []byte) {
	if len(msg) == 0 {
		return
	}
	switch msg[0] {
	case msgHello:
	case msgStart, msgRecords, msgDone, msgAbort, msgDrop:
		distReceive(from, msg)
	case msgRegister, msgUnregister, msgAnswer, msgPause, msgClearStats, msgLive, msgGetExec:
		receiveSharedSession(from, msg[0], msg[1:])
	default:
		logf("warning", fmt.Sprintf("gears: unknown cluster message %d from %s", msg[0], from))
	}
}

func (s *clusterState) peerRestarted(peer string) {
	logf("notice", "gears: shard "+peer+" restarted")
	distPeerLost(peer)
}

// movedFor is Redis' MOVED error for command argv when its first key is
// another shard's ("" when local, or outside a cluster of several shards).
func (s *clusterState) movedFor(l redismod.Locked, argv []string) string {
	if !s.distributed() {
		return ""
	}
	keys := redismod.CommandKeys(l, argv)
	if len(keys) == 0 {
		return ""
	}
	slot := gearsrt.KeySlot([]byte(keys[0]))
	shards, routing := s.view()
	sh := shards[routing[slot]]
	if sh.id == s.myID {
		return ""
	}
	return fmt.Sprintf("MOVED %d %s:%d", slot, sh.ip, sh.port)
}

// lowestSlot is the first slot this shard serves (0 when none).
func (s *clusterState) lowestSlot() int {
	for _, sh := range s.Shards() {
		if sh.id == s.myID {
			return sh.minSlot
		}
	}
	return 0
}

// RG.INFOCLUSTER: RedisGears 1.2's shape, or "no cluster mode" outside a
// cluster of more than one shard.
func cmdInfoCluster(c Ctx, argv []string) {
	if !gearsCluster.distributed() {
		c.Bulk("no cluster mode")
		return
	}
	s := gearsCluster
	shards := s.Shards()
	c.Array(5)
	c.Bulk("MyId")
	c.Bulk(s.myID)
	c.Bulk("MyRunId")
	c.Bulk(s.myRun)
	c.Array(len(shards))
	for _, sh := range shards {
		c.Array(16)
		c.Bulk("id")
		c.Bulk(sh.id)
		c.Bulk("ip")
		c.Bulk(sh.ip)
		c.Bulk("port")
		c.Int(int64(sh.port))
		c.Bulk("unixSocket")
		c.Bulk("None")
		c.Bulk("runid")
		run := s.transport.PeerRun(sh.id)
		if sh.id == s.myID {
			run = s.myRun
		}
		bulkOrNull(c, run)
		c.Bulk("minHslot")
		c.Int(int64(sh.minSlot))
		c.Bulk("maxHslot")
		c.Int(int64(sh.maxSlot))
		c.Bulk("pendingMessages")
		c.Int(int64(s.transport.Pending(sh.id)))
	}
}

// RG.REFRESHCLUSTER reads the shards now (gears also does every second).
func cmdRefreshCluster(c Ctx, argv []string) {
	if gearsCluster == nil {
		c.OK()
		return
	}
	if err := gearsCluster.refresh(); err != nil {
		c.Error("ERR " + err.Error())
		return
	}
	c.OK()
}
