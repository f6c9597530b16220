package sync

import (
	"bytes"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
	"hash"
)

// CanonicalJSON re-encodes a JSON document the way the reference server and
// the Go client canonicalize it (protocol 5.6): decoded generically (numbers
// as float64) and re-marshalled by encoding/json, which sorts object members,
// writes the shortest round-tripping number form and escapes <, >, &, U+2028
// and U+2029.
func CanonicalJSON(doc []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(doc, &v); err != nil {
		return nil, fmt.Errorf("decode json: %w", err)
	}
	return json.Marshal(v)
}

// hashRow is one bundle row as it enters bundle_hash (protocol 5.7).
type hashRow struct {
	Table   string
	KeyCol  string
	KeyText string
	Op      string
	Payload []byte // wire payload JSON, nil for DELETE
}

// bundleHasher computes bundle_hash incrementally: the canonical JSON of the
// array of row objects, in row order, hashed with SHA-256.
type bundleHasher struct {
	h      hash.Hash
	schema string
	seq    int64
	n      int
	buf    bytes.Buffer
}

func newBundleHasher(schema string, bundleSeq int64) *bundleHasher {
	b := &bundleHasher{h: sha256.New(), schema: schema, seq: bundleSeq}
	b.h.Write([]byte{'['})
	return b
}

// add appends row number b.n (its row_ordinal).
func (b *bundleHasher) add(r hashRow) error {
	var payload any
	if r.Op != opDelete && r.Payload != nil {
		if err := json.Unmarshal(r.Payload, &payload); err != nil {
			return fmt.Errorf("decode payload of %s %s: %w", r.Table, r.KeyText, err)
		}
	}
	obj := map[string]any{
		"key":         map[string]any{r.KeyCol: r.KeyText},
		"op":          r.Op,
		"payload":     payload,
		"row_ordinal": float64(b.n),
		"row_version": float64(b.seq),
		"schema":      b.schema,
		"table":       r.Table,
	}
	out, err := json.Marshal(obj)
	if err != nil {
		return fmt.Errorf("encode bundle row: %w", err)
	}
	if b.n > 0 {
		b.h.Write([]byte{','})
	}
	b.h.Write(out)
	b.n++
	return nil
}

// sum returns the lowercase hex digest.
func (b *bundleHasher) sum() string {
	b.h.Write([]byte{']'})
	return hex.EncodeToString(b.h.Sum(nil))
}
