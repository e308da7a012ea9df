// Command build-so writes the pruned CPython tree that package pyhome embeds
// and then builds the Redis module (redisgears.so).
//
//	go run ./cmd/build-so [-o redisgears.so] [-tree-only]
package main

import (
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"io/fs"
	"os"
	"os/exec"
	"path"
	"path/filepath"
	"runtime"
	"strings"

	"gears/pyhome/manifest"
)

const embedPythonModule = "github.com/kluctl/go-embed-python"

type (
	entry    = manifest.Entry
	fileList = manifest.List
)

func main() {
	out := flag.String("o", "redisgears.so", "output shared library")
	treeOnly := flag.Bool("tree-only", false, "only generate pyhome/tree, do not build the module")
	flag.Parse()
	if err := run(*out, *treeOnly); err != nil {
		fmt.Fprintln(os.Stderr, "build-so:", err)
		os.Exit(1)
	}
}

func run(out string, treeOnly bool) error {
	// Resolve -o against the caller's directory before we work from the repo root.
	out, err := filepath.Abs(out)
	if err != nil {
		return err
	}
	root, err := goOutput("list", "-m", "-f", "{{.Dir}}")
	if err != nil {
		return fmt.Errorf("cannot find the main module: %v", err)
	}
	modDir, err := embedPythonDir()
	if err != nil {
		return err
	}
	sources := []treeSource{
		{dir: filepath.Join(modDir, "python", "internal", "data", runtime.GOOS+"-"+runtime.GOARCH), keep: keep},
		// pip resolves and downloads REQUIREMENTS; it lives outside the stdlib
		// (under pip/) so only the interpreter that runs it sees it.
		{dir: filepath.Join(modDir, "pip", "internal", "data"), prefix: "pip/", keep: keepPip, gzip: true},
	}
	if err := writeTree(sources, filepath.Join(root, "pyhome", "tree")); err != nil {
		return err
	}
	if treeOnly {
		return nil
	}

	cmd := exec.Command("go", "build", "-buildmode=c-shared", "-trimpath", "-ldflags=-s", "-o", out, "./module")
	cmd.Dir, cmd.Stdout, cmd.Stderr = root, os.Stdout, os.Stderr
	if err := cmd.Run(); err != nil {
		return fmt.Errorf("go build of ./module failed: %v", err)
	}
	// cgo's C header is of no use to Redis.
	if err := os.Remove(strings.TrimSuffix(out, ".so") + ".h"); err != nil && !os.IsNotExist(err) {
		return err
	}
	// Redis 7 refuses to load a module without the execute bit.
	if err := os.Chmod(out, 0o755); err != nil {
		return err
	}
	fi, err := os.Stat(out)
	if err != nil {
		return err
	}
	fmt.Printf("built %s: %.1f MiB\n", out, float64(fi.Size())/(1<<20))
	return nil
}

func goOutput(args ...string) (string, error) {
	cmd := exec.Command("go", args...)
	cmd.Stderr = os.Stderr
	b, err := cmd.Output()
	return strings.TrimSpace(string(b)), err
}

// embedPythonDir finds go-embed-python in the module cache, downloading it
// on a fresh machine.
func embedPythonDir() (string, error) {
	dir, err := goOutput("list", "-m", "-f", "{{.Dir}}", embedPythonModule)
	if err == nil && dir == "" {
		if _, err = goOutput("mod", "download", embedPythonModule); err == nil {
			dir, err = goOutput("list", "-m", "-f", "{{.Dir}}", embedPythonModule)
		}
	}
	if err != nil || dir == "" {
		return "", fmt.Errorf("cannot locate %s in the module cache (err: %v)", embedPythonModule, err)
	}
	return dir, nil
}

// dropDirs are directory names removed wherever they occur in the stdlib:
// GUI, installer and test code that a Redis module never runs. _pyrepl
// stays although it is the REPL: in 3.14 pdb, pydoc and help() import it.
var dropDirs = map[string]bool{
	"tkinter": true, "idlelib": true, "turtledemo": true,
	"ensurepip": true, "lib2to3": true, "test": true, "tests": true, "__pycache__": true,
}

// keep reports whether a files.json entry belongs in the embedded tree.
func keep(e entry) bool {
	parts := strings.Split(e.Name, "/")
	if parts[0] == "bin" { // we embed libpython, not the interpreter binaries
		return false
	}
	if parts[0] == "lib" && len(parts) >= 2 {
		top := parts[1]
		for _, p := range []string{"libtcl*", "itcl*", "thread*", "tcl*", "tk*"} {
			if ok, _ := path.Match(p, top); ok {
				return false
			}
		}
		// libpython3.so is the stable-ABI forwarder; pkgconfig is for builds.
		if top == "libpython3.so" || top == "pkgconfig" {
			return false
		}
	}
	if len(parts) < 3 || parts[0] != "lib" || !strings.HasPrefix(parts[1], "python3") {
		return true
	}
	// Inside lib/python3.x/.
	if ok, _ := path.Match("config-3*", parts[2]); ok {
		return false
	}
	if len(parts) == 3 && parts[2] == "turtle.py" {
		return false
	}
	dirs := parts[2:]
	if !e.Mode.IsDir() {
		dirs = dirs[:len(dirs)-1]
	}
	for _, d := range dirs {
		if dropDirs[d] {
			return false
		}
	}
	if len(parts) == 4 && parts[2] == "lib-dynload" {
		base := parts[3]
		if strings.HasPrefix(base, "_tkinter") {
			return false
		}
		// Test extensions go, except the two that the import tests load.
		if strings.Contains(base, "test") &&
			!strings.HasPrefix(base, "_testsinglephase") && !strings.HasPrefix(base, "_testmultiphase") {
			return false
		}
	}
	return true
}

// treeSource is one go-embed-python tree copied into the embedded tree.
type treeSource struct {
	dir    string           // holds files.json and the files it lists
	prefix string           // where the tree goes inside ours
	keep   func(entry) bool // which entries to copy
	gzip   bool             // compress files that upstream stores plain
}

// keepPip keeps pip's library, not its console scripts.
func keepPip(e entry) bool { return !strings.HasPrefix(e.Name, "bin") }

func writeTree(sources []treeSource, dst string) error {
	// Start from an empty tree but keep the committed placeholder.
	if err := os.MkdirAll(dst, 0o755); err != nil {
		return err
	}
	old, err := os.ReadDir(dst)
	if err != nil {
		return err
	}
	for _, d := range old {
		if d.Name() != "PLACEHOLDER" {
			if err := os.RemoveAll(filepath.Join(dst, d.Name())); err != nil {
				return err
			}
		}
	}

	outList := fileList{Files: []entry{}}
	kept := map[string]entry{}
	var nKept, nDropped int
	var rawBytes, storedBytes int64
	var upstreamHashes []string
	for _, src := range sources {
		raw, err := os.ReadFile(filepath.Join(src.dir, "files.json"))
		if err != nil {
			return fmt.Errorf("cannot read the Python file list: %v", err)
		}
		var in fileList
		if err := json.Unmarshal(raw, &in); err != nil {
			return fmt.Errorf("cannot parse %s: %v", filepath.Join(src.dir, "files.json"), err)
		}
		upstreamHashes = append(upstreamHashes, in.ContentHash)
		if src.prefix != "" {
			dir := entry{Name: strings.TrimSuffix(src.prefix, "/"), Mode: fs.ModeDir | 0o755}
			outList.Files = append(outList.Files, dir)
			kept[dir.Name] = dir
			if err := os.MkdirAll(filepath.Join(dst, dir.Name), 0o755); err != nil {
				return err
			}
		}
		for _, e := range in.Files {
			if !src.keep(e) {
				if !e.Mode.IsDir() {
					nDropped++
				}
				continue
			}
			stored, err := copyEntry(src, e, dst)
			if err != nil {
				return err
			}
			out := e
			out.Name = src.prefix + e.Name
			out.Compressed = e.Compressed || (src.gzip && e.Mode.IsRegular())
			outList.Files = append(outList.Files, out)
			kept[out.Name] = out
			if !e.Mode.IsDir() {
				nKept++
				rawBytes += e.Size
				storedBytes += stored
			}
		}
	}

	// A kept symlink must not point at something we pruned.
	for _, e := range outList.Files {
		if e.Mode.Type() == fs.ModeSymlink {
			if t, ok := kept[path.Join(path.Dir(e.Name), e.Symlink)]; !ok || !t.Mode.IsRegular() {
				return fmt.Errorf("kept symlink %s points to pruned or missing %s", e.Name, e.Symlink)
			}
		}
	}

	// The upstream hash covers the contents; hashing it with the kept list
	// makes the id change whenever the pruning changes.
	listJSON, err := json.Marshal(outList.Files)
	if err != nil {
		return err
	}
	h := sha256.New()
	for _, u := range upstreamHashes {
		h.Write([]byte(u))
	}
	h.Write(listJSON)
	outList.ContentHash = hex.EncodeToString(h.Sum(nil))

	js, err := json.MarshalIndent(outList, "", "  ")
	if err != nil {
		return err
	}
	if err := os.WriteFile(filepath.Join(dst, "files.json"), append(js, '\n'), 0o644); err != nil {
		return err
	}
	fmt.Printf("python tree: kept %d files, dropped %d; %.1f MiB uncompressed, %.1f MiB embedded\n",
		nKept, nDropped, float64(rawBytes)/(1<<20), float64(storedBytes)/(1<<20))
	return nil
}

// copyEntry writes one entry of src into dst (under src.prefix) and returns
// the bytes stored. Symlinks live only in files.json; pyhome recreates them.
func copyEntry(src treeSource, e entry, dst string) (int64, error) {
	target := filepath.Join(dst, filepath.FromSlash(src.prefix+e.Name))
	switch {
	case e.Mode.IsDir():
		return 0, os.MkdirAll(target, 0o755)
	case e.Mode.Type() == fs.ModeSymlink:
		return 0, nil
	}
	name := e.Name
	if e.Compressed { // copy the stored bytes as they are: .gz stays compressed
		name += ".gz"
	}
	data, err := os.ReadFile(filepath.Join(src.dir, filepath.FromSlash(name)))
	if err != nil {
		return 0, err
	}
	if src.gzip && !e.Compressed {
		var buf bytes.Buffer
		zw, _ := gzip.NewWriterLevel(&buf, gzip.BestCompression)
		zw.Write(data)
		if err := zw.Close(); err != nil {
			return 0, err
		}
		data = buf.Bytes()
		target += ".gz"
	} else if e.Compressed {
		target += ".gz"
	}
	if err := os.MkdirAll(filepath.Dir(target), 0o755); err != nil {
		return 0, err
	}
	return int64(len(data)), os.WriteFile(target, data, 0o644)
}
