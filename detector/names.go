package detector

// names interns the contributor values (identity ARNs, user agents, error
// codes) that series remember for their baseline contributors and minutes
// keep for their insights: thousands of series share a handful of them, and
// series and minutes then hold 4-byte IDs instead of 16-byte string headers.
// ID 0 is "". IDs are never observable: what the detector does with them
// only depends on their equality, and whatever leaves it is the string.
// sweep frees the values nothing refers to any more, so that rotating
// session names do not pile up.
type names struct {
	ids   map[string]uint32
	strs  []string // by ID
	free  []uint32 // IDs of swept values, reused first
	swept int      // live values after the last sweep
}

func newNames() names { return names{ids: map[string]uint32{"": 0}, strs: []string{""}} }

// id returns the ID of v, interning it when new.
func (n *names) id(v string) uint32 {
	if i, ok := n.ids[v]; ok {
		return i
	}
	var i uint32
	if k := len(n.free); k > 0 {
		i = n.free[k-1]
		n.free = n.free[:k-1]
		n.strs[i] = v
	} else {
		i = uint32(len(n.strs))
		n.strs = append(n.strs, v)
	}
	n.ids[v] = i
	return i
}

func (n *names) str(i uint32) string { return n.strs[i] }

// due reports whether enough values were interned since the last sweep to
// make one worthwhile: the table has doubled.
func (n *names) due() bool { return len(n.ids) > 2*max(n.swept, 64) }

// sweep frees every value whose ID live does not report; live must call
// mark for each ID still in use.
func (n *names) sweep(live func(mark func(uint32))) {
	used := make([]bool, len(n.strs))
	used[0] = true
	live(func(i uint32) { used[i] = true })
	for i, u := range used {
		if !u && n.strs[i] != "" {
			delete(n.ids, n.strs[i])
			n.strs[i] = ""
			n.free = append(n.free, uint32(i))
		}
	}
	n.swept = len(n.ids)
}
