// Package reqs keeps the Python requirements that sessions ask for with
// RG.PYEXECUTE ... REQUIREMENTS: every wheel unpacked once into a directory
// named by its content hash (shared on disk by all sessions that need it),
// and the dictionary of requirements by the name the user gave
// (RG.PYDUMPREQS). pip, run in a sub-interpreter of its own, resolves and
// downloads (Download); the store unpacks wheels itself, so loading an RDB
// or a replicated requirement never waits for pip. It knows nothing of Redis.
package reqs

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"errors"
	"fmt"
	"io"
	"os"
	"path"
	"path/filepath"
	"sort"
	"strings"
	"sync"
	"time"
)

// Dist is one installed wheel.
type Dist struct {
	File   string // the wheel's file name, e.g. pkg-1.0-py3-none-any.whl
	SHA256 string // of the wheel's bytes
	Name   string // distribution name and version, from the file name
	Ver    string
	Dir    string // the unpacked wheel: what goes on sys.path
	Wheel  string // the kept wheel file (for export, the RDB and replicas)
}

// Requirement is what one requirement string resolved to.
type Requirement struct {
	Name    string  // as the user wrote it: "pkg==1.0"
	Version int     // bumped by every reinstall (RedisGears' GearReqVersion)
	Dists   []*Dist // its own wheel first, then its dependencies

	refs int // sessions using it now; under Store.mu
}

// Paths are the directories a session using r puts on sys.path.
func (r *Requirement) Paths() []string {
	out := make([]string, len(r.Dists))
	for i, d := range r.Dists {
		out[i] = d.Dir
	}
	return out
}

// Store is the on-disk wheel store and the requirement dictionary.
type Store struct {
	root string

	mu   sync.Mutex
	reqs map[string]*Requirement
}

// Open uses (and creates) root. Several servers may share one root (the
// same wheel is then unpacked once for all), so what an interrupted install
// left in tmp is removed only once it is a day old.
func Open(root string) (*Store, error) {
	for _, d := range []string{"dists", "wheels", "tmp"} {
		if err := os.MkdirAll(filepath.Join(root, d), 0o700); err != nil {
			return nil, err
		}
	}
	left, _ := os.ReadDir(filepath.Join(root, "tmp"))
	for _, e := range left {
		if fi, err := e.Info(); err == nil && time.Since(fi.ModTime()) > 24*time.Hour {
			os.RemoveAll(filepath.Join(root, "tmp", e.Name()))
		}
	}
	return &Store{root: root, reqs: map[string]*Requirement{}}, nil
}

// TempDir makes a fresh directory inside the store (same file system as the
// final places, so finished work is moved in with one rename).
func (s *Store) TempDir() (string, error) {
	return os.MkdirTemp(filepath.Join(s.root, "tmp"), "work-")
}

// AddWheelFile installs the wheel at path (see AddWheel).
func (s *Store) AddWheelFile(p string) (*Dist, error) {
	data, err := os.ReadFile(p)
	if err != nil {
		return nil, err
	}
	return s.AddWheel(filepath.Base(p), data)
}

// AddWheel installs a wheel given as bytes: it keeps the file and unpacks it
// into dists/<name>-<version>-<hash>. A wheel already there is not unpacked
// again. Nothing is left half-made: both land with a rename.
func (s *Store) AddWheel(file string, data []byte) (*Dist, error) {
	name, ver, err := parseWheelName(file)
	if err != nil {
		return nil, err
	}
	sum := sha256.Sum256(data)
	hash := hex.EncodeToString(sum[:])
	d := &Dist{
		File: file, SHA256: hash, Name: name, Ver: ver,
		Dir:   filepath.Join(s.root, "dists", fmt.Sprintf("%s-%s-%s", name, ver, hash[:16])),
		Wheel: filepath.Join(s.root, "wheels", hash[:16]+"-"+file),
	}
	if exists(d.Dir) && exists(d.Wheel) {
		return d, nil
	}
	tmp, err := s.TempDir()
	if err != nil {
		return nil, err
	}
	defer os.RemoveAll(tmp)
	if !exists(d.Wheel) {
		w := filepath.Join(tmp, "wheel")
		if err := os.WriteFile(w, data, 0o600); err != nil {
			return nil, err
		}
		if err := rename(w, d.Wheel); err != nil {
			return nil, err
		}
	}
	if !exists(d.Dir) {
		u := filepath.Join(tmp, "unpacked")
		if err := unpack(data, u, name+"-"+ver+".data/"); err != nil {
			return nil, fmt.Errorf("wheel %s: %w", file, err)
		}
		if err := rename(u, d.Dir); err != nil {
			return nil, err
		}
	}
	return d, nil
}

// rename moves a finished file or directory in; another install that got
// there first (same content, same name) is as good.
func rename(from, to string) error {
	if err := os.Rename(from, to); err != nil && !exists(to) {
		return err
	}
	return nil
}

func exists(p string) bool {
	_, err := os.Lstat(p)
	return err == nil
}

// parseWheelName reads name and version from a wheel file name:
// {name}-{version}(-{build})?-{python}-{abi}-{platform}.whl (PEP 427).
func parseWheelName(file string) (name, ver string, err error) {
	base, ok := strings.CutSuffix(file, ".whl")
	parts := strings.Split(base, "-")
	if !ok || len(parts) < 5 || len(parts) > 6 || strings.ContainsAny(file, `/\`) {
		return "", "", fmt.Errorf("%q is not a wheel file name", file)
	}
	return parts[0], parts[1], nil
}

// unpack extracts a wheel into dir: the archive's root is what Python
// imports; of its .data directory, purelib and platlib join the root and the
// rest (scripts, headers, data) has no use inside Redis.
func unpack(data []byte, dir, dataDir string) error {
	zr, err := zip.NewReader(bytes.NewReader(data), int64(len(data)))
	if err != nil {
		return fmt.Errorf("not a zip archive: %v", err)
	}
	if err := os.Mkdir(dir, 0o700); err != nil {
		return err
	}
	for _, f := range zr.File {
		name := f.Name
		if rest, ok := strings.CutPrefix(name, dataDir); ok {
			var lib bool
			for _, l := range []string{"purelib/", "platlib/"} {
				if r, ok := strings.CutPrefix(rest, l); ok {
					name, lib = r, true
				}
			}
			if !lib {
				continue
			}
		}
		if name == "" || strings.HasSuffix(name, "/") {
			continue // directories are made for the files in them
		}
		if !filepath.IsLocal(name) || path.Clean(name) != name {
			return fmt.Errorf("unsafe path %q in archive", f.Name)
		}
		if err := unpackFile(f, filepath.Join(dir, filepath.FromSlash(name))); err != nil {
			return err
		}
	}
	return nil
}

func unpackFile(f *zip.File, dst string) error {
	if err := os.MkdirAll(filepath.Dir(dst), 0o700); err != nil {
		return err
	}
	r, err := f.Open()
	if err != nil {
		return err
	}
	defer r.Close()
	mode := os.FileMode(0o600)
	if f.Mode()&0o100 != 0 {
		mode = 0o700
	}
	out, err := os.OpenFile(dst, os.O_WRONLY|os.O_CREATE|os.O_EXCL, mode)
	if err != nil {
		return err
	}
	_, err = io.Copy(out, r)
	if cerr := out.Close(); err == nil {
		err = cerr
	}
	return err
}

// Put records requirement name as resolved to dists, replacing an older
// resolution (whose directories stay for the sessions still using them).
func (s *Store) Put(name string, dists []*Dist) *Requirement {
	s.mu.Lock()
	defer s.mu.Unlock()
	r := &Requirement{Name: name, Version: 1, Dists: dists}
	if old, ok := s.reqs[name]; ok {
		r.Version = old.Version + 1
	}
	s.reqs[name] = r
	return r
}

// Get returns the requirement recorded under name.
func (s *Store) Get(name string) (*Requirement, bool) {
	s.mu.Lock()
	defer s.mu.Unlock()
	r, ok := s.reqs[name]
	return r, ok
}

// List is every recorded requirement, by name.
func (s *Store) List() []*Requirement {
	s.mu.Lock()
	defer s.mu.Unlock()
	out := make([]*Requirement, 0, len(s.reqs))
	for _, r := range s.reqs {
		out = append(out, r)
	}
	sort.Slice(out, func(i, j int) bool { return out[i].Name < out[j].Name })
	return out
}

// Clear forgets every requirement (the dataset they came with is replaced);
// the files stay on disk for the next install of the same wheels.
func (s *Store) Clear() {
	s.mu.Lock()
	s.reqs = map[string]*Requirement{}
	s.mu.Unlock()
}

// Use and Unuse count the sessions using r.
func (s *Store) Use(r *Requirement)   { s.mu.Lock(); r.refs++; s.mu.Unlock() }
func (s *Store) Unuse(r *Requirement) { s.mu.Lock(); r.refs--; s.mu.Unlock() }

// Refs is the number of sessions using r, plus the dictionary's own
// reference while r is the recorded resolution of its name.
func (s *Store) Refs(r *Requirement) int {
	s.mu.Lock()
	defer s.mu.Unlock()
	n := r.refs
	if s.reqs[r.Name] == r {
		n++
	}
	return n
}

// InDictionary reports whether r is still the recorded resolution of its name.
func (s *Store) InDictionary(r *Requirement) bool {
	s.mu.Lock()
	defer s.mu.Unlock()
	return s.reqs[r.Name] == r
}

// Installed reports whether r's wheels are all unpacked and kept.
func (r *Requirement) Installed() bool {
	for _, d := range r.Dists {
		if !exists(d.Dir) || !exists(d.Wheel) {
			return false
		}
	}
	return len(r.Dists) > 0
}

// ErrBadBlob is returned for bytes that are not an exported requirement.
var ErrBadBlob = errors.New("Failed deserialize requirement")
