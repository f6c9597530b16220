package tenant

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"crypto/sha256"
	"encoding/base64"
	"encoding/hex"
	"errors"
	"fmt"
	"strconv"
	"strings"
)

// SealKeyBytes is the length of a seal key: AES-256.
const SealKeyBytes = 32

// sealVersion prefixes every sealed value; a later format gets a new one.
const sealVersion = "v1"

// ErrSealKeyMissing is returned when a tenant's settings hold sealed secrets
// that none of the configured seal keys opens (no keys at all, or the key
// that sealed them was removed before `syncplane tenant auth reseal`).
var ErrSealKeyMissing = errors.New("sealed HS256 secrets: no configured seal key (SYNCPLANE_SEAL_KEYS) opens them")

// Sealer seals the tenants' HS256 secrets at rest with AES-256-GCM: a
// database dump or a read-only leak of the control plane then does not let
// anyone mint end-user tokens for the tenants. The first key seals; every
// key opens, so a key is rotated by putting the new one first, running
// `syncplane tenant auth reseal` and then dropping the old one. A sealed value
// is bound to its tenant: moved to another tenant's row it does not open.
type Sealer struct {
	keys []sealKey // keys[0] seals
}

type sealKey struct {
	id   string // first 4 bytes of the key's SHA-256, hex: picks the key to open with
	aead cipher.AEAD
}

// ParseSealKeys parses SYNCPLANE_SEAL_KEYS: base64 (standard or URL-safe,
// padded or not) encodings of 32 random bytes, separated by spaces or commas,
// the first sealing. Empty text gives a nil Sealer: secrets are stored
// unsealed.
func ParseSealKeys(text string) (*Sealer, error) {
	fields := strings.FieldsFunc(text, func(r rune) bool { return r == ' ' || r == ',' || r == '\t' || r == '\n' })
	if len(fields) == 0 {
		return nil, nil
	}
	s := &Sealer{}
	seen := map[string]bool{}
	for i, f := range fields {
		raw, err := decodeSealKey(f)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		k, err := newSealKey(raw)
		if err != nil {
			return nil, fmt.Errorf("key %d: %w", i+1, err)
		}
		if seen[k.id] {
			return nil, fmt.Errorf("key %d: repeats an earlier key", i+1)
		}
		seen[k.id] = true
		s.keys = append(s.keys, k)
	}
	return s, nil
}

// NewSealKey returns a fresh random key in the form ParseSealKeys reads.
func NewSealKey() string {
	b := make([]byte, SealKeyBytes)
	if _, err := rand.Read(b); err != nil {
		panic(err) // crypto/rand does not fail on supported platforms
	}
	return base64.StdEncoding.EncodeToString(b)
}

func decodeSealKey(f string) ([]byte, error) {
	for _, enc := range []*base64.Encoding{base64.StdEncoding, base64.RawStdEncoding, base64.URLEncoding, base64.RawURLEncoding} {
		if raw, err := enc.DecodeString(f); err == nil {
			if len(raw) != SealKeyBytes {
				return nil, fmt.Errorf("want the base64 of %d bytes, got %d bytes (make one with: openssl rand -base64 32)", SealKeyBytes, len(raw))
			}
			return raw, nil
		}
	}
	return nil, errors.New("not base64 (make one with: openssl rand -base64 32)")
}

func newSealKey(raw []byte) (sealKey, error) {
	block, err := aes.NewCipher(raw)
	if err != nil {
		return sealKey{}, err
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return sealKey{}, err
	}
	sum := sha256.Sum256(raw)
	return sealKey{id: hex.EncodeToString(sum[:4]), aead: aead}, nil
}

// sealAAD binds a sealed secret to its tenant and purpose.
func sealAAD(tenantID int64) []byte {
	return []byte("syncplane/tenant_auth/hs256/" + strconv.FormatInt(tenantID, 10))
}

// seal returns "v1:<key id>:<base64url(nonce ‖ ciphertext)>".
func (s *Sealer) seal(tenantID int64, secret string) (string, error) {
	k := s.keys[0]
	nonce := make([]byte, k.aead.NonceSize(), k.aead.NonceSize()+len(secret)+k.aead.Overhead())
	if _, err := rand.Read(nonce); err != nil {
		return "", fmt.Errorf("seal: %w", err)
	}
	out := k.aead.Seal(nonce, nonce, []byte(secret), sealAAD(tenantID))
	return sealVersion + ":" + k.id + ":" + base64.RawURLEncoding.EncodeToString(out), nil
}

// open reverses seal. It also reports whether the value was sealed with a
// key other than the sealing one (reseal rewrites those).
func (s *Sealer) open(tenantID int64, sealed string) (secret string, stale bool, err error) {
	ver, rest, ok := strings.Cut(sealed, ":")
	id, body, ok2 := strings.Cut(rest, ":")
	if !ok || !ok2 || ver != sealVersion {
		return "", false, errors.New("sealed HS256 secret: unknown format")
	}
	if s == nil {
		return "", false, ErrSealKeyMissing
	}
	for i, k := range s.keys {
		if k.id != id {
			continue
		}
		raw, err := base64.RawURLEncoding.DecodeString(body)
		if err != nil || len(raw) < k.aead.NonceSize() {
			return "", false, errors.New("sealed HS256 secret: corrupt value")
		}
		n := k.aead.NonceSize()
		plain, err := k.aead.Open(nil, raw[:n], raw[n:], sealAAD(tenantID))
		if err != nil {
			return "", false, errors.New("sealed HS256 secret: does not open (tampered, or sealed for another tenant)")
		}
		return string(plain), i > 0, nil
	}
	return "", false, fmt.Errorf("%w (it was sealed with key %s)", ErrSealKeyMissing, id)
}
