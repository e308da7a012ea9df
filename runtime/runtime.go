// Package runtime is the Python API every session sees (gears.py, embedded)
// and the Go host functions behind it.
package runtime

import (
	_ "embed"
	"errors"

	"gears/interp"
)

// The runtime's Python sources, run in this order into module redisgears.
//
//go:embed gears.py
var gearsSource string

//go:embed builder.py
var builderSource string

// Host is what the runtime needs from the Redis side.
type Host interface {
	Log(level, msg string)
	ConfigExtra(key string) (string, bool)
	AttemptTraceback() bool
	Hashtag() string
}

// Register installs the host functions; call it once, before the first
// interpreter is created.
func Register(h Host) {
	interp.RegisterHost("log", func(c *interp.Call) (any, error) {
		level, _ := arg(c, 0).(string)
		msg, ok := arg(c, 1).(string)
		if !ok {
			return nil, errors.New("Log message must be a string")
		}
		h.Log(level, msg)
		return nil, nil
	})
	interp.RegisterHost("config_get", func(c *interp.Call) (any, error) {
		key, _ := arg(c, 0).(string)
		if v, ok := h.ConfigExtra(key); ok {
			return v, nil
		}
		return nil, nil
	})
	interp.RegisterHost("attempt_traceback", func(*interp.Call) (any, error) {
		return h.AttemptTraceback(), nil
	})
	interp.RegisterHost("hashtag", func(*interp.Call) (any, error) {
		return h.Hashtag(), nil
	})
}

func arg(c *interp.Call, i int) any {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return nil
}

// Setup loads the runtime into a new interpreter and gives its __main__ the
// names a session starts with.
func Setup(t *interp.Thread) error {
	mod, err := t.ModuleDict("redisgears")
	if err != nil {
		return err
	}
	for _, src := range []string{gearsSource, builderSource} {
		if err := t.Exec(src, mod); err != nil {
			return err
		}
	}
	main, err := t.MainGlobals()
	if err != nil {
		return err
	}
	return t.Exec("from redisgears import *\nimport redisgears\nrg = redisgears\n", main)
}
