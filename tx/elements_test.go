package tx

import (
	"bytes"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"strings"
	"testing"
)

func TestCheckElements(t *testing.T) {
	many := func(n int, elem string) string { return "[" + strings.Repeat(elem+",", n-1) + elem + "]" }
	for _, tc := range []struct {
		name string
		in   string
		ok   bool
	}{
		{"empty", ``, true},
		{"the limit exactly", many(maxElements, `1`), true},
		{"one over", many(maxElements+1, `1`), false},
		{"over, spread across arrays", `{"a":` + many(maxElements/2+1, `1`) + `,"b":` + many(maxElements/2+1, `{}`) + `}`, false},
		{"nested arrays count", many(maxElements/2+1, `[1,2]`), false},
		{"commas in objects are not elements", `{` + strings.Repeat(`"a":1,`, 3*maxElements) + `"b":2}`, true},
		{"commas and brackets in strings are not elements", many(10, `"],[,,\"],{"`), true},
		{"an escaped backslash ends before the quote", many(maxElements+1, `"\\"`), false},
	} {
		t.Run(tc.name, func(t *testing.T) {
			err := checkElements([]byte(tc.in))
			if tc.ok && err != nil {
				t.Fatalf("checkElements = %v; want nil", err)
			}
			if !tc.ok && !errors.Is(err, ErrTooLarge) {
				t.Fatalf("checkElements = %v; want ErrTooLarge", err)
			}
		})
	}
}

// TestDecodeRefusesHostileBatch: a signed-looking record.batch of 1 MiB
// whose records are all "{}" is refused as too large, not decoded into
// hundreds of thousands of records; a batch of MaxBatchRecords real
// records still decodes.
func TestDecodeRefusesHostileBatch(t *testing.T) {
	key := testKey(t, "author")
	elems := strings.Repeat("{},", (MaxBatchSize-512)/3)
	raw := fmt.Appendf(nil, `{"type":"record.batch","signer":%q,"nonce":1,"body":{"records":[%s{}]},"sig":"%s"}`,
		key.ID(), elems, strings.Repeat("A", 86)+"==")
	if len(raw) > MaxBatchSize {
		t.Fatalf("test batch is %d bytes, over the limit", len(raw))
	}
	if _, _, err := Decode(raw); !errors.Is(err, ErrTooLarge) {
		t.Fatalf("Decode of %d empty records = %v; want ErrTooLarge", strings.Count(elems, ","), err)
	}

	var b RecordBatch
	for i := range MaxBatchRecords {
		h := fmt.Sprintf("%064x", i)
		b.Records = append(b.Records, RecordPut{Patient: key.ID(), Category: "laboratory", ContentType: "application/fhir+json",
			Size: 1, Ciphertext: h, Commitment: h, EpochEnv: h, SelfEnv: h})
	}
	x := signed(t, key, TypeRecordBatch, 2, b)
	full := encode(t, x)
	got, body, err := Decode(full)
	if err != nil {
		t.Fatalf("Decode of a batch of %d records: %v", MaxBatchRecords, err)
	}
	if n := len(body.(*RecordBatch).Records); n != MaxBatchRecords || !bytes.Equal(got.Body, x.Body) {
		t.Fatalf("decoded %d records; want %d, same body", n, MaxBatchRecords)
	}
	// The same batch through the reflective decoder, which the guard sits
	// in front of (Decode sends it anything the canonical reader does not
	// take).
	if _, _, err := decodeStrict(full); err != nil {
		t.Fatalf("decodeStrict of a batch of %d records: %v", MaxBatchRecords, err)
	}
}

// FuzzArrayCommas checks the counting scanner against encoding/json on
// every valid JSON input: the commas it counts are exactly the commas
// between array elements that the decoder's tokens show.
func FuzzArrayCommas(f *testing.F) {
	f.Add([]byte(`{"records":[{},{"a":[1,2,"x,]"]},[]],"b":{"c":[1,2]}}`))
	f.Add([]byte(`["\\",",","\"]",[[],[[1]]]]`))
	f.Add([]byte(`[1,{"k,":"v]","k2":[true,false,null]},-1.5e3]`))
	f.Add([]byte(`[{},1` + strings.Repeat("0", 400) + `]`)) // beyond float64
	f.Fuzz(func(t *testing.T, b []byte) {
		if !json.Valid(b) {
			return
		}
		want := 0
		d := json.NewDecoder(bytes.NewReader(b))
		// Numbers as text: a valid number too large for a float64 would
		// otherwise end the token stream early and the count with it.
		d.UseNumber()
		var stack []json.Delim
		inArray := make([]int, 0) // values seen so far in each open array
		for {
			tok, err := d.Token()
			if err == io.EOF {
				break
			}
			if err != nil {
				t.Fatalf("Token on valid JSON: %v", err)
			}
			delim, isDelim := tok.(json.Delim)
			closing := isDelim && (delim == ']' || delim == '}')
			if !closing && len(stack) > 0 && stack[len(stack)-1] == '[' {
				// a value (or the start of one) inside an array
				if inArray[len(inArray)-1] > 0 {
					want++
				}
				inArray[len(inArray)-1]++
			}
			switch {
			case isDelim && (delim == '[' || delim == '{'):
				stack = append(stack, delim)
				if delim == '[' {
					inArray = append(inArray, 0)
				}
			case closing:
				if stack[len(stack)-1] == '[' {
					inArray = inArray[:len(inArray)-1]
				}
				stack = stack[:len(stack)-1]
			}
		}
		if got := arrayCommas(b, 1<<30); got != want {
			t.Fatalf("arrayCommas(%q) = %d; the decoder's tokens show %d", b, got, want)
		}
	})
}
