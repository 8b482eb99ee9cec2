package main

import (
	"context"
	"errors"
	"fmt"
	"io"
	"strings"

	"github.com/spf13/pflag"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/pkg/client"
)

// registryAuthOpts are the registry credential flags of `service create`
// and `service update`. The credentials go to the manager, which keeps them
// sealed and hands them only to the nodes that pull the image.
type registryAuthOpts struct {
	withAuth      bool
	username      string
	passwordStdin bool
	clear         bool // update only

	password string // read from stdin by read
}

func (o *registryAuthOpts) addFlags(f *pflag.FlagSet, update bool) {
	f.BoolVar(&o.withAuth, "with-registry-auth", false, "send the credentials \"docker login\" stored for the image's registry (Docker config)")
	f.StringVar(&o.username, "registry-username", "", "registry user to pull the image as (with --registry-password-stdin)")
	f.BoolVar(&o.passwordStdin, "registry-password-stdin", false, "read the registry password from stdin")
	if update {
		f.BoolVar(&o.clear, "registry-auth-clear", false, "remove the service's registry credentials")
	}
}

// read checks that the flags go together and reads the password from in.
// It reads once, before any request, so that a retried update sends the
// same password.
func (o *registryAuthOpts) read(in io.Reader) error {
	switch {
	case o.passwordStdin && o.username == "":
		return errors.New("--registry-password-stdin needs --registry-username")
	case o.username != "" && !o.passwordStdin:
		return errors.New("--registry-username needs --registry-password-stdin: the password is read from stdin, never from the command line")
	case o.withAuth && o.username != "":
		return errors.New("use --with-registry-auth or --registry-username, not both")
	case o.clear && (o.withAuth || o.username != ""):
		return errors.New("--registry-auth-clear removes the credentials: it cannot go with --with-registry-auth or --registry-username")
	case !o.passwordStdin:
		return nil
	}
	if in == nil {
		return errors.New("--registry-password-stdin: no stdin to read the password from")
	}
	data, err := io.ReadAll(in)
	if err != nil {
		return fmt.Errorf("--registry-password-stdin: read the password: %w", err)
	}
	// Like `docker login --password-stdin`: the line's end is no part of it.
	o.password = strings.TrimSuffix(strings.TrimSuffix(string(data), "\n"), "\r")
	if o.password == "" {
		return errors.New("--registry-password-stdin: stdin holds no password")
	}
	return nil
}

// forImage returns the credentials to send for image, nil when none were
// asked for.
func (o *registryAuthOpts) forImage(ctx context.Context, image string) (*api.RegistryAuth, error) {
	switch {
	case o.withAuth:
		return client.DockerConfigAuth(ctx, image)
	case o.username != "":
		host, err := client.RegistryHost(image)
		if err != nil {
			return nil, err
		}
		return &api.RegistryAuth{Server: host, Username: o.username, Password: o.password}, nil
	}
	return nil, nil
}

// applyTo sets an update request's credentials, for the image of its spec.
func (o *registryAuthOpts) applyTo(ctx context.Context, req *api.UpdateServiceRequest) error {
	auth, err := o.forImage(ctx, req.GetSpec().GetTask().GetContainer().GetImage())
	if err != nil {
		return err
	}
	req.RegistryAuth, req.ClearRegistryAuth = auth, o.clear
	return nil
}
