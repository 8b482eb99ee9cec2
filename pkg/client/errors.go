package client

import (
	"context"
	"errors"
	"fmt"
	"slices"
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

// translateOn translates an error from the manager at host.
func (c *Client) translateOn(host string, err error) error {
	var done *Error
	if err == nil || errors.As(err, &done) {
		return err
	}
	st, ok := status.FromError(err)
	if !ok {
		return err
	}
	return &Error{Code: st.Code(), Msg: c.message(host, st), status: st}
}

func (c *Client) message(host string, st *status.Status) string {
	msg := st.Message()
	switch st.Code() {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition:
		return msg // the server's words are meant for the user
	case codes.Unavailable:
		if isTransportFailure(msg) {
			return c.unreachable(host, msg)
		}
		return "the Warren manager cannot serve this now: " + msg
	case codes.DeadlineExceeded:
		if isTransportFailure(msg) {
			return c.unreachable(host, msg)
		}
		return fmt.Sprintf("the Warren manager at %s did not answer in time: %s", host, msg)
	case codes.Canceled:
		return "canceled: " + msg
	case codes.PermissionDenied, codes.Unauthenticated:
		return fmt.Sprintf("the Warren manager at %s refused this call: %s", host, msg)
	case codes.Unimplemented:
		return fmt.Sprintf("the Warren manager at %s does not support this call (%s): is it older than this client?", host, msg)
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

func (c *Client) unreachable(host, msg string) string {
	if tlsErr, ok := tlsFailure(msg); ok {
		return fmt.Sprintf("cannot reach the Warren manager at %s: TLS handshake failed: %s; %s", host, tlsErr, c.checkCerts())
	}
	advice := "is a manager listening there?"
	if strings.HasPrefix(host, "unix://") {
		advice = `is "warren cluster init" running?`
	}
	return fmt.Sprintf("cannot reach the Warren manager at %s: %s; %s Use -H or %s to choose another", host, reason(msg), advice, HostEnv)
}

func tlsFailure(msg string) (string, bool) {
	_, tlsErr, ok := strings.Cut(msg, "authentication handshake failed: ")
	return strings.TrimSuffix(tlsErr, `"`), ok
}

func (c *Client) checkCerts() string {
	return fmt.Sprintf("check the certificates in %s (or choose another directory with --tls-dir or %s)", c.tlsDir, TLSDirEnv)
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

// allFailed is the error of a call that no manager served. With one
// manager it is that manager's error; with several it names, in one line,
// each manager and what it said (managers that said the same grouped), and
// what to do. Its code is Unavailable.
func (c *Client) allFailed(failed []failure) error {
	if len(failed) == 1 {
		return c.translateOn(failed[0].host, failed[0].err)
	}
	type group struct {
		reason string
		hosts  []string
	}
	var groups []*group
	kinds := map[failureKind]bool{}
	for _, f := range failed {
		r, kind := shortReason(f.err)
		kinds[kind] = true
		i := slices.IndexFunc(groups, func(g *group) bool { return g.reason == r })
		if i < 0 {
			groups = append(groups, &group{reason: r})
			i = len(groups) - 1
		}
		groups[i].hosts = append(groups[i].hosts, f.host)
	}
	parts := make([]string, len(groups))
	for i, g := range groups {
		parts[i] = fmt.Sprintf("%s (%s)", hostList(g.hosts), g.reason)
	}
	head := "cannot reach any Warren manager"
	if kinds[failedServing] {
		head = "no Warren manager can serve this now"
	}
	msg := fmt.Sprintf("%s: %s; %s", head, strings.Join(parts, "; "), c.allFailedAdvice(kinds))
	return &Error{Code: codes.Unavailable, Msg: msg, status: status.New(codes.Unavailable, msg)}
}

// failureKind is how a manager failed a call that then moved on.
type failureKind int

const (
	failedConnect failureKind = iota // unreachable
	failedTLS                        // reached, but the handshake failed
	failedServing                    // answered that it cannot serve now
)

// shortReason is what one manager said, in a few words.
func shortReason(err error) (string, failureKind) {
	st, _ := status.FromError(err)
	msg := st.Message()
	switch {
	case st.Code() == codes.Canceled:
		return "connection closed", failedConnect
	case !isTransportFailure(msg) && st.Code() == codes.Unavailable:
		return "answered: " + msg, failedServing
	}
	if tlsErr, ok := tlsFailure(msg); ok {
		return "TLS handshake failed: " + tlsErr, failedTLS
	}
	return reason(msg), failedConnect
}

func (c *Client) allFailedAdvice(kinds map[failureKind]bool) string {
	var advice []string
	if kinds[failedServing] {
		advice = append(advice, "a cluster serves while a majority of its managers run: start the ones that are down")
	} else if kinds[failedConnect] {
		advice = append(advice, "check that the managers are running")
	}
	if kinds[failedTLS] {
		advice = append(advice, c.checkCerts())
	}
	return strings.Join(advice, "; ") + ", or use -H or " + HostEnv + " to choose others"
}
