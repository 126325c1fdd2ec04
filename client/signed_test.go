package client

import (
	"io"
	"net/http"
	"net/http/httptest"
	"strings"
	"testing"
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
