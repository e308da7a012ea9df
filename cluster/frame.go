// Package cluster moves gears' messages between the shards of a Redis
// Cluster over Redis's own cluster bus, and adds what the bus lacks: a send
// that returns OK is only queued there, and a link reset discards its buffer
// silently. Transport numbers each peer's messages, resends what was not
// acknowledged, drops duplicates, cuts large messages into chunks, bounds
// what waits for acknowledgement per peer, and notices a peer that restarted.
// It knows nothing of Redis: frames go through a Bus (redismod's, or a
// test's).
package cluster

import (
	"encoding/binary"
	"errors"
)

// A frame on the bus (little endian):
//
//	magic "GRG1" | kind (1) | sender's run id (40) | receiver's run id as the
//	sender knows it (40, zeros: not yet) | seq (8) | for data: last (1), payload
//
// Redis gives every module whose name is not 9 characters long module id 0,
// so other modules' messages may share our message type: the magic and the
// length check are what tell gears' frames apart.
const (
	magic     = "GRG1"
	RunIDLen  = 40
	headerLen = len(magic) + 1 + 2*RunIDLen + 8
)

type kind byte

const (
	kindData kind = 1 // seq: this chunk's number; then last and the payload
	kindAck  kind = 2 // seq: every data frame up to it was delivered
)

type frame struct {
	kind     kind
	from, to string // run ids
	seq      uint64
	last     bool // data: the message's last chunk
	payload  []byte
}

var errNotOurs = errors.New("not a gears frame")

func (f *frame) encode() []byte {
	n := headerLen
	if f.kind == kindData {
		n += 1 + len(f.payload)
	}
	b := make([]byte, n)
	copy(b, magic)
	b[4] = byte(f.kind)
	putRunID(b[5:], f.from)
	putRunID(b[5+RunIDLen:], f.to)
	binary.LittleEndian.PutUint64(b[5+2*RunIDLen:], f.seq)
	if f.kind == kindData {
		if f.last {
			b[headerLen] = 1
		}
		copy(b[headerLen+1:], f.payload)
	}
	return b
}

func putRunID(b []byte, id string) {
	for i := range RunIDLen {
		if i < len(id) {
			b[i] = id[i]
		} else {
			b[i] = 0
		}
	}
}

func runID(b []byte) string {
	for i, c := range b[:RunIDLen] {
		if c == 0 {
			return string(b[:i])
		}
	}
	return string(b[:RunIDLen])
}

// decode reads a frame; the payload aliases b.
func decode(b []byte) (*frame, error) {
	if len(b) < headerLen || string(b[:4]) != magic {
		return nil, errNotOurs
	}
	f := &frame{
		kind: kind(b[4]),
		from: runID(b[5:]),
		to:   runID(b[5+RunIDLen:]),
		seq:  binary.LittleEndian.Uint64(b[5+2*RunIDLen:]),
	}
	switch f.kind {
	case kindAck:
	case kindData:
		if len(b) < headerLen+1 {
			return nil, errNotOurs
		}
		f.last = b[headerLen] == 1
		f.payload = b[headerLen+1:]
	default:
		return nil, errNotOurs
	}
	if f.from == "" {
		return nil, errNotOurs
	}
	return f, nil
}
