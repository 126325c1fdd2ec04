package tx

import (
	"crypto/ed25519"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"fmt"
	"strconv"
	"strings"
)

// RequestDomain separates API request signatures from transactions.
const RequestDomain = "medchain/request/v1"

// RequestScheme names the Authorization header scheme of signed requests:
//
//	Authorization: Medchain <actor ID>:<unix nanoseconds>:<base64url signature>
const RequestScheme = "Medchain"

// RequestSignBytes is what a signed API request's signature covers: the
// chain, the method, the request URI with its query, the time, and the
// SHA-256 of the body. A signature made for one request fits no other.
func RequestSignBytes(chainID, method, uri string, unixNano int64, body []byte) []byte {
	h := sha256.Sum256(body)
	return fmt.Appendf(nil, "%s\x00%s\x00%s %s\x00%d\x00%s", RequestDomain, chainID, method, uri, unixNano, hex.EncodeToString(h[:]))
}

// SignRequest returns the Authorization header value for a request.
func SignRequest(chainID, actor string, key ed25519.PrivateKey, method, uri string, unixNano int64, body []byte) string {
	sig := ed25519.Sign(key, RequestSignBytes(chainID, method, uri, unixNano, body))
	return fmt.Sprintf("%s %s:%d:%s", RequestScheme, actor, unixNano, base64.RawURLEncoding.EncodeToString(sig))
}

// ParseRequestAuth splits an Authorization header value.
func ParseRequestAuth(h string) (actor string, unixNano int64, sig []byte, err error) {
	rest, ok := strings.CutPrefix(h, RequestScheme+" ")
	if !ok {
		return "", 0, nil, fmt.Errorf("%w: Authorization must use the %s scheme", ErrMalformed, RequestScheme)
	}
	parts := strings.Split(rest, ":")
	if len(parts) != 3 {
		return "", 0, nil, fmt.Errorf("%w: Authorization must be actor:time:signature", ErrMalformed)
	}
	if unixNano, err = strconv.ParseInt(parts[1], 10, 64); err != nil {
		return "", 0, nil, fmt.Errorf("%w: Authorization time", ErrMalformed)
	}
	if sig, err = base64.RawURLEncoding.DecodeString(parts[2]); err != nil || len(sig) != ed25519.SignatureSize {
		return "", 0, nil, fmt.Errorf("%w: Authorization signature", ErrMalformed)
	}
	return parts[0], unixNano, sig, nil
}
