package spec

import (
	"errors"
	"fmt"
)

// ErrInvalid is matched (errors.Is) by every error this package returns.
var ErrInvalid = errors.New("invalid spec")

// Error is a validation error. Field names the offending field in the
// spec's dotted form ("task.container.env[2]"), for callers that want it;
// the message alone is what a person reads.
type Error struct {
	Field string
	Msg   string
}

func (e *Error) Error() string { return e.Msg }

// Is makes errors.Is(err, ErrInvalid) true.
func (e *Error) Is(target error) bool { return target == ErrInvalid }

func invalid(field, format string, args ...any) error {
	return &Error{Field: field, Msg: fmt.Sprintf(format, args...)}
}
