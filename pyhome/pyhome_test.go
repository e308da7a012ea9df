package pyhome

import (
	"os"
	"path/filepath"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// extract runs Extract and fails with a hint when the tree was not generated.
func extract(t *testing.T, base string) string {
	t.Helper()
	start := time.Now()
	home, err := Extract(base)
	require.NoError(t, err, "generate the tree first: go run ./cmd/build-so -tree-only")
	t.Logf("Extract took %v", time.Since(start))
	return home
}

func TestExtractLayout(t *testing.T) {
	base := filepath.Join(t.TempDir(), "missing", "base")
	home := extract(t, base)

	assert.Equal(t, filepath.Join(base, "python-"+Hash()), home)
	assert.Len(t, Hash(), 16)

	fi, err := os.Stat(base)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm(), "created base dir must be private")

	fi, err = os.Stat(home)
	require.NoError(t, err)
	assert.Equal(t, os.FileMode(0o700), fi.Mode().Perm())

	lib, err := os.Stat(filepath.Join(home, "lib", "libpython3.14.so.1.0"))
	require.NoError(t, err)
	assert.Greater(t, lib.Size(), int64(1<<20))
	assert.NotZero(t, lib.Mode().Perm()&0o100, "libpython must be executable")

	// The unversioned name resolves to the same library.
	viaLink, err := os.Stat(filepath.Join(home, "lib", "libpython3.14.so"))
	require.NoError(t, err)
	assert.Equal(t, lib.Size(), viaLink.Size())

	for _, f := range []string{"lib/python3.14/os.py", "lib/python3.14/json/__init__.py", "lib/python3.14/venv/__init__.py"} {
		assert.FileExists(t, filepath.Join(home, f))
	}
	for _, f := range []string{"bin", "lib/python3.14/tkinter", "lib/python3.14/turtle.py", "lib/libpython3.so"} {
		assert.NoFileExists(t, filepath.Join(home, f))
		assert.NoDirExists(t, filepath.Join(home, f))
	}
	glob, _ := filepath.Glob(filepath.Join(home, "lib/python3.14/lib-dynload/_testsinglephase*"))
	assert.Len(t, glob, 1)

	b, err := os.ReadFile(filepath.Join(home, ".complete"))
	require.NoError(t, err)
	assert.Equal(t, Hash()+"\n", string(b))
}

func TestExtractReuses(t *testing.T) {
	base := t.TempDir()
	home := extract(t, base)
	osPy := filepath.Join(home, "lib", "python3.14", "os.py")
	before, err := os.Stat(osPy)
	require.NoError(t, err)

	start := time.Now()
	home2 := extract(t, base)
	warm := time.Since(start)
	assert.Equal(t, home, home2)
	assert.Less(t, warm, 100*time.Millisecond, "warm Extract must not re-extract")

	after, err := os.Stat(osPy)
	require.NoError(t, err)
	assert.Equal(t, before.ModTime(), after.ModTime(), "os.py was rewritten")
	assert.True(t, os.SameFile(before, after), "os.py was replaced")
}

func TestExtractRedoesPartialHome(t *testing.T) {
	base := t.TempDir()
	home := extract(t, base)
	osPy := filepath.Join(home, "lib", "python3.14", "os.py")

	// Simulate a crash mid-extraction: no marker, a missing and a stray file.
	require.NoError(t, os.Remove(filepath.Join(home, ".complete")))
	require.NoError(t, os.Remove(osPy))
	stray := filepath.Join(home, "stray")
	require.NoError(t, os.WriteFile(stray, []byte("x"), 0o600))

	extract(t, base)
	assert.FileExists(t, osPy)
	assert.NoFileExists(t, stray)

	// A marker from another build does not count either.
	require.NoError(t, os.WriteFile(filepath.Join(home, ".complete"), []byte("0123456789abcdef\n"), 0o600))
	require.NoError(t, os.Truncate(osPy, 0))
	extract(t, base)
	fi, err := os.Stat(osPy)
	require.NoError(t, err)
	assert.NotZero(t, fi.Size())
}

func TestExtractRefusesInsecureBase(t *testing.T) {
	base := t.TempDir()
	require.NoError(t, os.Chmod(base, 0o777))
	_, err := Extract(base)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "writable")
	assert.NoDirExists(t, filepath.Join(base, "python-"+Hash()))

	require.NoError(t, os.Chmod(base, 0o770))
	_, err = Extract(base)
	assert.Error(t, err, "group-writable base dir must be refused")
}

func TestExtractRefusesForeignOwner(t *testing.T) {
	if os.Geteuid() != 0 {
		t.Skip("needs root to chown a directory to another user")
	}
	base := t.TempDir()
	require.NoError(t, os.Chown(base, 65534, 65534))
	_, err := Extract(base)
	require.Error(t, err)
	assert.Contains(t, err.Error(), "owned by uid 65534")
}
