package main

import (
	"encoding/json"
	"errors"
	"os"
	"runtime"
	"strings"
	"sync"

	"gears/reqs"
	"gears/session"
)

// REQUIREMENTS: pip resolves and downloads wheels on a Python thread while
// the client is blocked; gears unpacks each wheel once into the store (see
// package reqs) and puts the session's requirements on its sys.path only.

const errSatisfy = "Could not satisfy requirements (look at redis log file for more information)"

// installing serializes installs, so two sessions asking for one new
// requirement download it once.
var installing sync.Mutex

// ensureRequirements returns the requirements names resolve to, installing
// those not recorded yet (all of them when force). It runs on a locked
// Python thread, never the Redis main thread. Nothing is recorded unless
// every requirement could be installed.
func ensureRequirements(names []string, force bool) ([]*reqs.Requirement, error) {
	installing.Lock()
	defer installing.Unlock()
	out := make([]*reqs.Requirement, len(names))
	var missing []string
	for i, name := range names {
		if r, ok := g.reqs.Get(name); ok && !force && r.Installed() {
			out[i] = r
		} else {
			missing = append(missing, name)
		}
	}
	if len(missing) == 0 {
		return out, nil
	}
	var pipLog string
	fail := func(err error) ([]*reqs.Requirement, error) {
		logf("warning", "gears: could not install requirements "+strings.Join(missing, " ")+": "+err.Error()+
			" (gears installs wheels only: for a package published as source only, build its wheel with `pip wheel` and put it in RequirementsWheelDir)\n"+pipLog)
		return nil, errors.New(errSatisfy)
	}
	tmp, err := g.reqs.TempDir()
	if err != nil {
		return fail(err)
	}
	defer os.RemoveAll(tmp)
	src := reqs.Sources{WheelDir: g.cfg.RequirementsWheelDir(), IndexURL: g.cfg.RequirementsIndexURL(),
		Timeout: g.cfg.PythonInstallReqMaxIdleTime()}
	resolved, pipLog, err := reqs.Download(g.pipDir, src, missing, tmp)
	if err != nil {
		return fail(err)
	}
	dists := make([][]*reqs.Dist, len(resolved))
	for i, r := range resolved {
		for _, w := range r.Wheels {
			d, err := g.reqs.AddWheelFile(w)
			if err != nil {
				return fail(err)
			}
			dists[i] = append(dists[i], d)
		}
	}
	byName := map[string]*reqs.Requirement{}
	for i, r := range resolved {
		req := g.reqs.Put(r.Name, dists[i])
		byName[r.Name] = req
		replicateRequirement(req)
	}
	for i, name := range names {
		if out[i] == nil {
			out[i] = byName[name]
		}
	}
	logf("verbose", "gears: "+pipLog)
	saveSnapshot()
	return out, nil
}

// useRequirements gives sess its requirements, counted as used until it ends.
func useRequirements(sess *session.Session, list []*reqs.Requirement) {
	sess.Requirements = list
	for _, r := range list {
		g.reqs.Use(r)
	}
	sess.OnEnd(func() {
		for _, r := range list {
			g.reqs.Unuse(r)
		}
	})
}

// requirementsByName finds a saved session's requirements.
func requirementsByName(names []string) ([]*reqs.Requirement, error) {
	out := make([]*reqs.Requirement, 0, len(names))
	for _, n := range names {
		r, ok := g.reqs.Get(n)
		if !ok {
			return nil, errors.New("requirement " + n + " is not installed")
		}
		out = append(out, r)
	}
	return out, nil
}

// sysPathCode puts a session's requirement directories first on sys.path.
func sysPathCode(list []*reqs.Requirement) string {
	var dirs []string
	for _, r := range list {
		dirs = append(dirs, r.Paths()...)
	}
	js, _ := json.Marshal(dirs) // a JSON list of strings is a Python literal
	// New entries get new finders: no importlib.invalidate_caches(), which
	// would import importlib.metadata (tens of ms). In IsolationMode shared
	// sys.path is everyone's: add each directory once.
	return "import sys\nsys.path[0:0] = [d for d in " + string(js) + " if d not in sys.path]\n"
}

// replicateRequirement sends an installed requirement, wheels included, to
// replicas and the AOF, ahead of the registrations that need it.
func replicateRequirement(r *reqs.Requirement) {
	blob, err := r.Marshal()
	if err != nil {
		logf("warning", "gears: requirement "+r.Name+" cannot be replicated: "+err.Error())
		return
	}
	replicate("RG.INNERIMPORTREQ", string(blob))
}

// compiledOS names the platform wheels were chosen for.
func compiledOS() string {
	arch := map[string]string{"amd64": "x86_64", "arm64": "aarch64"}[runtime.GOARCH]
	if arch == "" {
		arch = runtime.GOARCH
	}
	return runtime.GOOS + "-" + arch
}

// writeRequirement is RedisGears' 18-field requirement entry.
func writeRequirement(c Ctx, r *reqs.Requirement) {
	yesNo := func(b bool) string {
		if b {
			return "yes"
		}
		return "no"
	}
	installed := r.Installed()
	c.Array(18)
	c.Bulk("GearReqVersion")
	c.Int(int64(r.Version))
	c.Bulk("Name")
	c.Bulk(r.Name)
	c.Bulk("IsDownloaded")
	c.Bulk(yesNo(installed))
	c.Bulk("IsInstalled")
	c.Bulk(yesNo(installed))
	c.Bulk("CompiledOs")
	c.Bulk(compiledOS())
	c.Bulk("Wheels")
	c.Array(len(r.Dists))
	for _, d := range r.Dists {
		c.Bulk(d.File)
	}
	c.Bulk("Path")
	if len(r.Dists) > 0 {
		c.Bulk(r.Dists[0].Dir)
	} else {
		c.Bulk("")
	}
	c.Bulk("RefCount")
	c.Int(int64(g.reqs.Refs(r)))
	c.Bulk("IsInReqDictionary")
	c.Bulk(yesNo(g.reqs.InDictionary(r)))
}

// RG.PYDUMPREQS
func cmdPyDumpReqs(c Ctx, argv []string) {
	list := g.reqs.List()
	c.Array(len(list))
	for _, r := range list {
		writeRequirement(c, r)
	}
}

// exportChunk bounds each bulk string of RG.PYEXPORTREQ, as RedisGears does.
const exportChunk = 10 << 20

// RG.PYEXPORTREQ <name>: [metadata, [chunks]], the chunks together being a
// blob RG.PYIMPORTREQ takes on another server, with no network.
func cmdPyExportReq(c Ctx, argv []string) {
	if len(argv) != 2 {
		c.WrongArity()
		return
	}
	r, ok := g.reqs.Get(argv[1])
	if !ok {
		c.Error("requirement does not exists")
		return
	}
	blob, err := r.Marshal()
	if err != nil {
		c.Error(err.Error())
		return
	}
	c.Array(2)
	writeRequirement(c, r)
	c.Array((len(blob) + exportChunk - 1) / exportChunk)
	for len(blob) > 0 {
		n := min(len(blob), exportChunk)
		c.Bulk(string(blob[:n]))
		blob = blob[n:]
	}
}

// RG.PYIMPORTREQ <chunk> [chunk ...]
func cmdPyImportReq(c Ctx, argv []string) {
	if len(argv) < 2 {
		c.WrongArity()
		return
	}
	r, err := importRequirement(strings.Join(argv[1:], ""))
	if err != nil {
		c.Error(err.Error())
		return
	}
	replicateRequirement(r)
	c.Bulk("OK")
}

// RG.INNERIMPORTREQ <blob>: a requirement installed on the master (or in
// the AOF).
func cmdInnerImportReq(c Ctx, argv []string) {
	if len(argv) != 2 {
		c.WrongArity()
		return
	}
	if _, err := importRequirement(argv[1]); err != nil {
		c.Error(err.Error())
		return
	}
	c.OK()
}

// importRequirement installs a requirement blob; unpacking wheels takes
// milliseconds, so it runs on the main thread like RG.INNERREGISTER.
func importRequirement(blob string) (*reqs.Requirement, error) {
	r, err := g.reqs.Import([]byte(blob))
	if err != nil {
		if !errors.Is(err, reqs.ErrBadBlob) {
			logf("warning", "gears: requirement import failed: "+err.Error())
		}
		return nil, err
	}
	saveSnapshot()
	return r, nil
}
