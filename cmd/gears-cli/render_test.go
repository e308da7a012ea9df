package main

import (
	"bytes"
	"encoding/json"
	"errors"
	"testing"

	"github.com/stretchr/testify/require"
)

func testPrinter(jsonOut bool) (*printer, *bytes.Buffer, *bytes.Buffer) {
	var out, errb bytes.Buffer
	a := &app{stdout: &out, stderr: &errb}
	return a.printer(jsonOut), &out, &errb
}

func TestClassifyReply(t *testing.T) {
	require.Equal(t, replyOK, classifyReply("OK").kind)
	r := classifyReply("0000000000000000000000000000000000000000-1")
	require.Equal(t, replyExecutionID, r.kind)
	require.Equal(t, "0000000000000000000000000000000000000000-1", r.executionID)
	r = classifyReply([]any{[]any{"a"}, []any{}})
	require.Equal(t, replyResults, r.kind)
	require.Equal(t, []any{"a"}, r.results)
	require.Equal(t, replyOther, classifyReply(int64(3)).kind)
	require.Equal(t, replyOther, classifyReply(nil).kind)
}

func TestReplyError(t *testing.T) {
	require.NoError(t, replyError([]any{[]any{}, []any{}}))
	require.NoError(t, replyError([]any{}))
	// go-redis puts error replies inside an array as error values.
	shards := []any{errors.New("ERR a"), errors.New("ERR b")}
	require.EqualError(t, replyError(shards), "ERR a; ERR b")
}

func TestResultsText(t *testing.T) {
	p, out, errb := testPrinter(false)
	code := p.showRunReply(runReply{kind: replyResults, results: []any{"user:1=alice", `{"b":1,"a":[2]}`, int64(7)}, errors: []any{}})
	require.Equal(t, exitOK, code)
	require.Equal(t, "Results\n-------\n1)\tuser:1=alice\n2)\t{\n    \"b\": 1,\n    \"a\": [\n        2\n    ]\n}\n3)\t7\n\n", out.String())
	require.Empty(t, errb.String())
}

func TestErrorsGoToStderr(t *testing.T) {
	p, out, errb := testPrinter(false)
	code := p.showRunReply(runReply{kind: replyResults, results: []any{}, errors: []any{"boom"}})
	require.Equal(t, exitFailure, code)
	require.Equal(t, "Results\n-------\n\n", out.String())
	require.Equal(t, "Errors\n------\n1)\tboom\n", errb.String())
}

func TestJSONOutput(t *testing.T) {
	for _, tc := range []struct {
		reply runReply
		want  string
		code  int
	}{
		{runReply{kind: replyOK}, `{"ok":true}`, exitOK},
		{runReply{kind: replyExecutionID, executionID: "x-1"}, `{"execution_id":"x-1"}`, exitOK},
		{runReply{kind: replyResults, results: []any{"<a>", int64(1), []any{"n"}}, errors: []any{}}, `{"errors":[],"results":["<a>",1,["n"]]}`, exitOK},
		{runReply{kind: replyResults, results: []any{}, errors: []any{"e"}}, `{"errors":["e"],"results":[]}`, exitFailure},
	} {
		p, out, errb := testPrinter(true)
		require.Equal(t, tc.code, p.showRunReply(tc.reply))
		require.JSONEq(t, tc.want, out.String())
		require.Contains(t, out.String(), tc.want, "compact, no HTML escaping")
		require.Empty(t, errb.String())
	}

	p, out, _ := testPrinter(true)
	p.extra["imported"] = &[]string{"a.zip"}
	require.Equal(t, exitFailure, p.fail("failed import requirement (x)"))
	var got map[string]any
	require.NoError(t, json.Unmarshal(out.Bytes(), &got))
	require.Equal(t, map[string]any{"error": "failed import requirement (x)", "imported": []any{"a.zip"}}, got)
}

func TestColorsOnlyWhenAsked(t *testing.T) {
	require.Equal(t, "x", paint(false, red, "x"))
	require.Equal(t, "\033[31;1mx\033[0m", paint(true, red, "x"))
	env := func(k string) string { return map[string]string{"NO_COLOR": "1"}[k] }
	require.False(t, wantColor(nil, env))
}

func TestFormatValue(t *testing.T) {
	require.Equal(t, "(nil)", formatValue(nil))
	require.Equal(t, "[1, 2", formatValue("[1, 2"), "not JSON: as it is")
	require.Equal(t, "3", formatValue("3"))
	require.Equal(t, "[\n    \"a\",\n    1\n]", formatValue([]any{"a", int64(1)}))
}
