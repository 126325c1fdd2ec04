package app

import (
	"errors"

	"github.com/medchain/medchain/tx"
)

// Result codes returned in CheckTx and FinalizeBlock. Clients branch on them;
// the log beside each says what went wrong and what to do.
const (
	CodeOK            uint32 = 0
	CodeMalformed     uint32 = 1
	CodeTooLarge      uint32 = 2
	CodeBadSignature  uint32 = 3
	CodeUnknownSigner uint32 = 4
	CodeReplay        uint32 = 5
	CodeUnauthorized  uint32 = 6
	CodeExists        uint32 = 7
	CodeInvalid       uint32 = 8
	CodeNotFound      uint32 = 9
	CodeInternal      uint32 = 10
	CodeMissingBlob   uint32 = 11
)

// Sentinel errors of the state machine.
var (
	ErrUnknownSigner = errors.New("unknown signer")
	ErrReplay        = errors.New("replayed transaction")
	ErrUnauthorized  = errors.New("unauthorized")
	ErrExists        = errors.New("already registered")
	ErrInvalid       = errors.New("invalid transaction")
	ErrNotFound      = errors.New("not found")
)

// CodeOf maps an error from the application to its result code.
func CodeOf(err error) uint32 { return codeOf(err) }

// codeOf maps an error from execution to its result code.
func codeOf(err error) uint32 {
	switch {
	case err == nil:
		return CodeOK
	case errors.Is(err, tx.ErrTooLarge):
		return CodeTooLarge
	case errors.Is(err, tx.ErrMalformed):
		return CodeMalformed
	case errors.Is(err, tx.ErrBadSignature):
		return CodeBadSignature
	case errors.Is(err, ErrUnknownSigner):
		return CodeUnknownSigner
	case errors.Is(err, ErrReplay):
		return CodeReplay
	case errors.Is(err, ErrUnauthorized):
		return CodeUnauthorized
	case errors.Is(err, ErrExists):
		return CodeExists
	case errors.Is(err, ErrInvalid):
		return CodeInvalid
	case errors.Is(err, ErrNotFound):
		return CodeNotFound
	}
	return CodeInternal
}
