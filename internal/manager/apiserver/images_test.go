package apiserver

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"testing"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/state"
)

func TestImportTargetsAreResolved(t *testing.T) {
	s, store := newServer(t)
	if err := store.Update(context.Background(), func(tx state.Tx) error {
		for _, n := range []*api.Node{
			{Id: "abc123", Meta: &api.Meta{}, Description: &api.NodeDescription{Hostname: "edge-1"}},
			{Id: "abd456", Meta: &api.Meta{}, Description: &api.NodeDescription{Hostname: "edge-2"}},
		} {
			if err := tx.Create(n); err != nil {
				return err
			}
		}
		return nil
	}); err != nil {
		t.Fatal(err)
	}
	cases := []struct {
		name string
		refs []string
		want string
		code codes.Code
	}{
		{"every node", nil, "", codes.OK},
		{"by ID, hostname and prefix, once each", []string{"abc123", "edge-2", "abc", "edge-1"}, "abc123,abd456", codes.OK},
		{"unknown", []string{"abc123", "nope"}, "", codes.InvalidArgument},
		{"ambiguous prefix", []string{"ab"}, "", codes.InvalidArgument},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			ids, err := s.resolveNodes(c.refs)
			if code := status.Code(toStatus(err)); code != c.code {
				t.Fatalf("resolveNodes(%v) = %v, want %v", c.refs, err, c.code)
			}
			if err == nil && strings.Join(ids, ",") != c.want {
				t.Fatalf("resolveNodes(%v) = %v, want %s", c.refs, ids, c.want)
			}
		})
	}
}

func TestImportErrorsMapToCodes(t *testing.T) {
	inc := &IncompleteImportError{
		Refs:    []string{"docker.io/library/app:1"},
		Images:  []*api.Image{{Ref: "docker.io/library/app:1", NodeIds: []string{"m1", "w1"}}},
		Missing: map[string]string{"w3": "did not report the image within 2m0s", "w2": "node is down: it loads the image when it is back"},
	}
	cases := []struct {
		name string
		err  error
		code codes.Code
	}{
		{"incomplete", fmt.Errorf("import: %w", inc), codes.FailedPrecondition},
		{"bad archive", fmt.Errorf("the image archive names no image: %w", ErrInvalidImport), codes.InvalidArgument},
		{"client gone", context.Canceled, codes.Canceled},
		{"disk", errors.New("no space left on device"), codes.Internal},
	}
	for _, c := range cases {
		t.Run(c.name, func(t *testing.T) {
			if code := status.Code(importStatus(c.err)); code != c.code {
				t.Fatalf("code = %v, want %v", code, c.code)
			}
		})
	}
	st := status.Convert(importStatus(inc))
	want := "imported docker.io/library/app:1, loaded on node m1, w1; not loaded on node w2: node is down: it loads the image when it is back; node w3: did not report the image within 2m0s"
	if st.Message() != want {
		t.Fatalf("message = %q\nwant      %q", st.Message(), want)
	}
	if d := st.Details(); len(d) != 1 || len(d[0].(*api.ImportImageResponse).GetImages()) != 1 {
		t.Fatalf("details = %v, want the images loaded", d)
	}
}
