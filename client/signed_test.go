package client

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"

	"github.com/medchain/medchain/ident"
)

// TestReadBody: an answer is read whole whether or not the node announced
// its length, never beyond the limit, and one shorter than announced is an
// error.
func TestReadBody(t *testing.T) {
	body := strings.Repeat("x", 100_000)
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		switch r.URL.Path {
		case "/length":
			w.Header().Set("Content-Length", "100000")
			io.WriteString(w, body)
		case "/chunked":
			io.WriteString(w, body[:50_000])
			w.(http.Flusher).Flush()
			io.WriteString(w, body[50_000:])
		case "/short":
			w.Header().Set("Content-Length", "100001")
			io.WriteString(w, body)
		}
	}))
	defer srv.Close()
	for _, tc := range []struct {
		path    string
		limit   int64
		want    int
		wantErr bool
	}{
		{"/length", 1 << 20, len(body), false},
		{"/chunked", 1 << 20, len(body), false},
		{"/chunked", 1000, 1000, false}, // cut at the limit; the JSON decoder then fails
		{"/length", 1000, 1000, false},
		{"/short", 1 << 20, 0, true},
	} {
		resp, err := http.Get(srv.URL + tc.path)
		if err != nil {
			t.Fatal(err)
		}
		b, err := readBody(resp, tc.limit)
		resp.Body.Close()
		if (err != nil) != tc.wantErr || len(b) != tc.want {
			t.Errorf("%s, limit %d: %d bytes, %v; want %d bytes, error %v", tc.path, tc.limit, len(b), err, tc.want, tc.wantErr)
		}
	}
}

// TestListAllFollowsPages: a listing is read page after page, each request
// naming the next cursor of the answer before, until an answer names none;
// a node that names the same cursor twice is an error, not a loop.
func TestListAllFollowsPages(t *testing.T) {
	key, err := ident.Generate()
	if err != nil {
		t.Fatal(err)
	}
	answers := map[string]string{ // after → answer
		"":   `{"events":[{"record":"r1"},{"record":"r2"}],"next":"c2"}`,
		"c2": `{"events":[{"record":"r3"}],"next":"c3"}`,
		"c3": `{"events":[]}`,
		"x":  `{"events":[{"record":"r9"}],"next":"x"}`,
	}
	var asked []string
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		if r.URL.Path != "/v1/access" { // the chain ID the client signs for
			io.WriteString(w, `{"chain_id":"test-chain","height":1}`)
			return
		}
		q := r.URL.Query()
		asked = append(asked, q.Get("limit")+"/"+q.Get("after"))
		start := q.Get("patient") // the test's way of starting elsewhere
		after := q.Get("after")
		if after == "" {
			after = start
		}
		io.WriteString(w, answers[after])
	}))
	defer srv.Close()
	c := New(srv.URL)
	evs, err := c.AccessLog(t.Context(), key, "")
	var got []string
	for _, e := range evs {
		got = append(got, e.Record)
	}
	if err != nil || strings.Join(got, ",") != "r1,r2,r3" || strings.Join(asked, " ") != "1000/ 1000/c2 1000/c3" {
		t.Errorf("AccessLog = %v, %v after asking %v; want r1,r2,r3 after 1000/ 1000/c2 1000/c3", got, err, asked)
	}
	if _, err := c.AccessLog(t.Context(), key, "x"); err == nil || !strings.Contains(err.Error(), "same next page twice") {
		t.Errorf("a node naming the same cursor twice: %v; want an error saying so", err)
	}
}
