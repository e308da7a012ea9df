// Command gears-cli sends Python gear functions and requirements to a Redis
// server running gears (or RedisGears 1.2), as RedisGears' Python gears-cli
// does, with the same commands and options; see docs/gears-cli.md.
//
//	gears-cli run [OPTIONS] FILEPATH [EXTRA_ARGS]...
//	gears-cli install-requirements [OPTIONS] [REQUIREMENTS]...
//	gears-cli export-requirements [OPTIONS]
//	gears-cli import-requirements [OPTIONS] [REQUIREMENTS]...
package main

import (
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

const prog = "gears-cli"

// version is set at link time (-ldflags "-X main.version=..."); otherwise
// it comes from the build information.
var version string

// Exit codes.
const (
	exitOK      = 0
	exitFailure = 1
	exitUsage   = 2
)

// app is one invocation: its streams and environment.
type app struct {
	stdin              io.Reader
	stdout, stderr     io.Writer
	getenv             func(string) string
	colorOut, colorErr bool // paint stdout, stderr
}

type command struct {
	name     string
	summary  string   // one line, in the tool's help
	about    string   // the command's help text
	args     []string // required positional arguments
	variadic string   // the trailing repeated argument, if any
	run      func(a *app, cmd *command, args []string) int
}

var commands = []*command{
	{
		name:     "run",
		summary:  "Run a gear function (RG.PYEXECUTE).",
		about:    "Run the gear function in FILEPATH ('-' reads it from stdin) with RG.PYEXECUTE.\nEXTRA_ARGS are passed to RG.PYEXECUTE as they are (e.g. REQUIREMENTS foo).",
		args:     []string{"FILEPATH"},
		variadic: "EXTRA_ARGS",
		run:      runCmd,
	},
	{
		name:     "install-requirements",
		summary:  "Install requirements on the server.",
		about:    "Install REQUIREMENTS (and those of --requirements-file) on the server.",
		variadic: "REQUIREMENTS",
		run:      installRequirementsCmd,
	},
	{
		name:    "export-requirements",
		summary: "Export installed requirements into zip files.",
		about:   "Save installed requirements as zip files that import-requirements installs\non another server without network access.",
		run:     exportRequirementsCmd,
	},
	{
		name:     "import-requirements",
		summary:  "Import requirements exported by export-requirements.",
		about:    "Import the requirement zip files REQUIREMENTS found in --requirements-path:\na directory, or a zip file holding requirement zip files.",
		variadic: "REQUIREMENTS",
		run:      importRequirementsCmd,
	},
}

func main() {
	a := &app{stdin: os.Stdin, stdout: os.Stdout, stderr: os.Stderr, getenv: os.Getenv}
	a.colorOut = wantColor(os.Stdout, os.Getenv)
	a.colorErr = wantColor(os.Stderr, os.Getenv)
	os.Exit(a.main(os.Args[1:]))
}

// wantColor: only on a terminal, and never with NO_COLOR (no-color.org).
func wantColor(f *os.File, getenv func(string) string) bool {
	if getenv("NO_COLOR") != "" || getenv("TERM") == "dumb" {
		return false
	}
	st, err := f.Stat()
	return err == nil && st.Mode()&os.ModeCharDevice != 0
}

func (a *app) main(args []string) int {
	top := []option{
		{names: []string{"--version"}, help: "Show the version and exit.", set: func(string) error { return errVersion }},
		helpOpt(),
	}
	// Options before the command are the tool's own.
	n := 0
	for n < len(args) && len(args[n]) > 1 && args[n][0] == '-' && args[n] != "--" {
		n++
	}
	if _, err := parseArgs(top, args[:n]); err != nil {
		switch err {
		case errHelp:
			a.toolHelp(a.stdout, top)
			return exitOK
		case errVersion:
			fmt.Fprintf(a.stdout, "%s, version %s\n", prog, versionString())
			return exitOK
		}
		return a.toolUsageError(err.Error())
	}
	rest := args[n:]
	if len(rest) > 0 && rest[0] == "--" {
		rest = rest[1:]
	}
	if len(rest) == 0 {
		return a.toolUsageError("Missing command.")
	}
	for _, c := range commands {
		if c.name == rest[0] {
			return c.run(a, c, rest[1:])
		}
	}
	return a.toolUsageError(fmt.Sprintf("No such command '%s'.", rest[0]))
}

func (a *app) toolHelp(w io.Writer, top []option) {
	fmt.Fprintf(w, "Usage: %s [OPTIONS] COMMAND [ARGS]...\n\n", prog)
	fmt.Fprintf(w, "  Run gear functions and move requirements between servers running gears.\n\n")
	writeOptions(w, top)
	fmt.Fprintln(w, "\nCommands:")
	for _, c := range commands {
		fmt.Fprintf(w, "  %-22s%s\n", c.name, c.summary)
	}
	fmt.Fprintf(w, "\nRun '%s COMMAND --help' for a command's options.\n", prog)
}

func (a *app) toolUsageError(msg string) int {
	fmt.Fprintf(a.stderr, "Usage: %s [OPTIONS] COMMAND [ARGS]...\nTry '%s --help' for help.\n\nError: %s\n", prog, prog, msg)
	return exitUsage
}

func (c *command) usage() string {
	u := fmt.Sprintf("Usage: %s %s [OPTIONS]", prog, c.name)
	for _, a := range c.args {
		u += " " + a
	}
	if c.variadic != "" {
		u += " [" + c.variadic + "]..."
	}
	return u
}

// parse applies opts to args, then checks them with validate. When ok is
// false the command ends with code (help was printed, or a usage error).
func (a *app) parse(c *command, opts []option, args []string, validate func() error) (positional []string, code int, ok bool) {
	opts = append(opts, helpOpt())
	positional, err := parseArgs(opts, args)
	if err == errHelp {
		fmt.Fprintf(a.stdout, "%s\n\n", c.usage())
		for _, line := range strings.Split(c.about, "\n") {
			fmt.Fprintf(a.stdout, "  %s\n", line)
		}
		fmt.Fprintln(a.stdout)
		writeOptions(a.stdout, opts)
		return nil, exitOK, false
	}
	if err == nil {
		err = checkArgCount(c, positional)
	}
	if err == nil && validate != nil {
		err = validate()
	}
	if err != nil {
		fmt.Fprintf(a.stderr, "%s\nTry '%s %s --help' for help.\n\nError: %s\n", c.usage(), prog, c.name, err)
		return nil, exitUsage, false
	}
	return positional, exitOK, true
}

func checkArgCount(c *command, positional []string) error {
	if len(positional) < len(c.args) {
		return usagef("Missing argument '%s'.", c.args[len(positional)])
	}
	if c.variadic == "" && len(positional) > len(c.args) {
		return usagef("Got unexpected extra argument (%s)", strings.Join(positional[len(c.args):], " "))
	}
	return nil
}

func versionString() string {
	if version != "" {
		return version
	}
	bi, ok := debug.ReadBuildInfo()
	if !ok {
		return "unknown"
	}
	if v := bi.Main.Version; v != "" && v != "(devel)" {
		return v
	}
	rev, dirty := "", false
	for _, s := range bi.Settings {
		switch s.Key {
		case "vcs.revision":
			rev = s.Value
		case "vcs.modified":
			dirty = s.Value == "true"
		}
	}
	if rev == "" {
		return "devel"
	}
	if len(rev) > 12 {
		rev = rev[:12]
	}
	if dirty {
		rev += "-dirty"
	}
	return "devel-" + rev
}
