package token

import (
	"errors"
	"strings"
	"testing"
	"time"

	"github.com/warren-project/warren/internal/security/ca"
)

func TestRoundTripAndCAPinning(t *testing.T) {
	root, err := ca.Generate("c", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	other, err := ca.Generate("c", time.Hour)
	if err != nil {
		t.Fatal(err)
	}
	secret := NewSecret()
	tok := New(RoleManager, root.Cert(), secret)
	parsed, err := Parse(" " + tok.String() + "\n")
	if err != nil {
		t.Fatal(err)
	}
	if parsed != tok || !parsed.SecretIs(secret) || parsed.SecretIs(NewSecret()) || parsed.SecretIs("") {
		t.Fatalf("parsed %+v, want %+v with its secret", parsed, tok)
	}
	if err := parsed.CheckCA(root.Cert()); err != nil {
		t.Fatalf("own CA refused: %v", err)
	}
	if err := parsed.CheckCA(other.Cert()); err == nil || !strings.Contains(err.Error(), "refusing to join") {
		t.Fatalf("another CA: %v, want a refusal", err)
	}
}

func TestParseErrors(t *testing.T) {
	root, _ := ca.Generate("c", time.Hour)
	good := New(RoleWorker, root.Cert(), NewSecret()).String()
	for name, s := range map[string]string{
		"empty":          "",
		"other format":   "SWMTKN-1-abc-def",
		"missing part":   strings.Join(strings.Split(good, "-")[:4], "-"),
		"bad role":       strings.Replace(good, "-W-", "-X-", 1),
		"damaged hash":   strings.Replace(good, "-W-", "-W-zz", 1),
		"damaged secret": good[:len(good)-10],
	} {
		t.Run(name, func(t *testing.T) {
			if _, err := Parse(s); !errors.Is(err, ErrInvalid) {
				t.Fatalf("Parse(%q) = %v, want invalid", s, err)
			}
		})
	}
}
