package tx

import (
	"fmt"
	"slices"
)

// Transaction kinds for records, consent and audit.
const (
	TypeRecordPut     Type = "record.put"
	TypeRecordBatch   Type = "record.batch"
	TypeConsentGrant  Type = "consent.grant"
	TypeConsentRevoke Type = "consent.revoke"
	TypeAccess        Type = "access"
	TypeAccessBatch   Type = "access.batch"
	TypeAccessMany    Type = "access.many"
)

// EpochPub publishes the public half of a patient's key epoch for one
// category. Authors seal new records of that category to it.
type EpochPub struct {
	Category string `json:"category"`
	Epoch    uint64 `json:"epoch"`
	Key      []byte `json:"key"` // encoded HPKE public key
}

// KeyEnvelope names the blob that carries an epoch's private key wrapped to
// one holder. Only the blob's hash is on the ledger.
type KeyEnvelope struct {
	Category string `json:"category"`
	Epoch    uint64 `json:"epoch"`
	Holder   string `json:"holder"`
	Blob     string `json:"blob"` // hex SHA-256 of the envelope blob
}

// RecordPut registers a record. The signer is its author. Contents and keys
// stay off the ledger: only their hashes and sizes are here.
type RecordPut struct {
	Patient     string `json:"patient"`
	Category    string `json:"category"`
	ContentType string `json:"content_type"`
	Size        int64  `json:"size"`
	Epoch       uint64 `json:"epoch"`
	Ciphertext  string `json:"ciphertext"` // hex SHA-256 of the ciphertext blob
	Commitment  string `json:"commitment"` // hex keyed commitment to the plaintext
	EpochEnv    string `json:"epoch_env"`  // hex SHA-256 of the DEK sealed to the epoch key
	SelfEnv     string `json:"self_env"`   // hex SHA-256 of the author's own DEK envelope
}

// ConsentGrant is a patient's consent contract. Until is block time in unix
// nanoseconds (0: none); ExpiresIn, if set, is added to the committing
// block's time instead.
type ConsentGrant struct {
	Grantee    string        `json:"grantee"`
	Categories []string      `json:"categories"`
	Purposes   []string      `json:"purposes"`
	Actions    []string      `json:"actions"`
	Until      int64         `json:"until"`
	ExpiresIn  int64         `json:"expires_in"`
	Condition  string        `json:"condition"`
	Keys       []KeyEnvelope `json:"keys"`
}

// ConsentRevoke ends a consent. The patient's client starts a new key epoch
// for the categories it covered and re-wraps it for the grantees that remain.
type ConsentRevoke struct {
	Consent string        `json:"consent"`
	Epochs  []EpochPub    `json:"epochs"`
	Keys    []KeyEnvelope `json:"keys"`
}

// Access asks to read one record for a purpose. Committed, it is the access
// event the patient sees; the node serves nothing before it commits.
type Access struct {
	Record  string `json:"record"`
	Purpose string `json:"purpose"`
}

// MaxAccessRecords bounds the records of one [AccessMany].
const MaxAccessRecords = 64

// AccessMany asks, under one signature, to read several distinct records
// for one purpose: a chart opened at once. Each record is authorized and
// leaves its own access event; the node serves all of them or none.
type AccessMany struct {
	Records []string `json:"records"`
	Purpose string   `json:"purpose"`
}

// Check checks what the request's shape alone can say: 1 to
// [MaxAccessRecords] records, none named twice.
func (b *AccessMany) Check() error {
	if len(b.Records) == 0 || len(b.Records) > MaxAccessRecords {
		return fmt.Errorf("%w: an access.many request names 1 to %d records, not %d; split it", ErrMalformed, MaxAccessRecords, len(b.Records))
	}
	for i, id := range b.Records {
		if slices.Contains(b.Records[:i], id) {
			return fmt.Errorf("%w: record %q is named twice; name each record once", ErrMalformed, id)
		}
	}
	return nil
}

// MaxBatchRecords bounds the records of one batch.
const MaxBatchRecords = 2048

// RecordBatch registers several records by one author under one signature:
// every check of RecordPut applies to each, and the batch commits whole or
// not at all.
type RecordBatch struct {
	Records []RecordPut `json:"records"`
}

// MaxAccessBatch bounds the requests of one access batch.
const MaxAccessBatch = 1024

// AccessBatch carries readers' signed access requests (each an encoded
// Access transaction) that a node served, so that the ledger records each
// disclosure. Signed by the serving node.
type AccessBatch struct {
	Requests [][]byte `json:"requests"`
}
