package blob

import (
	"encoding/binary"
	"fmt"
	"slices"
)

// Batch is blobs beside their names, each blob hashed once, by NewBatch:
// a Store writes a Batch without hashing it again, and the API answers an
// upload with the same names. Only NewBatch makes one, so its names are
// always its blobs' hashes.
type Batch struct {
	blobs [][]byte
	names []string
}

// NewBatch names blobs, refusing one larger than MaxSize.
func NewBatch(blobs [][]byte) (*Batch, error) {
	b := &Batch{blobs: blobs, names: make([]string, len(blobs))}
	for i, bl := range blobs {
		if len(bl) > MaxSize {
			return nil, fmt.Errorf("%w: %d bytes, limit %d", ErrTooLarge, len(bl), MaxSize)
		}
		b.names[i] = Hash(bl)
	}
	return b, nil
}

// Names returns the blobs' names, in the order NewBatch was given them.
func (b *Batch) Names() []string { return slices.Clone(b.names) }

// Blob returns the i'th blob.
func (b *Batch) Blob(i int) []byte { return b.blobs[i] }

// Len returns the number of blobs.
func (b *Batch) Len() int { return len(b.blobs) }

// Encode frames the blobs as EncodeBatch does.
func (b *Batch) Encode() []byte { return EncodeBatch(b.blobs) }

// MaxBatch bounds an encoded batch of blobs.
const MaxBatch = 256 << 20

// MaxBatchBlobs bounds the blobs in one batch: a batch of 256 records
// carries 768. Without it a batch of empty blobs, four bytes each, would
// cost a node gigabytes of names before it could check who sent it.
const MaxBatchBlobs = 1 << 16

// EncodeBatch frames blobs for one request: each as a 4-byte big-endian
// length and its bytes.
func EncodeBatch(blobs [][]byte) []byte {
	n := 0
	for _, b := range blobs {
		n += 4 + len(b)
	}
	out := make([]byte, 0, n)
	for _, b := range blobs {
		out = binary.BigEndian.AppendUint32(out, uint32(len(b)))
		out = append(out, b...)
	}
	return out
}

// DecodeBatch splits what EncodeBatch framed. The returned blobs alias b.
func DecodeBatch(b []byte) ([][]byte, error) {
	if len(b) > MaxBatch {
		return nil, fmt.Errorf("%w: batch of %d bytes, limit %d", ErrTooLarge, len(b), MaxBatch)
	}
	var out [][]byte
	for len(b) > 0 {
		if len(out) == MaxBatchBlobs {
			return nil, fmt.Errorf("%w: batch of more than %d blobs; send fewer at a time", ErrTooLarge, MaxBatchBlobs)
		}
		if len(b) < 4 {
			return nil, fmt.Errorf("%w: truncated batch", ErrCorrupt)
		}
		n := binary.BigEndian.Uint32(b)
		b = b[4:]
		if n > MaxSize {
			return nil, fmt.Errorf("%w: blob of %d bytes in batch, limit %d", ErrTooLarge, n, MaxSize)
		}
		if uint64(n) > uint64(len(b)) {
			return nil, fmt.Errorf("%w: truncated batch", ErrCorrupt)
		}
		out = append(out, b[:n:n])
		b = b[n:]
	}
	return out, nil
}
