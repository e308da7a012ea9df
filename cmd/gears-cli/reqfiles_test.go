package main

import (
	"archive/zip"
	"bytes"
	"os"
	"path/filepath"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseRequirements(t *testing.T) {
	text := "foo==1.0\n\n  bar  \n# a comment\nbaz>=2 # why\ngit+https://h/x#egg=x\r\n"
	require.Equal(t, []string{"foo==1.0", "bar", "baz>=2", "git+https://h/x#egg=x"}, parseRequirements(text))
}

func TestExportFileName(t *testing.T) {
	meta := map[string]any{"Name": "foo==1.0", "GearReqVersion": int64(1), "CompiledOs": "linux-bookworm-x64"}
	n, err := exportFileName(meta, "")
	require.NoError(t, err)
	require.Equal(t, "redisgears-requirement-v1-foo==1.0-linux-bookworm-x64.zip", n)
	n, _ = exportFileName(meta, "mine")
	require.Equal(t, "mine-linux-bookworm-x64.zip", n)
	meta["Name"] = "https://h/pkgs/foo.whl"
	n, _ = exportFileName(meta, "")
	require.Equal(t, "redisgears-requirement-v1-foo.whl-linux-bookworm-x64.zip", n)
	_, err = exportFileName(map[string]any{"Name": "x"}, "")
	require.Error(t, err)
}

func TestMetaDataJSON(t *testing.T) {
	meta, err := kvMap([]any{"Name", "foo<2", "GearReqVersion", int64(1), "Wheels", []any{"foo-1.0-py3-none-any.whl"}})
	require.NoError(t, err)
	b, err := metaDataJSON(meta)
	require.NoError(t, err)
	require.Equal(t, "{\n    \"GearReqVersion\": 1,\n    \"Name\": \"foo<2\",\n    \"Wheels\": [\n        \"foo-1.0-py3-none-any.whl\"\n    ]\n}", string(b))
	_, err = kvMap([]any{"odd"})
	require.Error(t, err)
}

func TestChunks(t *testing.T) {
	require.Equal(t, []any{[]byte("abc"), []byte("de")}, chunks([]byte("abcde"), 3))
	require.Equal(t, []any{[]byte{}}, chunks([]byte{}, 3))
}

// writeZip writes a zip of the given members.
func writeZip(t *testing.T, path string, members map[string][]byte) {
	t.Helper()
	var b bytes.Buffer
	zw := zip.NewWriter(&b)
	for name, data := range members {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(data)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, os.WriteFile(path, b.Bytes(), 0o644))
}

func TestRequirementZipRoundTrip(t *testing.T) {
	dir := t.TempDir()
	path := filepath.Join(dir, "r.zip")
	require.NoError(t, writeRequirementZip(path, []byte("{}"), []string{"ab", "cd"}))
	require.Error(t, writeRequirementZip(path, []byte("{}"), nil), "never replaces a file")

	blobs, err := loadRequirements(dir, []string{"r.zip"}, false)
	require.NoError(t, err)
	require.Equal(t, []reqBlob{{path, []byte("abcd")}}, blobs)

	// --all on a directory takes each zip; a zip path may be one requirement.
	blobs, err = loadRequirements(dir, nil, true)
	require.NoError(t, err)
	require.Len(t, blobs, 1)
	blobs, err = loadRequirements(path, nil, false)
	require.NoError(t, err)
	require.Equal(t, []byte("abcd"), blobs[0].data)

	// A zip of requirement zips: all its members, or the named ones.
	inner, err := os.ReadFile(path)
	require.NoError(t, err)
	bundle := filepath.Join(dir, "bundle.zip")
	writeZip(t, bundle, map[string][]byte{"a.zip": inner, "b.zip": inner})
	blobs, err = loadRequirements(bundle, nil, false)
	require.NoError(t, err)
	require.Len(t, blobs, 2)
	blobs, err = loadRequirements(bundle, []string{"b.zip"}, false)
	require.NoError(t, err)
	require.Equal(t, []reqBlob{{"b.zip", []byte("abcd")}}, blobs)
}

func TestLoadRequirementsErrors(t *testing.T) {
	dir := t.TempDir()
	notZip := filepath.Join(dir, "bad.zip")
	require.NoError(t, os.WriteFile(notZip, []byte("nope"), 0o644))
	noData := filepath.Join(dir, "nodata.zip")
	writeZip(t, noData, map[string][]byte{"MetaData.json": []byte("{}")})
	bundle := filepath.Join(dir, "bundle.zip")
	writeZip(t, bundle, map[string][]byte{"x.zip": []byte("nope")})

	for _, tc := range []struct {
		path  string
		names []string
		want  string
	}{
		{filepath.Join(dir, "missing"), nil, "File " + filepath.Join(dir, "missing") + " does not exists"},
		{dir, []string{"missing.zip"}, "File " + filepath.Join(dir, "missing.zip") + " does not exists"},
		{noData, nil, "Bad zip format ("},
		{dir, []string{"nodata.zip"}, "Bad zip format ("},
		{notZip, nil, "Bad zip format ("},
		{bundle, nil, "Bad zip format (x.zip: "},
		{bundle, []string{"y.zip"}, "Requirement y.zip could not be found in zip"},
		{filepath.Join(dir, "plain"), nil, filepath.Join(dir, "plain") + " is not a directory"},
	} {
		if tc.path == filepath.Join(dir, "plain") {
			require.NoError(t, os.WriteFile(tc.path, nil, 0o644))
		}
		_, err := loadRequirements(tc.path, tc.names, false)
		require.ErrorContains(t, err, tc.want, "%s %v", tc.path, tc.names)
	}
}
