// Package config holds the module's configuration: the key/value arguments
// given to MODULE LOAD and the RG.CONFIGGET / RG.CONFIGSET commands, with the
// semantics of RedisGears 1.2. It knows nothing about Redis; Get and Set
// return plain entries that the command layer turns into replies.
//
// Concurrency: typed accessors (MaxExecutions, ...) are lock-free atomic
// loads and may be called from any goroutine. Set is expected on the Redis
// main thread but is serialized anyway, so concurrent use is safe.
package config

import (
	"fmt"
	"strconv"
	"strings"
	"sync"
	"sync/atomic"
	"time"
)

// Isolation modes accepted by the IsolationMode key.
const (
	IsolationSubinterpreter = "subinterpreter" // one own-GIL sub-interpreter per session
	IsolationShared         = "shared"         // every session in one shared interpreter, a globals dict each
)

// Reply texts of RedisGears 1.2. Error texts deliberately start with
// "(error) " themselves: 1.2 prepends it, and clients/tests match on it.
const (
	replyOK         = "OK"
	replySavedExtra = "OK - value was saved in extra config dictionary"
)

type kind uint8

const (
	kindInt    kind = iota // reported as integer
	kindBool               // parsed as integer, nonzero = true, reported as 0/1
	kindString             // reported as bulk string
)

// param describes one known key. Adding a key is one line in params (plus an
// accessor if Go code needs a typed read).
type param struct {
	name    string     // canonical spelling
	kind    kind       // how the value is parsed and reported
	def     string     // default, in the textual form a user would pass
	runtime bool       // may be changed by RG.CONFIGSET
	plugin  bool       // python-plugin key: also mirrored into the extra dictionary
	check   *validator // nil accepts every well-formed value
}

// validator accepts a value or not; want says what it accepts, for errors.
// It sees the raw text and, for int/bool keys, its parsed value.
type validator struct {
	ok   func(raw string, n int64) bool
	want string
}

func between(min, max int64) *validator {
	return &validator{func(_ string, n int64) bool { return n >= min && n <= max },
		fmt.Sprintf("an integer from %d to %d", min, max)}
}

func oneOf(allowed ...string) *validator {
	return &validator{func(raw string, _ int64) bool {
		for _, a := range allowed {
			if raw == a {
				return true
			}
		}
		return false
	}, "one of " + strings.Join(allowed, ", ")}
}

// Bounds of our own keys. Every key is bounded: a value nobody means (an
// interpreter pool of 100,000) must not take the server down.
const (
	day = 24 * 60 * 60 * 1000 // ms
	mib = 1 << 20
	// MinPythonMemory is the least MaxPythonMemory (besides 0, no limit):
	// below it not even a few interpreters fit.
	MinPythonMemory = 64 * mib
)

var params = []param{
	// RedisGears 1.2 core keys.
	{name: "MaxExecutions", kind: kindInt, def: "1000", runtime: true, check: between(1, 1_000_000)},
	{name: "MaxExecutionsPerRegistration", kind: kindInt, def: "100", runtime: true, check: between(1, 100_000)},
	{name: "ProfileExecutions", kind: kindBool, def: "0", runtime: true},
	{name: "ExecutionThreads", kind: kindInt, def: "3", check: between(1, 128)},
	{name: "ExecutionMaxIdleTime", kind: kindInt, def: "5000", runtime: true, check: between(1, day)},
	{name: "SendMsgRetries", kind: kindInt, def: "3", runtime: true, check: between(0, 1000)},
	// Our own core keys.
	{name: "InterpreterPoolSize", kind: kindInt, def: "2", runtime: true, check: between(0, 32)},
	// Bytes all Python code together may allocate (0: no limit); Load makes
	// the default DefaultPythonMemory. Beyond it allocations fail with
	// MemoryError.
	{name: "MaxPythonMemory", kind: kindInt, def: "0", runtime: true, check: &validator{
		func(_ string, n int64) bool { return n == 0 || n >= MinPythonMemory },
		fmt.Sprintf("0 (no limit) or a number of bytes of at least %d", MinPythonMemory)}},
	// Executions that may wait for an execution thread: beyond them events
	// (and triggers) are refused rather than pile up in memory (~600 bytes
	// each; the default lets a burst of writes of a million events wait).
	{name: "MaxQueuedExecutions", kind: kindInt, def: "1000000", runtime: true, check: between(1000, 100_000_000)},
	// Milliseconds a script, an execution or a sync registration's run may
	// take before it is aborted (0: no limit).
	{name: "ExecutionMaxTime", kind: kindInt, def: "0", runtime: true, check: between(0, day)},
	{name: "PythonHomeDir", kind: kindString, def: ""}, // "" = <redis dir>/gears-python, resolved by the caller
	{name: "IsolationMode", kind: kindString, def: IsolationSubinterpreter, check: oneOf(IsolationSubinterpreter, IsolationShared)},
	{name: "RequirementsWheelDir", kind: kindString, def: "", runtime: true}, // pip --find-links: offline installs
	{name: "RequirementsIndexURL", kind: kindString, def: "", runtime: true}, // pip --index-url; "" = no index
	// Python-plugin keys (RedisGears 1.2 §4.2).
	{name: "PythonAttemptTraceback", kind: kindBool, def: "1", runtime: true, plugin: true},
	{name: "PythonInstallReqMaxIdleTime", kind: kindInt, def: "30000", runtime: true, plugin: true, check: between(1, day)},
	{name: "CreateVenv", kind: kindBool, def: "0", plugin: true},
	{name: "DownloadDeps", kind: kindBool, def: "0", plugin: true},
	{name: "ForeceDownloadDepsOnEnterprise", kind: kindBool, def: "0", plugin: true}, // sic: 1.2's spelling
	{name: "OverridePythonAllocators", kind: kindBool, def: "0", plugin: true},       // own-GIL interpreters keep their allocators
	{name: "DependenciesUrl", kind: kindString, def: "", plugin: true},
	{name: "DependenciesSha256", kind: kindString, def: "", plugin: true},
	{name: "PythonInstallationDir", kind: kindString, def: "", plugin: true},
}

// Indices used by the typed accessors; resolved once so hot paths index a slice.
var (
	iMaxExecutions                = mustIndex("MaxExecutions")
	iMaxExecutionsPerRegistration = mustIndex("MaxExecutionsPerRegistration")
	iProfileExecutions            = mustIndex("ProfileExecutions")
	iExecutionThreads             = mustIndex("ExecutionThreads")
	iExecutionMaxIdleTime         = mustIndex("ExecutionMaxIdleTime")
	iSendMsgRetries               = mustIndex("SendMsgRetries")
	iInterpreterPoolSize          = mustIndex("InterpreterPoolSize")
	iPythonHomeDir                = mustIndex("PythonHomeDir")
	iIsolationMode                = mustIndex("IsolationMode")
	iRequirementsWheelDir         = mustIndex("RequirementsWheelDir")
	iRequirementsIndexURL         = mustIndex("RequirementsIndexURL")
	iPythonAttemptTraceback       = mustIndex("PythonAttemptTraceback")
	iPythonInstallReqMaxIdleTime  = mustIndex("PythonInstallReqMaxIdleTime")
	iMaxPythonMemory              = mustIndex("MaxPythonMemory")
	iExecutionMaxTime             = mustIndex("ExecutionMaxTime")
	iMaxQueuedExecutions          = mustIndex("MaxQueuedExecutions")
)

func mustIndex(name string) int {
	for i := range params {
		if params[i].name == name {
			return i
		}
	}
	panic("config: unknown key " + name)
}

// lookupExact is RG.CONFIGGET's match (1.2 uses strcmp).
func lookupExact(name string) (int, bool) {
	for i := range params {
		if params[i].name == name {
			return i, true
		}
	}
	return 0, false
}

// lookupFold is the load/RG.CONFIGSET match (1.2 uses strcasecmp, ASCII only).
func lookupFold(name string) (int, bool) {
	for i := range params {
		if asciiEqualFold(params[i].name, name) {
			return i, true
		}
	}
	return 0, false
}

func asciiEqualFold(a, b string) bool {
	if len(a) != len(b) {
		return false
	}
	for i := 0; i < len(a); i++ {
		x, y := a[i], b[i]
		if 'A' <= x && x <= 'Z' {
			x += 'a' - 'A'
		}
		if 'A' <= y && y <= 'Z' {
			y += 'a' - 'A'
		}
		if x != y {
			return false
		}
	}
	return true
}

// parseLongLong accepts exactly what Redis's string2ll accepts: "0" or an
// optional '-' followed by digits without a leading zero, within int64.
func parseLongLong(s string) (int64, bool) {
	if s == "0" {
		return 0, true
	}
	digits := s
	if len(digits) > 0 && digits[0] == '-' {
		digits = digits[1:]
	}
	if len(digits) == 0 || digits[0] < '1' || digits[0] > '9' {
		return 0, false
	}
	for i := 1; i < len(digits); i++ {
		if digits[i] < '0' || digits[i] > '9' {
			return 0, false
		}
	}
	n, err := strconv.ParseInt(s, 10, 64)
	return n, err == nil
}

// slot holds one key's current value; only the field matching the kind is used.
type slot struct {
	n atomic.Int64
	s atomic.Pointer[string]
}

// Config is the live configuration. The zero value is not usable; use Load.
type Config struct {
	vals []slot // parallel to params

	writeMu sync.Mutex // serializes Set so a plugin key's typed and extra values move together

	extraMu sync.RWMutex
	extra   map[string]string // the "extra config dictionary"
}

// Entry is one element of an RG.CONFIGGET / RG.CONFIGSET reply.
// Err != "" means an error entry; otherwise IsInt selects Int or Str.
type Entry struct {
	Int   int64
	Str   string
	IsInt bool
	Err   string
}

// Load builds a Config from the module's load-time arguments (Key Value ...).
// Known keys (matched case-insensitively) are validated; unknown keys go to
// the extra dictionary. Non-runtime keys are of course allowed here.
func Load(args []string) (*Config, error) {
	if len(args)%2 != 0 {
		return nil, fmt.Errorf("config: module arguments must be key/value pairs, got %d arguments (value missing for %q)", len(args), args[len(args)-1])
	}
	c := &Config{vals: make([]slot, len(params)), extra: make(map[string]string)}
	for i := range params {
		def := params[i].def
		if i == iMaxPythonMemory {
			def = strconv.FormatInt(DefaultPythonMemory(), 10)
		}
		if !c.store(i, def) {
			panic("config: invalid default for " + params[i].name)
		}
	}
	for i := 0; i < len(args); i += 2 {
		key, val := args[i], args[i+1]
		idx, known := lookupFold(key)
		if !known {
			c.extra[key] = val
			continue
		}
		if !c.store(idx, val) {
			return nil, fmt.Errorf("config: failed setting config value %s: invalid value %q%s", params[idx].name, val, wanted(idx))
		}
		if params[idx].plugin {
			c.extra[key] = val
		}
	}
	return c, nil
}

// store parses and validates raw for params[idx] and publishes it; false (and
// no change) if raw is not acceptable.
func (c *Config) store(idx int, raw string) bool {
	p := &params[idx]
	if p.kind == kindString {
		if p.check != nil && !p.check.ok(raw, 0) {
			return false
		}
		s := raw
		c.vals[idx].s.Store(&s)
		return true
	}
	n, ok := parseLongLong(raw)
	if !ok || (p.check != nil && !p.check.ok(raw, n)) {
		return false
	}
	if p.kind == kindBool && n != 0 {
		n = 1 // reported as 0/1 whatever nonzero value was given
	}
	c.vals[idx].n.Store(n)
	return true
}

// wanted says what key idx accepts, for an error message ("" when any
// value of its kind is).
func wanted(idx int) string {
	if params[idx].check == nil {
		return ""
	}
	return " (" + params[idx].check.want + ")"
}

func (c *Config) entry(idx int) Entry {
	if params[idx].kind == kindString {
		return Entry{Str: *c.vals[idx].s.Load()}
	}
	return Entry{Int: c.vals[idx].n.Load(), IsInt: true}
}

func errEntry(format string, a ...any) Entry {
	return Entry{Err: "(error) " + fmt.Sprintf(format, a...)}
}

// Get implements RG.CONFIGGET: one entry per key. Known keys match exactly
// (case-sensitive); otherwise the extra dictionary is consulted.
func (c *Config) Get(keys []string) []Entry {
	out := make([]Entry, 0, len(keys))
	for _, key := range keys {
		if idx, ok := lookupExact(key); ok {
			out = append(out, c.entry(idx))
			continue
		}
		if v, ok := c.Extra(key); ok {
			out = append(out, Entry{Str: v})
			continue
		}
		out = append(out, errEntry("Unsupported config parameter: %s", key))
	}
	return out
}

// Set implements RG.CONFIGSET: one entry per key/value pair, left to right.
// A failing pair does not stop the following ones.
func (c *Config) Set(args []string) []Entry {
	c.writeMu.Lock()
	defer c.writeMu.Unlock()
	out := make([]Entry, 0, (len(args)+1)/2)
	for i := 0; i < len(args); i += 2 {
		key := args[i]
		if i+1 >= len(args) {
			out = append(out, errEntry("Value was not given to %s", key))
			break
		}
		val := args[i+1]
		idx, known := lookupFold(key)
		switch {
		case !known:
			c.setExtra(key, val)
			out = append(out, Entry{Str: replySavedExtra})
		case params[idx].plugin:
			// The python plugin's messages name the key as the user spelled it.
			switch {
			case !params[idx].runtime:
				out = append(out, errEntry("%s is not configurable at runtime", key))
			case !c.store(idx, val):
				out = append(out, errEntry("Failed setting config value %s", key))
			default:
				c.setExtra(key, val)
				out = append(out, Entry{Str: replySavedExtra})
			}
		default:
			switch {
			case !params[idx].runtime:
				out = append(out, errEntry("Config value %s not modifiable at runtime", params[idx].name))
			case !c.store(idx, val):
				out = append(out, errEntry("Failed setting config value %s%s", params[idx].name, wanted(idx)))
			default:
				out = append(out, Entry{Str: replyOK})
			}
		}
	}
	return out
}

func (c *Config) setExtra(key, val string) {
	c.extraMu.Lock()
	c.extra[key] = val
	c.extraMu.Unlock()
}

// Extra looks key up (exact case) in the extra dictionary only; this is what
// Python's configGet sees. Python-plugin keys appear here once they were set.
func (c *Config) Extra(key string) (string, bool) {
	c.extraMu.RLock()
	v, ok := c.extra[key]
	c.extraMu.RUnlock()
	return v, ok
}

// Typed, lock-free reads for hot paths.

func (c *Config) intVal(idx int) int64     { return c.vals[idx].n.Load() }
func (c *Config) strVal(idx int) string    { return *c.vals[idx].s.Load() }
func (c *Config) ms(idx int) time.Duration { return time.Duration(c.intVal(idx)) * time.Millisecond }

// MaxExecutions caps the executions list.
func (c *Config) MaxExecutions() int64 { return c.intVal(iMaxExecutions) }

// MaxExecutionsPerRegistration caps the executions kept per registration.
func (c *Config) MaxExecutionsPerRegistration() int64 { return c.intVal(iMaxExecutionsPerRegistration) }

// ProfileExecutions reports whether executions are profiled.
func (c *Config) ProfileExecutions() bool { return c.intVal(iProfileExecutions) != 0 }

// ExecutionThreads is the size of the execution worker pool (fixed after load).
func (c *Config) ExecutionThreads() int { return int(c.intVal(iExecutionThreads)) }

// ExecutionMaxIdleTime is how long a distributed execution may stay idle.
func (c *Config) ExecutionMaxIdleTime() time.Duration { return c.ms(iExecutionMaxIdleTime) }

// SendMsgRetries is how many times a cluster message is resent.
func (c *Config) SendMsgRetries() int64 { return c.intVal(iSendMsgRetries) }

// InterpreterPoolSize is the number of ready sub-interpreters kept warm.
func (c *Config) InterpreterPoolSize() int { return int(c.intVal(iInterpreterPoolSize)) }

// PythonHomeDir is where the bundled Python is extracted; "" means the caller
// should use <redis dir>/gears-python.
func (c *Config) PythonHomeDir() string { return c.strVal(iPythonHomeDir) }

// IsolationMode is IsolationSubinterpreter or IsolationShared.
func (c *Config) IsolationMode() string { return c.strVal(iIsolationMode) }

// RequirementsWheelDir is a directory of wheels REQUIREMENTS install from.
func (c *Config) RequirementsWheelDir() string { return c.strVal(iRequirementsWheelDir) }

// RequirementsIndexURL is a package index REQUIREMENTS install from.
func (c *Config) RequirementsIndexURL() string { return c.strVal(iRequirementsIndexURL) }

// PythonAttemptTraceback reports whether Python errors carry a traceback.
func (c *Config) PythonAttemptTraceback() bool { return c.intVal(iPythonAttemptTraceback) != 0 }

// MaxPythonMemory is the number of bytes Python may allocate (0: no limit).
func (c *Config) MaxPythonMemory() int64 { return c.intVal(iMaxPythonMemory) }

// MaxQueuedExecutions bounds the executions waiting for a thread.
func (c *Config) MaxQueuedExecutions() int64 { return c.intVal(iMaxQueuedExecutions) }

// ExecutionMaxTime is how long Python code may run before it is aborted
// (0: no limit).
func (c *Config) ExecutionMaxTime() time.Duration { return c.ms(iExecutionMaxTime) }

// PythonInstallReqMaxIdleTime bounds the idle time of a requirements install.
func (c *Config) PythonInstallReqMaxIdleTime() time.Duration {
	return c.ms(iPythonInstallReqMaxIdleTime)
}
