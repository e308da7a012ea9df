package main

import (
	"bytes"
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestParseArgsIntersperses(t *testing.T) {
	c := newConnOpts()
	var all bool
	var ids []string
	opts := append(connOptions(&c), flagOpt(&all, "", "--all"), multiOpt(&ids, "ID", "", "--registration-id"))
	pos, err := parseArgs(opts, []string{"a.py", "--port", "7000", "ID", "--host=h", "x", "--all",
		"--registration-id", "r1", "--registration-id=r2", "-", "--", "--port", "-1"})
	require.NoError(t, err)
	require.Equal(t, []string{"a.py", "ID", "x", "-", "--port", "-1"}, pos)
	require.Equal(t, 7000, c.port)
	require.Equal(t, "h", c.host)
	require.True(t, all)
	require.Equal(t, []string{"r1", "r2"}, ids)
}

func TestParseArgsUsageErrors(t *testing.T) {
	for _, tc := range []struct {
		args []string
		want string
	}{
		{[]string{"--nope"}, "No such option: --nope"},
		{[]string{"-1"}, "No such option: -1"},
		{[]string{"--port"}, "Option '--port' requires an argument."},
		{[]string{"--port", "x"}, "Invalid value for '--port': 'x' is not a valid integer."},
		{[]string{"--tls=yes"}, "Option '--tls' does not take a value."},
		{[]string{"--ssl", "maybe"}, "Invalid value for '--ssl': 'maybe' is not a valid boolean."},
	} {
		c := newConnOpts()
		_, err := parseArgs(connOptions(&c), tc.args)
		require.IsType(t, usageError{}, err, "%v", tc.args)
		require.Equal(t, tc.want, err.Error())
	}
}

func TestParseArgsHelpStops(t *testing.T) {
	c := newConnOpts()
	_, err := parseArgs(append(connOptions(&c), helpOpt()), []string{"--help", "--nope"})
	require.Equal(t, errHelp, err)
}

func TestLegacyTLSOptions(t *testing.T) {
	c := newConnOpts()
	_, err := parseArgs(connOptions(&c), []string{"--ssl", "True", "--ssl-ca-certs", "ca.pem", "--ssl-verify-ca", "false"})
	require.NoError(t, err)
	require.True(t, c.useTLS())
	require.Equal(t, "ca.pem", c.cacert)
	require.False(t, c.verifyCA)
	plain := newConnOpts()
	require.False(t, plain.useTLS())
}

func TestWriteOptionsHidesLegacy(t *testing.T) {
	c := newConnOpts()
	var b bytes.Buffer
	writeOptions(&b, connOptions(&c))
	require.Contains(t, b.String(), "--cacert FILE")
	require.NotContains(t, b.String(), "--ssl")
}

// runApp runs the tool in-process with no server involved.
func runApp(args ...string) (code int, stdout, stderr string) {
	var out, errb bytes.Buffer
	a := &app{stdin: strings.NewReader(""), stdout: &out, stderr: &errb, getenv: func(string) string { return "" }}
	code = a.main(args)
	return code, out.String(), errb.String()
}

func TestToolUsage(t *testing.T) {
	code, out, _ := runApp("--help")
	require.Equal(t, exitOK, code)
	require.Contains(t, out, "Usage: gears-cli [OPTIONS] COMMAND [ARGS]...")
	for _, c := range commands {
		require.Contains(t, out, c.name)
		code, out, _ := runApp(c.name, "--help")
		require.Equal(t, exitOK, code)
		require.Contains(t, out, "Usage: gears-cli "+c.name+" [OPTIONS]")
		require.Contains(t, out, "--json")
	}

	code, out, _ = runApp("--version")
	require.Equal(t, exitOK, code)
	require.True(t, strings.HasPrefix(out, "gears-cli, version "), out)

	for _, args := range [][]string{
		{}, {"nope"}, {"--nope"}, {"run"}, {"run", "--nope", "x.py"},
		{"export-requirements", "extra"}, {"import-requirements", "--bulk-size", "0"},
		{"run", "--key", "k.pem", "x.py"},
	} {
		code, out, errText := runApp(args...)
		require.Equal(t, exitUsage, code, "%v", args)
		require.Empty(t, out)
		require.Contains(t, errText, "Usage: gears-cli", "%v", args)
		require.Contains(t, errText, "Error: ", "%v", args)
	}
}
