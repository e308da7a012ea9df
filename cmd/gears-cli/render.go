package main

import (
	"bytes"
	"encoding/json"
	"fmt"
	"io"
	"strconv"
	"strings"
)

// printer writes a command's outcome: text (results on stdout, errors on
// stderr) or, with --json, one JSON object on stdout whatever happens.
type printer struct {
	a    *app
	json bool
	// extra holds fields every JSON object of the command carries, such as
	// the files exported before a failure.
	extra map[string]any
}

func (a *app) printer(jsonOut bool) *printer {
	return &printer{a: a, json: jsonOut, extra: map[string]any{}}
}

const (
	bold  = "1"
	red   = "31;1"
	green = "32"
	cyan  = "36"
)

func paint(on bool, code, s string) string {
	if !on || s == "" {
		return s
	}
	return "\033[" + code + "m" + s + "\033[0m"
}

func (p *printer) out(code, s string) { fmt.Fprintln(p.a.stdout, paint(p.a.colorOut, code, s)) }
func (p *printer) err(code, s string) { fmt.Fprintln(p.a.stderr, paint(p.a.colorErr, code, s)) }

// fail reports a failure (exit code 1): the message on stderr, or as
// {"error": message} on stdout.
func (p *printer) fail(msg string) int {
	if p.json {
		p.emit(map[string]any{"error": msg})
	} else {
		p.err(red, msg)
	}
	return exitFailure
}

// info is progress text; JSON output carries it in extra fields instead.
func (p *printer) info(code, msg string) {
	if !p.json {
		p.out(code, msg)
	}
}

func (p *printer) warn(msg string) {
	if p.json {
		p.extra["warning"] = msg
	} else {
		p.err(bold, "Warning: "+msg)
	}
}

// emit writes obj, with the extra fields, as one line of JSON.
func (p *printer) emit(obj map[string]any) {
	for k, v := range p.extra {
		if _, ok := obj[k]; !ok {
			obj[k] = v
		}
	}
	enc := json.NewEncoder(p.a.stdout)
	enc.SetEscapeHTML(false)
	enc.Encode(obj) //nolint:errcheck // nothing to do when stdout is gone
}

type replyKind int

const (
	replyOK          replyKind = iota // the function registered or ran without run()
	replyExecutionID                  // UNBLOCKING
	replyResults                      // [results, errors] of a run()
	replyOther                        // anything else, shown as it is
)

// message is a failure worded for the user, as the Python gears-cli
// words it (capitals included).
type message string

func (m message) Error() string { return string(m) }

func msgf(format string, args ...any) error { return message(fmt.Sprintf(format, args...)) }

// runReply is what RG.PYEXECUTE replied, classified.
type runReply struct {
	kind        replyKind
	executionID string
	results     []any
	errors      []any
	other       any
}

func classifyReply(v any) runReply {
	switch r := v.(type) {
	case string:
		if r == "OK" {
			return runReply{kind: replyOK}
		}
		if r != "" {
			return runReply{kind: replyExecutionID, executionID: r}
		}
	case []any:
		if len(r) == 2 {
			res, ok1 := r[0].([]any)
			errs, ok2 := r[1].([]any)
			if ok1 && ok2 {
				return runReply{kind: replyResults, results: res, errors: errs}
			}
		}
	}
	return runReply{kind: replyOther, other: v}
}

// replyError is the failure a reply stands for, if it is one: RedisGears
// replies a list of error replies when shards failed.
func replyError(v any) error {
	switch r := v.(type) {
	case error:
		return r
	case []any:
		if len(r) == 0 {
			return nil
		}
		var msgs []string
		for _, e := range r {
			err, ok := e.(error)
			if !ok {
				return nil
			}
			msgs = append(msgs, err.Error())
		}
		return fmt.Errorf("%s", strings.Join(msgs, "; "))
	}
	return nil
}

// showRunReply prints a successful RG.PYEXECUTE reply and returns the exit
// code: 1 when the execution had errors.
func (p *printer) showRunReply(r runReply) int {
	switch r.kind {
	case replyOK:
		if p.json {
			p.emit(map[string]any{"ok": true})
		} else {
			p.out("", "OK")
		}
		return exitOK
	case replyExecutionID:
		if p.json {
			p.emit(map[string]any{"execution_id": r.executionID})
		} else {
			p.out("", r.executionID)
		}
		return exitOK
	case replyOther:
		if p.json {
			p.emit(map[string]any{"reply": jsonValue(r.other)})
		} else {
			p.out("", formatValue(r.other))
		}
		return exitOK
	}
	if p.json {
		p.emit(map[string]any{"results": jsonList(r.results), "errors": jsonList(r.errors)})
	} else {
		writeResults(p.a.stdout, p.a.colorOut, r.results)
		if len(r.errors) > 0 {
			writeErrors(p.a.stderr, p.a.colorErr, r.errors)
		}
	}
	if len(r.errors) > 0 {
		return exitFailure
	}
	return exitOK
}

// writeResults prints the Python gears-cli's listing: a header, then
// "n)<tab>result" from 1, then an empty line.
func writeResults(w io.Writer, color bool, results []any) {
	fmt.Fprintln(w, paint(color, bold, "Results"))
	fmt.Fprintln(w, paint(color, bold, "-------"))
	for i, v := range results {
		fmt.Fprintf(w, "%s\t%s\n", paint(color, bold, strconv.Itoa(i+1)+")"), formatValue(v))
	}
	fmt.Fprintln(w)
}

func writeErrors(w io.Writer, color bool, errs []any) {
	fmt.Fprintln(w, paint(color, red, "Errors"))
	fmt.Fprintln(w, paint(color, red, "------"))
	for i, v := range errs {
		fmt.Fprintln(w, paint(color, red, strconv.Itoa(i+1)+")\t"+formatValue(v)))
	}
}

// formatValue renders one reply value for people: a string holding a JSON
// object or array is indented, a list is shown as JSON.
func formatValue(v any) string {
	switch x := v.(type) {
	case string:
		return prettyJSON(x)
	case nil:
		return "(nil)"
	case error:
		return x.Error()
	case []any:
		b, err := json.MarshalIndent(jsonValue(x), "", "    ")
		if err != nil {
			return fmt.Sprint(x)
		}
		return string(b)
	}
	return fmt.Sprint(v)
}

func prettyJSON(s string) string {
	t := strings.TrimSpace(s)
	if t == "" || (t[0] != '{' && t[0] != '[') || !json.Valid([]byte(t)) {
		return s
	}
	var b bytes.Buffer
	if json.Indent(&b, []byte(t), "", "    ") != nil {
		return s
	}
	return b.String()
}

// jsonValue turns a reply value into what encoding/json writes faithfully:
// an error reply becomes its text.
func jsonValue(v any) any {
	switch x := v.(type) {
	case error:
		return x.Error()
	case []any:
		return jsonList(x)
	}
	return v
}

func jsonList(l []any) []any {
	out := make([]any, len(l))
	for i, v := range l {
		out[i] = jsonValue(v)
	}
	return out
}
