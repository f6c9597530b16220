// Package server is the HTTP layer: the gin engine, the gateway that routes requests to tenants, middleware and error rendering.
package server

import (
	"context"
	"crypto"
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rsa"
	"errors"
	"fmt"
	"log/slog"
	"net"
	"net/http"
	"net/netip"
	"regexp"
	"slices"
	"strings"
	"syscall"
	"time"
	"unicode"

	"github.com/MicahParks/jwkset"
	"github.com/MicahParks/keyfunc/v3"
	"github.com/golang-jwt/jwt/v5"
	"golang.org/x/time/rate"

	"github.com/syncplane/syncplane/tenant"
)

// Limits on end-user tokens.
const (
	// maxTokenBytes bounds the compact JWT a request may present.
	maxTokenBytes = 16 << 10
	// maxSubjectBytes bounds the sub claim, which becomes the user's sync scope.
	maxSubjectBytes = 256
)

// JWKS fetching. A tenant controls its JWKS URL, so every number here bounds what
// that tenant (or anyone sending it tokens) can make us do.
const (
	jwksHTTPTimeout     = 10 * time.Second
	jwksRefreshInterval = 15 * time.Minute
	// jwksUnknownKIDEvery is the rate of refreshes a token with an unknown kid may
	// trigger, per tenant. Requests beyond it fail fast instead of queueing.
	jwksUnknownKIDEvery = time.Minute
	// jwksUnknownKIDWait bounds the rate-limit wait plus the refresh request made on
	// behalf of one token with an unknown kid.
	jwksUnknownKIDWait = 10 * time.Second
	jwksMaxBodyBytes   = 1 << 20
	jwksMaxRedirects   = 3
)

// Algorithms by key family. A key is only ever used with its own family's
// algorithms, which rules out algorithm confusion (e.g. an HS256 token "signed"
// with an RSA public key's bytes).
var (
	algsHMAC    = []string{"HS256"}
	algsRSA     = []string{"RS256", "RS384", "RS512", "PS256"}
	algsP256    = []string{"ES256"}
	algsP384    = []string{"ES384"}
	algsEd25519 = []string{"EdDSA"}
	// algsAsymmetric is every algorithm a JWK Set may serve keys for.
	algsAsymmetric = slices.Concat(algsRSA, algsP256, algsP384, algsEd25519)
)

// Causes inside TokenError.Err, for callers and logs; the public text is Reason.
var (
	errNoKey          = errors.New("no key matches the token")
	errKeysUnreadable = errors.New("signing keys unavailable")
	errCritHeader     = errors.New("token has a crit header")
)

// TokenError explains why a token was rejected. Reason is public text, safe to show
// the tenant's developer (the console's token tester) and to put in a 401 body; Err
// is the cause, for logs only.
type TokenError struct {
	Reason string
	Err    error
}

// Error returns the reason and, when known, the cause.
func (e *TokenError) Error() string {
	if e.Err == nil {
		return "reject token: " + e.Reason
	}
	return "reject token: " + e.Reason + ": " + e.Err.Error()
}

// Unwrap returns the cause.
func (e *TokenError) Unwrap() error { return e.Err }

// VerifierOption configures NewTokenVerifier.
type VerifierOption func(*verifierConfig)

type verifierConfig struct {
	client        *http.Client
	now           func() time.Time
	privateDialOK bool
}

// WithHTTPClient sets the client that fetches the JWK Set (tests pass an
// httptest server's client). It replaces the default client and with it the
// refusal to dial private addresses; the response size limit still applies.
func WithHTTPClient(c *http.Client) VerifierOption {
	return func(cfg *verifierConfig) { cfg.client = c }
}

// WithClock sets the clock that exp, nbf and iat are checked against.
func WithClock(now func() time.Time) VerifierOption {
	return func(cfg *verifierConfig) { cfg.now = now }
}

// WithPrivateNetworkJWKS lets the default JWKS client reach loopback and private
// addresses. Without it a tenant's JWKS URL can only reach public addresses, so a
// tenant cannot point the platform at its own internal services. For the dev
// server, which may run an identity provider on localhost.
func WithPrivateNetworkJWKS() VerifierOption {
	return func(cfg *verifierConfig) { cfg.privateDialOK = true }
}

// TokenVerifier verifies one tenant's end-user tokens. It is safe for concurrent
// use. In JWKS mode it owns a background refresh; call Close when done.
type TokenVerifier struct {
	mode    tenant.AuthMode
	allowed []string // algorithms accepted, by the parser and by allowedAlg
	keys    []any    // hs256 and public_keys modes: []byte or public keys
	jwks    jwkset.Storage
	parser  *jwt.Parser
	cancel  context.CancelFunc
}

// NewTokenVerifier validates s and builds its verifier. In JWKS mode the set is
// fetched once now (a failure is logged, not returned: the verifier retries on
// the first unknown kid and on every refresh), then refreshed in the background
// until ctx ends or Close is called; ctx should therefore outlive requests.
func NewTokenVerifier(ctx context.Context, s tenant.AuthSettings, opts ...VerifierOption) (*TokenVerifier, error) {
	if err := s.Validate(); err != nil {
		return nil, fmt.Errorf("auth settings: %w", err)
	}
	var cfg verifierConfig
	for _, o := range opts {
		o(&cfg)
	}
	v := &TokenVerifier{mode: s.Mode}
	switch s.Mode {
	case tenant.AuthHS256:
		for _, secret := range s.HS256Secrets {
			v.keys = append(v.keys, []byte(secret))
		}
		v.allowed = algsHMAC
	case tenant.AuthPublicKeys:
		for i, p := range s.PublicKeysPEM {
			k, err := tenant.ParsePublicKeyPEM(p)
			if err != nil { // Validate parsed it already; kept for safety.
				return nil, fmt.Errorf("auth settings: public_keys_pem[%d]: %w", i, err)
			}
			v.keys = append(v.keys, k)
			for _, alg := range keyAlgs(k) {
				if !slices.Contains(v.allowed, alg) {
					v.allowed = append(v.allowed, alg)
				}
			}
		}
	case tenant.AuthJWKS:
		storage, cancel, err := newJWKSStorage(ctx, s.JWKSURL, cfg)
		if err != nil {
			return nil, err
		}
		v.jwks, v.cancel = storage, cancel
		v.allowed = algsAsymmetric
	}

	popts := []jwt.ParserOption{
		jwt.WithValidMethods(v.allowed),
		jwt.WithExpirationRequired(),
		jwt.WithIssuedAt(),
		jwt.WithLeeway(s.Leeway()),
	}
	if s.Issuer != "" {
		popts = append(popts, jwt.WithIssuer(s.Issuer))
	}
	if s.Audience != "" {
		popts = append(popts, jwt.WithAudience(s.Audience))
	}
	if cfg.now != nil {
		popts = append(popts, jwt.WithTimeFunc(cfg.now))
	}
	v.parser = jwt.NewParser(popts...)
	return v, nil
}

// Close stops the background JWKS refresh. It is safe to call more than once and
// on verifiers of any mode.
func (v *TokenVerifier) Close() {
	if v.cancel != nil {
		v.cancel()
	}
}

// Verify checks raw, a compact JWT without the "Bearer " prefix, and returns its
// sub claim. Every rejection is a *TokenError. ctx bounds a JWKS refresh the token
// may trigger.
func (v *TokenVerifier) Verify(ctx context.Context, raw string) (subject string, err error) {
	raw = strings.TrimSpace(raw)
	switch {
	case raw == "":
		return "", &TokenError{Reason: "missing token"}
	case len(raw) > maxTokenBytes:
		return "", &TokenError{Reason: "token too large"}
	}
	var claims jwt.RegisteredClaims
	tok, err := v.parser.ParseWithClaims(raw, &claims, v.keyfunc(ctx))
	if err != nil {
		return "", &TokenError{Reason: v.reason(tok, &claims, err), Err: err}
	}
	switch sub := claims.Subject; {
	case sub == "":
		return "", &TokenError{Reason: "missing sub claim"}
	case len(sub) > maxSubjectBytes:
		return "", &TokenError{Reason: fmt.Sprintf("sub claim longer than %d bytes", maxSubjectBytes)}
	case strings.ContainsFunc(sub, unicode.IsControl):
		return "", &TokenError{Reason: "sub claim contains control characters"}
	}
	return claims.Subject, nil
}

// keyfunc returns the candidate keys for tok: only keys whose family matches the
// token's algorithm. The parser has already refused algorithms outside v.allowed.
func (v *TokenVerifier) keyfunc(ctx context.Context) jwt.Keyfunc {
	return func(tok *jwt.Token) (any, error) {
		if _, ok := tok.Header["crit"]; ok {
			// RFC 7515 §4.1.11: extensions we do not understand must be refused.
			return nil, errCritHeader
		}
		alg := tok.Method.Alg()
		if v.mode == tenant.AuthJWKS {
			return v.jwksKeys(ctx, tok, alg)
		}
		var set jwt.VerificationKeySet
		for _, k := range v.keys {
			if keyAllows(k, alg) {
				set.Keys = append(set.Keys, k)
			}
		}
		if len(set.Keys) == 0 {
			return nil, fmt.Errorf("%w: no %s key configured", errNoKey, alg)
		}
		return set, nil
	}
}

// jwksKeys picks keys from the JWK Set: the one named by the token's kid (an
// unknown kid triggers a rate-limited refresh inside jwkset), else every key
// usable with alg.
func (v *TokenVerifier) jwksKeys(ctx context.Context, tok *jwt.Token, alg string) (any, error) {
	var candidates []jwkset.JWK
	switch kid, present := tok.Header[jwkset.HeaderKID]; {
	case !present:
		all, err := v.jwks.KeyReadAll(ctx)
		if err != nil {
			return nil, fmt.Errorf("%w: %w", errKeysUnreadable, err)
		}
		candidates = all
	default:
		s, ok := kid.(string)
		if !ok || s == "" {
			return nil, fmt.Errorf("%w: kid header is not a string", errNoKey)
		}
		jwk, err := v.jwks.KeyRead(ctx, s)
		if err != nil {
			return nil, fmt.Errorf("%w: kid %q: %w", errNoKey, s, err)
		}
		candidates = []jwkset.JWK{jwk}
	}
	var set jwt.VerificationKeySet
	for _, jwk := range candidates {
		m := jwk.Marshal()
		if m.USE != "" && m.USE != jwkset.UseSig {
			continue
		}
		if m.ALG != "" && m.ALG.String() != alg {
			continue
		}
		key := jwk.Key()
		if pk, ok := key.(interface{ Public() crypto.PublicKey }); ok {
			key = pk.Public() // a set that (wrongly) publishes private keys
		}
		if keyAllows(key, alg) {
			set.Keys = append(set.Keys, key)
		}
	}
	if len(set.Keys) == 0 {
		return nil, fmt.Errorf("%w: no usable %s key in the JWK Set", errNoKey, alg)
	}
	return set, nil
}

// keyAlgs lists the algorithms a key may verify. Anything else (including HMAC
// secrets handed over by a JWK Set) gets none, except in keyAllows' HS256 case.
func keyAlgs(k any) []string {
	switch k := k.(type) {
	case *rsa.PublicKey:
		if k.N.BitLen() < tenant.MinRSABits || k.N.BitLen() > tenant.MaxRSABits {
			return nil
		}
		return algsRSA
	case *ecdsa.PublicKey:
		switch k.Curve {
		case elliptic.P256():
			return algsP256
		case elliptic.P384():
			return algsP384
		}
	case ed25519.PublicKey:
		return algsEd25519
	}
	return nil
}

// keyAllows reports whether k may verify a token signed with alg. HMAC secrets are
// []byte and only ever configured in hs256 mode.
func keyAllows(k any, alg string) bool {
	if b, ok := k.([]byte); ok {
		return alg == "HS256" && len(b) >= tenant.MinHS256SecretBytes
	}
	return slices.Contains(keyAlgs(k), alg)
}

// reason turns a jwt error into public text. Order matters: the parser reports an
// algorithm outside the allowed list as an invalid signature, so that is checked
// before the signature itself.
func (v *TokenVerifier) reason(tok *jwt.Token, claims *jwt.RegisteredClaims, err error) string {
	switch {
	case errors.Is(err, jwt.ErrTokenMalformed):
		return "malformed token"
	case tok == nil:
		return "malformed token"
	}
	alg, _ := tok.Header["alg"].(string)
	switch {
	case alg == "":
		return "malformed token: missing alg header"
	case !slices.Contains(v.allowed, alg):
		if algName.MatchString(alg) {
			return fmt.Sprintf("algorithm %s not allowed for this tenant", alg)
		}
		return "algorithm not allowed for this tenant"
	case errors.Is(err, errCritHeader):
		return "unsupported crit header"
	case errors.Is(err, errKeysUnreadable):
		return "signing keys unavailable"
	case errors.Is(err, errNoKey):
		return "no matching signing key"
	case errors.Is(err, jwt.ErrTokenSignatureInvalid):
		return "signature invalid"
	case errors.Is(err, jwt.ErrTokenExpired):
		return "token expired"
	case errors.Is(err, jwt.ErrTokenNotValidYet):
		return "token not valid yet"
	case errors.Is(err, jwt.ErrTokenUsedBeforeIssued):
		return "token issued in the future"
	case errors.Is(err, jwt.ErrTokenRequiredClaimMissing):
		switch {
		case claims.ExpiresAt == nil:
			return "missing exp claim"
		case claims.Issuer == "":
			return "missing iss claim"
		case len(claims.Audience) == 0:
			return "missing aud claim"
		}
		return "missing required claim"
	case errors.Is(err, jwt.ErrTokenInvalidIssuer):
		return "wrong issuer"
	case errors.Is(err, jwt.ErrTokenInvalidAudience):
		return "wrong audience"
	case errors.Is(err, jwt.ErrInvalidType):
		return "malformed token"
	}
	return "invalid token"
}

// algName is what an alg header must look like to be echoed in a Reason.
var algName = regexp.MustCompile(`^[A-Za-z0-9+_-]{1,16}$`)

// newJWKSStorage starts keyfunc's HTTP-backed JWK Set storage for u. Its context
// is derived from ctx and cancelled by the returned func.
func newJWKSStorage(ctx context.Context, u string, cfg verifierConfig) (jwkset.Storage, context.CancelFunc, error) {
	client := cfg.client
	if client == nil {
		client = jwksClient(cfg.privateDialOK)
	}
	client = limitBody(client, jwksMaxBodyBytes)
	ctx, cancel := context.WithCancel(ctx)
	k, err := keyfunc.NewDefaultOverrideCtx(ctx, []string{u}, keyfunc.Override{
		Client:            client,
		HTTPTimeout:       jwksHTTPTimeout,
		RateLimitWaitMax:  jwksUnknownKIDWait,
		RefreshInterval:   jwksRefreshInterval,
		RefreshUnknownKID: rate.NewLimiter(rate.Every(jwksUnknownKIDEvery), 1),
		RefreshErrorHandlerFunc: func(u string) func(context.Context, error) {
			return func(ctx context.Context, err error) {
				slog.WarnContext(ctx, "refresh tenant JWK Set", "url", u, "err", err)
			}
		},
	})
	if err != nil {
		cancel()
		return nil, nil, fmt.Errorf("start JWK Set client: %w", err)
	}
	return k.Storage(), cancel, nil
}

// jwksClient is the default client for tenant JWKS URLs: bounded in time, no proxy,
// and unable to dial loopback, private, link-local or other non-public addresses
// unless privateOK. The check runs on the resolved address at dial time, so DNS
// names and redirects cannot get around it.
func jwksClient(privateOK bool) *http.Client {
	dialer := &net.Dialer{
		Timeout: 5 * time.Second,
		Control: func(_, address string, _ syscall.RawConn) error {
			host, _, err := net.SplitHostPort(address)
			if err != nil {
				return fmt.Errorf("jwks dial %q: %w", address, err)
			}
			ip, err := netip.ParseAddr(host)
			if err != nil {
				return fmt.Errorf("jwks dial %q: %w", address, err)
			}
			if !privateOK && !publicAddr(ip) {
				return fmt.Errorf("jwks dial %s: address is not public", ip)
			}
			return nil
		},
	}
	return &http.Client{
		Timeout: jwksHTTPTimeout,
		Transport: &http.Transport{
			DialContext:           dialer.DialContext,
			TLSHandshakeTimeout:   5 * time.Second,
			ResponseHeaderTimeout: jwksHTTPTimeout,
			MaxIdleConns:          16,
			IdleConnTimeout:       90 * time.Second,
			ForceAttemptHTTP2:     true,
		},
		CheckRedirect: func(req *http.Request, via []*http.Request) error {
			if len(via) >= jwksMaxRedirects {
				return errors.New("jwks: too many redirects")
			}
			if req.URL.Scheme != "https" && via[0].URL.Scheme == "https" {
				return errors.New("jwks: redirect from https to " + req.URL.Scheme)
			}
			return nil
		},
	}
}

// cgnat is the shared address space (RFC 6598); some clouds serve metadata there.
var cgnat = netip.MustParsePrefix("100.64.0.0/10")

// publicAddr reports whether ip is a public unicast address.
func publicAddr(ip netip.Addr) bool {
	ip = ip.Unmap()
	return ip.IsGlobalUnicast() && !ip.IsPrivate() && !cgnat.Contains(ip)
}

// limitBody returns a copy of c whose response bodies fail after n bytes: jwkset
// decodes the whole body, and the URL is the tenant's.
func limitBody(c *http.Client, n int64) *http.Client {
	cp := *c
	rt := c.Transport
	if rt == nil {
		rt = http.DefaultTransport
	}
	cp.Transport = limitTransport{rt: rt, n: n}
	return &cp
}

type limitTransport struct {
	rt http.RoundTripper
	n  int64
}

func (t limitTransport) RoundTrip(req *http.Request) (*http.Response, error) {
	resp, err := t.rt.RoundTrip(req)
	if err != nil {
		return nil, err
	}
	// With a nil ResponseWriter MaxBytesReader only limits: past n bytes Read
	// fails with *http.MaxBytesError, so a truncated set never parses as whole.
	resp.Body = http.MaxBytesReader(nil, resp.Body, t.n)
	return resp, nil
}
