package tests

// gears-cli (cmd/gears-cli) against real servers: each command, what it
// prints where, and its exit codes (0 done, 1 failed, 2 usage).

import (
	"archive/zip"
	"context"
	"crypto/ecdsa"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/x509"
	"crypto/x509/pkix"
	"encoding/json"
	"encoding/pem"
	"fmt"
	"io"
	"math/big"
	"net"
	"os"
	"os/exec"
	"path/filepath"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

var (
	cliOnce sync.Once
	cliPath string
	cliErr  error
)

// gearsCli is the binary under test: $GEARS_CLI, or built once per test run
// into one directory per user (renamed into place, so runs may overlap).
func gearsCli(t *testing.T) string {
	t.Helper()
	cliOnce.Do(func() {
		if p := os.Getenv("GEARS_CLI"); p != "" {
			cliPath, cliErr = filepath.Abs(p)
			return
		}
		dir := filepath.Join(os.TempDir(), fmt.Sprintf("gears-cli-tests-%d", os.Getuid()))
		if cliErr = os.MkdirAll(dir, 0o700); cliErr != nil {
			return
		}
		tmp := filepath.Join(dir, fmt.Sprintf("gears-cli.%d", os.Getpid()))
		if out, err := exec.Command("go", "build", "-o", tmp, "../cmd/gears-cli").CombinedOutput(); err != nil {
			cliErr = fmt.Errorf("building gears-cli: %v\n%s", err, out)
			return
		}
		cliPath = filepath.Join(dir, "gears-cli")
		cliErr = os.Rename(tmp, cliPath)
	})
	require.NoError(t, cliErr)
	return cliPath
}

type cliRun struct {
	code           int
	stdout, stderr string
}

// cliCmd describes one gears-cli invocation.
type cliCmd struct {
	stdin string
	env   []string // added to a clean environment
	args  []string
}

func (c cliCmd) run(t *testing.T) cliRun {
	t.Helper()
	ctx, cancel := context.WithTimeout(context.Background(), 3*time.Minute)
	defer cancel()
	cmd := exec.CommandContext(ctx, gearsCli(t), c.args...)
	cmd.Env = append([]string{"PATH=" + os.Getenv("PATH"), "HOME=" + os.Getenv("HOME")}, c.env...)
	cmd.Stdin = strings.NewReader(c.stdin)
	var out, errb strings.Builder
	cmd.Stdout, cmd.Stderr = &out, &errb
	err := cmd.Run()
	code := 0
	if err != nil {
		ee, ok := err.(*exec.ExitError)
		require.True(t, ok, "gears-cli %v: %v", c.args, err)
		code = ee.ExitCode()
	}
	r := cliRun{code, out.String(), errb.String()}
	t.Logf("gears-cli %s -> %d\nstdout: %s\nstderr: %s", strings.Join(c.args, " "), r.code, r.stdout, r.stderr)
	return r
}

// cli runs gears-cli args... with no stdin.
func cli(t *testing.T, args ...string) cliRun {
	t.Helper()
	return cliCmd{args: args}.run(t)
}

// at is the options reaching s.
func at(s *server) []string {
	return []string{"--host", "127.0.0.1", "--port", strconv.Itoa(s.Port)}
}

// cmdAt is command, s's options, then args.
func cmdAt(s *server, command string, args ...string) []string {
	return append(append([]string{command}, at(s)...), args...)
}

func writeTemp(t *testing.T, name, content string) string {
	t.Helper()
	p := filepath.Join(t.TempDir(), name)
	require.NoError(t, os.WriteFile(p, []byte(content), 0o644))
	return p
}

func requireCliOK(t *testing.T, r cliRun) {
	t.Helper()
	require.Equal(t, 0, r.code, "stderr: %s", r.stderr)
	require.Equal(t, "OK\n", r.stdout)
	require.Empty(t, r.stderr)
}

// cliJSON parses the one JSON object gears-cli --json printed.
func cliJSON(t *testing.T, r cliRun) map[string]any {
	t.Helper()
	var m map[string]any
	require.NoError(t, json.Unmarshal([]byte(r.stdout), &m), "stdout: %q", r.stdout)
	require.Equal(t, 1, strings.Count(r.stdout, "\n"), "one line")
	return m
}

func TestGearsCliRun(t *testing.T) {
	t.Parallel()
	s := startServer(t)

	t.Run("registration", func(t *testing.T) {
		f := writeTemp(t, "hello.py", "GB('CommandReader').map(lambda x: 'hello ' + x[1]).register(trigger='hello')")
		// Options may follow the file, as with the Python gears-cli.
		requireCliOK(t, cli(t, append([]string{"run", f}, at(s)...)...))
		v, err := s.Client.Do(bg(), "RG.TRIGGER", "hello", "world").Slice()
		require.NoError(t, err)
		require.Equal(t, []any{"hello world"}, v)
	})

	t.Run("results", func(t *testing.T) {
		require.NoError(t, s.Client.MSet(bg(), "user:1", "alice", "user:2", "bob").Err())
		f := writeTemp(t, "users.py", "GB().map(lambda r: r['key'] + '=' + r['value']).run('user:*')")
		r := cli(t, cmdAt(s, "run", f)...)
		require.Equal(t, 0, r.code)
		require.Empty(t, r.stderr)
		require.True(t, strings.HasPrefix(r.stdout, "Results\n-------\n"), r.stdout)
		require.True(t, strings.HasSuffix(r.stdout, "\n\n"), r.stdout)
		require.Contains(t, r.stdout, "\tuser:1=alice\n")
		require.Contains(t, r.stdout, "\tuser:2=bob\n")
		require.Contains(t, r.stdout, "1)\t")
		require.Contains(t, r.stdout, "2)\t")
	})

	t.Run("a JSON result is indented", func(t *testing.T) {
		f := writeTemp(t, "j.py", `GB('ShardsIDReader').map(lambda x: '{"a": [1]}').run()`)
		r := cli(t, cmdAt(s, "run", f)...)
		require.Equal(t, 0, r.code)
		require.Equal(t, "Results\n-------\n1)\t{\n    \"a\": [\n        1\n    ]\n}\n\n", r.stdout)
	})

	t.Run("errors", func(t *testing.T) {
		f := writeTemp(t, "div.py", "GB('ShardsIDReader').map(lambda x: 1/0).run()")
		r := cli(t, cmdAt(s, "run", f)...)
		require.Equal(t, 1, r.code)
		require.Equal(t, "Results\n-------\n\n", r.stdout)
		require.True(t, strings.HasPrefix(r.stderr, "Errors\n------\n1)\t"), r.stderr)
		require.Contains(t, r.stderr, "ZeroDivisionError")
	})

	t.Run("command error", func(t *testing.T) {
		f := writeTemp(t, "bad.py", "this is not python(")
		r := cli(t, cmdAt(s, "run", f)...)
		require.Equal(t, 1, r.code)
		require.Empty(t, r.stdout)
		require.True(t, strings.HasPrefix(r.stderr, "failed running gear function ("), r.stderr)
		// EXTRA_ARGS go as they are: the server refuses an unknown one.
		r = cli(t, cmdAt(s, "run", writeTemp(t, "ok.py", "pass"), "NOSUCHARG")...)
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "NOSUCHARG")
	})

	t.Run("stdin", func(t *testing.T) {
		r := cliCmd{stdin: "GB('ShardsIDReader').map(lambda x: 'from stdin').run()", args: cmdAt(s, "run", "-")}.run(t)
		require.Equal(t, 0, r.code)
		require.Equal(t, "Results\n-------\n1)\tfrom stdin\n\n", r.stdout)
	})

	t.Run("unblocking", func(t *testing.T) {
		f := writeTemp(t, "later.py", "GB('ShardsIDReader').map(lambda x: 'done').run()")
		r := cli(t, cmdAt(s, "run", "--unblocking", f)...)
		require.Equal(t, 0, r.code)
		id := strings.TrimSpace(r.stdout)
		require.True(t, strings.HasPrefix(id, shardZero+"-"), r.stdout)
		v, err := s.Client.Do(bg(), "RG.GETRESULTSBLOCKING", id).Slice()
		require.NoError(t, err)
		require.Equal(t, []any{[]any{"done"}, []any{}}, v)
	})
}

func TestGearsCliRunJSON(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	run := func(script string, args ...string) (cliRun, map[string]any) {
		r := cli(t, cmdAt(s, "run", append([]string{"--json", writeTemp(t, "f.py", script)}, args...)...)...)
		require.Empty(t, r.stderr)
		return r, cliJSON(t, r)
	}

	r, m := run("GB('CommandReader').register(trigger='t')")
	require.Equal(t, 0, r.code)
	require.Equal(t, map[string]any{"ok": true}, m)

	r, m = run("GB('ShardsIDReader').map(lambda x: 'r').run()")
	require.Equal(t, 0, r.code)
	require.Equal(t, map[string]any{"results": []any{"r"}, "errors": []any{}}, m)

	r, m = run("GB('ShardsIDReader').map(lambda x: 1/0).run()")
	require.Equal(t, 1, r.code)
	require.Equal(t, []any{}, m["results"])
	require.Len(t, m["errors"], 1)
	require.Contains(t, m["errors"].([]any)[0], "ZeroDivisionError")

	r, m = run("this is not python(")
	require.Equal(t, 1, r.code)
	require.Len(t, m, 1)
	require.True(t, strings.HasPrefix(m["error"].(string), "failed running gear function ("), m)

	r, m = run("GB().count().run()", "--unblocking")
	require.Equal(t, 0, r.code)
	id, _ := m["execution_id"].(string)
	require.NoError(t, s.Client.Do(bg(), "RG.GETRESULTSBLOCKING", id).Err())
}

// pySessions is RG.PYDUMPSESSIONS, by session id.
func pySessions(t *testing.T, c *redis.Client) map[string]map[string]any {
	t.Helper()
	l, err := c.Do(bg(), "RG.PYDUMPSESSIONS").Slice()
	require.NoError(t, err)
	out := map[string]map[string]any{}
	for _, e := range l {
		f := regPairs(t, e, "session")
		out[f["ID"].(string)] = f
	}
	return out
}

func TestGearsCliRunSessionOptions(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	f := writeTemp(t, "t.py", "GB('CommandReader').register(trigger='t')")

	requireCliOK(t, cli(t, cmdAt(s, "run", "--id", "s1", "--description", "first", f)...))
	require.Equal(t, "first", pySessions(t, s.Client)["s1"]["sessionDescription"])

	// The same id again needs --upgrade.
	r := cli(t, cmdAt(s, "run", "--id", "s1", f)...)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "failed running gear function (")
	requireCliOK(t, cli(t, cmdAt(s, "run", "--id", "s1", "--upgrade", "--description=second", f)...))
	require.Equal(t, "second", pySessions(t, s.Client)["s1"]["sessionDescription"])

	requireCliOK(t, cli(t, cmdAt(s, "run", "--id", "s2", "--replace-with", "s1", f)...))
	sessions := pySessions(t, s.Client)
	require.Contains(t, sessions, "s2")
	require.NotContains(t, sessions, "s1")

	// The same through EXTRA_ARGS, as the Python gears-cli passes them.
	requireCliOK(t, cli(t, cmdAt(s, "run", writeTemp(t, "u.py", "GB('CommandReader').register(trigger='u')"), "ID", "s3", "DESCRIPTION", "third")...))
	require.Equal(t, "third", pySessions(t, s.Client)["s3"]["sessionDescription"])
}

func TestGearsCliWithoutServer(t *testing.T) {
	t.Parallel()
	closed := strconv.Itoa(freePort(t))
	f := writeTemp(t, "ok.py", "pass")

	t.Run("bad file", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "missing.py")
		r := cli(t, "run", "--port", closed, missing)
		require.Equal(t, 1, r.code)
		require.Empty(t, r.stdout)
		require.Equal(t, "cannot read "+missing+": no such file or directory\n", r.stderr)
		r = cli(t, "run", "--port", closed, "--requirements", missing, f)
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "cannot read "+missing)
		r = cli(t, "run", "--port", closed, t.TempDir())
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "is a directory")
	})

	t.Run("server down", func(t *testing.T) {
		for _, command := range [][]string{{"run", f}, {"install-requirements", "foo"}, {"export-requirements", "--all"}} {
			r := cli(t, append(command, "--port", closed)...)
			require.Equal(t, 1, r.code, command)
			require.True(t, strings.HasPrefix(r.stderr, "Cannot connect to Redis. Aborting ("), r.stderr)
			require.Contains(t, r.stderr, "connection refused")
		}
		r := cli(t, "run", "--json", "--port", closed, f)
		require.Equal(t, 1, r.code)
		require.Empty(t, r.stderr)
		require.Contains(t, cliJSON(t, r)["error"], "Cannot connect to Redis. Aborting (")
	})

	t.Run("usage", func(t *testing.T) {
		for _, args := range [][]string{
			{}, {"nosuch"}, {"run"}, {"run", "--nosuch", f}, {"run", "--port", "x", f},
			{"run", f, "-x"}, {"import-requirements", "--bulk-size", "0"}, {"export-requirements", "x"},
		} {
			r := cli(t, args...)
			require.Equal(t, 2, r.code, args)
			require.Empty(t, r.stdout)
			require.Contains(t, r.stderr, "Usage: gears-cli")
			require.Contains(t, r.stderr, "Error: ")
		}
		// After "--" everything is an argument.
		r := cli(t, "run", "--port", closed, "--", f, "-x")
		require.Equal(t, 1, r.code)
		require.Contains(t, r.stderr, "Cannot connect to Redis")

		for _, args := range [][]string{{"--help"}, {"run", "--help"}, {"install-requirements", "--help"},
			{"export-requirements", "--help"}, {"import-requirements", "--help"}} {
			r := cli(t, args...)
			require.Equal(t, 0, r.code)
			require.True(t, strings.HasPrefix(r.stdout, "Usage: gears-cli "), r.stdout)
		}
		r = cli(t, "--version")
		require.Equal(t, 0, r.code)
		require.True(t, strings.HasPrefix(r.stdout, "gears-cli, version "), r.stdout)
	})

	t.Run("import of missing files", func(t *testing.T) {
		missing := filepath.Join(t.TempDir(), "nosuch")
		r := cli(t, "import-requirements", "--port", closed, "--requirements-path", missing, "x.zip")
		require.Equal(t, 1, r.code)
		require.Equal(t, "File "+missing+" does not exists\n", r.stderr)
		r = cli(t, "import-requirements", "--port", closed, "--requirements-path", f, "x.zip")
		require.Equal(t, 1, r.code)
		require.Equal(t, f+" is not a directory\n", r.stderr)
		bad := writeTemp(t, "bad.zip", "not a zip")
		r = cli(t, "import-requirements", "--port", closed, "--requirements-path", filepath.Dir(bad), "bad.zip")
		require.Equal(t, 1, r.code)
		require.True(t, strings.HasPrefix(r.stderr, "Bad zip format ("), r.stderr)
	})
}

func TestGearsCliAuth(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	admin := s.NewClient(func(o *redis.Options) { o.Password = "sesame" })
	require.NoError(t, s.Client.ConfigSet(bg(), "requirepass", "sesame").Err())
	// Before the harness stops the server with its own, password-less client.
	t.Cleanup(func() {
		admin.ConfigSet(bg(), "requirepass", "")
		admin.Close()
	})
	f := writeTemp(t, "k.py", "GB('ShardsIDReader').foreach(lambda x: execute('SET', 'alice:1', 'x')).run()")

	r := cli(t, cmdAt(s, "run", f)...)
	require.Equal(t, 1, r.code)
	require.True(t, strings.HasPrefix(r.stderr, "Cannot connect to Redis. Aborting ("), r.stderr)
	r = cli(t, cmdAt(s, "run", "--password", "wrong", f)...)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "WRONGPASS")

	ok := func(r cliRun) {
		t.Helper()
		require.Equal(t, 0, r.code, r.stderr)
		require.True(t, strings.HasPrefix(r.stdout, "Results\n-------\n1)\t"), r.stdout)
	}
	ok(cli(t, cmdAt(s, "run", "--password", "sesame", f)...))
	ok(cliCmd{env: []string{"REDISCLI_AUTH=sesame"}, args: cmdAt(s, "run", f)}.run(t))

	// An ACL user: its functions run as it, within its key patterns.
	require.NoError(t, admin.Do(bg(), "ACL", "SETUSER", "alice", "on", ">alicepw", "~alice:*", "+@all").Err())
	require.NoError(t, admin.Del(bg(), "alice:1").Err())
	ok(cli(t, cmdAt(s, "run", "--user", "alice", "--password", "alicepw", f)...))
	require.Equal(t, "x", admin.Get(bg(), "alice:1").Val())
	other := writeTemp(t, "o.py", "GB('ShardsIDReader').foreach(lambda x: execute('SET', 'bob:1', 'x')).run()")
	r = cli(t, cmdAt(s, "run", "--user", "alice", "--password", "alicepw", other)...)
	require.Equal(t, 1, r.code)
	require.NotEmpty(t, r.stderr)
	require.Zero(t, admin.Exists(bg(), "bob:1").Val())
	r = cli(t, cmdAt(s, "run", "--user", "alice", "--password", "sesame", f)...)
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "WRONGPASS")
}

func TestGearsCliRequirements(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("RequirementsWheelDir", wheelDir(t)))

	// --requirements: one requirement a line, comments and blank lines skipped.
	reqs := writeTemp(t, "requirements.txt", "# pinned\nfoo==1.0\n\n")
	requireCliOK(t, cli(t, cmdAt(s, "run", "--id", "one", "--requirements", reqs, writeTemp(t, "v.py", versionScript("v1")))...))
	require.Equal(t, "1.0", trigger(t, s.Client, "v1"))

	// EXTRA_ARGS REQUIREMENTS, and both at once.
	show := writeTemp(t, "show.py", "import foo\nGB('ShardsIDReader').map(lambda x: foo.VERSION).run()")
	r := cli(t, cmdAt(s, "run", show, "REQUIREMENTS", "foo==2.0")...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "Results\n-------\n1)\t2.0+bar1\n\n", r.stdout)
	both := writeTemp(t, "both.py", "import foo, bar\nGB('ShardsIDReader').map(lambda x: foo.VERSION + '/' + str(bar.X)).run()")
	r = cli(t, cmdAt(s, "run", both, "--requirements", writeTemp(t, "bar.txt", "bar\n"), "REQUIREMENTS", "foo==1.0")...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "Results\n-------\n1)\t1.0/1\n\n", r.stdout)

	// install-requirements keeps them on the server.
	requireCliOK(t, cli(t, cmdAt(s, "install-requirements", "bar==0.1")...))
	requireCliOK(t, cli(t, cmdAt(s, "install-requirements", "--requirements-file", reqs)...))
	r = cli(t, cmdAt(s, "install-requirements", "--json", "foo==2.0")...)
	require.Equal(t, map[string]any{"ok": true}, cliJSON(t, r))
	require.Contains(t, dumpReqs(t, s.Client), "bar==0.1")
	r = cli(t, cmdAt(s, "install-requirements", "nosuch")...)
	require.Equal(t, 1, r.code)
	require.True(t, strings.HasPrefix(r.stderr, "failed running gear function ("), r.stderr)
	require.NotContains(t, dumpReqs(t, s.Client), "nosuch")
}

// zipMember reads one file of a zip.
func zipMember(t *testing.T, path, name string) []byte {
	t.Helper()
	zr, err := zip.OpenReader(path)
	require.NoError(t, err)
	defer zr.Close()
	f, err := zr.Open(name)
	require.NoError(t, err, "%s in %s", name, path)
	defer f.Close()
	b, err := io.ReadAll(f)
	require.NoError(t, err)
	return b
}

func TestGearsCliExportImport(t *testing.T) {
	t.Parallel()
	from := startServer(t, withModuleArgs("RequirementsWheelDir", wheelDir(t)))
	requirePyOK(t, from.Client, versionScript("v2"), "ID", "two", "REQUIREMENTS", "foo==2.0")
	requirePyOK(t, from.Client, "import foo", "REQUIREMENTS", "foo==1.0")
	regs, err := from.Client.Do(bg(), "RG.DUMPREGISTRATIONS").Slice()
	require.NoError(t, err)
	require.Len(t, regs, 1)
	regID := regs[0].([]any)[1].(string)
	osName := reqField(t, dumpReqs(t, from.Client)["foo==2.0"], "CompiledOs").(string)

	// The requirements of a registration's session.
	dir := t.TempDir()
	two := filepath.Join(dir, "redisgears-requirement-v1-foo==2.0-"+osName+".zip")
	r := cli(t, cmdAt(from, "export-requirements", "--registration-id", regID, "--save-directory", dir)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "Saving exported requirement into "+two+"\n", r.stdout)
	var meta map[string]any
	require.NoError(t, json.Unmarshal(zipMember(t, two, "MetaData.json"), &meta))
	require.Equal(t, "foo==2.0", meta["Name"])
	require.Equal(t, []any{"foo-2.0-py3-none-any.whl", "bar-0.1-py3-none-any.whl"}, meta["Wheels"])
	require.NotEmpty(t, zipMember(t, two, "Data.bin"))

	r = cli(t, cmdAt(from, "export-requirements", "--requirement", "foo==2.0", "--save-directory", dir)...)
	require.Equal(t, 1, r.code)
	require.Equal(t, "File "+two+" already exists\n", r.stderr)
	r = cli(t, cmdAt(from, "export-requirements", "--registration-id", "nosuch")...)
	require.Equal(t, 1, r.code)
	require.Equal(t, "No such registration nosuch\n", r.stderr)
	r = cli(t, cmdAt(from, "export-requirements", "--requirement", "nosuch", "--save-directory", dir)...)
	require.Equal(t, 1, r.code)
	require.True(t, strings.HasPrefix(r.stderr, "failed exporting requirement ("), r.stderr)

	// --all, with --json; --output-prefix.
	all := t.TempDir()
	r = cli(t, cmdAt(from, "export-requirements", "--all", "--json", "--save-directory", all)...)
	require.Equal(t, 0, r.code, r.stderr)
	exported := cliJSON(t, r)["exported"].([]any)
	require.Len(t, exported, 2)
	prefixed := t.TempDir()
	r = cli(t, cmdAt(from, "export-requirements", "--requirement", "foo==1.0", "--output-prefix", "mine", "--save-directory", prefixed)...)
	require.Equal(t, 0, r.code, r.stderr)
	mine := filepath.Join(prefixed, "mine-"+osName+".zip")
	require.FileExists(t, mine)

	// Another server, with its own store and no wheels, takes them.
	to := startServer(t, withOwnPythonHome())
	r = cli(t, cmdAt(to, "export-requirements", "--all")...)
	require.Equal(t, 1, r.code)
	require.Equal(t, "No requirements to export\n", r.stderr)

	r = cli(t, cmdAt(to, "import-requirements", "--requirements-path", dir, filepath.Base(two))...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, "Requirement "+two+" imported successfully\n", r.stdout)
	require.Contains(t, dumpReqs(t, to.Client), "foo==2.0")
	requirePyOK(t, to.Client, versionScript("v"), "REQUIREMENTS", "foo==2.0")
	assert.Equal(t, "2.0+bar1", trigger(t, to.Client, "v"))

	// A zip of requirement zips: all of them, small bulks.
	bundle := filepath.Join(t.TempDir(), "bundle.zip")
	b, err := os.ReadFile(mine)
	require.NoError(t, err)
	writeZipFile(t, bundle, map[string][]byte{filepath.Base(mine): b})
	r = cli(t, cmdAt(to, "import-requirements", "--json", "--bulk-size", "1", "--requirements-path", bundle)...)
	require.Equal(t, 0, r.code, r.stderr)
	require.Equal(t, map[string]any{"imported": []any{filepath.Base(mine)}}, cliJSON(t, r))
	require.Contains(t, dumpReqs(t, to.Client), "foo==1.0")

	r = cli(t, cmdAt(to, "import-requirements", "--requirements-path", dir)...)
	require.Equal(t, 0, r.code)
	require.Equal(t, "Warning: no requirements specified\n", r.stderr)
	garbage := filepath.Join(t.TempDir(), "garbage.zip")
	writeZipFile(t, garbage, map[string][]byte{"MetaData.json": []byte("{}"), "Data.bin": []byte("garbage")})
	r = cli(t, cmdAt(to, "import-requirements", "--requirements-path", garbage)...)
	require.Equal(t, 1, r.code)
	require.True(t, strings.HasPrefix(r.stderr, "failed import requirement ("), r.stderr)
}

func writeZipFile(t *testing.T, path string, members map[string][]byte) {
	t.Helper()
	f, err := os.Create(path)
	require.NoError(t, err)
	zw := zip.NewWriter(f)
	for name, b := range members {
		w, err := zw.Create(name)
		require.NoError(t, err)
		_, err = w.Write(b)
		require.NoError(t, err)
	}
	require.NoError(t, zw.Close())
	require.NoError(t, f.Close())
}

// redisHasTLS tells whether redis-server was built with TLS: with TLS and
// no port at all it refuses to start for that reason only.
func redisHasTLS(t *testing.T) bool {
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, "redis-server", "--port", "0", "--tls-port", "0", "--save", "")
	cmd.Dir = t.TempDir()
	out, _ := cmd.CombinedOutput()
	return strings.Contains(string(out), "not listen anywhere")
}

// tlsFiles writes a CA, a server certificate for 127.0.0.1 and a client
// certificate, all signed by the CA, as PEM files.
func tlsFiles(t *testing.T) (dir string) {
	dir = t.TempDir()
	caKey, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	ca := &x509.Certificate{
		SerialNumber: big.NewInt(1), Subject: pkix.Name{CommonName: "gears test CA"},
		NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
		IsCA: true, BasicConstraintsValid: true, KeyUsage: x509.KeyUsageCertSign,
	}
	caDER, err := x509.CreateCertificate(rand.Reader, ca, ca, &caKey.PublicKey, caKey)
	require.NoError(t, err)
	writePEM(t, filepath.Join(dir, "ca.crt"), "CERTIFICATE", caDER)
	for i, name := range []string{"server", "client"} {
		key, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
		require.NoError(t, err)
		tmpl := &x509.Certificate{
			SerialNumber: big.NewInt(int64(i + 2)), Subject: pkix.Name{CommonName: name},
			NotBefore: time.Now().Add(-time.Hour), NotAfter: time.Now().Add(24 * time.Hour),
			KeyUsage:    x509.KeyUsageDigitalSignature,
			ExtKeyUsage: []x509.ExtKeyUsage{x509.ExtKeyUsageServerAuth, x509.ExtKeyUsageClientAuth},
			IPAddresses: []net.IP{net.ParseIP("127.0.0.1")}, DNSNames: []string{"localhost"},
		}
		der, err := x509.CreateCertificate(rand.Reader, tmpl, ca, &key.PublicKey, caKey)
		require.NoError(t, err)
		keyDER, err := x509.MarshalPKCS8PrivateKey(key)
		require.NoError(t, err)
		writePEM(t, filepath.Join(dir, name+".crt"), "CERTIFICATE", der)
		writePEM(t, filepath.Join(dir, name+".key"), "PRIVATE KEY", keyDER)
	}
	return dir
}

func writePEM(t *testing.T, path, kind string, der []byte) {
	require.NoError(t, os.WriteFile(path, pem.EncodeToMemory(&pem.Block{Type: kind, Bytes: der}), 0o600))
}

func TestGearsCliTLS(t *testing.T) {
	t.Parallel()
	if !redisHasTLS(t) {
		t.Skip("redis-server has no TLS")
	}
	certs := tlsFiles(t)
	file := func(name string) string { return filepath.Join(certs, name) }
	tlsPort := strconv.Itoa(freePort(t))
	startServer(t, withServerArgs("--tls-port", tlsPort, "--tls-cert-file", file("server.crt"), "--tls-key-file", file("server.key"),
		"--tls-ca-cert-file", file("ca.crt"), "--tls-auth-clients", "yes"))
	f := writeTemp(t, "t.py", "log('over TLS')")
	base := []string{"--host", "127.0.0.1", "--port", tlsPort, "--cert", file("client.crt"), "--key", file("client.key")}
	run := func(args ...string) cliRun {
		return cli(t, append(append([]string{"run"}, base...), append(args, f)...)...)
	}

	requireCliOK(t, run("--tls", "--cacert", file("ca.crt")))
	requireCliOK(t, run("--insecure"))
	requireCliOK(t, run("--ssl", "true", "--ssl-ca-certs", file("ca.crt"), "--sni", "localhost"))
	r := run("--tls")
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "Cannot connect to Redis. Aborting (")
	require.Contains(t, r.stderr, "certificate")
	r = run("--cacert", file("ca.crt"), "--sni", "elsewhere")
	require.Equal(t, 1, r.code)
	r = run("--cacert", file("nosuch.crt"))
	require.Equal(t, 1, r.code)
	require.Contains(t, r.stderr, "cannot read "+file("nosuch.crt"))
	// Without a client certificate the server refuses.
	r = cli(t, "run", "--host", "127.0.0.1", "--port", tlsPort, "--cacert", file("ca.crt"), f)
	require.Equal(t, 1, r.code)
}
