package reqs

import (
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gears/reqs/wheeltest"
)

func TestAddWheelUnpacksLibrariesOnce(t *testing.T) {
	s, err := Open(t.TempDir())
	require.NoError(t, err)
	data := wheeltest.Build("foo", "1.0", map[string]string{
		"foo/__init__.py":                  "X = 1\n",
		"foo-1.0.data/purelib/extra.py":    "Y = 2\n",
		"foo-1.0.data/scripts/run-foo":     "#!/bin/sh\n",
		"foo-1.0.data/platlib/native/m.py": "Z = 3\n",
	})
	d, err := s.AddWheel(wheeltest.FileName("foo", "1.0"), data)
	require.NoError(t, err)
	assert.Equal(t, "foo", d.Name)
	assert.Equal(t, "1.0", d.Ver)
	for _, f := range []string{"foo/__init__.py", "extra.py", "native/m.py", "foo-1.0.dist-info/METADATA"} {
		assert.FileExists(t, filepath.Join(d.Dir, f))
	}
	assert.NoFileExists(t, filepath.Join(d.Dir, "run-foo"), "scripts have no use inside Redis")
	kept, err := os.ReadFile(d.Wheel)
	require.NoError(t, err)
	assert.Equal(t, data, kept)

	// The same bytes land in the same place; different bytes elsewhere.
	again, err := s.AddWheel(wheeltest.FileName("foo", "1.0"), data)
	require.NoError(t, err)
	assert.Equal(t, d.Dir, again.Dir)
	other, err := s.AddWheel(wheeltest.FileName("foo", "1.0"), wheeltest.Build("foo", "1.0", map[string]string{"foo/__init__.py": "X = 2\n"}))
	require.NoError(t, err)
	assert.NotEqual(t, d.Dir, other.Dir)
}

func TestAddWheelRefusesBadWheelsAndLeavesNothing(t *testing.T) {
	root := t.TempDir()
	s, err := Open(root)
	require.NoError(t, err)
	_, err = s.AddWheel("foo-1.0-py3-none-any.whl", []byte("not a zip"))
	assert.ErrorContains(t, err, "not a zip archive")
	_, err = s.AddWheel("foo-1.0-py3-none-any.whl", wheeltest.Build("foo", "1.0", map[string]string{"../evil.py": "x"}))
	assert.ErrorContains(t, err, "unsafe path")
	_, err = s.AddWheel("foo.zip", wheeltest.Build("foo", "1.0", nil))
	assert.ErrorContains(t, err, "not a wheel file name")
	for _, d := range []string{"dists", "tmp"} {
		left, err := os.ReadDir(filepath.Join(root, d))
		require.NoError(t, err)
		assert.Empty(t, left, d)
	}
	assert.NoFileExists(t, filepath.Join(filepath.Dir(root), "evil.py"))
}

func TestBlobRoundTrip(t *testing.T) {
	from, err := Open(t.TempDir())
	require.NoError(t, err)
	foo, err := from.AddWheel(wheeltest.FileName("foo", "2.0"), wheeltest.Build("foo", "2.0", map[string]string{"foo/__init__.py": ""}, "bar"))
	require.NoError(t, err)
	bar, err := from.AddWheel(wheeltest.FileName("bar", "0.1"), wheeltest.Build("bar", "0.1", map[string]string{"bar/__init__.py": ""}))
	require.NoError(t, err)
	r := from.Put("foo>=2", []*Dist{foo, bar})
	blob, err := r.Marshal()
	require.NoError(t, err)

	to, err := Open(t.TempDir())
	require.NoError(t, err)
	got, err := to.Import(blob)
	require.NoError(t, err)
	assert.Equal(t, "foo>=2", got.Name)
	assert.Equal(t, r.Saved(), got.Saved())
	assert.True(t, got.Installed())
	_, ok := to.Get("foo>=2")
	assert.True(t, ok)
	assert.Equal(t, 2, to.Put("foo>=2", got.Dists).Version, "a reinstall bumps the version")

	for _, bad := range [][]byte{nil, []byte("garbage"), blob[:len(blob)-1], append(append([]byte{}, blob...), 'x')} {
		_, err := to.Import(bad)
		assert.ErrorIs(t, err, ErrBadBlob)
	}
}

func TestOwnFirst(t *testing.T) {
	wheels := []string{"/d/bar-0.1-py3-none-any.whl", "/d/My_Pkg-1.0-py3-none-any.whl"}
	assert.Equal(t, "/d/My_Pkg-1.0-py3-none-any.whl", ownFirst("my.pkg[extra] >= 1.0", wheels)[0])
}
