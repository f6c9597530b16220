package tenant

import (
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/pem"
	"errors"
	"fmt"
	"net"
	"net/url"
	"strings"
	"time"
)

// AuthMode says how a tenant's end-user JWTs are verified.
type AuthMode string

// The supported end-user token verification modes.
const (
	// AuthHS256 verifies HS256 tokens with one of the tenant's shared secrets.
	AuthHS256 AuthMode = "hs256"
	// AuthPublicKeys verifies asymmetric tokens with PEM public keys the tenant pasted.
	AuthPublicKeys AuthMode = "public_keys"
	// AuthJWKS verifies asymmetric tokens with keys fetched from the tenant's JWK Set URL.
	AuthJWKS AuthMode = "jwks"
)

// Limits on AuthSettings. They bound the work a single token verification may cost
// and the size of the stored settings.
const (
	// MinHS256SecretBytes is the shortest accepted HS256 secret (RFC 7518 §3.2: at
	// least the hash output size).
	MinHS256SecretBytes = 32
	// MaxHS256SecretBytes is the longest accepted HS256 secret.
	MaxHS256SecretBytes = 512
	// MaxAuthKeys caps hs256_secrets and public_keys_pem; every token may be tried
	// against each of them.
	MaxAuthKeys = 8
	// MinRSABits is the smallest accepted RSA public key.
	MinRSABits = 2048
	// MaxRSABits is the largest accepted RSA public key; bigger ones only cost CPU.
	MaxRSABits = 8192
	// DefaultLeewaySeconds is the clock skew allowed when leeway_seconds is zero.
	DefaultLeewaySeconds = 30
	// MaxLeewaySeconds is the largest configurable clock skew.
	MaxLeewaySeconds = 300

	maxAuthURLBytes   = 2048
	maxAuthClaimBytes = 1024
	maxPEMBytes       = 16 << 10
)

// AuthSettings is a tenant's end-user token verification configuration, stored as
// JSON (snake_case) in the control plane. Only the fields of the selected Mode may be
// set; Validate refuses the others so a stale setting never looks active.
type AuthSettings struct {
	// Mode selects the verification method.
	Mode AuthMode `json:"mode"`
	// HS256Secrets are the shared secrets of AuthHS256, used as the raw bytes of the
	// string exactly as typed (not base64-decoded). Several are allowed so a secret
	// can be rotated; each must be at least MinHS256SecretBytes long.
	HS256Secrets []string `json:"hs256_secrets,omitempty"`
	// PublicKeysPEM are the keys of AuthPublicKeys: PEM "PUBLIC KEY" (PKIX) or
	// "RSA PUBLIC KEY" (PKCS #1) blocks holding RSA (>= 2048 bits), ECDSA P-256/P-384
	// or Ed25519 keys, one key per entry.
	PublicKeysPEM []string `json:"public_keys_pem,omitempty"`
	// JWKSURL is the JWK Set of AuthJWKS. It must be https, except plain http to
	// 127.0.0.1, ::1 or localhost, which development setups and tests use.
	JWKSURL string `json:"jwks_url,omitempty"`
	// Issuer, when set, must equal the token's iss claim.
	Issuer string `json:"issuer,omitempty"`
	// Audience, when set, must be one of the token's aud values.
	Audience string `json:"audience,omitempty"`
	// LeewaySeconds is the clock skew allowed on exp, nbf and iat; zero means
	// DefaultLeewaySeconds, the maximum is MaxLeewaySeconds.
	LeewaySeconds int `json:"leeway_seconds,omitempty"`
}

// Validate reports the first problem with the settings, naming the JSON field, such
// as "hs256_secrets[0]: must be at least 32 bytes". Every PEM key is parsed.
func (a AuthSettings) Validate() error {
	switch a.Mode {
	case AuthHS256:
		if err := a.onlyFields("hs256_secrets"); err != nil {
			return err
		}
		if err := validateList("hs256_secrets", a.HS256Secrets); err != nil {
			return err
		}
		seen := make(map[string]int, len(a.HS256Secrets))
		for i, s := range a.HS256Secrets {
			switch {
			case len(s) < MinHS256SecretBytes:
				return fmt.Errorf("hs256_secrets[%d]: must be at least %d bytes", i, MinHS256SecretBytes)
			case len(s) > MaxHS256SecretBytes:
				return fmt.Errorf("hs256_secrets[%d]: must be at most %d bytes", i, MaxHS256SecretBytes)
			}
			if j, dup := seen[s]; dup {
				return fmt.Errorf("hs256_secrets[%d]: duplicate of hs256_secrets[%d]", i, j)
			}
			seen[s] = i
		}
	case AuthPublicKeys:
		if err := a.onlyFields("public_keys_pem"); err != nil {
			return err
		}
		if err := validateList("public_keys_pem", a.PublicKeysPEM); err != nil {
			return err
		}
		for i, p := range a.PublicKeysPEM {
			if _, err := ParsePublicKeyPEM(p); err != nil {
				return fmt.Errorf("public_keys_pem[%d]: %w", i, err)
			}
		}
	case AuthJWKS:
		if err := a.onlyFields("jwks_url"); err != nil {
			return err
		}
		if err := validateJWKSURL(a.JWKSURL); err != nil {
			return fmt.Errorf("jwks_url: %w", err)
		}
	case "":
		return errors.New("mode: is required (hs256, public_keys or jwks)")
	default:
		return fmt.Errorf("mode: unknown mode %q (want hs256, public_keys or jwks)", string(a.Mode))
	}
	if err := validateClaim("issuer", a.Issuer); err != nil {
		return err
	}
	if err := validateClaim("audience", a.Audience); err != nil {
		return err
	}
	if a.LeewaySeconds < 0 || a.LeewaySeconds > MaxLeewaySeconds {
		return fmt.Errorf("leeway_seconds: must be between 0 and %d, got %d", MaxLeewaySeconds, a.LeewaySeconds)
	}
	return nil
}

// Leeway is the clock skew allowed on time claims, with the default applied.
func (a AuthSettings) Leeway() time.Duration {
	if a.LeewaySeconds == 0 {
		return DefaultLeewaySeconds * time.Second
	}
	return time.Duration(a.LeewaySeconds) * time.Second
}

// Redacted returns a copy safe to display: each HS256 secret is replaced by "…"
// followed by its last four characters (or "…" alone for a secret too short to
// spare them). Public keys and URLs are not secret and stay. The receiver is not
// modified.
func (a AuthSettings) Redacted() AuthSettings {
	r := a
	if a.HS256Secrets != nil {
		r.HS256Secrets = make([]string, len(a.HS256Secrets))
		for i, s := range a.HS256Secrets {
			r.HS256Secrets[i] = redact(s)
		}
	}
	if a.PublicKeysPEM != nil {
		r.PublicKeysPEM = append([]string(nil), a.PublicKeysPEM...)
	}
	return r
}

func redact(s string) string {
	runes := []rune(s)
	if len(runes) < 16 {
		return "…"
	}
	return "…" + string(runes[len(runes)-4:])
}

// GenerateHS256Secret returns a new random HS256 secret: 32 bytes from crypto/rand,
// base64url-encoded without padding (43 characters). The tenant's app signs with
// the string itself.
func GenerateHS256Secret() (string, error) {
	b := make([]byte, 32)
	if _, err := rand.Read(b); err != nil {
		return "", fmt.Errorf("generate hs256 secret: %w", err)
	}
	return base64.RawURLEncoding.EncodeToString(b), nil
}

// ParsePublicKeyPEM parses one PEM public key accepted by AuthPublicKeys and returns
// a *rsa.PublicKey, *ecdsa.PublicKey (P-256 or P-384) or ed25519.PublicKey. The text
// must hold exactly one PEM block. Errors are safe to show to the tenant.
func ParsePublicKeyPEM(s string) (crypto.PublicKey, error) {
	if len(s) > maxPEMBytes {
		return nil, fmt.Errorf("must be at most %d bytes", maxPEMBytes)
	}
	block, rest := pem.Decode([]byte(s))
	if block == nil {
		return nil, errors.New("not a PEM block (want -----BEGIN PUBLIC KEY-----)")
	}
	if strings.TrimSpace(string(rest)) != "" {
		return nil, errors.New("must hold exactly one PEM block")
	}
	var (
		key any
		err error
	)
	switch block.Type {
	case "PUBLIC KEY":
		key, err = x509.ParsePKIXPublicKey(block.Bytes)
	case "RSA PUBLIC KEY":
		key, err = x509.ParsePKCS1PublicKey(block.Bytes)
	default:
		if strings.Contains(block.Type, "PRIVATE KEY") {
			return nil, errors.New("this is a private key; paste the public key only")
		}
		return nil, fmt.Errorf("PEM block type %q is not a public key (want PUBLIC KEY)", block.Type)
	}
	if err != nil {
		return nil, fmt.Errorf("parse %s: %w", block.Type, err)
	}
	switch k := key.(type) {
	case *rsa.PublicKey:
		if bits := k.N.BitLen(); bits < MinRSABits || bits > MaxRSABits {
			return nil, fmt.Errorf("RSA key has %d bits, want %d to %d", bits, MinRSABits, MaxRSABits)
		}
	case *ecdsa.PublicKey:
		if k.Curve != elliptic.P256() && k.Curve != elliptic.P384() {
			return nil, fmt.Errorf("ECDSA curve %s is not supported (want P-256 or P-384)", k.Curve.Params().Name)
		}
	case ed25519.PublicKey:
	default:
		return nil, fmt.Errorf("key type %T is not supported (want RSA, ECDSA or Ed25519)", key)
	}
	return key, nil
}

// onlyFields refuses key material that belongs to a mode other than the selected one.
func (a AuthSettings) onlyFields(allowed string) error {
	set := map[string]bool{
		"hs256_secrets":   len(a.HS256Secrets) > 0,
		"public_keys_pem": len(a.PublicKeysPEM) > 0,
		"jwks_url":        a.JWKSURL != "",
	}
	for _, f := range []string{"hs256_secrets", "public_keys_pem", "jwks_url"} {
		if f != allowed && set[f] {
			return fmt.Errorf("%s: must be empty in %s mode", f, a.Mode)
		}
	}
	return nil
}

func validateList(field string, list []string) error {
	switch {
	case len(list) == 0:
		return fmt.Errorf("%s: at least one is required", field)
	case len(list) > MaxAuthKeys:
		return fmt.Errorf("%s: at most %d are allowed", field, MaxAuthKeys)
	}
	return nil
}

func validateClaim(field, v string) error {
	if len(v) > maxAuthClaimBytes {
		return fmt.Errorf("%s: must be at most %d bytes", field, maxAuthClaimBytes)
	}
	if v != strings.TrimSpace(v) {
		return fmt.Errorf("%s: must not start or end with spaces", field)
	}
	return nil
}

func validateJWKSURL(raw string) error {
	if raw == "" {
		return errors.New("is required in jwks mode")
	}
	if len(raw) > maxAuthURLBytes {
		return fmt.Errorf("must be at most %d bytes", maxAuthURLBytes)
	}
	u, err := url.Parse(raw)
	if err != nil {
		return errors.New("not a valid URL")
	}
	if u.Host == "" || u.Hostname() == "" {
		return errors.New("must be an absolute URL with a host")
	}
	if u.User != nil {
		return errors.New("must not contain credentials")
	}
	if u.Fragment != "" {
		return errors.New("must not contain a fragment")
	}
	switch u.Scheme {
	case "https":
	case "http":
		if !isLoopbackHost(u.Hostname()) {
			return errors.New("must use https (plain http only to 127.0.0.1 or localhost)")
		}
	default:
		return fmt.Errorf("scheme %q is not allowed (want https)", u.Scheme)
	}
	return nil
}

// isLoopbackHost reports the host names plain-http JWKS URLs may use.
func isLoopbackHost(h string) bool {
	if strings.EqualFold(h, "localhost") {
		return true
	}
	ip := net.ParseIP(h)
	return ip != nil && (ip.Equal(net.IPv4(127, 0, 0, 1)) || ip.Equal(net.IPv6loopback))
}
