package tenant

import (
	"crypto/ecdsa"
	"crypto/ed25519"
	"crypto/elliptic"
	"crypto/rand"
	"crypto/rsa"
	"crypto/x509"
	"encoding/base64"
	"encoding/json"
	"encoding/pem"
	"strings"
	"testing"
	"time"

	"github.com/stretchr/testify/require"
)

func pemPublic(t *testing.T, pub any) string {
	t.Helper()
	der, err := x509.MarshalPKIXPublicKey(pub)
	require.NoError(t, err)
	return string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: der}))
}

func TestAuthSettingsValidate(t *testing.T) {
	rsa2048, err := rsa.GenerateKey(rand.Reader, 2048)
	require.NoError(t, err)
	rsa1024, err := rsa.GenerateKey(rand.Reader, 1024)
	require.NoError(t, err)
	p256, err := ecdsa.GenerateKey(elliptic.P256(), rand.Reader)
	require.NoError(t, err)
	p384, err := ecdsa.GenerateKey(elliptic.P384(), rand.Reader)
	require.NoError(t, err)
	p521, err := ecdsa.GenerateKey(elliptic.P521(), rand.Reader)
	require.NoError(t, err)
	edPub, edPriv, err := ed25519.GenerateKey(rand.Reader)
	require.NoError(t, err)
	privDER, err := x509.MarshalPKCS8PrivateKey(edPriv)
	require.NoError(t, err)
	privPEM := string(pem.EncodeToMemory(&pem.Block{Type: "PRIVATE KEY", Bytes: privDER}))
	pkcs1PEM := string(pem.EncodeToMemory(&pem.Block{Type: "RSA PUBLIC KEY", Bytes: x509.MarshalPKCS1PublicKey(&rsa2048.PublicKey)}))

	secret := strings.Repeat("s", 32)
	secret2 := strings.Repeat("t", 40)
	hs := func(secrets ...string) AuthSettings { return AuthSettings{Mode: AuthHS256, HS256Secrets: secrets} }
	pk := func(pems ...string) AuthSettings { return AuthSettings{Mode: AuthPublicKeys, PublicKeysPEM: pems} }
	jwks := func(u string) AuthSettings { return AuthSettings{Mode: AuthJWKS, JWKSURL: u} }
	with := func(a AuthSettings, f func(*AuthSettings)) AuthSettings { f(&a); return a }

	tests := []struct {
		name    string
		in      AuthSettings
		wantErr string // substring; empty means valid
	}{
		{"hs256 one secret", hs(secret), ""},
		{"hs256 rotation", hs(secret, secret2), ""},
		{"hs256 short secret", hs(strings.Repeat("s", 31)), "hs256_secrets[0]: must be at least 32 bytes"},
		{"hs256 second secret short", hs(secret, "short"), "hs256_secrets[1]: must be at least 32 bytes"},
		{"hs256 long secret", hs(strings.Repeat("s", MaxHS256SecretBytes+1)), "hs256_secrets[0]: must be at most"},
		{"hs256 duplicate", hs(secret, secret), "hs256_secrets[1]: duplicate of hs256_secrets[0]"},
		{"hs256 none", hs(), "hs256_secrets: at least one is required"},
		{"hs256 too many", hs(strings.Split(strings.Repeat(secret+"|", MaxAuthKeys+1), "|")[:MaxAuthKeys+1]...), "hs256_secrets: at most 8"},
		{"hs256 with jwks_url", with(hs(secret), func(a *AuthSettings) { a.JWKSURL = "https://idp.example.com/jwks" }), "jwks_url: must be empty in hs256 mode"},
		{"public keys all families", pk(pemPublic(t, &rsa2048.PublicKey), pemPublic(t, &p256.PublicKey), pemPublic(t, &p384.PublicKey), pemPublic(t, edPub)), ""},
		{"public key pkcs1 rsa", pk(pkcs1PEM), ""},
		{"public key bad pem", pk("-----BEGIN PUBLIC KEY-----\nnot base64\n-----END PUBLIC KEY-----\n"), "public_keys_pem[0]: not a PEM block"},
		{"public key garbage der", pk(string(pem.EncodeToMemory(&pem.Block{Type: "PUBLIC KEY", Bytes: []byte("junk")}))), "public_keys_pem[0]: parse PUBLIC KEY"},
		{"public key second bad", pk(pemPublic(t, edPub), "hello"), "public_keys_pem[1]: not a PEM block"},
		{"public key two blocks", pk(pemPublic(t, edPub) + pemPublic(t, edPub)), "public_keys_pem[0]: must hold exactly one PEM block"},
		{"public key private pasted", pk(privPEM), "public_keys_pem[0]: this is a private key"},
		{"public key rsa 1024", pk(pemPublic(t, &rsa1024.PublicKey)), "public_keys_pem[0]: RSA key has 1024 bits"},
		{"public key p521", pk(pemPublic(t, &p521.PublicKey)), "public_keys_pem[0]: ECDSA curve P-521 is not supported"},
		{"public keys none", pk(), "public_keys_pem: at least one is required"},
		{"jwks https", jwks("https://idp.example.com/.well-known/jwks.json"), ""},
		{"jwks http 127.0.0.1", jwks("http://127.0.0.1:8080/jwks"), ""},
		{"jwks http localhost", jwks("http://localhost/jwks"), ""},
		{"jwks http ::1", jwks("http://[::1]:9000/jwks"), ""},
		{"jwks http public host", jwks("http://idp.example.com/jwks"), "jwks_url: must use https"},
		{"jwks http private ip", jwks("http://10.0.0.1/jwks"), "jwks_url: must use https"},
		{"jwks http lookalike", jwks("http://localhost.evil.example/jwks"), "jwks_url: must use https"},
		{"jwks ftp", jwks("ftp://idp.example.com/jwks"), `jwks_url: scheme "ftp" is not allowed`},
		{"jwks relative", jwks("/jwks"), "jwks_url: must be an absolute URL"},
		{"jwks credentials", jwks("https://user:pw@idp.example.com/jwks"), "jwks_url: must not contain credentials"},
		{"jwks missing", jwks(""), "jwks_url: is required"},
		{"jwks with secrets", with(jwks("https://idp.example.com/jwks"), func(a *AuthSettings) { a.HS256Secrets = []string{secret} }), "hs256_secrets: must be empty in jwks mode"},
		{"unknown mode", AuthSettings{Mode: "rs256", HS256Secrets: []string{secret}}, `mode: unknown mode "rs256"`},
		{"empty mode", AuthSettings{}, "mode: is required"},
		{"issuer and audience", with(hs(secret), func(a *AuthSettings) { a.Issuer, a.Audience = "https://idp.example.com/", "my-app" }), ""},
		{"issuer padded", with(hs(secret), func(a *AuthSettings) { a.Issuer = " x" }), "issuer: must not start or end with spaces"},
		{"audience too long", with(hs(secret), func(a *AuthSettings) { a.Audience = strings.Repeat("a", 1025) }), "audience: must be at most"},
		{"leeway max", with(hs(secret), func(a *AuthSettings) { a.LeewaySeconds = 300 }), ""},
		{"leeway too big", with(hs(secret), func(a *AuthSettings) { a.LeewaySeconds = 301 }), "leeway_seconds: must be between 0 and 300, got 301"},
		{"leeway negative", with(hs(secret), func(a *AuthSettings) { a.LeewaySeconds = -1 }), "leeway_seconds: must be between 0 and 300, got -1"},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			err := tt.in.Validate()
			if tt.wantErr == "" {
				require.NoError(t, err)
				return
			}
			require.Error(t, err)
			require.Contains(t, err.Error(), tt.wantErr)
		})
	}
}

func TestAuthSettingsLeeway(t *testing.T) {
	require.Equal(t, 30*time.Second, AuthSettings{}.Leeway())
	require.Equal(t, 5*time.Second, AuthSettings{LeewaySeconds: 5}.Leeway())
}

func TestAuthSettingsRedacted(t *testing.T) {
	in := AuthSettings{
		Mode:         AuthHS256,
		HS256Secrets: []string{"0123456789abcdefghijklmnopqrWXYZ", "short"},
		Issuer:       "iss",
	}
	out := in.Redacted()
	require.Equal(t, []string{"…WXYZ", "…"}, out.HS256Secrets)
	require.Equal(t, "iss", out.Issuer)
	require.Equal(t, "0123456789abcdefghijklmnopqrWXYZ", in.HS256Secrets[0], "receiver must not change")

	b, err := json.Marshal(out)
	require.NoError(t, err)
	require.NotContains(t, string(b), "0123456789")
}

func TestAuthSettingsJSON(t *testing.T) {
	in := AuthSettings{Mode: AuthJWKS, JWKSURL: "https://idp.example.com/jwks", Audience: "app", LeewaySeconds: 10}
	b, err := json.Marshal(in)
	require.NoError(t, err)
	require.JSONEq(t, `{"mode":"jwks","jwks_url":"https://idp.example.com/jwks","audience":"app","leeway_seconds":10}`, string(b))
	var out AuthSettings
	require.NoError(t, json.Unmarshal(b, &out))
	require.Equal(t, in, out)
}

func TestGenerateHS256Secret(t *testing.T) {
	a, err := GenerateHS256Secret()
	require.NoError(t, err)
	b, err := GenerateHS256Secret()
	require.NoError(t, err)
	require.NotEqual(t, a, b)
	require.Len(t, a, 43)
	raw, err := base64.RawURLEncoding.DecodeString(a)
	require.NoError(t, err)
	require.Len(t, raw, 32)
	require.NoError(t, AuthSettings{Mode: AuthHS256, HS256Secrets: []string{a, b}}.Validate())
}
