// Package runtime is the Python API every session sees (gears.py, embedded)
// and the Go host functions behind it.
package runtime

import (
	_ "embed"
	"errors"
	"sync"
	"sync/atomic"

	"gears/interp"
)

// The runtime's Python sources, run in this order into module redisgears.
//
//go:embed gears.py
var gearsSource string

//go:embed builder.py
var builderSource string

//go:embed steps.py
var stepsSource string

//go:embed execution.py
var executionSource string

//go:embed futures.py
var futuresSource string

//go:embed distributed.py
var distributedSource string

// Host is what the runtime needs from the Redis side.
type Host interface {
	Log(level, msg string)
	ConfigExtra(key string) (string, bool)
	AttemptTraceback() bool
	Hashtag() string
	// MemoryNote says which limit a MemoryError without a message hit.
	MemoryNote() string
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
	interp.RegisterHost("memory_note", func(*interp.Call) (any, error) {
		return h.MemoryNote(), nil
	})
}

func arg(c *interp.Call, i int) any {
	if i < len(c.Args) {
		return c.Args[i]
	}
	return nil
}

// boot compiles and runs the runtime sources. Each interpreter would
// otherwise compile them from source, a large part of creating one; compiled
// once, they are shared between interpreters as marshal bytes.
const boot = `
import marshal, sys
def compile_source(src, name):
    return marshal.dumps(compile(src, name, 'exec'))
def run(code, module):
    exec(marshal.loads(code), sys.modules[module].__dict__)
`

var (
	compileOnce sync.Once
	compiled    []module
	compileErr  error
	standalone  atomic.Bool
)

// Standalone leaves distributed.py, the half of the runtime only a cluster
// calls, out of every interpreter set up after it: loading it is about a
// seventh of the runtime's cost in each new interpreter, that is in each
// RG.PYEXECUTE. Call it at load, before the first interpreter.
func Standalone() { standalone.Store(true) }

// clusterOnly is the module Standalone leaves out.
const clusterOnly = "distributed.py"

// module is one of the runtime's files, compiled once per process.
type module struct {
	name string
	code []byte
}

// Setup loads the runtime into a new own-GIL interpreter (one session's)
// and gives its __main__ the names a session starts with.
func Setup(t *interp.Thread) error {
	if err := load(t); err != nil {
		return err
	}
	_, err := t.Call("redisgears", "_hint_isolation_mode")
	return err
}

// SetupShared loads the runtime into the interpreter every session shares
// (IsolationMode shared); its __main__ is what each session's globals copy.
func SetupShared(t *interp.Thread) error {
	if err := load(t); err != nil {
		return err
	}
	_, err := t.Call("redisgears", "_threads_inherit_session")
	return err
}

func load(t *interp.Thread) error {
	bootDict, err := t.ModuleDict("_gears_boot")
	if err != nil {
		return err
	}
	if err := t.Exec(boot, bootDict); err != nil {
		return err
	}
	compileOnce.Do(func() {
		for _, src := range []struct{ name, text string }{
			{"gears.py", gearsSource}, {"builder.py", builderSource}, {"steps.py", stepsSource},
			{"execution.py", executionSource}, {"futures.py", futuresSource}, {clusterOnly, distributedSource},
		} {
			code, err := t.Call("_gears_boot", "compile_source", src.text, src.name)
			if err != nil {
				compileErr = err
				return
			}
			compiled = append(compiled, module{src.name, code.([]byte)})
		}
	})
	if compileErr != nil {
		return compileErr
	}
	if _, err := t.ModuleDict("redisgears"); err != nil {
		return err
	}
	for _, m := range compiled {
		if m.name == clusterOnly && standalone.Load() {
			continue
		}
		if _, err := t.Call("_gears_boot", "run", m.code, "redisgears"); err != nil {
			return err
		}
	}
	main, err := t.MainGlobals()
	if err != nil {
		return err
	}
	return t.Exec("from redisgears import *\nimport redisgears\nrg = redisgears\n", main)
}
