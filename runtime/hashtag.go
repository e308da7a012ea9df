package runtime

import "sync"

// SlotTag returns the shortest string (digits, then upper, then lower case
// letters, shortest first) whose Redis hash slot is slot. Slot 0 gives "06S",
// the tag RedisGears returns outside a cluster.
func SlotTag(slot int) string {
	tagsOnce.Do(buildTags)
	return tags[slot&(slots-1)]
}

const slots = 16384

var (
	tagsOnce sync.Once
	tags     [slots]string
)

func buildTags() {
	const alphabet = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	left := slots
	buf := make([]byte, 0, 3)
	var walk func(n int)
	walk = func(n int) {
		if left == 0 {
			return
		}
		if len(buf) == n {
			if s := KeySlot(buf); tags[s] == "" {
				tags[s] = string(buf)
				left--
			}
			return
		}
		for i := 0; i < len(alphabet); i++ {
			buf = append(buf, alphabet[i])
			walk(n)
			buf = buf[:len(buf)-1]
		}
	}
	for n := 1; n <= 3; n++ {
		walk(n)
	}
}

// KeySlot is Redis Cluster's hash slot of key (CRC16/XMODEM of the key, or
// of its {hash tag} when it has one).
func KeySlot(key []byte) int {
	for i, c := range key {
		if c == '{' {
			for j := i + 1; j < len(key); j++ {
				if key[j] == '}' {
					if j > i+1 {
						key = key[i+1 : j]
					}
					break
				}
			}
			break
		}
	}
	var crc uint16
	for _, c := range key {
		crc ^= uint16(c) << 8
		for range 8 {
			if crc&0x8000 != 0 {
				crc = crc<<1 ^ 0x1021
			} else {
				crc <<= 1
			}
		}
	}
	return int(crc) & (slots - 1)
}
