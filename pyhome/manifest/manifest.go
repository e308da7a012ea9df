// Package manifest is the format of files.json, the list of files of an
// embedded Python tree (go-embed-python's format): written by cmd/build-so,
// read by pyhome when it extracts the tree.
package manifest

import "io/fs"

// Entry is one file, directory or symlink of the tree. A compressed file X
// is stored as X.gz.
type Entry struct {
	Name       string      `json:"name"`
	Size       int64       `json:"size"`
	Mode       fs.FileMode `json:"perm"`
	Symlink    string      `json:"symlink,omitempty"`
	Compressed bool        `json:"compressed,omitempty"`
}

// List is a whole files.json.
type List struct {
	ContentHash string  `json:"contentHash"`
	Files       []Entry `json:"files"`
}
