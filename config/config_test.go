package config

import (
	"strconv"
	"sync"
	"testing"
	"time"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func mustLoad(t *testing.T, args ...string) *Config {
	t.Helper()
	c, err := Load(args)
	require.NoError(t, err)
	return c
}

func i(n int64) Entry    { return Entry{Int: n, IsInt: true} }
func s(v string) Entry   { return Entry{Str: v} }
func e(msg string) Entry { return Entry{Err: msg} }
func ok() Entry          { return s("OK") }
func savedExtra() Entry  { return s("OK - value was saved in extra config dictionary") }
func unsupported(k string) Entry {
	return e("(error) Unsupported config parameter: " + k)
}

func TestDefaults(t *testing.T) {
	c := mustLoad(t)
	assert.Equal(t, int64(1000), c.MaxExecutions())
	assert.Equal(t, int64(100), c.MaxExecutionsPerRegistration())
	assert.False(t, c.ProfileExecutions())
	assert.Equal(t, 3, c.ExecutionThreads())
	assert.Equal(t, 5*time.Second, c.ExecutionMaxIdleTime())
	assert.Equal(t, int64(3), c.SendMsgRetries())
	assert.Equal(t, 2, c.InterpreterPoolSize())
	assert.Equal(t, "", c.PythonHomeDir())
	assert.Equal(t, IsolationSubinterpreter, c.IsolationMode())
	assert.True(t, c.PythonAttemptTraceback())
	assert.Equal(t, 30*time.Second, c.PythonInstallReqMaxIdleTime())

	assert.Equal(t, []Entry{
		i(1000), i(100), i(0), i(3), i(5000), i(3), i(2), s(""), s("subinterpreter"),
		i(1), i(30000), i(0), i(0), i(0), i(0), s(""), s(""), s(""),
	}, c.Get([]string{
		"MaxExecutions", "MaxExecutionsPerRegistration", "ProfileExecutions", "ExecutionThreads",
		"ExecutionMaxIdleTime", "SendMsgRetries", "InterpreterPoolSize", "PythonHomeDir", "IsolationMode",
		"PythonAttemptTraceback", "PythonInstallReqMaxIdleTime", "CreateVenv", "DownloadDeps",
		"ForeceDownloadDepsOnEnterprise", "OverridePythonAllocators", "DependenciesUrl",
		"DependenciesSha256", "PythonInstallationDir",
	}))

	// Plugin defaults are not mirrored into the extra dictionary until set.
	_, found := c.Extra("PythonAttemptTraceback")
	assert.False(t, found)
}

func TestLoadKnownAndExtra(t *testing.T) {
	c := mustLoad(t,
		"ExecutionThreads", "4",
		"MyKey", "MyVal",
		"executionmaxidletime", "250", // case-insensitive at load
		"PythonHomeDir", "/opt/py",
		"IsolationMode", "shared",
		"ProfileExecutions", "7", // bool-ish: nonzero = true, reported as 1
		"CreateVenv", "1", // not runtime settable, but fine at load
		"DependenciesUrl", "http://x/deps.tgz",
		"pythonattempttraceback", "0",
		"InterpreterPoolSize", "0",
		"SendMsgRetries", "0",
	)
	assert.Equal(t, 4, c.ExecutionThreads())
	assert.Equal(t, 250*time.Millisecond, c.ExecutionMaxIdleTime())
	assert.Equal(t, "/opt/py", c.PythonHomeDir())
	assert.Equal(t, IsolationShared, c.IsolationMode())
	assert.True(t, c.ProfileExecutions())
	assert.False(t, c.PythonAttemptTraceback())
	assert.Equal(t, 0, c.InterpreterPoolSize())
	assert.Equal(t, int64(0), c.SendMsgRetries())

	assert.Equal(t, []Entry{i(4), s("MyVal"), i(1), i(1), s("http://x/deps.tgz"), i(0)},
		c.Get([]string{"ExecutionThreads", "MyKey", "ProfileExecutions", "CreateVenv", "DependenciesUrl", "PythonAttemptTraceback"}))

	// Unknown keys and plugin keys land in the extra dictionary as spelled.
	v, found := c.Extra("MyKey")
	assert.True(t, found)
	assert.Equal(t, "MyVal", v)
	v, found = c.Extra("CreateVenv")
	assert.True(t, found)
	assert.Equal(t, "1", v)
	v, found = c.Extra("pythonattempttraceback")
	assert.True(t, found)
	assert.Equal(t, "0", v)
	// Core keys never go there.
	_, found = c.Extra("ExecutionThreads")
	assert.False(t, found)
	_, found = c.Extra("executionmaxidletime")
	assert.False(t, found)
}

func TestLoadLastWins(t *testing.T) {
	c := mustLoad(t, "MaxExecutions", "5", "maxExecutions", "6")
	assert.Equal(t, int64(6), c.MaxExecutions())
}

func TestLoadErrors(t *testing.T) {
	_, err := Load([]string{"ExecutionThreads", "4", "Lonely"})
	require.Error(t, err)
	assert.Contains(t, err.Error(), "Lonely")

	_, err = Load([]string{"Lonely"})
	require.Error(t, err)

	bad := []struct{ key, val string }{
		{"MaxExecutions", "0"},
		{"MaxExecutions", "abc"},
		{"MaxExecutionsPerRegistration", "-1"},
		{"ProfileExecutions", "yes"},
		{"ExecutionThreads", "0"},
		{"executionthreads", "-3"},
		{"ExecutionMaxIdleTime", "0"},
		{"SendMsgRetries", "-1"},
		{"InterpreterPoolSize", "-1"},
		{"IsolationMode", "threads"},
		{"IsolationMode", "Shared"},
		{"PythonAttemptTraceback", "true"},
		{"PythonInstallReqMaxIdleTime", "0"},
		{"CreateVenv", "x"},
		{"DownloadDeps", ""},
		{"ForeceDownloadDepsOnEnterprise", "1.0"},
		{"OverridePythonAllocators", " 1"},
		// Redis's string2ll is strict: no '+', no leading zeros, no spaces, no overflow.
		{"MaxExecutions", "+5"},
		{"MaxExecutions", "05"},
		{"MaxExecutions", "5 "},
		{"MaxExecutions", "99999999999999999999"},
		{"SendMsgRetries", "-0"},
	}
	for _, b := range bad {
		_, err := Load([]string{b.key, b.val})
		if assert.Error(t, err, "%s=%q", b.key, b.val) {
			// The error names the key in its canonical spelling.
			idx, _ := lookupFold(b.key)
			assert.Contains(t, err.Error(), params[idx].name)
		}
	}
}

func TestParseLongLong(t *testing.T) {
	good := map[string]int64{"0": 0, "1": 1, "-1": -1, "42": 42, "9223372036854775807": 1<<63 - 1, "-9223372036854775808": -1 << 63}
	for in, want := range good {
		n, ok := parseLongLong(in)
		assert.True(t, ok, in)
		assert.Equal(t, want, n, in)
	}
	for _, in := range []string{"", "-", "+1", "01", "-0", "00", "1a", " 1", "1 ", "9223372036854775808", "1e3", "0x10"} {
		_, ok := parseLongLong(in)
		assert.False(t, ok, in)
	}
}

func TestConfigGetExamples(t *testing.T) {
	c := mustLoad(t)
	assert.Equal(t, []Entry{unsupported("NoSuchConfig"), i(1000)},
		c.Get([]string{"NoSuchConfig", "MaxExecutions"}))
	// Exact case for known keys.
	assert.Equal(t, []Entry{unsupported("maxexecutions"), unsupported("pythonattempttraceback")},
		c.Get([]string{"maxexecutions", "pythonattempttraceback"}))
	assert.Equal(t, []Entry{}, c.Get(nil))
}

func TestConfigSetCore(t *testing.T) {
	c := mustLoad(t)
	assert.Equal(t, []Entry{ok()}, c.Set([]string{"MaxExecutions", "10"}))
	assert.Equal(t, []Entry{i(10)}, c.Get([]string{"MaxExecutions"}))

	// Case-insensitive set, case-sensitive get.
	assert.Equal(t, []Entry{ok()}, c.Set([]string{"maxexecutions", "7"}))
	assert.Equal(t, []Entry{i(7)}, c.Get([]string{"MaxExecutions"}))
	assert.Equal(t, []Entry{unsupported("maxexecutions")}, c.Get([]string{"maxexecutions"}))
	assert.Equal(t, int64(7), c.MaxExecutions())
	_, found := c.Extra("maxexecutions")
	assert.False(t, found)

	// Not modifiable at runtime: canonical spelling in the message, value unchanged.
	assert.Equal(t, []Entry{e("(error) Config value ExecutionThreads not modifiable at runtime")},
		c.Set([]string{"ExecutionThreads", "5"}))
	assert.Equal(t, []Entry{e("(error) Config value ExecutionThreads not modifiable at runtime")},
		c.Set([]string{"executionTHREADS", "5"}))
	assert.Equal(t, 3, c.ExecutionThreads())
	for _, k := range []string{"PythonHomeDir", "IsolationMode"} {
		assert.Equal(t, []Entry{e("(error) Config value " + k + " not modifiable at runtime")},
			c.Set([]string{k, "shared"}))
	}
	assert.Equal(t, IsolationSubinterpreter, c.IsolationMode())
	assert.Equal(t, "", c.PythonHomeDir())

	// Bad values: error with canonical spelling, value unchanged.
	assert.Equal(t, []Entry{
		e("(error) Failed setting config value MaxExecutions (an integer from 1 to 1000000)"),
		e("(error) Failed setting config value SendMsgRetries (an integer from 0 to 1000)"),
		e("(error) Failed setting config value ExecutionMaxIdleTime (an integer from 1 to 86400000)"),
		e("(error) Failed setting config value ProfileExecutions"),
		e("(error) Failed setting config value InterpreterPoolSize (an integer from 0 to 32)"),
		e("(error) Failed setting config value MaxExecutionsPerRegistration (an integer from 1 to 100000)"),
		e("(error) Failed setting config value InterpreterPoolSize (an integer from 0 to 32)"),
		e("(error) Failed setting config value MaxPythonMemory (0 (no limit) or a number of bytes of at least 67108864)"),
		e("(error) Failed setting config value ExecutionMaxTime (an integer from 0 to 86400000)"),
		e("(error) Failed setting config value MaxExecutions (an integer from 1 to 1000000)"),
	}, c.Set([]string{
		"maxexecutions", "0",
		"SendMsgRetries", "-1",
		"ExecutionMaxIdleTime", "soon",
		"ProfileExecutions", "on",
		"InterpreterPoolSize", "-2",
		"MaxExecutionsPerRegistration", "0",
		"InterpreterPoolSize", "100000",
		"MaxPythonMemory", "1024",
		"ExecutionMaxTime", "-1",
		"MaxExecutions", "9223372036854775807",
	}))
	assert.Equal(t, DefaultPythonMemory(), c.MaxPythonMemory())
	assert.Zero(t, c.ExecutionMaxTime())
	assert.Equal(t, int64(7), c.MaxExecutions())
	assert.Equal(t, int64(3), c.SendMsgRetries())
	assert.Equal(t, 5*time.Second, c.ExecutionMaxIdleTime())
	assert.False(t, c.ProfileExecutions())
	assert.Equal(t, 2, c.InterpreterPoolSize())
	assert.Equal(t, int64(100), c.MaxExecutionsPerRegistration())

	// Every runtime-settable core key.
	assert.Equal(t, []Entry{ok(), ok(), ok(), ok(), ok(), ok()}, c.Set([]string{
		"MaxExecutionsPerRegistration", "50",
		"ProfileExecutions", "3",
		"ExecutionMaxIdleTime", "100",
		"SendMsgRetries", "0",
		"InterpreterPoolSize", "8",
		"MaxExecutions", "1",
	}))
	assert.Equal(t, int64(50), c.MaxExecutionsPerRegistration())
	assert.True(t, c.ProfileExecutions())
	assert.Equal(t, 100*time.Millisecond, c.ExecutionMaxIdleTime())
	assert.Equal(t, int64(0), c.SendMsgRetries())
	assert.Equal(t, 8, c.InterpreterPoolSize())
	assert.Equal(t, int64(1), c.MaxExecutions())
	assert.Equal(t, []Entry{i(1)}, c.Get([]string{"ProfileExecutions"}))
	assert.Equal(t, []Entry{ok()}, c.Set([]string{"ProfileExecutions", "0"}))
	assert.False(t, c.ProfileExecutions())
}

func TestConfigSetExtra(t *testing.T) {
	c := mustLoad(t)
	assert.Equal(t, []Entry{savedExtra()}, c.Set([]string{"foo", "bar"}))
	assert.Equal(t, []Entry{s("bar")}, c.Get([]string{"foo"}))
	v, found := c.Extra("foo")
	assert.True(t, found)
	assert.Equal(t, "bar", v)
	// Extra keys are case-sensitive.
	assert.Equal(t, []Entry{unsupported("FOO")}, c.Get([]string{"FOO"}))
	// Overwrite.
	assert.Equal(t, []Entry{savedExtra()}, c.Set([]string{"foo", "baz"}))
	assert.Equal(t, []Entry{s("baz")}, c.Get([]string{"foo"}))
}

func TestConfigSetMissingValue(t *testing.T) {
	c := mustLoad(t)
	assert.Equal(t, []Entry{ok(), e("(error) Value was not given to foo")},
		c.Set([]string{"MaxExecutions", "10", "foo"}))
	assert.Equal(t, int64(10), c.MaxExecutions())
	_, found := c.Extra("foo")
	assert.False(t, found)
	assert.Equal(t, []Entry{e("(error) Value was not given to MaxExecutions")},
		c.Set([]string{"MaxExecutions"}))
	assert.Equal(t, []Entry{}, c.Set(nil))
}

func TestConfigSetPlugin(t *testing.T) {
	c := mustLoad(t)

	assert.Equal(t, []Entry{savedExtra()}, c.Set([]string{"PythonAttemptTraceback", "0"}))
	assert.False(t, c.PythonAttemptTraceback())
	assert.Equal(t, []Entry{i(0)}, c.Get([]string{"PythonAttemptTraceback"}))
	v, found := c.Extra("PythonAttemptTraceback")
	assert.True(t, found)
	assert.Equal(t, "0", v)

	// Case-insensitive match; the extra dictionary keeps the spelling used.
	assert.Equal(t, []Entry{savedExtra()}, c.Set([]string{"pythoninstallreqmaxidletime", "1500"}))
	assert.Equal(t, 1500*time.Millisecond, c.PythonInstallReqMaxIdleTime())
	assert.Equal(t, []Entry{i(1500), s("1500")},
		c.Get([]string{"PythonInstallReqMaxIdleTime", "pythoninstallreqmaxidletime"}))

	// Bool: stored raw in the extra dictionary, reported as 0/1.
	assert.Equal(t, []Entry{savedExtra()}, c.Set([]string{"PythonAttemptTraceback", "5"}))
	assert.True(t, c.PythonAttemptTraceback())
	assert.Equal(t, []Entry{i(1)}, c.Get([]string{"PythonAttemptTraceback"}))
	v, _ = c.Extra("PythonAttemptTraceback")
	assert.Equal(t, "5", v)

	// Bad value: error naming the key as given, nothing changes.
	assert.Equal(t, []Entry{
		e("(error) Failed setting config value pythonAttemptTraceback"),
		e("(error) Failed setting config value PythonInstallReqMaxIdleTime"),
	}, c.Set([]string{"pythonAttemptTraceback", "no", "PythonInstallReqMaxIdleTime", "0"}))
	assert.True(t, c.PythonAttemptTraceback())
	assert.Equal(t, 1500*time.Millisecond, c.PythonInstallReqMaxIdleTime())
	_, found = c.Extra("pythonAttemptTraceback")
	assert.False(t, found)

	// Not runtime settable: error naming the key as given, nothing changes.
	for _, k := range []string{"CreateVenv", "DownloadDeps", "ForeceDownloadDepsOnEnterprise",
		"OverridePythonAllocators", "DependenciesUrl", "DependenciesSha256", "PythonInstallationDir", "dependenciessha256"} {
		assert.Equal(t, []Entry{e("(error) " + k + " is not configurable at runtime")}, c.Set([]string{k, "1"}), k)
		_, found := c.Extra(k)
		assert.False(t, found, k)
	}
	assert.Equal(t, []Entry{i(0), s("")}, c.Get([]string{"CreateVenv", "DependenciesSha256"}))
}

func TestConfigSetMixedLeftToRight(t *testing.T) {
	c := mustLoad(t)
	assert.Equal(t, []Entry{
		savedExtra(),
		ok(),
		e("(error) Config value ExecutionThreads not modifiable at runtime"),
		e("(error) Failed setting config value MaxExecutions (an integer from 1 to 1000000)"),
		ok(),
		savedExtra(),
		e("(error) Value was not given to tail"),
	}, c.Set([]string{
		"NoSuchConfig", "1",
		"MaxExecutions", "10",
		"ExecutionThreads", "9",
		"MaxExecutions", "-1",
		"MaxExecutions", "11",
		"PythonAttemptTraceback", "0",
		"tail",
	}))
	assert.Equal(t, []Entry{i(11), s("1"), i(3)}, c.Get([]string{"MaxExecutions", "NoSuchConfig", "ExecutionThreads"}))
}

func TestTableIsConsistent(t *testing.T) {
	seen := map[string]bool{}
	for _, p := range params {
		folded := ""
		for _, r := range p.name {
			if 'A' <= r && r <= 'Z' {
				r += 'a' - 'A'
			}
			folded += string(r)
		}
		assert.False(t, seen[folded], "duplicate key %s", p.name)
		seen[folded] = true
		// Defaults must pass their own validation (Load panics otherwise).
		c := &Config{vals: make([]slot, len(params))}
		idx, _ := lookupExact(p.name)
		assert.True(t, c.store(idx, p.def), p.name)
	}
}

func TestConcurrentReadsDuringSets(t *testing.T) {
	c := mustLoad(t)
	stop := make(chan struct{})
	var wg sync.WaitGroup
	for r := 0; r < 4; r++ {
		wg.Add(1)
		go func() {
			defer wg.Done()
			for {
				select {
				case <-stop:
					return
				default:
				}
				assert.Positive(t, c.MaxExecutions())
				assert.Positive(t, c.MaxExecutionsPerRegistration())
				_ = c.ProfileExecutions()
				assert.Equal(t, 3, c.ExecutionThreads())
				assert.Positive(t, c.ExecutionMaxIdleTime())
				assert.GreaterOrEqual(t, c.SendMsgRetries(), int64(0))
				assert.GreaterOrEqual(t, c.InterpreterPoolSize(), 0)
				_ = c.PythonHomeDir()
				assert.Equal(t, IsolationSubinterpreter, c.IsolationMode())
				_ = c.PythonAttemptTraceback()
				assert.Positive(t, c.PythonInstallReqMaxIdleTime())
				got := c.Get([]string{"MaxExecutions", "foo", "PythonAttemptTraceback"})
				assert.Len(t, got, 3)
				_, _ = c.Extra("PythonAttemptTraceback")
			}
		}()
	}
	var writers sync.WaitGroup
	for w := 0; w < 2; w++ {
		writers.Add(1)
		go func(w int) {
			defer writers.Done()
			for n := 1; n <= 500; n++ {
				v := strconv.Itoa(n)
				c.Set([]string{
					"MaxExecutions", v, "MaxExecutionsPerRegistration", v, "ProfileExecutions", strconv.Itoa(n % 2),
					"ExecutionMaxIdleTime", v, "SendMsgRetries", v, "InterpreterPoolSize", strconv.Itoa(n % 33),
					"PythonAttemptTraceback", strconv.Itoa(n % 2), "PythonInstallReqMaxIdleTime", v,
					"foo", strconv.Itoa(w),
				})
			}
		}(w)
	}
	writers.Wait()
	close(stop)
	wg.Wait()
	assert.Equal(t, int64(500), c.MaxExecutions())
	assert.Equal(t, 500%33, c.InterpreterPoolSize())
}
