package reqs

import (
	"bytes"
	"crypto/sha256"
	"encoding/binary"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"os"
)

// A requirement travels (RG.PYEXPORTREQ / RG.PYIMPORTREQ, replicas, the
// AOF) as one blob: a magic line, the length of a JSON header, the header,
// then the wheels' bytes in the header's order.

const blobMagic = "gears-requirement/1\n"

// WheelRef names a wheel by file name and content hash.
type WheelRef struct {
	File   string
	SHA256 string
	Size   int64 `json:",omitempty"`
}

// Saved is a requirement without its wheels' bytes.
type Saved struct {
	Name   string
	Wheels []WheelRef
}

// Saved describes r.
func (r *Requirement) Saved() Saved {
	s := Saved{Name: r.Name}
	for _, d := range r.Dists {
		s.Wheels = append(s.Wheels, WheelRef{File: d.File, SHA256: d.SHA256})
	}
	return s
}

// Marshal is r as a blob, its wheels read from the store.
func (r *Requirement) Marshal() ([]byte, error) {
	h := r.Saved()
	var body bytes.Buffer
	for i, d := range r.Dists {
		data, err := os.ReadFile(d.Wheel)
		if err != nil {
			return nil, fmt.Errorf("requirement %s: %w", r.Name, err)
		}
		h.Wheels[i].Size = int64(len(data))
		body.Write(data)
	}
	js, err := json.Marshal(h)
	if err != nil {
		return nil, err
	}
	var out bytes.Buffer
	out.WriteString(blobMagic)
	out.Write(binary.AppendUvarint(nil, uint64(len(js))))
	out.Write(js)
	out.Write(body.Bytes())
	return out.Bytes(), nil
}

// Import installs the requirement in blob and records it under its name.
func (s *Store) Import(blob []byte) (*Requirement, error) {
	rest, ok := bytes.CutPrefix(blob, []byte(blobMagic))
	if !ok {
		return nil, ErrBadBlob
	}
	n, k := binary.Uvarint(rest)
	if k <= 0 || n > uint64(len(rest)-k) {
		return nil, ErrBadBlob
	}
	var h Saved
	if json.Unmarshal(rest[k:k+int(n)], &h) != nil || h.Name == "" || len(h.Wheels) == 0 {
		return nil, ErrBadBlob
	}
	rest = rest[k+int(n):]
	wheels := make(map[string][]byte, len(h.Wheels))
	for _, w := range h.Wheels {
		if w.Size < 0 || w.Size > int64(len(rest)) {
			return nil, ErrBadBlob
		}
		wheels[w.SHA256], rest = rest[:w.Size], rest[w.Size:]
	}
	if len(rest) != 0 {
		return nil, ErrBadBlob
	}
	return s.Restore(h, wheels)
}

// Restore installs a saved requirement from its wheels' bytes (by hash) and
// records it. Each wheel must match its hash.
func (s *Store) Restore(h Saved, wheels map[string][]byte) (*Requirement, error) {
	dists := make([]*Dist, 0, len(h.Wheels))
	for _, w := range h.Wheels {
		data, ok := wheels[w.SHA256]
		if !ok {
			return nil, fmt.Errorf("requirement %s: wheel %s is missing", h.Name, w.File)
		}
		if sum := sha256.Sum256(data); hex.EncodeToString(sum[:]) != w.SHA256 {
			return nil, fmt.Errorf("requirement %s: wheel %s does not match its hash", h.Name, w.File)
		}
		d, err := s.AddWheel(w.File, data)
		if err != nil {
			return nil, fmt.Errorf("requirement %s: %w", h.Name, err)
		}
		dists = append(dists, d)
	}
	return s.Put(h.Name, dists), nil
}
