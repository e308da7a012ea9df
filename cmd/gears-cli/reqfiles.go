package main

// The local files of requirements: requirements.txt, and the zip files
// export-requirements writes (MetaData.json and Data.bin, as the Python
// gears-cli does, so either tool imports the other's files).

import (
	"archive/zip"
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"os"
	"regexp"
	"strings"
	"time"
)

const (
	metaDataFile = "MetaData.json"
	dataFile     = "Data.bin"
)

// readRequirementsFile reads a requirements.txt: one requirement a line;
// blank lines and # comments are skipped.
func readRequirementsFile(path string) ([]string, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, readError(path, err)
	}
	return parseRequirements(string(b)), nil
}

// comment is pip's: a "#" at the start of a line or after a blank.
var comment = regexp.MustCompile(`(^|\s)#.*$`)

func parseRequirements(text string) []string {
	var reqs []string
	for _, line := range strings.Split(text, "\n") {
		if line = strings.TrimSpace(comment.ReplaceAllString(line, "")); line != "" {
			reqs = append(reqs, line)
		}
	}
	return reqs
}

// kvMap reads a flat key/value list reply (RG.PYDUMPREQS' entries).
func kvMap(v any) (map[string]any, error) {
	l, ok := v.([]any)
	if !ok || len(l)%2 != 0 {
		return nil, fmt.Errorf("unexpected reply %v", v)
	}
	m := make(map[string]any, len(l)/2)
	for i := 0; i < len(l); i += 2 {
		k, ok := l[i].(string)
		if !ok {
			return nil, fmt.Errorf("unexpected reply %v", v)
		}
		m[k] = jsonValue(l[i+1])
	}
	return m, nil
}

// metaDataJSON is MetaData.json: sorted keys, indented by 4.
func metaDataJSON(meta map[string]any) ([]byte, error) {
	var b bytes.Buffer
	enc := json.NewEncoder(&b)
	enc.SetEscapeHTML(false)
	enc.SetIndent("", "    ")
	if err := enc.Encode(meta); err != nil {
		return nil, err
	}
	return bytes.TrimRight(b.Bytes(), "\n"), nil
}

// exportFileName is redisgears-requirement-v<version>-<name>-<os>.zip, or
// <prefix>-<os>.zip.
func exportFileName(meta map[string]any, prefix string) (string, error) {
	for _, k := range []string{"Name", "GearReqVersion", "CompiledOs"} {
		if meta[k] == nil {
			return "", fmt.Errorf("no %s in the requirement's metadata", k)
		}
	}
	osName := fmt.Sprint(meta["CompiledOs"])
	if prefix != "" {
		return prefix + "-" + osName + ".zip", nil
	}
	return fmt.Sprintf("redisgears-requirement-v%v-%s-%s.zip", meta["GearReqVersion"], baseName(fmt.Sprint(meta["Name"])), osName), nil
}

// baseName is what follows the last "/" (Python's os.path.basename), so a
// requirement given as a path or URL still names a file.
func baseName(name string) string {
	return name[strings.LastIndex(name, "/")+1:]
}

// writeRequirementZip creates path (never replacing a file) with the
// metadata and the data.
func writeRequirementZip(path string, meta []byte, data []string) (err error) {
	f, err := os.OpenFile(path, os.O_WRONLY|os.O_CREATE|os.O_EXCL, 0o644)
	if err != nil {
		return err
	}
	defer func() {
		if cerr := f.Close(); err == nil {
			err = cerr
		}
		if err != nil {
			os.Remove(path)
		}
	}()
	zw := zip.NewWriter(f)
	put := func(name string, parts ...[]byte) error {
		w, err := zw.CreateHeader(&zip.FileHeader{Name: name, Method: zip.Deflate, Modified: time.Now()})
		if err != nil {
			return err
		}
		for _, p := range parts {
			if _, err := w.Write(p); err != nil {
				return err
			}
		}
		return nil
	}
	chunks := make([][]byte, len(data))
	for i, d := range data {
		chunks[i] = []byte(d)
	}
	if err := put(metaDataFile, meta); err != nil {
		return err
	}
	if err := put(dataFile, chunks...); err != nil {
		return err
	}
	return zw.Close()
}

// requirementData is the Data.bin of a requirement zip.
func requirementData(zipBytes []byte) ([]byte, error) {
	zr, err := zip.NewReader(bytes.NewReader(zipBytes), int64(len(zipBytes)))
	if err != nil {
		return nil, err
	}
	return readMember(zr, dataFile)
}

// readMember reads the file name of a zip.
func readMember(zr *zip.Reader, name string) ([]byte, error) {
	for _, f := range zr.File {
		if f.Name != name {
			continue
		}
		rc, err := f.Open()
		if err != nil {
			return nil, err
		}
		defer rc.Close()
		return io.ReadAll(rc)
	}
	return nil, errors.New("there is no item named '" + name + "' in the archive")
}

// chunks splits data into pieces of at most size bytes (at least one piece:
// RG.PYIMPORTREQ needs an argument).
func chunks(data []byte, size int) []any {
	out := []any{}
	for len(data) > size {
		out = append(out, data[:size])
		data = data[size:]
	}
	return append(out, data)
}
