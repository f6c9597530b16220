package tenant

import (
	"crypto/rand"
	"crypto/sha256"
	"fmt"
	"math/big"
	"strings"
	"time"
)

// KeyKind is the kind of an API key.
type KeyKind string

// API key kinds. Publishable keys ship inside apps and only identify the
// tenant for sync traffic; secret keys authenticate the tenant's own backend.
const (
	KeyPublishable KeyKind = "publishable"
	KeySecret      KeyKind = "secret"
)

// Prefix is the recognizable start of every key of this kind.
func (k KeyKind) Prefix() string {
	if k == KeySecret {
		return "sp_sk_"
	}
	return "sp_pk_"
}

// ParseKeyKind validates a key kind name.
func ParseKeyKind(s string) (KeyKind, error) {
	switch KeyKind(s) {
	case KeyPublishable, KeySecret:
		return KeyKind(s), nil
	}
	return "", &ValidationError{Field: "kind", Message: fmt.Sprintf("key kind %q is invalid: use publishable or secret", s)}
}

const (
	keyAlphabet   = "0123456789ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz"
	keyBodyLen    = 40 // 40 base62 characters: about 238 bits of entropy
	keyDisplayLen = 4  // body characters kept for display after the prefix
)

// APIKey is a key's stored record; the secret itself is never stored.
type APIKey struct {
	ID         int64
	TenantID   int64
	Kind       KeyKind
	Label      string
	Display    string // e.g. "sp_pk_a8Zq…"
	CreatedAt  time.Time
	LastUsedAt *time.Time
	RevokedAt  *time.Time
}

// NewKeySecret generates the full text of a new key of kind k.
func NewKeySecret(k KeyKind) (string, error) {
	var b strings.Builder
	b.WriteString(k.Prefix())
	max := big.NewInt(int64(len(keyAlphabet)))
	for range keyBodyLen {
		n, err := rand.Int(rand.Reader, max)
		if err != nil {
			return "", fmt.Errorf("generate key: %w", err)
		}
		b.WriteByte(keyAlphabet[n.Int64()])
	}
	return b.String(), nil
}

// KeyHash is the stored digest of a key. Keys carry ~238 random bits, so a
// fast hash is enough: there is nothing to brute-force.
func KeyHash(key string) []byte {
	h := sha256.Sum256([]byte(key))
	return h[:]
}

// KeyDisplay is the short, non-secret form of a key shown in lists.
func KeyDisplay(key string) string {
	kind := keyKindOf(key)
	if kind == "" {
		return ""
	}
	return key[:len(kind.Prefix())+keyDisplayLen] + "…"
}

// KeyKindOf returns the kind a key's text claims, or "" when it is not
// shaped like a Syncplane key (checked before any database look-up).
func KeyKindOf(key string) KeyKind { return keyKindOf(key) }

func keyKindOf(key string) KeyKind {
	for _, k := range []KeyKind{KeyPublishable, KeySecret} {
		p := k.Prefix()
		if len(key) == len(p)+keyBodyLen && strings.HasPrefix(key, p) {
			for i := len(p); i < len(key); i++ {
				if !strings.ContainsRune(keyAlphabet, rune(key[i])) {
					return ""
				}
			}
			return k
		}
	}
	return ""
}
