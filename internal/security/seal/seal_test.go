package seal

import (
	"bytes"
	"errors"
	"os"
	"path/filepath"
	"strings"
	"sync"
	"testing"

	"google.golang.org/protobuf/proto"
	"google.golang.org/protobuf/types/known/wrapperspb"
)

func newSealer(t *testing.T) *Sealer {
	t.Helper()
	s, err := LoadOrCreate(filepath.Join(t.TempDir(), "keys", "data.key"))
	if err != nil {
		t.Fatal(err)
	}
	return s
}

func TestSealOpen(t *testing.T) {
	s := newSealer(t)
	plain := []byte("hunter2")
	sealed, err := s.Seal(plain, []byte("svc-1"))
	if err != nil {
		t.Fatal(err)
	}
	if bytes.Contains(sealed, plain) {
		t.Fatal("the sealed value contains the plain text")
	}
	again, _ := s.Seal(plain, []byte("svc-1"))
	if bytes.Equal(sealed, again) {
		t.Fatal("two seals of one value are equal: the nonce is not fresh")
	}
	got, err := s.Open(sealed, []byte("svc-1"))
	if err != nil || !bytes.Equal(got, plain) {
		t.Fatalf("Open = %q, %v; want %q", got, err, plain)
	}

	other := newSealer(t)
	tampered := func(i int) []byte {
		c := bytes.Clone(sealed)
		c[i] ^= 0x01
		return c
	}
	cases := []struct {
		name   string
		s      *Sealer
		sealed []byte
		aad    string
	}{
		{"another owner", s, sealed, "svc-2"},
		{"no owner", s, sealed, ""},
		{"another key", other, sealed, "svc-1"},
		{"version byte changed", s, tampered(0), "svc-1"},
		{"nonce byte changed", s, tampered(1), "svc-1"},
		{"ciphertext byte changed", s, tampered(len(sealed) / 2), "svc-1"},
		{"tag byte changed", s, tampered(len(sealed) - 1), "svc-1"},
		{"truncated", s, sealed[:len(sealed)-1], "svc-1"},
		{"empty", s, nil, "svc-1"},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			got, err := c.s.Open(c.sealed, []byte(c.aad))
			if !errors.Is(err, ErrCannotOpen) || got != nil {
				t.Fatalf("Open = %q, %v; want ErrCannotOpen", got, err)
			}
		})
	}
}

func TestSealMessage(t *testing.T) {
	s := newSealer(t)
	sealed, err := s.SealMessage(wrapperspb.String("p@ss"), []byte("a"))
	if err != nil {
		t.Fatal(err)
	}
	var got wrapperspb.StringValue
	if err := s.OpenMessage(sealed, []byte("a"), &got); err != nil || !proto.Equal(&got, wrapperspb.String("p@ss")) {
		t.Fatalf("OpenMessage = %v, %v", &got, err)
	}
	if err := s.OpenMessage(sealed, []byte("b"), &got); !errors.Is(err, ErrCannotOpen) {
		t.Fatalf("OpenMessage for another owner = %v, want ErrCannotOpen", err)
	}
}

func TestKeyFileIsCreatedPrivateAndReused(t *testing.T) {
	dir := filepath.Join(t.TempDir(), "keys")
	path := filepath.Join(dir, "data.key")
	first, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	fi, err := os.Stat(path)
	if err != nil {
		t.Fatal(err)
	}
	if fi.Mode().Perm() != 0o600 || fi.Size() != KeySize {
		t.Fatalf("key file mode %04o size %d, want 0600 and %d bytes", fi.Mode().Perm(), fi.Size(), KeySize)
	}
	if di, _ := os.Stat(dir); di.Mode().Perm() != 0o700 {
		t.Fatalf("key directory mode %04o, want 0700", di.Mode().Perm())
	}
	if entries, _ := os.ReadDir(dir); len(entries) != 1 {
		t.Fatalf("key directory holds %d entries, want the key alone (no temporary file left)", len(entries))
	}
	sealed, _ := first.Seal([]byte("x"), nil)
	second, err := LoadOrCreate(path)
	if err != nil {
		t.Fatal(err)
	}
	if _, err := second.Open(sealed, nil); err != nil {
		t.Fatalf("a reload does not open what the first load sealed: %v", err)
	}
}

func TestConcurrentCreatorsShareOneKey(t *testing.T) {
	path := filepath.Join(t.TempDir(), "data.key")
	sealers := make([]*Sealer, 8)
	var wg sync.WaitGroup
	for i := range sealers {
		wg.Add(1)
		go func() {
			defer wg.Done()
			s, err := LoadOrCreate(path)
			if err != nil {
				t.Error(err)
				return
			}
			sealers[i] = s
		}()
	}
	wg.Wait()
	if t.Failed() {
		return
	}
	sealed, _ := sealers[0].Seal([]byte("x"), nil)
	for i, s := range sealers {
		if _, err := s.Open(sealed, nil); err != nil {
			t.Fatalf("sealer %d has another key: %v", i, err)
		}
	}
}

func TestBadKeyFileIsAnErrorNeverReplaced(t *testing.T) {
	cases := []struct {
		name    string
		content []byte
		mode    os.FileMode
		want    string
		damaged bool
	}{
		{"empty", nil, 0o600, "holds 0 bytes, want 32", true},
		{"short", bytes.Repeat([]byte{7}, 31), 0o600, "holds 31 bytes", true},
		{"long", bytes.Repeat([]byte{7}, 33), 0o600, "holds 33 bytes", true},
		{"readable by others", bytes.Repeat([]byte{7}, 32), 0o644, "others may read it", false},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			path := filepath.Join(t.TempDir(), "data.key")
			if err := os.WriteFile(path, c.content, c.mode); err != nil {
				t.Fatal(err)
			}
			if err := os.Chmod(path, c.mode); err != nil { // past the umask
				t.Fatal(err)
			}
			_, err := LoadOrCreate(path)
			if err == nil || !strings.Contains(err.Error(), c.want) || errors.Is(err, ErrDamagedKey) != c.damaged {
				t.Fatalf("LoadOrCreate = %v, want an error saying %q (damaged: %v)", err, c.want, c.damaged)
			}
			if got, _ := os.ReadFile(path); !bytes.Equal(got, c.content) {
				t.Fatal("the bad key file was changed")
			}
		})
	}
	t.Run("a directory", func(t *testing.T) {
		path := filepath.Join(t.TempDir(), "data.key")
		if err := os.Mkdir(path, 0o700); err != nil {
			t.Fatal(err)
		}
		if _, err := LoadOrCreate(path); !errors.Is(err, ErrDamagedKey) {
			t.Fatalf("LoadOrCreate on a directory = %v, want ErrDamagedKey", err)
		}
	})
}

func TestNewChecksKeySize(t *testing.T) {
	if _, err := New(make([]byte, 16)); err == nil {
		t.Fatal("New accepted a 16-byte key: the data key is AES-256")
	}
}
