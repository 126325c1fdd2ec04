package app

import (
	"encoding/json"
	"strconv"
	"strings"
)

// A record's state value is its JSON as encoding/json writes it, and stays
// so: the app hash covers those bytes. Every record write encodes one and
// every decision on a record not in the cache decodes one, and
// encoding/json's reflection costs ~2.7 µs to encode and ~13 µs to decode
// a record on the machine we measure on (BenchmarkRecordJSON). The common
// case, every string plain ASCII with nothing to escape (as the canonical
// transaction decoder admits them), is written and read here directly, in
// the exact layout json.Marshal produces; anything else goes through
// encoding/json. FuzzRecordJSON holds both paths to encoding/json's bytes
// and values.

// encodeRecord returns r's state value: exactly json.Marshal(r).
func encodeRecord(r *Record) ([]byte, error) {
	if b, ok := appendRecord(make([]byte, 0, 640), r); ok {
		return b, nil
	}
	return json.Marshal(r)
}

// decodeRecord reads a state value into r as json.Unmarshal would.
func decodeRecord(b []byte, r *Record) error {
	if parseRecord(b, r) {
		return nil
	}
	*r = Record{}
	return json.Unmarshal(b, r)
}

// appendRecord appends r in json.Marshal's layout, or reports false if a
// string needs escaping.
func appendRecord(b []byte, r *Record) ([]byte, bool) {
	for _, s := range [...]string{r.ID, r.Patient, r.Author, r.Category, r.ContentType, r.Ciphertext, r.Commitment, r.EpochEnv, r.SelfEnv} {
		if !plain(s) {
			return nil, false
		}
	}
	b = append(b, `{"id":"`...)
	b = append(b, r.ID...)
	b = append(b, `","patient":"`...)
	b = append(b, r.Patient...)
	b = append(b, `","author":"`...)
	b = append(b, r.Author...)
	b = append(b, `","category":"`...)
	b = append(b, r.Category...)
	b = append(b, `","content_type":"`...)
	b = append(b, r.ContentType...)
	b = append(b, `","size":`...)
	b = strconv.AppendInt(b, r.Size, 10)
	b = append(b, `,"epoch":`...)
	b = strconv.AppendUint(b, r.Epoch, 10)
	b = append(b, `,"ciphertext":"`...)
	b = append(b, r.Ciphertext...)
	b = append(b, `","commitment":"`...)
	b = append(b, r.Commitment...)
	b = append(b, `","epoch_env":"`...)
	b = append(b, r.EpochEnv...)
	b = append(b, `","self_env":"`...)
	b = append(b, r.SelfEnv...)
	b = append(b, `","height":`...)
	b = strconv.AppendInt(b, r.Height, 10)
	b = append(b, `,"time":`...)
	b = strconv.AppendInt(b, r.Time, 10)
	return append(b, '}'), true
}

// plain reports whether json.Marshal writes s as it is, between quotes.
func plain(s string) bool {
	for i := 0; i < len(s); i++ {
		if !plainByte(s[i]) {
			return false
		}
	}
	return true
}

func plainByte(c byte) bool { return plainBytes[c] }

// plainBytes marks the bytes json.Marshal writes as they are.
var plainBytes = func() (t [256]bool) {
	for c := 0x20; c <= 0x7e; c++ {
		t[c] = c != '"' && c != '\\' && c != '<' && c != '>' && c != '&'
	}
	return t
}()

// recordParser reads the layout appendRecord writes, and nothing else.
type recordParser struct {
	b  []byte
	ok bool
}

// parseRecord fills r from b if b is in appendRecord's exact layout. The
// record's strings all lie in one allocation: a node caches decoded
// records, and one object a record, not nine, is what the garbage
// collector then marks on every cycle.
func parseRecord(b []byte, r *Record) bool {
	p := recordParser{b: b, ok: true}
	var out Record
	var strs [9][]byte // ID, Patient, Author, Category, ContentType, Ciphertext, Commitment, EpochEnv, SelfEnv: windows on b
	p.lit(`{"id":"`)
	strs[0] = p.str()
	p.lit(`,"patient":"`)
	strs[1] = p.str()
	p.lit(`,"author":"`)
	strs[2] = p.str()
	p.lit(`,"category":"`)
	strs[3] = p.str()
	p.lit(`,"content_type":"`)
	strs[4] = p.str()
	p.lit(`,"size":`)
	out.Size = p.int()
	p.lit(`,"epoch":`)
	out.Epoch = p.uint()
	p.lit(`,"ciphertext":"`)
	strs[5] = p.str()
	p.lit(`,"commitment":"`)
	strs[6] = p.str()
	p.lit(`,"epoch_env":"`)
	strs[7] = p.str()
	p.lit(`,"self_env":"`)
	strs[8] = p.str()
	p.lit(`,"height":`)
	out.Height = p.int()
	p.lit(`,"time":`)
	out.Time = p.int()
	p.lit(`}`)
	if !p.ok || len(p.b) != 0 {
		return false
	}
	n := 0
	for _, b := range strs {
		n += len(b)
	}
	var sb strings.Builder
	sb.Grow(n)
	for _, b := range strs {
		sb.Write(b)
	}
	all, at := sb.String(), 0
	for i, dst := range [...]*string{&out.ID, &out.Patient, &out.Author, &out.Category, &out.ContentType, &out.Ciphertext, &out.Commitment, &out.EpochEnv, &out.SelfEnv} {
		*dst = all[at : at+len(strs[i])]
		at += len(strs[i])
	}
	*r = out
	return true
}

func (p *recordParser) lit(s string) {
	if !p.ok || len(p.b) < len(s) || string(p.b[:len(s)]) != s {
		p.ok = false
		return
	}
	p.b = p.b[len(s):]
}

// str reads plain bytes up to and including the closing quote, and
// returns them (without the quote) as a window on the parser's input.
func (p *recordParser) str() []byte {
	if !p.ok {
		return nil
	}
	for i, c := range p.b {
		if c == '"' {
			s := p.b[:i:i]
			p.b = p.b[i+1:]
			return s
		}
		if !plainByte(c) {
			break
		}
	}
	p.ok = false
	return nil
}

// digits reads the digits strconv.Append* writes for a number: "0", or no
// leading zero.
func (p *recordParser) digits() []byte {
	i := 0
	for i < len(p.b) && p.b[i] >= '0' && p.b[i] <= '9' {
		i++
	}
	d := p.b[:i]
	if i == 0 || i > 1 && d[0] == '0' {
		p.ok = false
		return nil
	}
	p.b = p.b[i:]
	return d
}

func (p *recordParser) uint() uint64 {
	if !p.ok {
		return 0
	}
	d := p.digits()
	if !p.ok {
		return 0
	}
	n, err := strconv.ParseUint(string(d), 10, 64)
	if err != nil {
		p.ok = false
	}
	return n
}

func (p *recordParser) int() int64 {
	if !p.ok {
		return 0
	}
	neg := len(p.b) > 0 && p.b[0] == '-'
	if neg {
		p.b = p.b[1:]
	}
	d := p.digits()
	if !p.ok || neg && string(d) == "0" { // AppendInt never writes "-0"
		p.ok = false
		return 0
	}
	s := string(d)
	if neg {
		s = "-" + s
	}
	n, err := strconv.ParseInt(s, 10, 64)
	if err != nil {
		p.ok = false
	}
	return n
}
