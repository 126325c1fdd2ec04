package tx

import (
	"bytes"
	"encoding/base64"
	"strconv"
)

// decodeCanonical reads raw in one pass when it is exactly the canonical
// encoding of a transaction of a hot kind (record.put, record.batch, access,
// access.batch): the bytes json.Marshal writes, with strings of printable
// ASCII that need no escape. It does not judge: on any other input, valid
// or not, ok is false and [Decode] takes the strict path, which gives the
// error. What it accepts it accepts with the exact values the strict path
// would produce (FuzzCanonicalAgrees), without the strict path's five
// reflective passes over a 100 KB batch.
func decodeCanonical(raw []byte) (t *Tx, body any, ok bool) {
	c := canon{b: raw, ok: true}
	c.lit(`{"type":`)
	typ := Type(c.str())
	c.lit(`,"signer":`)
	signer := c.str()
	c.lit(`,"nonce":`)
	nonce := c.uint()
	c.lit(`,"body":`)
	start := c.pos
	switch typ {
	case TypeRecordPut:
		var b RecordPut
		c.recordPut(&b)
		body = &b
	case TypeRecordBatch:
		b := RecordBatch{Records: []RecordPut{}}
		c.lit(`{"records":[`)
		for c.ok && c.peek() != ']' {
			if len(b.Records) > 0 {
				c.lit(",")
			}
			b.Records = append(b.Records, RecordPut{})
			c.recordPut(&b.Records[len(b.Records)-1])
		}
		c.lit("]}")
		body = &b
	case TypeAccess:
		var b Access
		c.lit(`{"record":`)
		b.Record = c.str()
		c.lit(`,"purpose":`)
		b.Purpose = c.str()
		c.lit("}")
		body = &b
	case TypeAccessBatch:
		b := AccessBatch{Requests: [][]byte{}}
		c.lit(`{"requests":[`)
		for c.ok && c.peek() != ']' {
			if len(b.Requests) > 0 {
				c.lit(",")
			}
			b.Requests = append(b.Requests, c.bytes())
		}
		c.lit("]}")
		body = &b
	default:
		return nil, nil, false
	}
	end := c.pos
	c.lit(`,"sig":`)
	sig := c.bytes()
	c.lit("}")
	if !c.ok || c.pos != len(raw) || len(sig) == 0 {
		return nil, nil, false
	}
	return &Tx{Type: typ, Signer: signer, Nonce: nonce, Body: bytes.Clone(raw[start:end]), Sig: sig}, body, true
}

func (c *canon) recordPut(b *RecordPut) {
	c.lit(`{"patient":`)
	b.Patient = c.str()
	c.lit(`,"category":`)
	b.Category = c.str()
	c.lit(`,"content_type":`)
	b.ContentType = c.str()
	c.lit(`,"size":`)
	b.Size = c.int()
	c.lit(`,"epoch":`)
	b.Epoch = c.uint()
	c.lit(`,"ciphertext":`)
	b.Ciphertext = c.str()
	c.lit(`,"commitment":`)
	b.Commitment = c.str()
	c.lit(`,"epoch_env":`)
	b.EpochEnv = c.str()
	c.lit(`,"self_env":`)
	b.SelfEnv = c.str()
	c.lit("}")
}

// canon reads canonical JSON. The first mismatch clears ok; every later
// call then does nothing, so a reader checks ok once at the end.
type canon struct {
	b   []byte
	pos int
	ok  bool
}

func (c *canon) peek() byte {
	if !c.ok || c.pos >= len(c.b) {
		c.ok = false
		return 0
	}
	return c.b[c.pos]
}

// lit consumes s exactly.
func (c *canon) lit(s string) {
	if !c.ok || len(c.b)-c.pos < len(s) || string(c.b[c.pos:c.pos+len(s)]) != s {
		c.ok = false
		return
	}
	c.pos += len(s)
}

// str consumes a string that json.Marshal writes byte for byte: printable
// ASCII without '"', '\\' or the HTML characters it escapes.
func (c *canon) str() string {
	c.lit(`"`)
	if !c.ok {
		return ""
	}
	for i := c.pos; i < len(c.b); i++ {
		switch ch := c.b[i]; {
		case ch == '"':
			s := string(c.b[c.pos:i])
			c.pos = i + 1
			return s
		case ch < 0x20 || ch > 0x7e || ch == '\\' || ch == '<' || ch == '>' || ch == '&':
			c.ok = false
			return ""
		}
	}
	c.ok = false
	return ""
}

// number returns the bytes of a number token, up to the next delimiter.
func (c *canon) number() []byte {
	if !c.ok {
		return nil
	}
	i := c.pos
	for i < len(c.b) && (c.b[i] == '-' || '0' <= c.b[i] && c.b[i] <= '9') {
		i++
	}
	n := c.b[c.pos:i]
	c.pos = i
	return n
}

// uint consumes an unsigned integer written as strconv writes it.
func (c *canon) uint() uint64 {
	n := c.number()
	v, err := strconv.ParseUint(string(n), 10, 64)
	if err != nil || !bytes.Equal(strconv.AppendUint(nil, v, 10), n) {
		c.ok = false
		return 0
	}
	return v
}

// int consumes a signed integer written as strconv writes it.
func (c *canon) int() int64 {
	n := c.number()
	v, err := strconv.ParseInt(string(n), 10, 64)
	if err != nil || !bytes.Equal(strconv.AppendInt(nil, v, 10), n) {
		c.ok = false
		return 0
	}
	return v
}

// bytes consumes a []byte as json.Marshal writes it: padded standard
// base64 in a string.
func (c *canon) bytes() []byte {
	c.lit(`"`)
	if !c.ok {
		return nil
	}
	end := bytes.IndexByte(c.b[c.pos:], '"')
	if end < 0 {
		c.ok = false
		return nil
	}
	enc := c.b[c.pos : c.pos+end]
	out, err := base64.StdEncoding.AppendDecode(make([]byte, 0, base64.StdEncoding.DecodedLen(len(enc))), enc)
	// The decoder skips newlines and tolerates stray low bits; json.Marshal
	// writes neither, so only an exact round trip is canonical.
	if err != nil || !bytes.Equal(base64.StdEncoding.AppendEncode(nil, out), enc) {
		c.ok = false
		return nil
	}
	c.pos += end + 1
	return out
}
