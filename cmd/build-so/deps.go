package main

// The bundled Python is data, not code we call: this import only keeps the
// pinned go-embed-python release in go.mod (and its files in the module
// cache) so that embedPythonDir finds the distribution to prune.
import _ "github.com/kluctl/go-embed-python/embed_util"
