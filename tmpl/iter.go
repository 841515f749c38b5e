package tmpl

// pyIterator is Python's reversed() of a list, a tuple or a dict, which
// Jinja2's reverse filter returns for them: it can be iterated (for,
// list, join, in, ...), but it has no len() or [], no + or *, it is true
// even when empty, and it prints as <list_reverseiterator object at 0x0>
// (Python's repr, with no address). Unlike Python's, it is not used up by iterating.
type pyIterator struct {
	kind  string // Python's type name: list_reverseiterator, dict_reversekeyiterator
	items []any
}

func reversedItems(items []any) []any {
	out := make([]any, len(items))
	for i, x := range items {
		out[len(items)-1-i] = x
	}
	return out
}
