// Package token is the join token format. A token names the role a node
// joins as, pins the cluster CA by the hash of its certificate (so a node
// refuses a manager presenting any other CA), and carries a secret the
// managers check:
//
//	WRN-1-<W|M>-<sha256 of the CA certificate, base32>-<secret>
package token

import (
	"crypto/rand"
	"crypto/sha256"
	"crypto/subtle"
	"crypto/x509"
	"encoding/base32"
	"encoding/hex"
	"errors"
	"fmt"
	"strings"
)

const prefix = "WRN-1-"

// Role letters in a token.
const (
	RoleWorker  = "W"
	RoleManager = "M"
)

// ErrInvalid wraps every parse error.
var ErrInvalid = errors.New("invalid join token")

var b32 = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// Token is a parsed join token.
type Token struct {
	Role string // RoleWorker or RoleManager
	// CADigest is the SHA-256 of the CA certificate's DER.
	CADigest [sha256.Size]byte
	Secret   string
}

// NewSecret returns a fresh random secret (160 bits).
func NewSecret() string {
	var b [20]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("token: no randomness: " + err.Error())
	}
	return b32.EncodeToString(b[:])
}

// New makes the token for role ("W" or "M") of the cluster whose CA
// certificate is caCert.
func New(role string, caCert *x509.Certificate, secret string) Token {
	return Token{Role: role, CADigest: sha256.Sum256(caCert.Raw), Secret: secret}
}

func (t Token) String() string {
	return prefix + t.Role + "-" + b32.EncodeToString(t.CADigest[:]) + "-" + t.Secret
}

// Parse reads a token, saying what is wrong with a malformed one.
func Parse(s string) (Token, error) {
	s = strings.TrimSpace(s)
	if !strings.HasPrefix(s, prefix) {
		return Token{}, fmt.Errorf("%w: it should start with %q; print one with \"warren cluster join-token worker\" on a manager", ErrInvalid, prefix)
	}
	parts := strings.Split(strings.TrimPrefix(s, prefix), "-")
	if len(parts) != 3 {
		return Token{}, fmt.Errorf("%w: it should have the form %sROLE-CAHASH-SECRET", ErrInvalid, prefix)
	}
	var t Token
	switch parts[0] {
	case RoleWorker, RoleManager:
		t.Role = parts[0]
	default:
		return Token{}, fmt.Errorf("%w: role %q is neither W (worker) nor M (manager)", ErrInvalid, parts[0])
	}
	digest, err := b32.DecodeString(parts[1])
	if err != nil || len(digest) != sha256.Size {
		return Token{}, fmt.Errorf("%w: the CA hash is damaged; copy the whole token again", ErrInvalid)
	}
	copy(t.CADigest[:], digest)
	if raw, err := b32.DecodeString(parts[2]); err != nil || len(raw) < 16 {
		return Token{}, fmt.Errorf("%w: the secret is damaged; copy the whole token again", ErrInvalid)
	}
	t.Secret = parts[2]
	return t, nil
}

// CheckCA tells whether cert is the CA the token pins.
func (t Token) CheckCA(cert *x509.Certificate) error {
	got := sha256.Sum256(cert.Raw)
	if subtle.ConstantTimeCompare(got[:], t.CADigest[:]) != 1 {
		return fmt.Errorf("the manager presented CA sha256:%s, but the token pins sha256:%s: refusing to join (is this the right manager?)",
			hex.EncodeToString(got[:]), hex.EncodeToString(t.CADigest[:]))
	}
	return nil
}

// SecretIs compares the token's secret with want in constant time.
func (t Token) SecretIs(want string) bool {
	return want != "" && subtle.ConstantTimeCompare([]byte(t.Secret), []byte(want)) == 1
}
