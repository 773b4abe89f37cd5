package detector

import (
	"encoding/binary"
	"slices"
)

// counts is a fixed-length array of event counts stored in the fewest bytes
// per count (1, 2 or 4) that hold the largest count it ever held: most
// series call a few times a minute, or a few hundred times an hour, and a
// ring of them is a quarter of its uint32 size. It widens itself when a count
// needs it and never narrows, so every count is exact. The zero value holds
// nothing (see ok).
type counts struct {
	b     []byte
	shift uint8 // bytes per count: 1 << shift
}

func newCounts(n int) counts { return counts{b: make([]byte, n)} }

// countsOf returns counts holding vs, allocated once at the width their
// largest needs.
func countsOf(vs []uint32) counts {
	c := counts{}
	if len(vs) > 0 {
		m := slices.Max(vs)
		for m > c.max() {
			c.shift++
		}
	}
	c.b = make([]byte, len(vs)<<c.shift)
	for i, v := range vs {
		c.set(i, v)
	}
	return c
}

// ok reports whether c has been allocated.
func (c *counts) ok() bool { return c.b != nil }

// len returns how many counts c holds.
func (c *counts) len() int { return len(c.b) >> c.shift }

// get returns count i (0 when c is not allocated).
func (c *counts) get(i int) uint32 {
	switch c.shift {
	case 0:
		if c.b == nil {
			return 0
		}
		return uint32(c.b[i])
	case 1:
		return uint32(binary.LittleEndian.Uint16(c.b[2*i:]))
	}
	return binary.LittleEndian.Uint32(c.b[4*i:])
}

// set stores count i, widening c when v does not fit.
func (c *counts) set(i int, v uint32) {
	for v > c.max() {
		c.widen()
	}
	switch c.shift {
	case 0:
		c.b[i] = byte(v)
	case 1:
		binary.LittleEndian.PutUint16(c.b[2*i:], uint16(v))
	default:
		binary.LittleEndian.PutUint32(c.b[4*i:], v)
	}
}

func (c *counts) max() uint32 {
	switch c.shift {
	case 0:
		return 1<<8 - 1
	case 1:
		return 1<<16 - 1
	}
	return 1<<32 - 1
}

func (c *counts) widen() {
	n := c.len()
	w := counts{b: make([]byte, n<<(c.shift+1)), shift: c.shift + 1}
	for i := range n {
		w.set(i, c.get(i))
	}
	*c = w
}
