package main

import (
	"strings"
	"testing"

	"github.com/stretchr/testify/require"
)

func TestPyexecuteArgs(t *testing.T) {
	o := runOpts{id: "s1", description: "d", upgrade: true, replaceWith: "old", unblocking: true}
	got := pyexecuteArgs("GB().run()", &o, []string{"FORCE_REINSTALL_REQUIREMENTS"}, []string{"foo==1.0"})
	require.Equal(t, []any{"RG.PYEXECUTE", "GB().run()", "UNBLOCKING", "ID", "s1", "DESCRIPTION", "d",
		"UPGRADE", "REPLACE_WITH", "old", "FORCE_REINSTALL_REQUIREMENTS", "REQUIREMENTS", "foo==1.0"}, got)

	// File requirements join those already given in EXTRA_ARGS.
	got = pyexecuteArgs("s", &runOpts{}, []string{"requirements", "bar"}, []string{"foo"})
	require.Equal(t, []any{"RG.PYEXECUTE", "s", "requirements", "bar", "foo"}, got)
	require.Equal(t, []any{"RG.PYEXECUTE", "s"}, pyexecuteArgs("s", &runOpts{}, nil, nil))
}

func TestHasRequirementsKeyword(t *testing.T) {
	require.True(t, hasRequirementsKeyword([]string{"ID", "x", "REQUIREMENTS", "a"}))
	require.False(t, hasRequirementsKeyword([]string{"DESCRIPTION", "REQUIREMENTS"}), "a description's text")
	require.False(t, hasRequirementsKeyword(nil))
}

func TestReadScript(t *testing.T) {
	a := &app{stdin: strings.NewReader("GB().run()")}
	s, err := a.readScript("-")
	require.NoError(t, err)
	require.Equal(t, "GB().run()", s)

	_, err = a.readScript(t.TempDir() + "/missing.py")
	require.ErrorContains(t, err, "missing.py: no such file or directory")
	require.True(t, strings.HasPrefix(err.Error(), "cannot read "))
}
