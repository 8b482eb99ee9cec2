package client

import (
	"context"
	"errors"
	"fmt"
	"strings"

	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/status"
)

// Error is a failed call, told in one line a person can act on. The gRPC
// status stays reachable: status.Code(err) and status.FromError work, and
// Canceled and DeadlineExceeded match the context errors.
type Error struct {
	Code codes.Code
	Msg  string

	status *status.Status
}

func (e *Error) Error() string { return e.Msg }

// GRPCStatus is the status the server (or the transport) returned.
func (e *Error) GRPCStatus() *status.Status { return e.status }

// Unwrap lets errors.Is(err, context.Canceled) see a canceled call.
func (e *Error) Unwrap() error {
	switch e.Code {
	case codes.Canceled:
		return context.Canceled
	case codes.DeadlineExceeded:
		return context.DeadlineExceeded
	}
	return nil
}

// Code is the gRPC code of err (codes.OK for nil, codes.Unknown for an
// error that carries none).
func Code(err error) codes.Code { return status.Code(err) }

func (c *Client) translate(err error) error {
	var done *Error
	if err == nil || errors.As(err, &done) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &Error{Code: st.Code(), Msg: c.message(st), status: st}
}

func (c *Client) message(st *status.Status) string {
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition:
		return msg // the server's words are meant for the user
	case codes.Unavailable:
		if isTransportFailure(msg) {
			return c.unreachable(msg)
		}
		return "the Warren manager cannot serve this now: " + msg
	case codes.DeadlineExceeded:
		if isTransportFailure(msg) {
			return c.unreachable(msg)
		}
		return fmt.Sprintf("the Warren manager at %s did not answer in time: %s", c.host, msg)
	case codes.Canceled:
		return "canceled: " + msg
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Sprintf("the Warren manager at %s refused this call: %s", c.host, msg)
	case codes.Unimplemented:
		return fmt.Sprintf("the Warren manager at %s does not support this call (%s): is it older than this client?", c.host, msg)
	}
	return fmt.Sprintf("%s (%s)", msg, st.Code())
}

// isTransportFailure tells a call that never reached the server from a
// server that answered Unavailable (no leader, for one).
func isTransportFailure(msg string) bool {
	for _, s := range []string{"connection error", "transport:", "Error while dialing", "name resolver", "connection closed", "waiting for connections"} {
		if strings.Contains(msg, s) {
			return true
		}
	}
	return false
}

func (c *Client) unreachable(msg string) string {
	if _, tlsErr, ok := strings.Cut(msg, "authentication handshake failed: "); ok {
		return fmt.Sprintf("cannot reach the Warren manager at %s: TLS handshake failed: %s; check the certificates in %s (or choose another directory with --tls-dir or %s)",
			c.host, strings.TrimSuffix(tlsErr, `"`), c.tlsDir, TLSDirEnv)
	}
	advice := "is a manager listening there?"
	if strings.HasPrefix(c.host, "unix://") {
		advice = `is "warren cluster init" running?`
	}
	return fmt.Sprintf("cannot reach the Warren manager at %s: %s; %s Use -H or %s to choose another", c.host, reason(msg), advice, HostEnv)
}

// reason turns a transport message into a short cause.
func reason(msg string) string {
	switch {
	case strings.Contains(msg, "no such file or directory"):
		return "the socket does not exist"
	case strings.Contains(msg, "connection refused"):
		return "connection refused"
	case strings.Contains(msg, "permission denied"):
		return "permission denied (the socket is root-only: run as root)"
	case strings.Contains(msg, "i/o timeout"), strings.Contains(msg, "deadline exceeded"):
		return "no answer in time"
	}
	// connection error: desc = "transport: Error while dialing: dial tcp ...: <cause>"
	if i := strings.LastIndex(msg, "Error while dialing: "); i >= 0 {
		msg = msg[i+len("Error while dialing: "):]
	}
	return strings.TrimSuffix(msg, `"`)
}
