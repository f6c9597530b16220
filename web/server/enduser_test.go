package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/pem"
	"errors"
	"net/http"
	"net/http/httptest"
	"net/netip"
	"strings"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"github.com/MicahParks/jwkset"
	"github.com/golang-jwt/jwt/v5"
	"github.com/stretchr/testify/require"

	"github.com/syncplane/syncplane/tenant"
)

// now is the injected clock of every verifier here.
var now = time.Date(2026, 3, 4, 12, 0, 0, 0, time.UTC)

func clock() time.Time { return now }

type testKeys struct {
	rsa, rsa2 *rsa.PrivateKey
	ec, ec2   *ecdsa.PrivateKey
	ed        ed25519.PrivateKey
}

// keys are generated once: RSA generation dominates the test's run time.
var keys = sync.OnceValue(func() testKeys {
	must := func(err error) {
		if err != nil {
			panic(err)
		}
	}
	var k testKeys
	var err error
	k.rsa, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.rsa2, err = rsa.GenerateKey(rand.Reader, 2048)
	must(err)
	k.ec, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	k.ec2, err = ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	must(err)
	_, k.ed, err = ed25519.GenerateKey(rand.Reader)
	must(err)
	return k
})

func pemOf(t *testing.T, pub crypto.PublicKey) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

// claims returns valid claims for user-1, with edits applied; a nil value deletes
// the claim.
func claims(edits map[string]any) jwt.MapClaims {
	c := jwt.MapClaims{
		"sub": "user-1",
		"iat": now.Add(-time.Minute).Unix(),
		"exp": now.Add(time.Hour).Unix(),
	}
	for k, v := range edits {
		if v == nil {
			delete(c, k)
			continue
		}
		c[k] = v
	}
	return c
}

// sign signs c with m and key; header entries are added to the JOSE header.
func sign(t *testing.T, m jwt.SigningMethod, key any, c jwt.MapClaims, header map[string]any) string {
	t.Helper()
	tok := jwt.NewWithClaims(m, c)
	for k, v := range header {
		tok.Header[k] = v
	}
	s, err := tok.SignedString(key)
	require.NoError(t, err)
	return s
}

func newVerifier(t *testing.T, s tenant.AuthSettings, opts ...VerifierOption) *TokenVerifier {
	t.Helper()
	v, err := NewTokenVerifier(t.Context(), s, append([]VerifierOption{WithClock(clock)}, opts...)...)
	require.NoError(t, err)
	t.Cleanup(v.Close)
	return v
}

// requireReject checks that err is a *TokenError with the given reason.
func requireReject(t *testing.T, err error, reason string) {
	t.Helper()
	require.Error(t, err)
	var te *TokenError
	require.True(t, errors.As(err, &te), "want *TokenError, got %T: %v", err, err)
	require.Equal(t, reason, te.Reason, "cause: %v", te.Err)
}

func TestTokenVerifierVerify(t *testing.T) {
	k := keys()
	secretA := strings.Repeat("a", 32)
	secretA2 := "second-secret-of-tenant-a-0123456789"
	secretB := strings.Repeat("b", 32)
	rsaPEM := pemOf(t, &k.rsa.PublicKey)

	hsA := tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretA, secretA2}}
	hsB := tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{secretB}}
	hsIssAud := hsA
	hsIssAud.Issuer, hsIssAud.Audience = "https://auth.example.com/", "notes-app"
	hsLeeway5 := hsA
	hsLeeway5.LeewaySeconds = 5
	pk := tenant.AuthSettings{Mode: tenant.AuthPublicKeys, PublicKeysPEM: []string{
		rsaPEM, pemOf(t, &k.ec.PublicKey), pemOf(t, k.ed.Public()),
	}}
	rsaOnly := tenant.AuthSettings{Mode: tenant.AuthPublicKeys, PublicKeysPEM: []string{rsaPEM}}

	hs := func(secret string, c jwt.MapClaims) string {
		return sign(t, jwt.SigningMethodHS256, []byte(secret), c, nil)
	}
	none := sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), nil)
	good := hs(secretA, claims(nil))
	other := hs(secretA, claims(map[string]any{"sub": "user-2"}))
	spliced := good[:strings.LastIndex(good, ".")] + other[strings.LastIndex(other, "."):]
	rs := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), nil)
	rsWrongSig := rs[:strings.LastIndex(rs, ".")+1] + strings.Repeat("A", len(rs)-strings.LastIndex(rs, ".")-1)

	tests := []struct {
		name     string
		settings tenant.AuthSettings
		token    string
		wantSub  string
		reason   string // empty: accepted with wantSub
	}{
		{"hs256 first secret", hsA, good, "user-1", ""},
		{"hs256 rotated second secret", hsA, hs(secretA2, claims(map[string]any{"sub": "user-9"})), "user-9", ""},
		{"hs256 surrounding spaces", hsA, " " + good + "\n", "user-1", ""},
		{"other tenant's secret", hsB, good, "", "signature invalid"},
		{"unknown secret", hsA, hs(strings.Repeat("z", 32), claims(nil)), "", "signature invalid"},
		{"spliced signature", hsA, spliced, "", "signature invalid"},
		{"HS384 in hs256 mode", hsA, sign(t, jwt.SigningMethodHS384, []byte(secretA), claims(nil), nil), "", "algorithm HS384 not allowed for this tenant"},
		{"RS256 in hs256 mode", hsA, rs, "", "algorithm RS256 not allowed for this tenant"},
		{"alg none hs256 mode", hsA, none, "", "algorithm none not allowed for this tenant"},
		{"alg none public_keys mode", pk, none, "", "algorithm none not allowed for this tenant"},
		{"unknown alg", hsA, "eyJhbGciOiJYWVoifQ." + strings.Split(good, ".")[1] + ".c2ln", "", "algorithm XYZ not allowed for this tenant"},

		{"RS256 pem", pk, rs, "user-1", ""},
		{"RS512 pem", pk, sign(t, jwt.SigningMethodRS512, k.rsa, claims(nil), nil), "user-1", ""},
		{"PS256 pem", pk, sign(t, jwt.SigningMethodPS256, k.rsa, claims(nil), nil), "user-1", ""},
		{"ES256 pem", pk, sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil), "user-1", ""},
		{"EdDSA pem", pk, sign(t, jwt.SigningMethodEdDSA, k.ed, claims(nil), nil), "user-1", ""},
		{"PS384 not offered", pk, sign(t, jwt.SigningMethodPS384, k.rsa, claims(nil), nil), "", "algorithm PS384 not allowed for this tenant"},
		{"ES256 with only an RSA key", rsaOnly, sign(t, jwt.SigningMethodES256, k.ec, claims(nil), nil), "", "algorithm ES256 not allowed for this tenant"},
		{"RS256 other key", pk, sign(t, jwt.SigningMethodRS256, k.rsa2, claims(nil), nil), "", "signature invalid"},
		{"ES256 other key", pk, sign(t, jwt.SigningMethodES256, k.ec2, claims(nil), nil), "", "signature invalid"},
		{"RS256 wrong signature", pk, rsWrongSig, "", "signature invalid"},
		{
			"algorithm confusion: HS256 keyed with the RSA PEM", rsaOnly,
			sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), claims(nil), nil), "",
			"algorithm HS256 not allowed for this tenant",
		},

		{"expired", hsA, hs(secretA, claims(map[string]any{"exp": now.Add(-time.Hour).Unix()})), "", "token expired"},
		{"expired within leeway", hsA, hs(secretA, claims(map[string]any{"exp": now.Add(-20 * time.Second).Unix()})), "user-1", ""},
		{"expired beyond custom leeway", hsLeeway5, hs(secretA, claims(map[string]any{"exp": now.Add(-20 * time.Second).Unix()})), "", "token expired"},
		{"nbf beyond leeway", hsA, hs(secretA, claims(map[string]any{"nbf": now.Add(5 * time.Minute).Unix()})), "", "token not valid yet"},
		{"nbf within leeway", hsA, hs(secretA, claims(map[string]any{"nbf": now.Add(20 * time.Second).Unix()})), "user-1", ""},
		{"iat beyond leeway", hsA, hs(secretA, claims(map[string]any{"iat": now.Add(5 * time.Minute).Unix()})), "", "token issued in the future"},
		{"missing exp", hsA, hs(secretA, claims(map[string]any{"exp": nil})), "", "missing exp claim"},
		{"exp not a number", hsA, hs(secretA, claims(map[string]any{"exp": "tomorrow"})), "", "malformed token"},

		{"issuer and audience", hsIssAud, hs(secretA, claims(map[string]any{"iss": "https://auth.example.com/", "aud": []string{"other", "notes-app"}})), "user-1", ""},
		{"wrong issuer", hsIssAud, hs(secretA, claims(map[string]any{"iss": "https://evil.example.com/", "aud": "notes-app"})), "", "wrong issuer"},
		{"missing issuer", hsIssAud, hs(secretA, claims(map[string]any{"aud": "notes-app"})), "", "missing iss claim"},
		{"wrong audience", hsIssAud, hs(secretA, claims(map[string]any{"iss": "https://auth.example.com/", "aud": "other-app"})), "", "wrong audience"},
		{"missing audience", hsIssAud, hs(secretA, claims(map[string]any{"iss": "https://auth.example.com/"})), "", "missing aud claim"},

		{"missing sub", hsA, hs(secretA, claims(map[string]any{"sub": nil})), "", "missing sub claim"},
		{"empty sub", hsA, hs(secretA, claims(map[string]any{"sub": ""})), "", "missing sub claim"},
		{"sub 256 bytes", hsA, hs(secretA, claims(map[string]any{"sub": strings.Repeat("u", 256)})), strings.Repeat("u", 256), ""},
		{"sub 257 bytes", hsA, hs(secretA, claims(map[string]any{"sub": strings.Repeat("u", 257)})), "", "sub claim longer than 256 bytes"},
		{"sub with NUL", hsA, hs(secretA, claims(map[string]any{"sub": "a\x00b"})), "", "sub claim contains control characters"},
		{"sub not a string", hsA, hs(secretA, claims(map[string]any{"sub": 42})), "", "malformed token"},

		{"crit header", hsA, sign(t, jwt.SigningMethodHS256, []byte(secretA), claims(nil), map[string]any{"crit": []string{"exp"}}), "", "unsupported crit header"},
		{"garbage", hsA, "not-a-jwt", "", "malformed token"},
		{"three garbage segments", hsA, "a.b.c", "", "malformed token"},
		{"empty", hsA, "", "", "missing token"},
		{"too large", hsA, strings.Repeat("a", maxTokenBytes+1), "", "token too large"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			v := newVerifier(t, tt.settings)
			sub, err := v.Verify(t.Context(), tt.token)
			if tt.reason == "" {
				require.NoError(t, err)
				require.Equal(t, tt.wantSub, sub)
				return
			}
			requireReject(t, err, tt.reason)
			require.Empty(t, sub)
		})
	}
}

func TestTokenErrorUnwrap(t *testing.T) {
	v := newVerifier(t, tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{strings.Repeat("a", 32)}})
	tok := sign(t, jwt.SigningMethodHS256, []byte(strings.Repeat("a", 32)), claims(map[string]any{"exp": now.Add(-time.Hour).Unix()}), nil)
	_, err := v.Verify(t.Context(), tok)
	requireReject(t, err, "token expired")
	require.ErrorIs(t, err, jwt.ErrTokenExpired)
	require.Contains(t, err.Error(), "token expired")
}

func TestNewTokenVerifierInvalidSettings(t *testing.T) {
	_, err := NewTokenVerifier(t.Context(), tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{"short"}})
	require.ErrorContains(t, err, "hs256_secrets[0]: must be at least 32 bytes")
	_, err = NewTokenVerifier(t.Context(), tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: "http://idp.example.com/jwks"})
	require.ErrorContains(t, err, "jwks_url: must use https")
}

// jwksServer serves a JWK Set that tests can replace, and counts requests.
type jwksServer struct {
	*httptest.Server
	body atomic.Pointer[[]byte]
	hits atomic.Int64
}

func newJWKSServer(t *testing.T, set []byte) *jwksServer {
	t.Helper()
	s := &jwksServer{}
	s.body.Store(&set)
	s.Server = httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, _ *http.Request) {
		s.hits.Add(1)
		w.Header().Set("Content-Type", "application/json")
		_, _ = w.Write(*s.body.Load())
	}))
	t.Cleanup(s.Close)
	return s
}

func (s *jwksServer) serve(set []byte) { s.body.Store(&set) }

type jwkSpec struct {
	kid string
	alg jwkset.ALG
	key any // public key
}

// jwkSetJSON builds a public JWK Set with jwkset.
func jwkSetJSON(t *testing.T, specs ...jwkSpec) []byte {
	t.Helper()
	store := jwkset.NewMemoryStorage()
	for _, s := range specs {
		jwk, err := jwkset.NewJWKFromKey(s.key, jwkset.JWKOptions{
			Metadata: jwkset.JWKMetadataOptions{KID: s.kid, ALG: s.alg, USE: jwkset.UseSig},
		})
		require.NoError(t, err)
		require.NoError(t, store.KeyWrite(t.Context(), jwk))
	}
	raw, err := store.JSONPublic(t.Context())
	require.NoError(t, err)
	return raw
}

func TestTokenVerifierJWKS(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwkSetJSON(t,
		jwkSpec{"k-rsa", jwkset.AlgRS256, &k.rsa.PublicKey},
		jwkSpec{"k-ec", jwkset.AlgES256, &k.ec.PublicKey},
		jwkSpec{"k-ed", "", k.ed.Public()},
		jwkSpec{"k-rsa-any", "", &k.rsa2.PublicKey},
	))
	s := tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: srv.URL + "/jwks.json", Issuer: "https://idp.example.com"}
	v := newVerifier(t, s, WithHTTPClient(srv.Client()))
	iss := claims(map[string]any{"iss": "https://idp.example.com"})
	kid := func(id string) map[string]any { return map[string]any{"kid": id} }

	tests := []struct {
		name   string
		token  string
		reason string
	}{
		{"RS256 by kid", sign(t, jwt.SigningMethodRS256, k.rsa, iss, kid("k-rsa")), ""},
		{"ES256 by kid", sign(t, jwt.SigningMethodES256, k.ec, iss, kid("k-ec")), ""},
		{"EdDSA by kid", sign(t, jwt.SigningMethodEdDSA, k.ed, iss, kid("k-ed")), ""},
		{"PS256 with an RSA key without alg", sign(t, jwt.SigningMethodPS256, k.rsa2, iss, kid("k-rsa-any")), ""},
		{"RS256 without kid tries every key", sign(t, jwt.SigningMethodRS256, k.rsa2, iss, nil), ""},
		{"wrong issuer", sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), kid("k-rsa")), "missing iss claim"},
		{"kid of another key", sign(t, jwt.SigningMethodRS256, k.rsa2, iss, kid("k-rsa")), "signature invalid"},
		{"alg differs from the JWK's alg", sign(t, jwt.SigningMethodRS512, k.rsa, iss, kid("k-rsa")), "no matching signing key"},
		{"ES256 naming an RSA kid", sign(t, jwt.SigningMethodES256, k.ec, iss, kid("k-rsa-any")), "no matching signing key"},
		{"HS256 keyed with the JWK Set", sign(t, jwt.SigningMethodHS256, jwkSetJSON(t, jwkSpec{"k-rsa", jwkset.AlgRS256, &k.rsa.PublicKey}), iss, kid("k-rsa")), "algorithm HS256 not allowed for this tenant"},
		{"alg none", sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, iss, kid("k-rsa")), "algorithm none not allowed for this tenant"},
		{"expired", sign(t, jwt.SigningMethodRS256, k.rsa, claims(map[string]any{"iss": "https://idp.example.com", "exp": now.Add(-time.Hour).Unix()}), kid("k-rsa")), "token expired"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			sub, err := v.Verify(t.Context(), tt.token)
			if tt.reason == "" {
				require.NoError(t, err)
				require.Equal(t, "user-1", sub)
				return
			}
			requireReject(t, err, tt.reason)
		})
	}
	require.EqualValues(t, 1, srv.hits.Load(), "known kids must be served from the cache")
}

func TestTokenVerifierJWKSRefreshOnUnknownKID(t *testing.T) {
	k := keys()
	srv := newJWKSServer(t, jwkSetJSON(t, jwkSpec{"old", jwkset.AlgRS256, &k.rsa.PublicKey}))
	v := newVerifier(t, tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: srv.URL}, WithHTTPClient(srv.Client()))
	require.EqualValues(t, 1, srv.hits.Load())

	old := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "old"})
	_, err := v.Verify(t.Context(), old)
	require.NoError(t, err)

	// The identity provider rotates: the new key is served, the old one is gone.
	srv.serve(jwkSetJSON(t, jwkSpec{"new", jwkset.AlgES256, &k.ec.PublicKey}))
	fresh := sign(t, jwt.SigningMethodES256, k.ec, claims(map[string]any{"sub": "user-2"}), map[string]any{"kid": "new"})
	sub, err := v.Verify(t.Context(), fresh)
	require.NoError(t, err)
	require.Equal(t, "user-2", sub)
	require.EqualValues(t, 2, srv.hits.Load())

	// The refresh replaced the cache: the revoked key no longer verifies.
	_, err = v.Verify(t.Context(), old)
	requireReject(t, err, "no matching signing key")

	// Unknown kids are rate limited: no further fetch, and no waiting for one.
	_, err = v.Verify(t.Context(), sign(t, jwt.SigningMethodES256, k.ec, claims(nil), map[string]any{"kid": "bogus"}))
	requireReject(t, err, "no matching signing key")
	require.EqualValues(t, 2, srv.hits.Load())
}

func TestTokenVerifierJWKSRefusesPrivateAddresses(t *testing.T) {
	k := keys()
	set := jwkSetJSON(t, jwkSpec{"k", jwkset.AlgRS256, &k.rsa.PublicKey})
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "k"})

	srv := newJWKSServer(t, set)
	v := newVerifier(t, tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: srv.URL})
	_, err := v.Verify(t.Context(), tok)
	requireReject(t, err, "no matching signing key")
	require.Zero(t, srv.hits.Load(), "the default client must not dial loopback")

	dev := newJWKSServer(t, set)
	v = newVerifier(t, tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: dev.URL}, WithPrivateNetworkJWKS())
	sub, err := v.Verify(t.Context(), tok)
	require.NoError(t, err)
	require.Equal(t, "user-1", sub)
}

func TestTokenVerifierJWKSBodyLimit(t *testing.T) {
	k := keys()
	set := jwkSetJSON(t, jwkSpec{"k", jwkset.AlgRS256, &k.rsa.PublicKey})
	srv := newJWKSServer(t, append([]byte(strings.Repeat(" ", jwksMaxBodyBytes)), set...))
	v := newVerifier(t, tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: srv.URL}, WithHTTPClient(srv.Client()))
	tok := sign(t, jwt.SigningMethodRS256, k.rsa, claims(nil), map[string]any{"kid": "k"})
	_, err := v.Verify(t.Context(), tok)
	requireReject(t, err, "no matching signing key")
	require.EqualValues(t, 2, srv.hits.Load(), "initial fetch and one refresh, both refused")
}

func TestTokenVerifierCloseTwice(t *testing.T) {
	srv := newJWKSServer(t, []byte(`{"keys":[]}`))
	v, err := NewTokenVerifier(context.Background(), tenant.AuthSettings{Mode: tenant.AuthJWKS, JWKSURL: srv.URL}, WithHTTPClient(srv.Client()))
	require.NoError(t, err)
	v.Close()
	v.Close()
	hs, err := NewTokenVerifier(context.Background(), tenant.AuthSettings{Mode: tenant.AuthHS256, HS256Secrets: []string{strings.Repeat("a", 32)}})
	require.NoError(t, err)
	hs.Close()
}

func TestPublicAddr(t *testing.T) {
	tests := []struct {
		addr string
		want bool
	}{
		{"8.8.8.8", true},
		{"2606:4700::1111", true},
		{"127.0.0.1", false},
		{"::1", false},
		{"::ffff:127.0.0.1", false},
		{"10.1.2.3", false},
		{"172.16.0.1", false},
		{"192.168.1.1", false},
		{"169.254.169.254", false},
		{"100.100.100.200", false},
		{"fd00::1", false},
		{"fe80::1", false},
		{"0.0.0.0", false},
		{"224.0.0.1", false},
	}
	for _, tt := range tests {
		t.Run(tt.addr, func(t *testing.T) {
			require.Equal(t, tt.want, publicAddr(netip.MustParseAddr(tt.addr)))
		})
	}
}

// TestAlgorithmLayers checks the two independent defences against algorithm
// confusion: the parser's allow-list refuses the token before any key is looked
// up, and the key lookup itself only hands out keys of the token's family.
func TestAlgorithmLayers(t *testing.T) {
	k := keys()
	rsaPEM := pemOf(t, &k.rsa.PublicKey)
	v := newVerifier(t, tenant.AuthSettings{Mode: tenant.AuthPublicKeys, PublicKeysPEM: []string{
		rsaPEM, pemOf(t, &k.ec.PublicKey), pemOf(t, k.ed.Public()),
	}})

	for _, tok := range []string{
		sign(t, jwt.SigningMethodHS256, []byte(rsaPEM), claims(nil), nil),
		sign(t, jwt.SigningMethodNone, jwt.UnsafeAllowNoneSignatureType, claims(nil), nil),
	} {
		_, err := v.Verify(t.Context(), tok)
		require.Error(t, err)
		require.NotErrorIs(t, err, errNoKey, "must be refused by the allow-list, before key lookup")
	}

	tests := []struct {
		alg  jwt.SigningMethod
		want any // the only key handed out; nil: none
	}{
		{jwt.SigningMethodHS256, nil},
		{jwt.SigningMethodNone, nil},
		{jwt.SigningMethodRS256, &k.rsa.PublicKey},
		{jwt.SigningMethodPS256, &k.rsa.PublicKey},
		{jwt.SigningMethodES256, &k.ec.PublicKey},
		{jwt.SigningMethodES384, nil},
		{jwt.SigningMethodEdDSA, k.ed.Public()},
	}
	for _, tt := range tests {
		t.Run(tt.alg.Alg(), func(t *testing.T) {
			got, err := v.keyfunc(t.Context())(&jwt.Token{Method: tt.alg, Header: map[string]any{"alg": tt.alg.Alg()}})
			if tt.want == nil {
				require.ErrorIs(t, err, errNoKey)
				return
			}
			require.NoError(t, err)
			set, ok := got.(jwt.VerificationKeySet)
			require.True(t, ok)
			require.Len(t, set.Keys, 1)
			require.Equal(t, tt.want, set.Keys[0])
		})
	}
}
