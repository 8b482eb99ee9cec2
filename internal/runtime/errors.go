package runtime

import "github.com/containerd/errdefs"

// The error categories of the runtime. They are containerd's errdefs values,
// so errors returned by the containerd client match them with errors.Is too.
var (
	ErrNotFound        = errdefs.ErrNotFound
	ErrAlreadyExists   = errdefs.ErrAlreadyExists
	ErrInvalidArgument = errdefs.ErrInvalidArgument
)
