package reqs

import (
	_ "embed"
	"fmt"
	"path/filepath"
	"regexp"
	"strconv"
	"strings"
	"time"

	"gears/interp"
)

//go:embed pip.py
var pipDriver string

// Sources are where pip may look for wheels: a local directory of wheels
// (--find-links), a package index, or both. With only a directory, pip runs
// with --no-index and never touches the network.
type Sources struct {
	WheelDir string
	IndexURL string
	Timeout  time.Duration // pip's socket timeout for the index (0: pip's own)
}

// Configured reports whether any source is set.
func (s Sources) Configured() bool { return s.WheelDir != "" || s.IndexURL != "" }

// Resolved is what pip chose for one requirement: wheel files in a
// temporary directory, the requirement's own distribution first.
type Resolved struct {
	Name   string
	Wheels []string
}

// Download resolves each requirement with `pip download` (binary wheels
// only: building an sdist would run arbitrary build code inside Redis) into
// a directory of its own under dest. It runs pip in a new sub-interpreter
// on the calling thread, which must be locked to its OS thread. log is
// pip's output, for the Redis log.
func Download(pipDir string, src Sources, names []string, dest string) (res []Resolved, log string, err error) {
	if !src.Configured() {
		return nil, "", fmt.Errorf("no requirement source is configured (set RequirementsWheelDir or RequirementsIndexURL)")
	}
	it, err := interp.New(interp.OwnGIL, func(t *interp.Thread) error {
		d, err := t.ModuleDict("_gears_pip")
		if err != nil {
			return err
		}
		return t.Exec(pipDriver, d)
	})
	if err != nil {
		return nil, "", err
	}
	defer it.Close()
	t, err := it.Attach()
	if err != nil {
		return nil, "", err
	}
	defer t.Detach()

	var logs strings.Builder
	for i, name := range names {
		dir := filepath.Join(dest, fmt.Sprint(i))
		args := []string{"download", "--dest", dir, "--only-binary=:all:", "--isolated",
			"--disable-pip-version-check", "--no-input", "--no-cache-dir", "--progress-bar", "off"}
		if src.WheelDir != "" {
			args = append(args, "--find-links", src.WheelDir)
		}
		if src.IndexURL != "" {
			args = append(args, "--index-url", src.IndexURL)
			if src.Timeout > 0 {
				args = append(args, "--timeout", strconv.FormatFloat(src.Timeout.Seconds(), 'f', -1, 64))
			}
		} else {
			args = append(args, "--no-index")
		}
		args = append(args, "--", name)
		out, err := t.Call("_gears_pip", "pip", pipDir, args)
		if err != nil {
			return nil, logs.String(), err
		}
		rc, _ := out.([]any)[0].(int64)
		text, _ := out.([]any)[1].(string)
		fmt.Fprintf(&logs, "pip %s:\n%s", strings.Join(args, " "), text)
		if rc != 0 {
			return nil, logs.String(), fmt.Errorf("pip could not get %q (exit status %d)", name, rc)
		}
		wheels, err := filepath.Glob(filepath.Join(dir, "*.whl"))
		if err != nil || len(wheels) == 0 {
			return nil, logs.String(), fmt.Errorf("pip got no wheel for %q", name)
		}
		res = append(res, Resolved{Name: name, Wheels: ownFirst(name, wheels)})
	}
	return res, logs.String(), nil
}

var (
	reqNameEnd = regexp.MustCompile(`[\s<>=!~;\[@(]`)
	nameSeps   = regexp.MustCompile(`[-_.]+`)
)

// normalize is a distribution name in PEP 503 form.
func normalize(name string) string { return strings.ToLower(nameSeps.ReplaceAllString(name, "-")) }

// ownFirst orders the wheels of requirement req so that the one it names
// comes first (the rest are its dependencies).
func ownFirst(req string, wheels []string) []string {
	want := normalize(strings.TrimSpace(reqNameEnd.Split(strings.TrimSpace(req), 2)[0]))
	for i, w := range wheels {
		if n, _, err := parseWheelName(filepath.Base(w)); err == nil && normalize(n) == want {
			wheels[0], wheels[i] = wheels[i], wheels[0]
			break
		}
	}
	return wheels
}
