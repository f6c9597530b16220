package sync

import (
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
	buf    []byte
	canon  canonicalizer
}

func newBundleHasher(schema string, bundleSeq int64) *bundleHasher {
	b := &bundleHasher{h: sha256.New(), schema: schema, seq: bundleSeq}
	b.h.Write([]byte{'['})
	return b
}

// add appends row number b.n (its row_ordinal). The object's members are
// written in their sorted order: key, op, payload, row_ordinal,
// row_version, schema, table.
func (b *bundleHasher) add(r hashRow) error {
	buf := b.buf[:0]
	if b.n > 0 {
		buf = append(buf, ',')
	}
	buf = append(buf, `{"key":{`...)
	buf = appendString(buf, r.KeyCol)
	buf = append(buf, ':')
	buf = appendString(buf, r.KeyText)
	buf = append(buf, `},"op":`...)
	buf = appendString(buf, r.Op)
	buf = append(buf, `,"payload":`...)
	if r.Op == opDelete || r.Payload == nil {
		buf = append(buf, "null"...)
	} else {
		var err error
		var rest []byte
		buf, rest, err = b.canon.append(buf, r.Payload)
		if err != nil || len(skipSpace(rest)) != 0 {
			return fmt.Errorf("canonicalize payload of %s %s: %v", r.Table, r.KeyText, err)
		}
	}
	buf = append(buf, `,"row_ordinal":`...)
	buf = appendFloat(buf, float64(b.n))
	buf = append(buf, `,"row_version":`...)
	buf = appendFloat(buf, float64(b.seq))
	buf = append(buf, `,"schema":`...)
	buf = appendString(buf, b.schema)
	buf = append(buf, `,"table":`...)
	buf = appendString(buf, r.Table)
	buf = append(buf, '}')
	b.h.Write(buf)
	b.buf = buf
	b.n++
	return nil
}

// sum returns the lowercase hex digest.
func (b *bundleHasher) sum() string {
	b.h.Write([]byte{']'})
	return hex.EncodeToString(b.h.Sum(nil))
}
