package main

// import-requirements: requirement zips into RG.PYIMPORTREQ.

import (
	"archive/zip"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// reqBlob is one requirement to import: its Data.bin and how to name it.
type reqBlob struct {
	name string
	data []byte
}

func importRequirementsCmd(a *app, cmd *command, args []string) int {
	conn, jsonOut, path, all, bulkMB := newConnOpts(), false, "./", false, 10
	opts := append(connOptions(&conn),
		stringOpt(&path, "PATH", "Directory of requirement zip files, or a zip file of them  [default: ./]", "--requirements-path"),
		flagOpt(&all, "Import every requirement of the zip file (or directory)", "--all"),
		intOpt(&bulkMB, "INTEGER", "Largest argument sent to Redis, in MB  [default: 10]", "--bulk-size"),
		flagOpt(&jsonOut, "Print one JSON object on stdout", "--json"))
	validate := func() error {
		if bulkMB <= 0 {
			return usagef("Invalid value for '--bulk-size': %d is not a positive integer.", bulkMB)
		}
		return conn.validate()
	}
	names, code, ok := a.parse(cmd, opts, args, validate)
	if !ok {
		return code
	}
	p := a.printer(jsonOut)
	imported := []string{}
	p.extra["imported"] = &imported
	// Every file is read before the first import: a bad one imports none.
	blobs, err := loadRequirements(path, names, all)
	if err != nil {
		return p.fail(err.Error())
	}
	if len(blobs) == 0 {
		p.warn("no requirements specified")
	}
	client, code, ok := a.dial(p, &conn)
	if !ok {
		return code
	}
	defer client.Close()
	for _, b := range blobs {
		args := append([]any{"RG.PYIMPORTREQ"}, chunks(b.data, bulkMB<<20)...)
		if err := client.Do(ctx, args...).Err(); err != nil {
			return p.fail(fmt.Sprintf("failed import requirement (%v)", err))
		}
		imported = append(imported, b.name)
		p.info(green, "Requirement "+b.name+" imported successfully")
	}
	if p.json {
		p.emit(map[string]any{})
	}
	return exitOK
}

// loadRequirements reads the requirements to import from path: a
// directory of requirement zips, a zip of them, or one requirement zip.
func loadRequirements(path string, names []string, all bool) ([]reqBlob, error) {
	path, err := filepath.Abs(path)
	if err != nil {
		return nil, err
	}
	st, err := os.Stat(path)
	if err != nil {
		return nil, msgf("File %s does not exists", path)
	}
	if strings.HasSuffix(path, ".zip") && !st.IsDir() {
		return loadFromZip(path, names, all)
	}
	if !st.IsDir() {
		return nil, fmt.Errorf("%s is not a directory", path)
	}
	if all && len(names) == 0 {
		if names, err = filepath.Glob(filepath.Join(path, "*.zip")); err != nil {
			return nil, err
		}
		sort.Strings(names)
	}
	var blobs []reqBlob
	for _, n := range names {
		file := n
		if !filepath.IsAbs(file) {
			file = filepath.Join(path, n)
		}
		b, err := os.ReadFile(file)
		if err != nil {
			return nil, msgf("File %s does not exists", file)
		}
		data, err := requirementData(b)
		if err != nil {
			return nil, msgf("Bad zip format (%s: %v)", file, err)
		}
		blobs = append(blobs, reqBlob{file, data})
	}
	return blobs, nil
}

// loadFromZip reads the requirement zips inside the zip at path (all of them
// when no names are given), or path itself when it is a requirement zip.
func loadFromZip(path string, names []string, all bool) ([]reqBlob, error) {
	zr, err := zip.OpenReader(path)
	if err != nil {
		return nil, msgf("Bad zip format (%s: %v)", path, err)
	}
	defer zr.Close()
	if data, err := readMember(&zr.Reader, dataFile); err == nil {
		return []reqBlob{{path, data}}, nil
	}
	if all || len(names) == 0 {
		names = nil
		for _, f := range zr.File {
			if !f.FileInfo().IsDir() {
				names = append(names, f.Name)
			}
		}
	}
	var blobs []reqBlob
	for _, n := range names {
		inner, err := readMember(&zr.Reader, n)
		if err != nil {
			return nil, msgf("Requirement %s could not be found in zip, error='%v'", n, err)
		}
		data, err := requirementData(inner)
		if err != nil {
			return nil, msgf("Bad zip format (%s: %v)", n, err)
		}
		blobs = append(blobs, reqBlob{n, data})
	}
	return blobs, nil
}
