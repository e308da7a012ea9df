package tests

import (
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

// The functions a script finds in its globals, observed through keys and
// the log.

func TestExecute(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("set then get from a client", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','k','v')")
		require.Equal(t, "v", getKey(t, c, "k"))
	})

	t.Run("reply mapping", func(t *testing.T) {
		requirePyOK(t, c, py(
			"execute('SET','a','1')",
			"r = [execute('GET','a'), execute('INCR','n'), execute('GET','nokey'),",
			"     execute('RPUSH','l','x','y'), execute('LRANGE','l',0,-1), execute('HGETALL','nohash')]",
			"execute('SET','out', repr(r))",
		))
		require.Equal(t, "['1', 1, None, 2, ['x', 'y'], []]", getKey(t, c, "out"))
	})

	t.Run("simple string reply", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','simple', repr((execute('SET','s1','v'), execute('PING'))))")
		require.Equal(t, "('OK', 'PONG')", getKey(t, c, "simple"))
	})

	t.Run("argument conversion", func(t *testing.T) {
		requirePyOK(t, c, py(
			"execute('SET','conv_int',5)",
			"execute('SET','conv_float',1.5)",
			"execute('SET','conv_bytes',b'raw-bytes')",
			"execute('SET','conv_bytearray',bytearray(b'raw-bytearray'))",
			`execute('SET','conv_binary',b'\x00\xff\x01')`,
			"execute('SET','conv_none',None)",
		))
		require.Equal(t, "5", getKey(t, c, "conv_int"))
		require.Equal(t, "1.5", getKey(t, c, "conv_float"))
		require.Equal(t, "raw-bytes", getKey(t, c, "conv_bytes"))
		require.Equal(t, "raw-bytearray", getKey(t, c, "conv_bytearray"))
		require.Equal(t, "\x00\xff\x01", getKey(t, c, "conv_binary"))
		require.Equal(t, "None", getKey(t, c, "conv_none"))
	})

	t.Run("non utf-8 reply is a bytearray", func(t *testing.T) {
		requirePyOK(t, c, py(
			`execute('set','bin',b'\xff\xfe')`,
			"execute('set','bin_repr', repr(execute('get','bin')))",
		))
		require.Equal(t, `bytearray(b'\xff\xfe')`, getKey(t, c, "bin_repr"))
	})

	t.Run("error reply raises a catchable GearsError", func(t *testing.T) {
		requirePyOK(t, c, py(
			"execute('SET','str','x')",
			"try:",
			"    execute('LPUSH','str','y')",
			"    res = 'no exception'",
			"except Exception as e:",
			"    res = '%s|%s' % (isinstance(e, GearsError), e)",
			"execute('SET','werr', res)",
		))
		got := getKey(t, c, "werr")
		require.Contains(t, got, "True|")
		require.Contains(t, got, "WRONGTYPE")
		requireAlive(t, s)
	})

	t.Run("uncaught error reply fails the script", func(t *testing.T) {
		msg := requirePyErr(t, c, py(
			"execute('SET','str2','x')",
			"execute('LPUSH','str2','y')",
		))
		require.Contains(t, msg, "WRONGTYPE")
		requireAlive(t, s)
	})

	t.Run("command must be a string", func(t *testing.T) {
		msg := requirePyErr(t, c, "execute(1)")
		require.Contains(t, msg, "the given command must be a string")
		requireAlive(t, s)
	})

	t.Run("unknown command", func(t *testing.T) {
		msg := requirePyErr(t, c, "execute('NOSUCHCOMMAND','x')")
		require.Contains(t, msg, "unknown command")
		requireAlive(t, s)
	})

	t.Run("no arguments returns an empty list", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','noargs', repr(execute()))")
		require.Equal(t, "[]", getKey(t, c, "noargs"))
	})

	t.Run("many calls", func(t *testing.T) {
		requirePyOK(t, c, py(
			"for i in range(5000):",
			"    execute('INCR','many')",
		))
		require.Equal(t, "5000", getKey(t, c, "many"))
	})
}

func TestAtomic(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("block writes both keys", func(t *testing.T) {
		requirePyOK(t, c, py(
			"with atomic():",
			"    execute('set','a1','1')",
			"    execute('set','a2','2')",
		))
		require.Equal(t, "1", getKey(t, c, "a1"))
		require.Equal(t, "2", getKey(t, c, "a2"))
	})

	t.Run("nested block is refused", func(t *testing.T) {
		msg := requirePyErr(t, c, py(
			"with atomic():",
			"    with atomic():",
			"        pass",
		))
		require.Contains(t, msg, "Already inside an atomic block")
		// The outer block's lock must have been released.
		requireAlive(t, s)
		requirePyOK(t, c, py(
			"with atomic():",
			"    execute('set','after_nested','1')",
		))
		require.Equal(t, "1", getKey(t, c, "after_nested"))
	})

	t.Run("exception inside the block releases the lock", func(t *testing.T) {
		msg := requirePyErr(t, c, py(
			"with atomic():",
			"    execute('set','before_raise','1')",
			"    raise ValueError('inside-atomic')",
		))
		require.Contains(t, msg, "inside-atomic")
		requireAlive(t, s)
		require.Equal(t, "1", getKey(t, c, "before_raise"))
	})

	t.Run("block left open by a bare enter is released at script end", func(t *testing.T) {
		_, _ = pyexec(c, "atomic().__enter__()")
		requireAlive(t, s)
		requirePyOK(t, c, "with atomic(): execute('set','after_open','1')")
		require.Equal(t, "1", getKey(t, c, "after_open"))
	})
}

func TestHashtagLogPrint(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("hashtag", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','ht',hashtag())")
		require.Equal(t, "06S", getKey(t, c, "ht"))
	})

	t.Run("log", func(t *testing.T) {
		requirePyOK(t, c, "log('marker-7c1f')")
		s.WaitLog(t, "GEARS: marker-7c1f", 5*time.Second)
	})

	t.Run("log with level", func(t *testing.T) {
		requirePyOK(t, c, "log('warn-marker-2b9d', level='warning')")
		s.WaitLog(t, "GEARS: warn-marker-2b9d", 5*time.Second)
		for _, lvl := range []string{"debug", "verbose", "notice", "warning"} {
			requirePyOK(t, c, "log('lvl', level='"+lvl+"')")
		}
	})

	t.Run("log message must be a string", func(t *testing.T) {
		msg := requirePyErr(t, c, "log(1)")
		require.Contains(t, msg, "Log message must be a string")
		requireAlive(t, s)
	})

	t.Run("log level must be known", func(t *testing.T) {
		msg := requirePyErr(t, c, "log('x', level='loud')")
		require.Contains(t, msg, "Log level should be one of the following : debug,verbose,notice,warning")
		requireAlive(t, s)
	})

	t.Run("print goes to the log", func(t *testing.T) {
		requirePyOK(t, c, "print('printed-marker-5e3a')")
		s.WaitLog(t, "printed-marker-5e3a", 5*time.Second)
	})

	t.Run("stderr goes to the log", func(t *testing.T) {
		requirePyOK(t, c, "import sys; print('stderr-marker-91c4', file=sys.stderr)")
		s.WaitLog(t, "stderr-marker-91c4", 5*time.Second)
	})
}

func TestConfigGetFromPython(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("MyKey", "MyVal"))
	c := s.Client

	t.Run("module argument", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','cfg_mykey', repr(configGet('MyKey')))")
		require.Equal(t, "'MyVal'", getKey(t, c, "cfg_mykey"))
	})

	t.Run("core keys are not visible", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','cfg_core', repr(configGet('MaxExecutions')))")
		require.Equal(t, "None", getKey(t, c, "cfg_core"))
	})

	t.Run("runtime key", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','cfg_rt_before', repr(configGet('RuntimeKey')))")
		require.Equal(t, "None", getKey(t, c, "cfg_rt_before"))
		setConfig(t, c, "RuntimeKey", "RuntimeValue")
		requirePyOK(t, c, "execute('SET','cfg_rt', repr(configGet('RuntimeKey')))")
		require.Equal(t, "'RuntimeValue'", getKey(t, c, "cfg_rt"))
	})

	t.Run("gearsConfigGet default", func(t *testing.T) {
		requirePyOK(t, c, py(
			"execute('SET','cfg_default', repr((gearsConfigGet('Missing', 'fallback'), gearsConfigGet('MyKey', 'fallback'))))",
		))
		require.Equal(t, "('fallback', 'MyVal')", getKey(t, c, "cfg_default"))
	})

	t.Run("key must be a string", func(t *testing.T) {
		msg := requirePyErr(t, c, "configGet(1)")
		require.Contains(t, msg, "get_config key must be a string")
		requireAlive(t, s)
	})
}

func TestErrorsAndBuilderNames(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("flat_error", func(t *testing.T) {
		_, err := pyexec(c, "flat_error('plain text')")
		requireErrText(t, "plain text", err)
		requireAlive(t, s)
	})

	t.Run("error classes exist", func(t *testing.T) {
		requirePyOK(t, c, py(
			"execute('SET','names', repr((issubclass(GearsError, Exception), issubclass(GearsFlatError, GearsError))))",
		))
		require.Equal(t, "(True, True)", getKey(t, c, "names"))
	})

	t.Run("raising GearsError", func(t *testing.T) {
		msg := requirePyErr(t, c, "raise GearsError('gears-error-text')")
		require.Contains(t, msg, "gears-error-text")
		requireAlive(t, s)
	})

	t.Run("builder names", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','gb', repr((GB is GearsBuilder, callable(GB))))")
		require.Equal(t, "(True, True)", getKey(t, c, "gb"))
	})

	t.Run("unknown reader", func(t *testing.T) {
		msg := requirePyErr(t, c, "GB('NoSuchReader')")
		require.Contains(t, msg, "reader does not exists")
		requireAlive(t, s)
	})
}
