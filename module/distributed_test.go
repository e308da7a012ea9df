package main

import (
	"testing"

	"github.com/stretchr/testify/assert"
	"github.com/stretchr/testify/require"
)

func TestDistMessagesRoundTrip(t *testing.T) {
	m := &distMsg{Exec: "abc-1", Seg: 2, From: 1, Shards: []string{"a", "b"}, Errors: []string{"e"}, body: []byte{0, 1, 2, 255}}
	b := m.encode(msgRecords)
	assert.Equal(t, msgRecords, b[0])
	got, err := decodeDist(b)
	require.NoError(t, err)
	assert.Equal(t, m, got)
	for _, bad := range [][]byte{nil, {msgDone}, {msgDone, 200, 0, 0, 0, '{'}} {
		_, err := decodeDist(bad)
		assert.Error(t, err, "%v", bad)
	}
}
