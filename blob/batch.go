package blob

import (
	"encoding/binary"
	"fmt"
)

// MaxBatch bounds an encoded batch of blobs.
const MaxBatch = 256 << 20

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
