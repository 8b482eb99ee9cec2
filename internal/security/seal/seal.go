// Package seal encrypts small values that must not sit in plain text in the
// cluster state, such as a service's registry credentials: AES-256-GCM under
// the cluster's data key, with a fresh random nonce per value.
//
// The data key lives in a manager's data dir (DATA_DIR/keys/data.key, mode
// 0600), NOT in the Raft state: the state is replicated, snapshotted and
// copied around (raft.db, snapshots, backups), and a key stored beside the
// values it protects would protect nothing. So a copy of the Raft files alone
// opens no sealed value. Every manager needs the same key to open what
// another sealed; a later milestone hands it to new managers when they join,
// over their mutually authenticated channel. Until then a cluster has one
// manager, which creates the key on its first start.
//
// Each sealed value is bound to its owner by additional authenticated data
// (a service's ID, say): a sealed blob copied to another owner does not open.
package seal

import (
	"crypto/aes"
	"crypto/cipher"
	"crypto/rand"
	"errors"
	"fmt"

	"google.golang.org/protobuf/proto"
)

// KeySize is the size of a data key: AES-256.
const KeySize = 32

// version1 is the first byte of a value sealed with AES-256-GCM and a 12-byte
// nonce; a later format (another cipher, a key ID for rotation) takes
// another.
const version1 byte = 1

// ErrCannotOpen says a sealed value does not open: it was sealed with another
// key or for another owner, or it is damaged.
var ErrCannotOpen = errors.New("sealed value cannot be opened")

// Sealer seals and opens values with one data key. It is safe for
// concurrent use.
type Sealer struct {
	aead cipher.AEAD
}

// New returns a Sealer using key, which must be KeySize bytes.
func New(key []byte) (*Sealer, error) {
	if len(key) != KeySize {
		return nil, fmt.Errorf("seal: data key is %d bytes, want %d", len(key), KeySize)
	}
	block, err := aes.NewCipher(key)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	aead, err := cipher.NewGCM(block)
	if err != nil {
		return nil, fmt.Errorf("seal: %w", err)
	}
	return &Sealer{aead: aead}, nil
}

// Seal encrypts plain for the owner named by aad. The result holds a
// version byte, the nonce and the ciphertext with its tag.
func (s *Sealer) Seal(plain, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	out := make([]byte, 1+ns, 1+ns+len(plain)+s.aead.Overhead())
	out[0] = version1
	if _, err := rand.Read(out[1:]); err != nil {
		return nil, fmt.Errorf("seal: random nonce: %w", err)
	}
	return s.aead.Seal(out, out[1:1+ns], plain, additional(aad)), nil
}

// Open decrypts a value Seal made for the same aad. Any mismatch (another
// key, another owner, a changed byte) is ErrCannotOpen.
func (s *Sealer) Open(sealed, aad []byte) ([]byte, error) {
	ns := s.aead.NonceSize()
	if len(sealed) < 1+ns+s.aead.Overhead() {
		return nil, fmt.Errorf("%w: %d bytes is too short", ErrCannotOpen, len(sealed))
	}
	if sealed[0] != version1 {
		return nil, fmt.Errorf("%w: unknown format %d", ErrCannotOpen, sealed[0])
	}
	plain, err := s.aead.Open(nil, sealed[1:1+ns], sealed[1+ns:], additional(aad))
	if err != nil {
		return nil, fmt.Errorf("%w: wrong data key, wrong owner, or damaged", ErrCannotOpen)
	}
	return plain, nil
}

// additional authenticates the format version along with the owner, so a
// value cannot be passed off as another format.
func additional(aad []byte) []byte {
	return append([]byte{version1}, aad...)
}

// SealMessage seals the wire form of m for the owner named by aad.
func (s *Sealer) SealMessage(m proto.Message, aad []byte) ([]byte, error) {
	plain, err := proto.Marshal(m)
	if err != nil {
		return nil, fmt.Errorf("seal: encode %T: %w", m, err)
	}
	return s.Seal(plain, aad)
}

// OpenMessage opens a value SealMessage made into m.
func (s *Sealer) OpenMessage(sealed, aad []byte, m proto.Message) error {
	plain, err := s.Open(sealed, aad)
	if err != nil {
		return err
	}
	if err := proto.Unmarshal(plain, m); err != nil {
		return fmt.Errorf("%w: decode %T: %v", ErrCannotOpen, m, err)
	}
	return nil
}
