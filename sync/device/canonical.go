package device

import (
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"fmt"
)

// CanonicalJSON re-encodes a JSON text in the protocol's canonical form
// (section 5.6): exactly what Go's encoding/json produces when it marshals a
// generically decoded value. Members are sorted, numbers pass through IEEE-754
// doubles and strings use HTML-safe escaping (<, >, &, U+2028, U+2029).
func CanonicalJSON(data []byte) ([]byte, error) {
	var v any
	if err := json.Unmarshal(data, &v); err != nil {
		return nil, err
	}
	return json.Marshal(v)
}

// HashRow is one bundle row as hashed by BundleHash.
type HashRow struct {
	Schema     string
	Table      string
	Key        json.RawMessage // the key object
	Op         string
	RowVersion int64
	Payload    json.RawMessage // nil, empty or "null" for DELETE
}

// BundleHash computes a bundle's bundle_hash (section 5.7): the lowercase hex
// SHA-256 of the canonical JSON of the array of rows, row i being
// {"key","op","payload","row_ordinal":i,"row_version","schema","table"}.
func BundleHash(rows []HashRow) (string, error) {
	h, err := newBundleHasher()
	if err != nil {
		return "", err
	}
	for _, r := range rows {
		if err := h.add(r); err != nil {
			return "", err
		}
	}
	return h.sum(), nil
}

// bundleHasher hashes a bundle's rows incrementally, so committed-bundle
// pages can be verified without holding the whole canonical text.
type bundleHasher struct {
	sha     hashWriter
	ordinal int64
}

type hashWriter interface {
	Write([]byte) (int, error)
	Sum([]byte) []byte
}

func newBundleHasher() (*bundleHasher, error) {
	h := &bundleHasher{sha: sha256.New()}
	h.sha.Write([]byte{'['})
	return h, nil
}

func (h *bundleHasher) add(r HashRow) error {
	var key, payload any
	if err := json.Unmarshal(r.Key, &key); err != nil {
		return fmt.Errorf("bundle row %d: key: %w", h.ordinal, err)
	}
	if !isNullJSON(r.Payload) {
		if err := json.Unmarshal(r.Payload, &payload); err != nil {
			return fmt.Errorf("bundle row %d: payload: %w", h.ordinal, err)
		}
	}
	b, err := json.Marshal(map[string]any{
		"key":         key,
		"op":          r.Op,
		"payload":     payload,
		"row_ordinal": float64(h.ordinal),
		"row_version": float64(r.RowVersion),
		"schema":      r.Schema,
		"table":       r.Table,
	})
	if err != nil {
		return fmt.Errorf("bundle row %d: %w", h.ordinal, err)
	}
	if h.ordinal > 0 {
		h.sha.Write([]byte{','})
	}
	h.sha.Write(b)
	h.ordinal++
	return nil
}

func (h *bundleHasher) sum() string {
	h.sha.Write([]byte{']'})
	return hex.EncodeToString(h.sha.Sum(nil))
}

// isNullJSON reports whether raw is absent or the JSON null literal.
func isNullJSON(raw json.RawMessage) bool {
	t := trimSpace(raw)
	return len(t) == 0 || string(t) == "null"
}

func trimSpace(b []byte) []byte {
	for len(b) > 0 && (b[0] == ' ' || b[0] == '\t' || b[0] == '\r' || b[0] == '\n') {
		b = b[1:]
	}
	for len(b) > 0 && (b[len(b)-1] == ' ' || b[len(b)-1] == '\t' || b[len(b)-1] == '\r' || b[len(b)-1] == '\n') {
		b = b[:len(b)-1]
	}
	return b
}
