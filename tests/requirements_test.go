package tests

import (
	"fmt"
	"net/http"
	"net/http/httptest"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/redis/go-redis/v9"
	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"

	"gears/reqs/wheeltest"
)

// wheelDir is a directory of wheels: foo 1.0, foo 2.0 (which needs bar),
// bar 0.1, broken 1.0, which is not a zip at all, and the sdist of sdistonly.
func wheelDir(t *testing.T) string {
	t.Helper()
	dir := t.TempDir()
	for _, w := range []struct {
		name, ver, code string
		deps            []string
	}{
		{"foo", "1.0", "VERSION = '1.0'\n", nil},
		{"foo", "2.0", "import bar\nVERSION = '2.0+bar' + str(bar.X)\n", []string{"bar"}},
		{"bar", "0.1", "X = 1\n", nil},
	} {
		_, err := wheeltest.Write(dir, w.name, w.ver, map[string]string{w.name + "/__init__.py": w.code}, w.deps...)
		require.NoError(t, err)
	}
	require.NoError(t, os.WriteFile(filepath.Join(dir, wheeltest.FileName("broken", "1.0")), []byte("not a zip"), 0o644))
	// A package published only as source: gears installs wheels only.
	require.NoError(t, os.WriteFile(filepath.Join(dir, "sdistonly-1.0.tar.gz"), []byte("not built"), 0o644))
	return dir
}

// reqField reads field name of an 18-field RG.PYDUMPREQS entry.
func reqField(t *testing.T, entry any, name string) any {
	t.Helper()
	kv := entry.([]any)
	require.Len(t, kv, 18)
	for i := 0; i+1 < len(kv); i += 2 {
		if kv[i] == name {
			return kv[i+1]
		}
	}
	t.Fatalf("no field %s in %v", name, kv)
	return nil
}

// dumpReqs is RG.PYDUMPREQS by requirement name.
func dumpReqs(t *testing.T, c *redis.Client) map[string]any {
	t.Helper()
	v, err := c.Do(bg(), "RG.PYDUMPREQS").Slice()
	require.NoError(t, err)
	out := map[string]any{}
	for _, e := range v {
		out[reqField(t, e, "Name").(string)] = e
	}
	return out
}

func trigger(t *testing.T, c *redis.Client, name string) any {
	t.Helper()
	v, err := c.Do(bg(), "RG.TRIGGER", name).Slice()
	require.NoError(t, err)
	require.Len(t, v, 1)
	return v[0]
}

// versionScript registers a trigger returning the foo it imported.
func versionScript(trig string) string {
	return "import foo\nGB('CommandReader').map(lambda x: foo.VERSION).register(trigger='" + trig + "')"
}

func TestRequirementsTwoVersionsAtOnce(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("RequirementsWheelDir", wheelDir(t)))
	requirePyOK(t, s.Client, versionScript("v1"), "ID", "one", "REQUIREMENTS", "foo==1.0")
	requirePyOK(t, s.Client, versionScript("v2"), "ID", "two", "REQUIREMENTS", "foo==2.0")

	// Both sessions run at the same time, each with its own foo.
	var wg sync.WaitGroup
	for i := range 8 {
		wg.Add(1)
		go func() {
			defer wg.Done()
			want := map[string]string{"v1": "1.0", "v2": "2.0+bar1"}
			for range 20 {
				trig := []string{"v1", "v2"}[i%2]
				v, err := s.Client.Do(bg(), "RG.TRIGGER", trig).Slice()
				if assert.NoError(t, err) {
					assert.Equal(t, []any{want[trig]}, v)
				}
			}
		}()
	}
	wg.Wait()

	reqs := dumpReqs(t, s.Client)
	require.Len(t, reqs, 2)
	one, two := reqs["foo==1.0"], reqs["foo==2.0"]
	for _, e := range []any{one, two} {
		assert.Equal(t, "yes", reqField(t, e, "IsDownloaded"))
		assert.Equal(t, "yes", reqField(t, e, "IsInstalled"))
		assert.Equal(t, "yes", reqField(t, e, "IsInReqDictionary"))
		assert.Equal(t, int64(1), reqField(t, e, "GearReqVersion"))
		assert.Equal(t, int64(2), reqField(t, e, "RefCount"), "the dictionary and one session")
	}
	assert.Equal(t, []any{"foo-1.0-py3-none-any.whl"}, reqField(t, one, "Wheels"))
	assert.Equal(t, []any{"foo-2.0-py3-none-any.whl", "bar-0.1-py3-none-any.whl"}, reqField(t, two, "Wheels"),
		"the requirement's own wheel, then its dependencies")
	assert.DirExists(t, reqField(t, one, "Path").(string))

	sessions, err := s.Client.Do(bg(), "RG.PYDUMPSESSIONS", "SESSIONS", "two").Slice()
	require.NoError(t, err)
	assert.Equal(t, []any{"foo==2.0"}, sessions[0].([]any)[13])
	sessions, err = s.Client.Do(bg(), "RG.PYDUMPSESSIONS", "VERBOSE", "SESSIONS", "two").Slice()
	require.NoError(t, err)
	verbose := sessions[0].([]any)[13].([]any)
	require.Len(t, verbose, 1)
	assert.Equal(t, "foo==2.0", reqField(t, verbose[0], "Name"), "VERBOSE gives the requirement's entry")

	// A third session reuses foo==1.0 without installing it again: the
	// same directory on disk, and its metadata is there for importlib.
	v, err := pyexec(s.Client, "import foo, importlib.metadata as m\nGB('ShardsIDReader').map(lambda x: [foo.__file__, m.version('foo')]).run()",
		"REQUIREMENTS", "foo==1.0")
	require.NoError(t, err)
	res := fmt.Sprint(v)
	assert.Contains(t, res, reqField(t, one, "Path").(string))
	assert.Contains(t, res, "'1.0'")
	dists, err := filepath.Glob(filepath.Join(filepath.Dir(reqField(t, one, "Path").(string)), "foo-1.0-*"))
	require.NoError(t, err)
	assert.Len(t, dists, 1, "a wheel is unpacked once, whatever the number of sessions")

	// A session without requirements does not see them.
	requirePyErr(t, s.Client, "import foo")
}

func TestBadRequirementFailsCleanly(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("RequirementsWheelDir", wheelDir(t)))
	for _, req := range []string{"nosuch", "foo==3.0", "broken", "sdistonly", "foo==1.0 ; ;"} {
		msg := requirePyErr(t, s.Client, "pass", "REQUIREMENTS", req)
		assert.Contains(t, msg, "satisfy requirements", req)
	}
	// One bad requirement fails the whole list: nothing is recorded.
	requirePyErr(t, s.Client, "pass", "REQUIREMENTS", "foo==1.0", "nosuch")
	assert.Empty(t, dumpReqs(t, s.Client))
	assert.Contains(t, s.Log(), "nosuch", "the reason is in the log")
	assert.Contains(t, s.Log(), "pip wheel", "the log says how to install an sdist-only package")
	dists, err := filepath.Glob(filepath.Join(sharedPythonHome(t), "requirements", "dists", "broken-*"))
	require.NoError(t, err)
	assert.Empty(t, dists, "nothing half-installed")
	requireAlive(t, s)
	// An empty list is no requirement at all.
	requirePyOK(t, s.Client, "pass", "REQUIREMENTS")
}

func TestRequirementsNeedAConfiguredSource(t *testing.T) {
	t.Parallel()
	s := startServer(t)
	assert.Contains(t, requirePyErr(t, s.Client, "pass", "REQUIREMENTS", "foo"), "satisfy requirements")
	assert.Contains(t, s.Log(), "RequirementsWheelDir", "the log names the way to configure one")
	// Set at run time, it is used at once.
	require.NoError(t, s.Client.Do(bg(), "RG.CONFIGSET", "RequirementsWheelDir", wheelDir(t)).Err())
	requirePyOK(t, s.Client, "import foo", "REQUIREMENTS", "foo")
}

func TestRequirementsFromAnIndex(t *testing.T) {
	t.Parallel()
	wheels := wheelDir(t)
	// A PEP 503 "simple" index over the wheel directory.
	index := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if name, ok := strings.CutPrefix(r.URL.Path, "/simple/"); ok {
			name = strings.Trim(name, "/")
			files, _ := filepath.Glob(filepath.Join(wheels, name+"-*.whl"))
			fmt.Fprint(w, "<html><body>")
			for _, f := range files {
				fmt.Fprintf(w, "<a href=\"/files/%s\">%s</a>\n", filepath.Base(f), filepath.Base(f))
			}
			fmt.Fprint(w, "</body></html>")
			return
		}
		http.StripPrefix("/files/", http.FileServer(http.Dir(wheels))).ServeHTTP(w, r)
	}))
	defer index.Close()
	s := startServer(t, withModuleArgs("RequirementsIndexURL", index.URL+"/simple/"))
	requirePyOK(t, s.Client, versionScript("idx"), "REQUIREMENTS", "foo>1")
	assert.Equal(t, "2.0+bar1", trigger(t, s.Client, "idx"))
}

func TestRequirementsSurviveRestartWithoutTheirSource(t *testing.T) {
	for _, mode := range []string{"rdb", "aof-preamble", "aof-no-preamble", "aof-rewritten-no-preamble"} {
		t.Run(mode, func(t *testing.T) {
			t.Parallel()
			dir := t.TempDir()
			var args serverOpt = withServerArgs()
			if mode != "rdb" {
				preamble := map[bool]string{true: "yes", false: "no"}[mode == "aof-preamble"]
				args = withServerArgs("--appendonly", "yes", "--aof-use-rdb-preamble", preamble, "--appendfsync", "always")
			}
			s := startServer(t, withDir(dir), withOwnPythonHome(), args, withModuleArgs("RequirementsWheelDir", wheelDir(t)))
			requirePyOK(t, s.Client, versionScript("v"), "ID", "kept", "REQUIREMENTS", "foo==2.0")
			// A requirement no session uses any more is kept too.
			requirePyOK(t, s.Client, "import foo", "REQUIREMENTS", "foo==1.0")
			switch mode {
			case "rdb":
				require.NoError(t, s.Client.Save(bg()).Err())
			case "aof-rewritten-no-preamble": // the rewritten AOF must carry them again
				rewriteAOF(t, s)
			}
			s.Shutdown(t)
			// The data alone brings them back: no wheel directory, no store on disk.
			require.NoError(t, os.RemoveAll(filepath.Join(dir, "gears-python", "requirements")))

			s = startServer(t, withDir(dir), withOwnPythonHome(), args)
			assert.Equal(t, "2.0+bar1", trigger(t, s.Client, "v"))
			reqs := dumpReqs(t, s.Client)
			assert.Len(t, reqs, 2)
			requirePyOK(t, s.Client, "import foo\nassert foo.VERSION == '1.0'", "REQUIREMENTS", "foo==1.0")
		})
	}
}

func TestRequirementExportAndImport(t *testing.T) {
	t.Parallel()
	from := startServer(t, withModuleArgs("RequirementsWheelDir", wheelDir(t)))
	requirePyOK(t, from.Client, "import foo", "REQUIREMENTS", "foo==2.0")
	v, err := from.Client.Do(bg(), "RG.PYEXPORTREQ", "foo==2.0").Slice()
	require.NoError(t, err)
	require.Len(t, v, 2)
	assert.Equal(t, "foo==2.0", reqField(t, v[0], "Name"))
	chunks := v[1].([]any)
	require.NotEmpty(t, chunks)
	requireErrText(t, "requirement does not exists", from.Client.Do(bg(), "RG.PYEXPORTREQ", "nosuch").Err())

	// Another server, with no source and its own store, takes it as it is.
	to := startServer(t, withOwnPythonHome())
	requireErrText(t, "Failed deserialize requirement", to.Client.Do(bg(), "RG.PYIMPORTREQ", "garbage").Err())
	assert.Equal(t, "OK", to.Client.Do(bg(), append([]any{"RG.PYIMPORTREQ"}, chunks...)...).Val())
	assert.Contains(t, dumpReqs(t, to.Client), "foo==2.0")
	requirePyOK(t, to.Client, versionScript("v"), "REQUIREMENTS", "foo==2.0")
	assert.Equal(t, "2.0+bar1", trigger(t, to.Client, "v"))
}

func TestRequirementsReachReplica(t *testing.T) {
	t.Parallel()
	master := startServer(t, withServerArgs("--repl-diskless-sync-delay", "0"), withModuleArgs("RequirementsWheelDir", wheelDir(t)))
	// Installed before the replica syncs: it arrives in the RDB.
	requirePyOK(t, master.Client, versionScript("early"), "ID", "early", "REQUIREMENTS", "foo==1.0")
	replica := startServer(t, withOwnPythonHome(), withServerArgs("--replicaof", "127.0.0.1", itoa(master.Port)))
	eventually(t, 10*time.Second, func() bool {
		return infoFields(t, replica.Client, "replication")["master_link_status"] == "up"
	}, "the replica syncs")
	// Installed after: it arrives as a replicated command, ahead of its session.
	requirePyOK(t, master.Client, versionScript("late"), "ID", "late", "REQUIREMENTS", "foo==2.0")
	eventually(t, 10*time.Second, func() bool { return len(registrationIDs(t, replica)) == 2 }, "both sessions reach the replica")
	assert.Len(t, dumpReqs(t, replica.Client), 2)

	require.NoError(t, replica.Client.Do(bg(), "REPLICAOF", "NO", "ONE").Err())
	assert.Equal(t, "1.0", trigger(t, replica.Client, "early"))
	assert.Equal(t, "2.0+bar1", trigger(t, replica.Client, "late"))
}

func TestForceReinstallRequirements(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("RequirementsWheelDir", wheelDir(t)))
	requirePyOK(t, s.Client, versionScript("v"), "ID", "old", "REQUIREMENTS", "foo")
	assert.Equal(t, "2.0+bar1", trigger(t, s.Client, "v"))
	requirePyOK(t, s.Client, "import foo", "FORCE_REINSTALL_REQUIREMENTS", "REQUIREMENTS", "foo")
	e := dumpReqs(t, s.Client)["foo"]
	assert.Equal(t, int64(2), reqField(t, e, "GearReqVersion"), "installed again")
	assert.Equal(t, "2.0+bar1", trigger(t, s.Client, "v"), "the older session keeps working")
}

// In IsolationMode shared, sessions share sys.modules: requirements work,
// and the first version imported is the one every session gets (RedisGears'
// model; docs/requirements.md).
func TestRequirementsInSharedMode(t *testing.T) {
	t.Parallel()
	s := startServer(t, withModuleArgs("IsolationMode", "shared", "RequirementsWheelDir", wheelDir(t)))
	requirePyOK(t, s.Client, versionScript("v1"), "REQUIREMENTS", "foo==1.0")
	requirePyOK(t, s.Client, versionScript("v2"), "REQUIREMENTS", "foo==2.0")
	assert.Equal(t, "1.0", trigger(t, s.Client, "v1"))
	assert.Equal(t, "1.0", trigger(t, s.Client, "v2"), "one sys.modules: the first foo imported stays")
	v, err := pyexec(s.Client, "import sys\nGB('ShardsIDReader').map(lambda x: len(sys.path) - len(set(sys.path))).run()", "REQUIREMENTS", "foo==1.0")
	require.NoError(t, err)
	assert.Equal(t, []any{[]any{"0"}, []any{}}, v, "a requirement's directories are on sys.path once")
}
