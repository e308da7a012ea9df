package cluster

import (
	"bytes"
	"fmt"
	"math/rand"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// net is a fake cluster bus with Redis's bus's faults: per link, order is
// kept, and a link reset silently discards what was queued on it.
type net struct {
	mu     sync.Mutex
	nodes  map[string]*Transport
	resets float64 // chance that a batch sent on a link is discarded whole
	rnd    *rand.Rand
	sent   int
}

type busOf struct {
	n    *net
	from string
}

func (b busOf) Send(frames []Outgoing) {
	b.n.mu.Lock()
	lost := b.n.resets > 0 && b.n.rnd.Float64() < b.n.resets
	b.n.sent += len(frames)
	b.n.mu.Unlock()
	if lost {
		return
	}
	for _, o := range frames {
		b.n.mu.Lock()
		to := b.n.nodes[o.To]
		b.n.mu.Unlock()
		if to != nil {
			to.Receive(b.from, o.Frame)
		}
	}
}

type inbox struct {
	mu       sync.Mutex
	got      map[string][][]byte
	restarts []string
}

func (in *inbox) deliver(from string, msg []byte) {
	in.mu.Lock()
	in.got[from] = append(in.got[from], msg)
	in.mu.Unlock()
}

func (in *inbox) of(from string) [][]byte {
	in.mu.Lock()
	defer in.mu.Unlock()
	return append([][]byte(nil), in.got[from]...)
}

func (n *net) start(id, run string, cfg Config) (*Transport, *inbox) {
	in := &inbox{got: map[string][][]byte{}}
	cfg.MyID, cfg.MyRun, cfg.Deliver = id, run, in.deliver
	cfg.PeerRestarted = func(p string) { in.mu.Lock(); in.restarts = append(in.restarts, p); in.mu.Unlock() }
	if cfg.ResendAfter == 0 {
		cfg.ResendAfter = 20 * time.Millisecond
	}
	t := New(cfg, busOf{n, id})
	n.mu.Lock()
	if old := n.nodes[id]; old != nil {
		old.Close()
	}
	n.nodes[id] = t
	n.mu.Unlock()
	return t, in
}

func newNet(resets float64) *net {
	return &net{nodes: map[string]*Transport{}, resets: resets, rnd: rand.New(rand.NewSource(1))}
}

func msgs(n, size int) [][]byte {
	out := make([][]byte, n)
	for i := range out {
		out[i] = bytes.Repeat([]byte{byte(i)}, size)
		copy(out[i], fmt.Sprintf("m%d:", i))
	}
	return out
}

func waitFor(t *testing.T, what string, cond func() bool) {
	t.Helper()
	deadline := time.Now().Add(10 * time.Second)
	for !cond() {
		if time.Now().After(deadline) {
			t.Fatalf("timed out waiting for %s", what)
		}
		time.Sleep(2 * time.Millisecond)
	}
}

func TestFramesOfOthersAreIgnored(t *testing.T) {
	_, err := decode([]byte("PING from another module"))
	assert.ErrorIs(t, err, errNotOurs)
	f := frame{kind: kindData, from: "r1", to: "r2", seq: 7, last: true, payload: []byte("x")}
	g, err := decode(f.encode())
	require.NoError(t, err)
	assert.Equal(t, f, *g)
}

// Every message arrives once, whole and in order, though a third of the
// batches on the links are lost.
func TestMessagesSurviveLinkResets(t *testing.T) {
	n := newNet(0.3)
	a, _ := n.start("A", "runA", Config{ChunkSize: 100})
	_, inB := n.start("B", "runB", Config{ChunkSize: 100})
	want := msgs(50, 350) // 4 chunks each
	for _, m := range want {
		require.NoError(t, a.Send("B", m))
	}
	waitFor(t, "all messages", func() bool { return len(inB.of("A")) == len(want) })
	assert.Equal(t, want, inB.of("A"))
	waitFor(t, "acknowledgements", func() bool { return a.Pending("B") == 0 })
	time.Sleep(50 * time.Millisecond)
	assert.Len(t, inB.of("A"), len(want), "a resent frame was delivered twice")
}

// Send waits while a peer's window is full, so a fast producer cannot grow
// memory without end.
func TestWindowBoundsWhatWaits(t *testing.T) {
	n := newNet(0)
	a, _ := n.start("A", "runA", Config{ChunkSize: 10, Window: 30})
	// B does not exist yet: nothing is acknowledged.
	sent := make(chan int, 10)
	go func() {
		for i, m := range msgs(10, 10) {
			if a.Send("B", m) != nil {
				return
			}
			sent <- i
		}
	}()
	time.Sleep(100 * time.Millisecond)
	assert.Len(t, sent, 3, "only a window's worth is queued")
	assert.Equal(t, 3, a.Pending("B"))
	_, inB := n.start("B", "runB", Config{})
	waitFor(t, "the rest", func() bool { return len(inB.of("A")) == 10 })
	a.Close()
}

// A peer that restarts loses what it was sent: the sender is told, and
// messages flow again with the new process.
func TestPeerRestartIsNoticed(t *testing.T) {
	n := newNet(0)
	a, inA := n.start("A", "runA", Config{})
	_, inB := n.start("B", "runB1", Config{})
	require.NoError(t, a.Send("B", []byte("one")))
	waitFor(t, "first message", func() bool { return len(inB.of("A")) == 1 && a.Pending("B") == 0 })
	assert.Equal(t, "runB1", a.PeerRun("B"))

	n.mu.Lock()
	n.nodes["B"].Close()
	delete(n.nodes, "B") // down: what A sends now is lost
	n.mu.Unlock()
	require.NoError(t, a.Send("B", []byte("lost")))
	time.Sleep(30 * time.Millisecond)
	_, inB2 := n.start("B", "runB2", Config{})
	waitFor(t, "the restart", func() bool {
		inA.mu.Lock()
		defer inA.mu.Unlock()
		return len(inA.restarts) == 1
	})
	assert.Equal(t, "runB2", a.PeerRun("B"))
	assert.Empty(t, inB2.of("A"), "a message meant for the old process reached the new one")
	require.NoError(t, a.Send("B", []byte("two")))
	waitFor(t, "a message to the new process", func() bool { return len(inB2.of("A")) == 1 })
	assert.Equal(t, []byte("two"), inB2.of("A")[0])
}

func TestMessageToSelfIsDeliveredLocally(t *testing.T) {
	n := newNet(0)
	a, inA := n.start("A", "runA", Config{})
	require.NoError(t, a.Send("A", []byte("me")))
	waitFor(t, "delivery", func() bool { return len(inA.of("A")) == 1 })
	assert.Equal(t, 0, n.sent)
}

// A handler that panics does not end the process: the message is
// acknowledged and the next ones are delivered.
func TestDeliverPanicIsRecovered(t *testing.T) {
	n := newNet(0)
	a, _ := n.start("A", "runA", Config{})
	var mu sync.Mutex
	var got []string
	panics := 0
	b := New(Config{MyID: "B", MyRun: "runB", ResendAfter: 20 * time.Millisecond,
		Deliver: func(_ string, m []byte) {
			if string(m) == "boom" {
				panic("boom")
			}
			mu.Lock()
			got = append(got, string(m))
			mu.Unlock()
		},
		Panic: func(string, any) { mu.Lock(); panics++; mu.Unlock() },
	}, busOf{n, "B"})
	n.mu.Lock()
	n.nodes["B"] = b
	n.mu.Unlock()
	require.NoError(t, a.Send("B", []byte("boom")))
	require.NoError(t, a.Send("B", []byte("after")))
	waitFor(t, "delivery after the panic", func() bool { mu.Lock(); defer mu.Unlock(); return len(got) == 1 })
	waitFor(t, "acknowledged", func() bool { return a.Pending("B") == 0 })
	mu.Lock()
	assert.Equal(t, 1, panics)
	mu.Unlock()
}
