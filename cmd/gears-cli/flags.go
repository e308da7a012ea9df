package main

// A small command line parser with the conventions of the Python gears-cli
// (a click application): options may appear anywhere among the positional
// arguments until "--", an option's value is the next argument or follows
// "=", and an unknown option is a usage error.

import (
	"errors"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// usageError is a mistake on the command line: exit code 2.
type usageError struct{ msg string }

func (e usageError) Error() string { return e.msg }

func usagef(format string, args ...any) error {
	return usageError{fmt.Sprintf(format, args...)}
}

// errHelp and errVersion stop parsing: the caller prints and exits 0.
var (
	errHelp    = errors.New("help requested")
	errVersion = errors.New("version requested")
)

// option is one command line option. A flag (metavar "") takes no value.
type option struct {
	names   []string // the first one is shown in help
	metavar string
	help    string
	hidden  bool // accepted, not listed (the Python gears-cli's spellings)
	set     func(value string) error
}

func stringOpt(dst *string, metavar, help string, names ...string) option {
	return option{names: names, metavar: metavar, help: help, set: func(v string) error {
		*dst = v
		return nil
	}}
}

func intOpt(dst *int, metavar, help string, names ...string) option {
	return option{names: names, metavar: metavar, help: help, set: func(v string) error {
		n, err := strconv.Atoi(v)
		if err != nil {
			return fmt.Errorf("'%s' is not a valid integer", v)
		}
		*dst = n
		return nil
	}}
}

func flagOpt(dst *bool, help string, names ...string) option {
	return option{names: names, help: help, set: func(string) error {
		*dst = true
		return nil
	}}
}

func multiOpt(dst *[]string, metavar, help string, names ...string) option {
	return option{names: names, metavar: metavar, help: help, set: func(v string) error {
		*dst = append(*dst, v)
		return nil
	}}
}

// boolValueOpt takes a value the way click's BOOL type does (--ssl True).
func boolValueOpt(dst *bool, help string, names ...string) option {
	return option{names: names, metavar: "BOOLEAN", help: help, set: func(v string) error {
		b, err := parseBool(v)
		if err == nil {
			*dst = b
		}
		return err
	}}
}

func parseBool(v string) (bool, error) {
	switch strings.ToLower(strings.TrimSpace(v)) {
	case "1", "true", "t", "yes", "y", "on":
		return true, nil
	case "0", "false", "f", "no", "n", "off":
		return false, nil
	}
	return false, fmt.Errorf("'%s' is not a valid boolean", v)
}

func helpOpt() option {
	return option{names: []string{"--help", "-h"}, help: "Show this message and exit.", set: func(string) error { return errHelp }}
}

// parseArgs applies the options found in args and returns the positional
// arguments, in order.
func parseArgs(opts []option, args []string) ([]string, error) {
	byName := map[string]*option{}
	for i := range opts {
		for _, n := range opts[i].names {
			byName[n] = &opts[i]
		}
	}
	var positional []string
	for i := 0; i < len(args); i++ {
		arg := args[i]
		if arg == "--" {
			return append(positional, args[i+1:]...), nil
		}
		// "-" alone is an argument (stdin), as is anything not starting with "-".
		if len(arg) < 2 || arg[0] != '-' {
			positional = append(positional, arg)
			continue
		}
		name, value, hasValue := arg, "", false
		if strings.HasPrefix(arg, "--") {
			name, value, hasValue = strings.Cut(arg, "=")
		}
		o := byName[name]
		if o == nil {
			return nil, usagef("No such option: %s", name)
		}
		if o.metavar == "" {
			if hasValue {
				return nil, usagef("Option '%s' does not take a value.", name)
			}
		} else if !hasValue {
			if i+1 >= len(args) {
				return nil, usagef("Option '%s' requires an argument.", name)
			}
			i++
			value = args[i]
		}
		if err := o.set(value); err != nil {
			if err == errHelp || err == errVersion {
				return nil, err
			}
			return nil, usagef("Invalid value for '%s': %v.", name, err)
		}
	}
	return positional, nil
}

// writeOptions lists opts as a help text's "Options:" section.
func writeOptions(w io.Writer, opts []option) {
	type row struct{ left, help string }
	var rows []row
	width := 0
	for _, o := range opts {
		if o.hidden {
			continue
		}
		left := strings.Join(o.names, ", ")
		if o.metavar != "" {
			left += " " + o.metavar
		}
		rows = append(rows, row{left, o.help})
		width = max(width, len(left))
	}
	fmt.Fprintln(w, "Options:")
	for _, r := range rows {
		fmt.Fprintf(w, "  %-*s  %s\n", width, r.left, r.help)
	}
}
