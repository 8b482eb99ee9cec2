package state

import "errors"

// Errors of store writes. The API maps them to gRPC codes at its edge.
var (
	ErrNotFound        = errors.New("not found")
	ErrAlreadyExists   = errors.New("already exists")
	ErrNameConflict    = errors.New("name is already in use")
	ErrVersionConflict = errors.New("object changed since it was read")
	ErrInvalid         = errors.New("invalid store action")
	ErrAmbiguous       = errors.New("ambiguous reference")
)
