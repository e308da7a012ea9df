package runtime

import (
	"testing"

	"github.com/stretchr/testify/assert"
)

func TestSlotTag(t *testing.T) {
	assert.Equal(t, "06S", SlotTag(0))
	for _, slot := range []int{0, 1, 5000, 16383} {
		tag := SlotTag(slot)
		assert.Equal(t, slot, KeySlot([]byte("x{"+tag+"}")), "tag %q", tag)
	}
}

func TestKeySlot(t *testing.T) {
	// Values from the Redis Cluster specification's examples.
	assert.Equal(t, 12739, KeySlot([]byte("123456789")))
	assert.Equal(t, KeySlot([]byte("user1000")), KeySlot([]byte("{user1000}.following")))
	assert.Equal(t, KeySlot([]byte("foo{}{bar}")), KeySlot([]byte("foo{}{bar}")))
	assert.NotEqual(t, KeySlot([]byte("bar")), KeySlot([]byte("foo{}{bar}")), "an empty {} is not a tag")
}
