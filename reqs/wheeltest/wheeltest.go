// Package wheeltest builds small pure-Python wheels for tests: a wheel is a
// zip holding the package and a .dist-info with METADATA, WHEEL and RECORD.
package wheeltest

import (
	"archive/zip"
	"bytes"
	"crypto/sha256"
	"encoding/base64"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// FileName is the wheel file name of name and version.
func FileName(name, ver string) string { return fmt.Sprintf("%s-%s-py3-none-any.whl", name, ver) }

// Build returns the bytes of a wheel of name and version holding files
// (path -> content, e.g. "foo/__init__.py") and requiring deps.
func Build(name, ver string, files map[string]string, deps ...string) []byte {
	info := fmt.Sprintf("%s-%s.dist-info/", name, ver)
	all := map[string]string{}
	for k, v := range files {
		all[k] = v
	}
	meta := fmt.Sprintf("Metadata-Version: 2.1\nName: %s\nVersion: %s\n", name, ver)
	for _, d := range deps {
		meta += "Requires-Dist: " + d + "\n"
	}
	all[info+"METADATA"] = meta
	all[info+"WHEEL"] = "Wheel-Version: 1.0\nGenerator: gears-tests\nRoot-Is-Purelib: true\nTag: py3-none-any\n"
	names := make([]string, 0, len(all))
	for k := range all {
		names = append(names, k)
	}
	sort.Strings(names)
	var record strings.Builder
	for _, k := range names {
		sum := sha256.Sum256([]byte(all[k]))
		fmt.Fprintf(&record, "%s,sha256=%s,%d\n", k, base64.RawURLEncoding.EncodeToString(sum[:]), len(all[k]))
	}
	fmt.Fprintf(&record, "%sRECORD,,\n", info)
	all[info+"RECORD"] = record.String()
	names = append(names, info+"RECORD")

	var buf bytes.Buffer
	zw := zip.NewWriter(&buf)
	for _, k := range names {
		w, _ := zw.Create(k)
		w.Write([]byte(all[k]))
	}
	zw.Close()
	return buf.Bytes()
}

// Write builds a wheel into dir (see Build) and returns its path.
func Write(dir, name, ver string, files map[string]string, deps ...string) (string, error) {
	p := filepath.Join(dir, FileName(name, ver))
	return p, os.WriteFile(p, Build(name, ver, files, deps...), 0o644)
}
