// Package client is the Go client of a medchain node's HTTP API. The CLI,
// the tests and integrations use it; it signs locally and never sends a
// private key anywhere.
package client

import (
	"bytes"
	"context"
	"encoding/json"
	"errors"
	"fmt"
	"io"
	"net/http"
	"strings"
	"sync"
	"time"

	"github.com/medchain/medchain/ident"
	"github.com/medchain/medchain/tx"
)

// Result codes, as the node reports them (see app.Code*).
const (
	CodeOK           = 0
	CodeUnauthorized = 6
)

// Error is a request the node refused or could not serve.
type Error struct {
	Status int    // HTTP status
	Code   uint32 // transaction result code, when there is one
	Msg    string
}

func (e *Error) Error() string { return e.Msg }

// Denied reports whether err is an authorization refusal.
func Denied(err error) bool {
	var e *Error
	return errors.As(err, &e) && (e.Status == http.StatusForbidden || e.Code == CodeUnauthorized)
}

// NotFound reports whether err is a 404 from the node.
func NotFound(err error) bool {
	var e *Error
	return errors.As(err, &e) && e.Status == http.StatusNotFound
}

// Client talks to one node. It is safe for concurrent use.
type Client struct {
	base  string
	hc    *http.Client
	mu    sync.Mutex
	chain string // asked of the node once
}

// New returns a client for the node API at base, e.g. http://127.0.0.1:8780.
func New(base string) *Client {
	return &Client{base: strings.TrimRight(base, "/"), hc: &http.Client{Timeout: 60 * time.Second}}
}

// Status is GET /v1/status.
type Status struct {
	ChainID    string `json:"chain_id"`
	Height     int64  `json:"height"`
	NodeID     string `json:"node_id"`
	Validators int    `json:"validators"`
	AppHash    string `json:"app_hash"`
	Peers      int    `json:"peers"`
}

// Actor is a registered identity and its last nonce.
type Actor struct {
	ID     string `json:"id"`
	Kind   string `json:"kind"`
	Public string `json:"public"`
	Name   string `json:"name,omitempty"`
	Role   string `json:"role,omitempty"`
	Org    string `json:"org,omitempty"`
	Height int64  `json:"height"`
	Nonce  uint64 `json:"nonce"`
}

// Result is a committed transaction.
type Result struct {
	Hash   string `json:"tx"`
	Height int64  `json:"height"`
	Code   uint32 `json:"code"`
	Log    string `json:"log,omitempty"`
}

// Status returns the node's status.
func (c *Client) Status(ctx context.Context) (Status, error) {
	var s Status
	return s, c.do(ctx, http.MethodGet, "/v1/status", nil, &s)
}

// Actor looks up a registered actor.
func (c *Client) Actor(ctx context.Context, id string) (Actor, error) {
	var a Actor
	return a, c.do(ctx, http.MethodGet, "/v1/actors/"+id, nil, &a)
}

// Submit sends a signed transaction and waits for its block to commit.
// A transaction the ledger rejected comes back as an *Error.
func (c *Client) Submit(ctx context.Context, t *tx.Tx) (Result, error) {
	raw, err := t.Encode()
	if err != nil {
		return Result{}, err
	}
	var r Result
	if err := c.do(ctx, http.MethodPost, "/v1/txs", raw, &r); err != nil {
		return r, err
	}
	return r, nil
}

// Send builds, signs and submits a transaction of type typ for key. The
// nonce is above both the ledger's last nonce for key and the clock in
// nanoseconds, so concurrent senders rarely collide.
func (c *Client) Send(ctx context.Context, key ident.Private, typ tx.Type, body any) (Result, error) {
	t, err := c.Sign(ctx, key, typ, body)
	if err != nil {
		return Result{}, err
	}
	return c.Submit(ctx, t)
}

// Sign builds and signs a transaction without sending it.
func (c *Client) Sign(ctx context.Context, key ident.Private, typ tx.Type, body any) (*tx.Tx, error) {
	chain, err := c.chainID(ctx)
	if err != nil {
		return nil, err
	}
	nonce := uint64(time.Now().UnixNano())
	a, err := c.Actor(ctx, key.ID())
	switch {
	case err == nil:
		nonce = max(nonce, a.Nonce+1)
	case !NotFound(err):
		return nil, err
	}
	t, err := tx.New(typ, key.ID(), nonce, body)
	if err != nil {
		return nil, err
	}
	return t, t.Sign(chain, key.Sign)
}

func (c *Client) do(ctx context.Context, method, path string, body []byte, out any) error {
	var rd io.Reader
	if body != nil {
		rd = bytes.NewReader(body)
	}
	req, err := http.NewRequestWithContext(ctx, method, c.base+path, rd)
	if err != nil {
		return fmt.Errorf("build request: %w", err)
	}
	req.Header.Set("Content-Type", "application/json")
	return c.send(req, out)
}

func decodeError(status int, b []byte) error {
	var e struct {
		Error string `json:"error"`
		Code  uint32 `json:"code"`
		Log   string `json:"log"`
	}
	_ = json.Unmarshal(b, &e)
	msg := e.Error
	if msg == "" {
		msg = e.Log
	}
	if msg == "" {
		msg = fmt.Sprintf("node answered HTTP %d", status)
	}
	return &Error{Status: status, Code: e.Code, Msg: msg}
}

func bytesReader(b []byte) io.Reader { return bytes.NewReader(b) }
