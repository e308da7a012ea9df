package tests

import (
	"testing"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

// RG.PYEXECUTE's command line, as RedisGears 1.2 parses it.
func TestPyExecuteArguments(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("arity", func(t *testing.T) {
		_, err := c.Do(bg(), "RG.PYEXECUTE").Result()
		require.Error(t, err)
		require.Contains(t, err.Error(), "wrong number of arguments")
		requireAlive(t, s)
	})

	errCases := []struct {
		name string
		args []any
		want string
	}{
		{"id missing", []any{"ID"}, "ID is missing"},
		{"description missing", []any{"DESCRIPTION"}, "DESCRIPTION is missing"},
		{"replace_with missing", []any{"REPLACE_WITH"}, "REPLACE_WITH is missing"},
		{"bad id", []any{"ID", "bad!id"}, "ID must be compose of: ['A'-'Z' | 'a'-'z' | '0' - '9' | '-' | '_']"},
		{"unknown token", []any{"FOO"}, "Unknown arguments were given: FOO"},
		{"unknown token after options", []any{"UNBLOCKING", "FOO", "BAR"}, "Unknown arguments were given: FOO"},
		{"replace_with unknown session", []any{"REPLACE_WITH", "nosuch"}, "Can not replace with nosuch, session does not exists."},
	}
	for _, tc := range errCases {
		t.Run(tc.name, func(t *testing.T) {
			_, err := pyexec(c, "pass", tc.args...)
			requireErrText(t, tc.want, err)
			requireAlive(t, s)
		})
	}

	okCases := []struct {
		name string
		args []any
	}{
		{"unblocking lower case", []any{"unblocking"}},
		{"id lower case", []any{"id", "x"}},
		{"id with allowed characters", []any{"ID", "Az09-_"}},
		{"description lower case", []any{"description", "d"}},
		{"upgrade lower case", []any{"upgrade"}},
		{"upgrade of a session that does not exist", []any{"ID", "fresh", "UPGRADE"}},
		{"requirements without items", []any{"REQUIREMENTS"}},
		{"all options", []any{"UnBlocking", "Id", "all1", "DESCRIPTION", "some text", "UPGRADE", "REQUIREMENTS"}},
	}
	for _, tc := range okCases {
		t.Run(tc.name, func(t *testing.T) {
			requirePyOK(t, c, "pass", tc.args...)
		})
	}

	t.Run("the script runs with options given", func(t *testing.T) {
		requirePyOK(t, c, "execute('SET','opts_ran','1')", "id", "ran1", "description", "d", "unblocking")
		require.Equal(t, "1", getKey(t, c, "opts_ran"))
	})

	t.Run("requirements cannot be satisfied", func(t *testing.T) {
		_, err := pyexec(c, "pass", "REQUIREMENTS", "foo")
		require.Error(t, err)
		require.Contains(t, err.Error(), "satisfy requirements")
		requireAlive(t, s)
	})

	t.Run("a failing command line does not run the script", func(t *testing.T) {
		_, err := pyexec(c, "execute('SET','should_not_run','1')", "FOO")
		require.Error(t, err)
		n, err := c.Exists(bg(), "should_not_run").Result()
		require.NoError(t, err)
		require.Zero(t, n)
	})
}

// RG.PYEXECUTE must refuse to run where it cannot block the client.
func TestPyExecuteWhereBlockingIsNotAllowed(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("multi exec", func(t *testing.T) {
		pipe := c.TxPipeline()
		pipe.Do(bg(), "RG.PYEXECUTE", "execute('SET','from_multi','1')")
		pipe.Set(bg(), "after_in_multi", "1", 0)
		cmds, _ := pipe.Exec(bg())
		require.Len(t, cmds, 2)
		err := cmds[0].Err()
		require.Error(t, err)
		require.Contains(t, err.Error(), "Can not run gears inside a multi exec, lua, or when blocking is not allowed")
		require.NoError(t, cmds[1].Err(), "the rest of the transaction runs")
		n, err := c.Exists(bg(), "from_multi").Result()
		require.NoError(t, err)
		require.Zero(t, n, "the script must not have run")
		requireAlive(t, s)
	})

	t.Run("lua", func(t *testing.T) {
		_, err := c.Eval(bg(), "return redis.pcall('RG.PYEXECUTE','pass')", nil).Result()
		require.Error(t, err)
		require.Contains(t, err.Error(), "blocking is not allowed")
		requireAlive(t, s)
	})

	t.Run("still fine afterwards", func(t *testing.T) {
		requirePyOK(t, c, "pass")
	})
}

func TestPyExecuteReplies(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	c := s.Client

	t.Run("pass", func(t *testing.T) {
		requirePyOK(t, c, "pass")
	})
	t.Run("empty script", func(t *testing.T) {
		requirePyOK(t, c, "")
	})
	t.Run("exception", func(t *testing.T) {
		msg := requirePyErr(t, c, "1/0")
		require.Contains(t, msg, "ZeroDivisionError")
		requireAlive(t, s)
	})
	t.Run("syntax error", func(t *testing.T) {
		msg := requirePyErr(t, c, "def (")
		require.Contains(t, msg, "SyntaxError")
		requireAlive(t, s)
	})
	t.Run("raise of a custom exception", func(t *testing.T) {
		msg := requirePyErr(t, c, py(
			"class MyErr(Exception): pass",
			"raise MyErr('custom-text')",
		))
		require.Contains(t, msg, "custom-text")
		requireAlive(t, s)
	})
	t.Run("SystemExit does not stop the server", func(t *testing.T) {
		_, _ = pyexec(c, "import sys; sys.exit(3)")
		requireAlive(t, s)
		requirePyOK(t, c, "pass")
	})
	t.Run("error reply is one line", func(t *testing.T) {
		msg := requirePyErr(t, c, "raise Exception('line1\\nline2')")
		require.NotContains(t, msg, "\n")
		require.NotContains(t, msg, "\r")
		requireAlive(t, s)
	})
	t.Run("traceback on", func(t *testing.T) {
		setConfig(t, c, "PythonAttemptTraceback", "1")
		msg := requirePyErr(t, c, "1/0")
		require.Contains(t, msg, "Traceback (most recent call last)")
		require.Contains(t, msg, "ZeroDivisionError")
		requireAlive(t, s)
	})
	t.Run("traceback off", func(t *testing.T) {
		setConfig(t, c, "PythonAttemptTraceback", "0")
		_, err := pyexec(c, "1/0")
		requireErrText(t, "Error type: <class 'ZeroDivisionError'>, Value: division by zero", err)
		requireAlive(t, s)
	})
	t.Run("traceback back on", func(t *testing.T) {
		setConfig(t, c, "PythonAttemptTraceback", "1")
		msg := requirePyErr(t, c, "1/0")
		require.Contains(t, msg, "Traceback (most recent call last)")
	})
}

// setConfig runs RG.CONFIGSET key value and checks it was accepted.
func setConfig(t testing.TB, c *redis.Client, key, value string) {
	t.Helper()
	res, err := c.Do(bg(), "RG.CONFIGSET", key, value).Result()
	require.NoError(t, err)
	arr, ok := res.([]any)
	require.True(t, ok, "RG.CONFIGSET replied %#v", res)
	require.Len(t, arr, 1)
	str, ok := arr[0].(string)
	require.True(t, ok, "RG.CONFIGSET %s %s: %#v", key, value, arr[0])
	assert.Contains(t, str, "OK")
}
