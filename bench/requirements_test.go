package bench

import (
	"fmt"
	"os"
	"path/filepath"
	"testing"
	"time"

	"gears/reqs/wheeltest"
)

// TestBenchRequirements measures REQUIREMENTS with a small pure-Python wheel
// from a local wheel directory: the first install (pip resolves in a new
// sub-interpreter, gears unpacks), the reuse of an installed requirement,
// and the disk one requirement takes. The peer is RG.PYEXECUTE of the same
// script without requirements.
func TestBenchRequirements(t *testing.T) {
	guard(t)
	const n = 10
	r := newReport(t, "requirements")
	wheels := t.TempDir()
	for i := range n {
		name := fmt.Sprintf("benchpkg%d", i)
		if _, err := wheeltest.Write(wheels, name, "1.0", map[string]string{name + "/__init__.py": "X = 1\n"}); err != nil {
			t.Fatal(err)
		}
	}
	s := startServer(t, "RequirementsWheelDir", wheels)
	time.Sleep(time.Second) // let start-up work settle

	run := func(args ...any) time.Duration {
		start := time.Now()
		if err := s.Client.Do(bg(), append([]any{"RG.PYEXECUTE"}, args...)...).Err(); err != nil {
			t.Fatalf("%v: %v\n%s", args, err, logTail(s.Dir))
		}
		return time.Since(start)
	}
	var install, reuse, plain []time.Duration
	for i := range n {
		name := fmt.Sprintf("benchpkg%d", i)
		script := "import " + name
		install = append(install, run(script, "REQUIREMENTS", name))
		reuse = append(reuse, run(script, "REQUIREMENTS", name))
		plain = append(plain, run("pass"))
	}
	r.line("first install of a new small wheel:   %s (first call; includes compiling pip's bytecode when the Python home is new)", ms(install[0]))
	r.line("install of a new small wheel, each:   %s", msList(install[1:]))
	r.line("reuse of an installed requirement:    %s", msList(reuse))
	r.line("peer: RG.PYEXECUTE 'pass', no reqs:   %s", msList(plain))

	store := filepath.Join(pythonHome(t), "requirements")
	dists, _ := filepath.Glob(filepath.Join(store, "dists", "benchpkg0-*"))
	wheelFiles, _ := filepath.Glob(filepath.Join(store, "wheels", "*-benchpkg0-*"))
	if len(dists) != 1 || len(wheelFiles) != 1 {
		t.Fatalf("store has %v and %v", dists, wheelFiles)
	}
	r.line("disk per requirement (benchpkg0):     unpacked %d bytes in %d files (%d kB in 4 kB blocks) + kept wheel %d bytes",
		dirBytes(t, dists[0]), dirFiles(t, dists[0]), dirBlocksKB(t, dists[0]), dirBytes(t, wheelFiles[0]))
}

func walkFiles(t *testing.T, dir string, f func(os.FileInfo)) {
	err := filepath.Walk(dir, func(_ string, fi os.FileInfo, err error) error {
		if err == nil {
			f(fi)
		}
		return err
	})
	if err != nil {
		t.Fatal(err)
	}
}

func dirBytes(t *testing.T, dir string) (n int64) {
	walkFiles(t, dir, func(fi os.FileInfo) {
		if !fi.IsDir() {
			n += fi.Size()
		}
	})
	return n
}

func dirFiles(t *testing.T, dir string) (n int) {
	walkFiles(t, dir, func(fi os.FileInfo) {
		if !fi.IsDir() {
			n++
		}
	})
	return n
}

// dirBlocksKB is what the directory takes on a file system of 4 kB blocks.
func dirBlocksKB(t *testing.T, dir string) (n int64) {
	walkFiles(t, dir, func(fi os.FileInfo) { n += (fi.Size() + 4095) / 4096 * 4 })
	return n
}
