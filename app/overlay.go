package app

import (
	"bytes"
	"errors"
	"slices"

	"github.com/medchain/medchain/state"
)

// overlay holds one transaction's writes over the block's delta, so that a
// transaction that fails halfway leaves nothing behind: its writes reach
// the block only through flush, after it succeeded.
type overlay struct {
	parent writer
	writes map[string][]byte // nil: deleted
}

func newOverlay(parent writer) *overlay {
	return &overlay{parent: parent, writes: map[string][]byte{}}
}

func (o *overlay) Get(key []byte) ([]byte, error) {
	if v, ok := o.writes[string(key)]; ok {
		if v == nil {
			return nil, state.ErrNotFound
		}
		return v, nil
	}
	return o.parent.Get(key)
}

func (o *overlay) Set(key, value []byte) {
	if value == nil {
		value = []byte{}
	}
	o.writes[string(key)] = bytes.Clone(value)
}

func (o *overlay) Scan(prefix []byte, fn func(key, value []byte) bool) error {
	merged := map[string][]byte{}
	if err := o.parent.Scan(prefix, func(k, v []byte) bool {
		merged[string(k)] = bytes.Clone(v)
		return true
	}); err != nil {
		return err
	}
	for k, v := range o.writes {
		if bytes.HasPrefix([]byte(k), prefix) {
			merged[k] = v
		}
	}
	keys := make([]string, 0, len(merged))
	for k, v := range merged {
		if v != nil {
			keys = append(keys, k)
		}
	}
	slices.Sort(keys)
	for _, k := range keys {
		if !fn([]byte(k), merged[k]) {
			break
		}
	}
	return nil
}

// flush applies the writes to the parent, in key order.
func (o *overlay) flush() error {
	keys := make([]string, 0, len(o.writes))
	for k := range o.writes {
		keys = append(keys, k)
	}
	slices.Sort(keys)
	for _, k := range keys {
		if o.writes[k] == nil {
			return errors.New("overlay: deletes are not supported")
		}
		o.parent.Set([]byte(k), o.writes[k])
	}
	return nil
}
