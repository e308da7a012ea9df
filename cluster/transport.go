package cluster

import (
	"errors"
	"sync"
	"time"
)

// Bus sends frames to other nodes. Send is called by the transport's one
// sending goroutine; a frame that does not arrive is sent again.
type Bus interface {
	Send(frames []Outgoing)
}

// Outgoing is one frame for one node.
type Outgoing struct {
	To    string // node id
	Frame []byte
}

// Config is a transport's identity, limits and handlers.
type Config struct {
	MyID  string // this node's id
	MyRun string // this process's run id: peers tell a restart by its change
	// ChunkSize bounds a frame's payload: longer messages go as chunks.
	ChunkSize int
	// Window bounds the bytes sent to one peer and not yet acknowledged:
	// Send waits beyond it (at least one chunk always goes).
	Window int
	// ResendAfter is how long a frame waits for its acknowledgement before
	// it and those after it are sent again.
	ResendAfter time.Duration
	// Deliver receives each message, whole, once, in the order its sender
	// sent it; it runs on the transport's delivering goroutine, and a
	// message is acknowledged once it returns.
	Deliver func(from string, msg []byte)
	// PeerRestarted says that peer came back with a new run id: what it was
	// sent before and did not acknowledge is gone, and so is what it had
	// under way. It runs on the delivering goroutine.
	PeerRestarted func(peer string)
	// Panic receives a panic of Deliver, PeerRestarted or the Bus: the
	// transport's goroutines recover (a panic there would end the process)
	// and go on.
	Panic func(where string, r any)
}

// ErrClosed is Send's error once the transport is closed.
var ErrClosed = errors.New("cluster transport closed")

// Transport is reliable, ordered messaging with each peer.
type Transport struct {
	cfg  Config
	bus  Bus
	mu   sync.Mutex
	room sync.Cond // a window got room, or the transport closed
	// under mu
	peers  map[string]*peer
	inbox  []inboxItem
	closed bool

	wake    chan struct{} // the sender has work
	arrived chan struct{} // the deliverer has work
	done    chan struct{}
}

type peer struct {
	id  string
	run string // its run id, "" until it was heard from

	// sending
	nextSeq      uint64
	unacked      []*pending // in seq order
	unackedBytes int
	gen          int // counts its restarts: a message cut by one is dropped

	// receiving
	expected  uint64 // the next seq to accept
	delivered uint64 // every seq up to it was delivered
	ackDue    bool
	partial   []byte // the chunks of the message under way
}

type pending struct {
	seq    uint64
	frame  []byte
	size   int
	sentAt time.Time // zero: not sent yet
}

type inboxItem struct {
	from      string
	msg       []byte
	seq       uint64
	restarted bool // no message: the peer restarted
	gen       int
}

// New starts a transport over bus.
func New(cfg Config, bus Bus) *Transport {
	if cfg.ChunkSize <= 0 {
		cfg.ChunkSize = 1 << 20
	}
	if cfg.Window < cfg.ChunkSize {
		cfg.Window = 64 << 20
	}
	if cfg.ResendAfter <= 0 {
		cfg.ResendAfter = time.Second
	}
	t := &Transport{
		cfg: cfg, bus: bus, peers: map[string]*peer{},
		wake: make(chan struct{}, 1), arrived: make(chan struct{}, 1), done: make(chan struct{}),
	}
	t.room.L = &t.mu
	go t.sender()
	go t.deliverer()
	return t
}

// Close stops the transport: Send fails from now on.
func (t *Transport) Close() {
	t.mu.Lock()
	if !t.closed {
		t.closed = true
		close(t.done)
		t.room.Broadcast()
	}
	t.mu.Unlock()
}

func (t *Transport) peerLocked(id string) *peer {
	p := t.peers[id]
	if p == nil {
		p = &peer{id: id, nextSeq: 1, expected: 1}
		t.peers[id] = p
	}
	return p
}

func signal(c chan struct{}) {
	select {
	case c <- struct{}{}:
	default:
	}
}

// Send queues msg for node to, in chunks; it waits while the window to that
// node is full, so never call it where waiting is not allowed (Redis's main
// thread): use Post there. A message to this node is delivered locally.
func (t *Transport) Send(to string, msg []byte) error { return t.send(to, msg, true) }

// Post is Send that never waits for the window (small control messages).
func (t *Transport) Post(to string, msg []byte) error { return t.send(to, msg, false) }

func (t *Transport) send(to string, msg []byte, wait bool) error {
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return ErrClosed
	}
	if to == t.cfg.MyID {
		t.inbox = append(t.inbox, inboxItem{from: to, msg: append([]byte(nil), msg...)})
		signal(t.arrived)
		return nil
	}
	p := t.peerLocked(to)
	gen := p.gen
	for off := 0; off == 0 || off < len(msg); {
		n := min(len(msg)-off, t.cfg.ChunkSize)
		for wait && p.unackedBytes > 0 && p.unackedBytes+n > t.cfg.Window && !t.closed && p.gen == gen {
			t.room.Wait()
		}
		if t.closed {
			return ErrClosed
		}
		if p.gen != gen {
			return errors.New("the node restarted while a message to it was sent")
		}
		f := frame{kind: kindData, from: t.cfg.MyRun, to: p.run, seq: p.nextSeq, last: off+n == len(msg), payload: msg[off : off+n]}
		p.unacked = append(p.unacked, &pending{seq: f.seq, frame: f.encode(), size: n})
		p.unackedBytes += n
		p.nextSeq++
		off += n
		signal(t.wake)
	}
	return nil
}

// Receive takes a frame Redis's bus brought from node `from` (on Redis's
// main thread: it never waits). Frames that are not gears' are ignored.
func (t *Transport) Receive(from string, b []byte) {
	f, err := decode(b)
	if err != nil {
		return
	}
	t.mu.Lock()
	defer t.mu.Unlock()
	if t.closed {
		return
	}
	p := t.peerLocked(from)
	if f.from != p.run {
		if p.run != "" {
			t.restartedLocked(p)
		}
		p.run = f.from
	}
	if f.to != "" && f.to != t.cfg.MyRun {
		// Meant for this node's previous process: answer, so the sender
		// learns this run id.
		p.ackDue = true
		signal(t.wake)
		return
	}
	switch f.kind {
	case kindAck:
		t.ackedLocked(p, f.seq)
	case kindData:
		switch {
		case f.seq == p.expected:
			p.expected++
			p.partial = append(p.partial, f.payload...)
			if f.last {
				t.inbox = append(t.inbox, inboxItem{from: from, msg: p.partial, seq: f.seq, gen: p.gen})
				p.partial = nil
				signal(t.arrived)
			}
		default: // a duplicate, or past a gap (resent from the gap on): say where we are
			p.ackDue = true
			signal(t.wake)
		}
	}
}

// restartedLocked forgets a peer's previous process: what was sent to it
// and what it sent.
func (t *Transport) restartedLocked(p *peer) {
	p.gen++
	p.unacked, p.unackedBytes, p.nextSeq = nil, 0, 1
	p.expected, p.delivered, p.partial = 1, 0, nil
	t.inbox = append(t.inbox, inboxItem{from: p.id, restarted: true})
	signal(t.arrived)
	t.room.Broadcast()
}

func (t *Transport) ackedLocked(p *peer, seq uint64) {
	i := 0
	for i < len(p.unacked) && p.unacked[i].seq <= seq {
		p.unackedBytes -= p.unacked[i].size
		i++
	}
	if i > 0 {
		p.unacked = append(p.unacked[:0:0], p.unacked[i:]...)
		t.room.Broadcast()
	}
}

// Forget drops what is known of a node that left the cluster.
func (t *Transport) Forget(id string) {
	t.mu.Lock()
	if p := t.peers[id]; p != nil {
		p.gen++
		delete(t.peers, id)
		t.room.Broadcast()
	}
	t.mu.Unlock()
}

// Pending is the number of frames sent to node id and not acknowledged.
func (t *Transport) Pending(id string) int {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		return len(p.unacked)
	}
	return 0
}

// PeerRun is node id's run id, "" until it was heard from.
func (t *Transport) PeerRun(id string) string {
	t.mu.Lock()
	defer t.mu.Unlock()
	if p := t.peers[id]; p != nil {
		return p.run
	}
	return ""
}

// sender sends new frames, acknowledgements and, past ResendAfter, every
// frame not acknowledged (from the oldest on: a link reset loses a run of
// them).
func (t *Transport) sender() {
	tick := time.NewTicker(max(t.cfg.ResendAfter/4, time.Millisecond))
	defer tick.Stop()
	for {
		select {
		case <-t.done:
			return
		case <-t.wake:
		case <-tick.C:
		}
		if out := t.outgoing(time.Now()); len(out) > 0 {
			t.guard("cluster bus send", func() { t.bus.Send(out) })
		}
	}
}

func (t *Transport) outgoing(now time.Time) []Outgoing {
	t.mu.Lock()
	defer t.mu.Unlock()
	var out []Outgoing
	for _, p := range t.peers {
		overdue := len(p.unacked) > 0 && !p.unacked[0].sentAt.IsZero() && now.Sub(p.unacked[0].sentAt) >= t.cfg.ResendAfter
		for _, q := range p.unacked {
			if overdue || q.sentAt.IsZero() {
				q.sentAt = now
				out = append(out, Outgoing{To: p.id, Frame: q.frame})
			}
		}
		if p.ackDue {
			p.ackDue = false
			f := frame{kind: kindAck, from: t.cfg.MyRun, to: p.run, seq: p.delivered}
			out = append(out, Outgoing{To: p.id, Frame: f.encode()})
		}
	}
	return out
}

// deliverer hands arrived messages to Deliver, one at a time, and then
// acknowledges them.
func (t *Transport) deliverer() {
	for {
		select {
		case <-t.done:
			return
		case <-t.arrived:
		}
		for {
			t.mu.Lock()
			if len(t.inbox) == 0 || t.closed {
				t.mu.Unlock()
				break
			}
			it := t.inbox[0]
			t.inbox = t.inbox[1:]
			t.mu.Unlock()
			switch {
			case it.restarted:
				if t.cfg.PeerRestarted != nil {
					t.guard("peer restart", func() { t.cfg.PeerRestarted(it.from) })
				}
			default:
				if t.cfg.Deliver != nil {
					t.guard("cluster message", func() { t.cfg.Deliver(it.from, it.msg) })
				}
				t.delivered(it)
			}
		}
	}
}

// guard runs fn, recovering a panic (a message that made one is still
// acknowledged: sent again it would make it again).
func (t *Transport) guard(where string, fn func()) {
	defer func() {
		if r := recover(); r != nil && t.cfg.Panic != nil {
			t.cfg.Panic(where, r)
		}
	}()
	fn()
}

func (t *Transport) delivered(it inboxItem) {
	if it.seq == 0 { // to itself
		return
	}
	t.mu.Lock()
	if p := t.peers[it.from]; p != nil && p.gen == it.gen && it.seq > p.delivered {
		p.delivered = it.seq
		p.ackDue = true
		signal(t.wake)
	}
	t.mu.Unlock()
}
