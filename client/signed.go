package client

import (
	"bytes"
	"context"
	"encoding/json"
	"fmt"
	"io"
	"net/http"
	"net/url"
	"strconv"
	"time"

	"github.com/medchain/medchain/blob"
	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// chainID returns the node's chain, asked once per client.
func (c *Client) chainID(ctx context.Context) (string, error) {
	c.mu.Lock()
	chain := c.chain
	c.mu.Unlock()
	if chain != "" {
		return chain, nil
	}
	st, err := c.Status(ctx)
	if err != nil {
		return "", err
	}
	c.mu.Lock()
	c.chain = st.ChainID
	c.mu.Unlock()
	return st.ChainID, nil
}

// signedDo sends a request signed by key.
func (c *Client) signedDo(ctx context.Context, key ident.Private, method, uri string, body []byte, out any) error {
	chain, err := c.chainID(ctx)
	if err != nil {
		return err
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+uri, bytes.NewReader(body))
	if err != nil {
		return err
	}
	req.Header.Set("Authorization", tx.SignRequest(chain, key.ID(), key.Sign, method, uri, time.Now().UnixNano(), body))
	return c.send(req, out)
}

func (c *Client) send(req *http.Request, out any) error {
	resp, err := c.hc.Do(req)
	if err != nil {
		return fmt.Errorf("cannot reach the node at %s (%v); is `medchain node` running, and is --node right?", c.base, err)
	}
	defer resp.Body.Close()
	b, err := readBody(resp, 256<<20)
	if err != nil {
		return fmt.Errorf("read response from %s: %w", c.base, err)
	}
	if resp.StatusCode/100 != 2 {
		return decodeError(resp.StatusCode, b)
	}
	if err := json.Unmarshal(b, out); err != nil {
		return fmt.Errorf("node sent a malformed response to %s %s: %w", req.Method, req.URL.Path, err)
	}
	return nil
}

// PutBlob uploads a blob, signed by key, and returns how many nodes hold it.
func (c *Client) PutBlob(ctx context.Context, key ident.Private, name string, b []byte) (int, error) {
	var out struct {
		Copies int `json:"copies"`
	}
	err := c.signedDo(ctx, key, http.MethodPut, "/v1/blobs/"+name, b, &out)
	return out.Copies, err
}

// PutBlobs uploads blobs in one request, signed by key, and returns how
// many nodes hold them.
func (c *Client) PutBlobs(ctx context.Context, key ident.Private, blobs [][]byte) (int, error) {
	var out struct {
		Copies int `json:"copies"`
	}
	err := c.signedDo(ctx, key, http.MethodPost, "/v1/blobs", blob.EncodeBatch(blobs), &out)
	return out.Copies, err
}

// pageLimit is how many entries a listing asks the node for at a time: the
// most a node serves in one page (app.MaxPageLimit).
const pageLimit = 1000

// Records lists the patient's records that key may see, a page at a time.
func (c *Client) Records(ctx context.Context, key ident.Private, patient string) ([]Record, error) {
	return listAll[Record](ctx, c, key, "/v1/records?patient="+url.QueryEscape(patient), "records")
}

// listAll reads the listing at uri whole, a page at a time: the entries
// under field in each page's answer, until a page names no next one.
func listAll[T any](ctx context.Context, c *Client, key ident.Private, uri, field string) ([]T, error) {
	all, after := []T{}, ""
	for {
		var out map[string]json.RawMessage
		if err := c.signedDo(ctx, key, http.MethodGet, pageURI(uri, after), nil, &out); err != nil {
			return all, err
		}
		var entries []T
		var next string
		if err := decodeIfSet(out[field], &entries); err != nil {
			return all, fmt.Errorf("the node's %s: %w", field, err)
		}
		if err := decodeIfSet(out["next"], &next); err != nil {
			return all, fmt.Errorf("the node's next page: %w", err)
		}
		all = append(all, entries...)
		if next == "" {
			return all, nil
		}
		if next == after {
			return all, fmt.Errorf("the node named the same next page twice (%q), so its listing is out of order; ask another node (--node) and report this one's operator", next)
		}
		after = next
	}
}

func decodeIfSet(raw json.RawMessage, v any) error {
	if raw == nil {
		return nil
	}
	return json.Unmarshal(raw, v)
}

func pageURI(uri, after string) string {
	uri += "&limit=" + strconv.Itoa(pageLimit)
	if after != "" {
		uri += "&after=" + url.QueryEscape(after)
	}
	return uri
}

// Consents lists consents: the patient's own when patient is set, else
// those granted to key's actor.
func (c *Client) Consents(ctx context.Context, key ident.Private, patient string) ([]Consent, error) {
	var out struct {
		Consents []Consent `json:"consents"`
	}
	uri := "/v1/consents"
	if patient != "" {
		uri += "?patient=" + url.QueryEscape(patient)
	}
	err := c.signedDo(ctx, key, http.MethodGet, uri, nil, &out)
	return out.Consents, err
}

// AccessLog lists the access events on the patient's records, oldest
// first, a page at a time.
func (c *Client) AccessLog(ctx context.Context, key ident.Private, patient string) ([]AccessEvent, error) {
	return listAll[AccessEvent](ctx, c, key, "/v1/access?patient="+url.QueryEscape(patient), "events")
}

// Epochs returns the patient's current key epochs by category.
func (c *Client) Epochs(ctx context.Context, patient string) (map[string]Epoch, error) {
	var out struct {
		Epochs map[string]Epoch `json:"epochs"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/patients/"+url.PathEscape(patient)+"/epochs", nil, &out)
	return out.Epochs, err
}

// Members lists an organization's members.
func (c *Client) Members(ctx context.Context, org string) ([]string, error) {
	var out struct {
		Members []string `json:"members"`
	}
	err := c.do(ctx, http.MethodGet, "/v1/orgs/"+url.PathEscape(org)+"/members", nil, &out)
	return out.Members, err
}

// readBody reads resp's body, at most limit bytes, into a buffer of the
// size the node announced when it did (the node sends JSON answers whole,
// with their length), instead of one grown as the bytes come.
func readBody(resp *http.Response, limit int64) ([]byte, error) {
	if n := resp.ContentLength; n >= 0 && n <= limit {
		b := make([]byte, n)
		if _, err := io.ReadFull(resp.Body, b); err != nil {
			return nil, err
		}
		return b, nil
	}
	return io.ReadAll(io.LimitReader(resp.Body, limit))
}
