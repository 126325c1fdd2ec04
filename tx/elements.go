package tx

import "fmt"

// maxElements bounds the array elements, at any depth, of a body the
// reflective decoder is given. The largest legitimate body, a record batch,
// has MaxBatchRecords; the others' lists are far shorter. Without it a
// 1 MiB batch of empty records, "{}," each, decoded into hundreds of
// thousands of structs and encoded again: ~440 MB for one transaction,
// before its signature could be checked.
const maxElements = 2 * MaxBatchRecords

// checkElements refuses JSON with more than maxElements array elements,
// counting without decoding (see arrayCommas). It does not validate the
// JSON; the decoder does.
func checkElements(b []byte) error {
	if arrayCommas(b, maxElements) >= maxElements {
		return fmt.Errorf("%w: more than %d list elements", ErrTooLarge, maxElements)
	}
	return nil
}

// arrayCommas counts the commas that separate array elements in b,
// stopping at stop: a comma inside an array, outside strings. n elements
// in k non-empty arrays are separated by n - k of them.
func arrayCommas(b []byte, stop int) int {
	var stack []byte // open '[' and '{'
	n := 0
	inString, escaped := false, false
	for _, c := range b {
		switch {
		case inString:
			switch {
			case escaped:
				escaped = false
			case c == '\\':
				escaped = true
			case c == '"':
				inString = false
			}
		case c == '"':
			inString = true
		case c == '[' || c == '{':
			stack = append(stack, c)
		case c == ']' || c == '}':
			if len(stack) > 0 {
				stack = stack[:len(stack)-1]
			}
		case c == ',' && len(stack) > 0 && stack[len(stack)-1] == '[':
			if n++; n >= stop {
				return n
			}
		}
	}
	return n
}
