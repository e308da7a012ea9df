package main

import (
	"errors"
	"fmt"
	"io"
	"io/fs"
	"os"
	"strings"

	"github.com/redis/go-redis/v9"
)

type runOpts struct {
	conn         connOpts
	json         bool
	requirements string
	id           string
	replaceWith  string
	description  string
	upgrade      bool
	unblocking   bool
}

func runOptions(o *runOpts) []option {
	return append(connOptions(&o.conn),
		stringOpt(&o.requirements, "PATH", "requirements.txt file: its lines are sent as REQUIREMENTS", "--requirements"),
		stringOpt(&o.id, "ID", "Session id (ID)", "--id"),
		flagOpt(&o.upgrade, "Replace the session that has the same --id (UPGRADE)", "--upgrade"),
		stringOpt(&o.replaceWith, "ID", "Replace the session ID with this one (REPLACE_WITH)", "--replace-with"),
		stringOpt(&o.description, "TEXT", "Session description (DESCRIPTION)", "--description"),
		flagOpt(&o.unblocking, "Do not wait for run(): print its execution id (UNBLOCKING)", "--unblocking"),
		flagOpt(&o.json, "Print one JSON object on stdout", "--json"),
	)
}

func runCmd(a *app, cmd *command, args []string) int {
	o := runOpts{conn: newConnOpts()}
	pos, code, ok := a.parse(cmd, runOptions(&o), args, o.conn.validate)
	if !ok {
		return code
	}
	p := a.printer(o.json)
	// Local files first: a typo fails without touching the server.
	script, err := a.readScript(pos[0])
	if err != nil {
		return p.fail(err.Error())
	}
	var fileReqs []string
	if o.requirements != "" {
		if fileReqs, err = readRequirementsFile(o.requirements); err != nil {
			return p.fail(err.Error())
		}
	}
	client, code, ok := a.dial(p, &o.conn)
	if !ok {
		return code
	}
	defer client.Close()

	reply, err := client.Do(ctx, pyexecuteArgs(script, &o, pos[1:], fileReqs)...).Result()
	if errors.Is(err, redis.Nil) {
		reply, err = nil, nil
	}
	if err == nil {
		err = replyError(reply)
	}
	if err != nil {
		return p.fail(fmt.Sprintf("failed running gear function (%v)", err))
	}
	return p.showRunReply(classifyReply(reply))
}

// readScript reads the function's file, or stdin for "-".
func (a *app) readScript(path string) (string, error) {
	var b []byte
	var err error
	if path == "-" {
		b, err = io.ReadAll(a.stdin)
		path = "stdin"
	} else {
		b, err = os.ReadFile(path)
	}
	if err != nil {
		return "", readError(path, err)
	}
	return string(b), nil
}

// readError names the file once ("cannot read x.py: no such file or directory").
func readError(path string, err error) error {
	var pe *fs.PathError
	if errors.As(err, &pe) {
		err = pe.Err
	}
	return fmt.Errorf("cannot read %s: %w", path, err)
}

// pyexecuteArgs is the RG.PYEXECUTE command: the script, the options given
// as flags, EXTRA_ARGS as they are, and last the requirements of the
// --requirements file (REQUIREMENTS takes every argument after it).
func pyexecuteArgs(script string, o *runOpts, extra, fileReqs []string) []any {
	args := []any{"RG.PYEXECUTE", script}
	if o.unblocking {
		args = append(args, "UNBLOCKING")
	}
	if o.id != "" {
		args = append(args, "ID", o.id)
	}
	if o.description != "" {
		args = append(args, "DESCRIPTION", o.description)
	}
	if o.upgrade {
		args = append(args, "UPGRADE")
	}
	if o.replaceWith != "" {
		args = append(args, "REPLACE_WITH", o.replaceWith)
	}
	for _, e := range extra {
		args = append(args, e)
	}
	if len(fileReqs) > 0 {
		if !hasRequirementsKeyword(extra) {
			args = append(args, "REQUIREMENTS")
		}
		for _, r := range fileReqs {
			args = append(args, r)
		}
	}
	return args
}

// hasRequirementsKeyword tells whether EXTRA_ARGS already end with a
// REQUIREMENTS list, skipping the values of RG.PYEXECUTE's other options.
func hasRequirementsKeyword(extra []string) bool {
	for i := 0; i < len(extra); i++ {
		switch strings.ToUpper(extra[i]) {
		case "ID", "DESCRIPTION", "REPLACE_WITH":
			i++
		case "REQUIREMENTS":
			return true
		}
	}
	return false
}
