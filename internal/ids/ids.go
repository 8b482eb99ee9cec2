// Package ids makes the IDs of stored objects.
package ids

import (
	"crypto/rand"
	"encoding/base32"
	"strings"
)

// encoding is lowercase base32 with no padding: IDs are safe in container
// names, file names and DNS labels.
var encoding = base32.NewEncoding("abcdefghijklmnopqrstuvwxyz234567").WithPadding(base32.NoPadding)

// New returns a random 25-character ID (125 bits).
func New() string {
	var b [16]byte
	if _, err := rand.Read(b[:]); err != nil {
		panic("ids: no randomness: " + err.Error()) // crypto/rand does not fail on Linux
	}
	return strings.ToLower(encoding.EncodeToString(b[:]))[:25]
}
