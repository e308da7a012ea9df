package main

// install-requirements and export-requirements.

import (
	"fmt"
	"os"
	"path/filepath"
	"regexp"
	"slices"
	"strings"

	"github.com/redis/go-redis/v9"
)

// ---- install-requirements ----

func installRequirementsCmd(a *app, cmd *command, args []string) int {
	conn, jsonOut, file := newConnOpts(), false, ""
	opts := append(connOptions(&conn),
		stringOpt(&file, "PATH", "requirements.txt file of more requirements", "--requirements-file"),
		flagOpt(&jsonOut, "Print one JSON object on stdout", "--json"))
	reqs, code, ok := a.parse(cmd, opts, args, conn.validate)
	if !ok {
		return code
	}
	p := a.printer(jsonOut)
	if file != "" {
		more, err := readRequirementsFile(file)
		if err != nil {
			return p.fail(err.Error())
		}
		reqs = append(reqs, more...)
	}
	if len(reqs) == 0 {
		p.warn("no requirements specified")
	}
	client, code, ok := a.dial(p, &conn)
	if !ok {
		return code
	}
	defer client.Close()
	args2 := []any{"RG.PYEXECUTE", `log("installing requirements")`, "REQUIREMENTS"}
	for _, r := range reqs {
		args2 = append(args2, r)
	}
	if err := client.Do(ctx, args2...).Err(); err != nil {
		return p.fail(fmt.Sprintf("failed running gear function (%v)", err))
	}
	if p.json {
		p.emit(map[string]any{"ok": true})
	} else {
		p.out(green, "OK")
	}
	return exitOK
}

// ---- export-requirements ----

type exportOpts struct {
	conn    connOpts
	json    bool
	dir     string
	prefix  string
	regIDs  []string
	reqs    []string
	all     bool
	written []map[string]string // {"requirement", "path"} of each file saved
}

func exportRequirementsCmd(a *app, cmd *command, args []string) int {
	o := exportOpts{conn: newConnOpts(), dir: "./", written: []map[string]string{}}
	opts := append(connOptions(&o.conn),
		stringOpt(&o.dir, "DIR", "Directory for the exported files  [default: ./]", "--save-directory"),
		stringOpt(&o.prefix, "TEXT", "Name the file <prefix>-<os>.zip", "--output-prefix"),
		multiOpt(&o.regIDs, "ID", "Export the requirements of this registration's session (repeatable)", "--registration-id"),
		multiOpt(&o.reqs, "NAME", "Export this requirement (repeatable)", "--requirement"),
		flagOpt(&o.all, "Export every requirement", "--all"),
		flagOpt(&o.json, "Print one JSON object on stdout", "--json"))
	if _, code, ok := a.parse(cmd, opts, args, o.conn.validate); !ok {
		return code
	}
	p := a.printer(o.json)
	p.extra["exported"] = &o.written
	dir, err := filepath.Abs(o.dir)
	if err != nil {
		return p.fail(err.Error())
	}
	if st, err := os.Stat(dir); err != nil || !st.IsDir() {
		return p.fail(dir + " is not a directory")
	}
	client, code, ok := a.dial(p, &o.conn)
	if !ok {
		return code
	}
	defer client.Close()

	var names []string
	if o.all {
		if names, err = allRequirements(client); err != nil {
			return p.fail(err.Error())
		}
		if len(names) == 0 {
			return p.fail("No requirements to export")
		}
	} else {
		if names, err = registrationRequirements(client, o.regIDs); err != nil {
			return p.fail(err.Error())
		}
		names = append(names, o.reqs...)
	}
	if len(names) == 0 {
		p.warn("no requirements specified")
	}
	seen := map[string]bool{}
	for _, name := range names {
		if seen[name] {
			continue
		}
		seen[name] = true
		if err := o.exportOne(p, client, name, dir); err != nil {
			return p.fail(err.Error())
		}
	}
	if p.json {
		p.emit(map[string]any{})
	}
	return exitOK
}

func (o *exportOpts) exportOne(p *printer, client *redis.Client, name, dir string) error {
	reply, err := client.Do(ctx, "RG.PYEXPORTREQ", name).Slice()
	if err == nil && len(reply) != 2 {
		err = fmt.Errorf("unexpected reply %v", reply)
	}
	if err != nil {
		return fmt.Errorf("failed exporting requirement (%v)", err)
	}
	meta, err := kvMap(reply[0])
	if err != nil {
		return fmt.Errorf("failed exporting requirement (%v)", err)
	}
	parts, ok := reply[1].([]any)
	if !ok {
		return fmt.Errorf("failed exporting requirement (unexpected data %T)", reply[1])
	}
	var data []string
	for _, c := range parts {
		s, ok := c.(string)
		if !ok {
			return fmt.Errorf("failed exporting requirement (unexpected data %T)", c)
		}
		data = append(data, s)
	}
	fileName, err := exportFileName(meta, o.prefix)
	if err != nil {
		return fmt.Errorf("failed exporting requirement (%v)", err)
	}
	path := filepath.Join(dir, fileName)
	if _, err := os.Lstat(path); err == nil {
		return msgf("File %s already exists", path)
	}
	metaJSON, err := metaDataJSON(meta)
	if err != nil {
		return err
	}
	p.info(cyan, "Saving exported requirement into "+path)
	if err := writeRequirementZip(path, metaJSON, data); err != nil {
		if os.IsExist(err) {
			return msgf("File %s already exists", path)
		}
		return fmt.Errorf("cannot write %s: %v", path, err)
	}
	o.written = append(o.written, map[string]string{"requirement": name, "path": path})
	return nil
}

// allRequirements are the names of RG.PYDUMPREQS.
func allRequirements(client *redis.Client) ([]string, error) {
	list, err := client.Do(ctx, "RG.PYDUMPREQS").Slice()
	if err != nil {
		return nil, fmt.Errorf("failed listing requirements (%v)", err)
	}
	var names []string
	for _, e := range list {
		m, err := kvMap(e)
		if err != nil {
			return nil, fmt.Errorf("failed listing requirements (%v)", err)
		}
		names = append(names, fmt.Sprint(m["Name"]))
	}
	return names, nil
}

// depsName finds the requirement names in RedisGears' session description
// (element 9 of a registration), which gears leaves empty.
var depsName = regexp.MustCompile(`'name'\s*:\s*'([^']*)'`)

// registrationRequirements are the requirements of the sessions of the
// registrations ids: RG.DUMPREGISTRATIONS finds them, RG.PYDUMPSESSIONS
// lists their requirements.
func registrationRequirements(client *redis.Client, ids []string) ([]string, error) {
	if len(ids) == 0 {
		return nil, nil
	}
	regs, err := client.Do(ctx, "RG.DUMPREGISTRATIONS").Slice()
	if err != nil {
		return nil, fmt.Errorf("failed listing registrations (%v)", err)
	}
	var names []string
	for _, id := range ids {
		i := slices.IndexFunc(regs, func(r any) bool {
			l, ok := r.([]any)
			return ok && len(l) > 1 && l[1] == id
		})
		if i < 0 {
			return nil, msgf("No such registration %s", id)
		}
		if l := regs[i].([]any); len(l) > 9 {
			if pd, ok := l[9].(string); ok {
				if _, deps, ok := strings.Cut(pd, "'depsList'"); ok {
					for _, m := range depsName.FindAllStringSubmatch(deps, -1) {
						names = append(names, m[1])
					}
				}
			}
		}
	}
	sessions, err := client.Do(ctx, "RG.PYDUMPSESSIONS").Slice()
	if err != nil {
		return nil, fmt.Errorf("failed listing sessions (%v)", err)
	}
	for _, s := range sessions {
		m, err := kvMap(s)
		if err != nil {
			continue
		}
		regList, _ := m["registrations"].([]any)
		if !slices.ContainsFunc(regList, func(r any) bool { return slices.Contains(ids, fmt.Sprint(r)) }) {
			continue
		}
		reqList, _ := m["requirements"].([]any)
		for _, r := range reqList {
			if name, ok := r.(string); ok {
				names = append(names, name)
			}
		}
	}
	return names, nil
}
