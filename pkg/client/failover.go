package client

import (
	"context"
	"errors"
	"fmt"
	"strings"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/backoff"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/connectivity"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
)

// host is one manager and its connection, made when first needed.
type host struct {
	ep     endpoint
	learnt bool // from a manager's list, not given to New
	conn   *grpc.ClientConn
}

// failure is what one manager said to a call that then moved on.
type failure struct {
	host string
	err  error
}

var errClosed = errors.New("the Warren client is closed")

// router is the client's grpc.ClientConnInterface: every call of the
// embedded api.ControlClient comes through it, and it picks the manager.
type router struct{ c *Client }

// Invoke sends a unary call to the manager that answered last, and on to
// the others in turn while they are unavailable.
func (r router) Invoke(ctx context.Context, method string, req, reply any, opts ...grpc.CallOption) error {
	c := r.c
	var failed []failure
	for _, h := range c.candidates() {
		conn, err := c.connOf(h)
		if err != nil {
			return err
		}
		err = c.invokeOn(ctx, conn, method, req, reply, opts)
		down := c.unavailable(err)
		if down && ctx.Err() == nil && !mayRetry(method, err) {
			// The write may have reached the leader before the call
			// broke: sent again elsewhere it could apply twice.
			c.cfg.logger.Debug("call broke after it was sent; not retried", "method", method, "host", h.ep.String(), "err", err)
			return c.translateOn(h.ep.String(), err)
		}
		if down && ctx.Err() == nil {
			c.cfg.logger.Debug("manager unavailable, trying the next one", "method", method, "host", h.ep.String(), "err", err)
			failed = append(failed, failure{h.ep.String(), err})
			continue
		}
		if !down {
			c.answered(h)
		}
		if err != nil {
			c.cfg.logger.Debug("call failed", "method", method, "host", h.ep.String(), "err", err)
			return c.translateOn(h.ep.String(), err)
		}
		c.learn(ctx, h, conn, method, reply)
		return nil
	}
	return c.allFailed(failed)
}

// NewStream opens a stream on the first manager that accepts it. Once open,
// the stream stays there: a failure mid-stream is the caller's.
func (r router) NewStream(ctx context.Context, desc *grpc.StreamDesc, method string, opts ...grpc.CallOption) (grpc.ClientStream, error) {
	c := r.c
	var failed []failure
	for _, h := range c.candidates() {
		conn, err := c.connOf(h)
		if err != nil {
			return nil, err
		}
		s, err := conn.NewStream(ctx, desc, method, opts...)
		down := c.unavailable(err)
		if down && ctx.Err() == nil {
			c.cfg.logger.Debug("manager unavailable, trying the next one", "method", method, "host", h.ep.String(), "err", err)
			failed = append(failed, failure{h.ep.String(), err})
			continue
		}
		if !down {
			c.answered(h)
		}
		if err != nil {
			return nil, c.translateOn(h.ep.String(), err)
		}
		return &translatedStream{ClientStream: s, c: c, host: h.ep.String()}, nil
	}
	return nil, c.allFailed(failed)
}

// invokeOn makes one attempt, bounded by the call timeout when ctx has no
// deadline: each manager tried gets the whole timeout.
func (c *Client) invokeOn(ctx context.Context, conn *grpc.ClientConn, method string, req, reply any, opts []grpc.CallOption) error {
	if _, ok := ctx.Deadline(); !ok && c.cfg.callTimeout > 0 {
		var cancel context.CancelFunc
		ctx, cancel = context.WithTimeout(ctx, c.callTimeout(req))
		defer cancel()
	}
	return conn.Invoke(ctx, method, req, reply, opts...)
}

// callTimeout is the deadline for one unary call: the configured timeout,
// plus the server-side wait of a blocking query.
func (c *Client) callTimeout(req any) time.Duration {
	d := c.cfg.callTimeout
	if r, ok := req.(*api.ListTasksRequest); ok && r.GetWait() != nil {
		d += r.GetWait().AsDuration()
	}
	return d
}

// unavailable says whether err means "try another manager": this one is
// unreachable or says it cannot serve now (Unavailable: no leader, say), did
// not let us connect in time, or its connection was replaced under the call
// (see connOf). Callers move on only while their context lives.
func (c *Client) unavailable(err error) bool {
	if err == nil {
		return false
	}
	st, _ := status.FromError(err)
	switch st.Code() {
	case codes.Unavailable:
		return true
	case codes.DeadlineExceeded:
		return isTransportFailure(st.Message())
	case codes.Canceled:
		return strings.Contains(st.Message(), "client connection is closing") && !c.isClosed()
	}
	return false
}

// candidates are the managers to try, in order: the one that answered last,
// then the ones after it, round the list.
func (c *Client) candidates() []*host {
	c.mu.Lock()
	defer c.mu.Unlock()
	start := 0
	for i, h := range c.hosts {
		if h == c.cur {
			start = i
		}
	}
	return append(c.hosts[start:len(c.hosts):len(c.hosts)], c.hosts[:start]...)
}

// answered makes h the manager the next calls try first.
func (c *Client) answered(h *host) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.cur != h {
		c.cfg.logger.Debug("using another manager", "host", h.ep.String(), "previous", c.cur.ep.String())
		c.cur = h
	}
}

// connOf returns h's connection. One that failed to connect is replaced
// first: gRPC would keep failing calls on it at once until its back-off
// (up to minutes) ends, though the manager may be back. A connection in
// transient failure carries no call, so closing it loses nothing; a call
// that took it just before fails Canceled and moves on.
func (c *Client) connOf(h *host) (*grpc.ClientConn, error) {
	c.mu.Lock()
	defer c.mu.Unlock()
	if c.closed {
		return nil, errClosed
	}
	if h.conn != nil && h.conn.GetState() == connectivity.TransientFailure {
		_ = h.conn.Close()
		h.conn = nil
	}
	if h.conn == nil {
		conn, err := c.dial(h.ep)
		if err != nil {
			return nil, err
		}
		h.conn = conn
	}
	return h.conn, nil
}

// newHost makes a host and its connection (gRPC connects at the first
// call), so a bad address fails in New.
func (c *Client) newHost(ep endpoint, learnt bool) (*host, error) {
	conn, err := c.dial(ep)
	if err != nil {
		return nil, err
	}
	h := &host{ep: ep, learnt: learnt, conn: conn}
	c.all = append(c.all, h)
	return h, nil
}

func (c *Client) dial(ep endpoint) (*grpc.ClientConn, error) {
	opts := append([]grpc.DialOption{
		grpc.WithTransportCredentials(ep.credentials(c.tls)),
		grpc.WithConnectParams(grpc.ConnectParams{Backoff: backoff.DefaultConfig, MinConnectTimeout: c.cfg.connectTimeout}),
		// Fail a call at once when the manager is unreachable, instead of
		// waiting for it to appear: the next manager, or the user, is told.
		grpc.WithDefaultCallOptions(grpc.WaitForReady(false)),
	}, c.cfg.dialOpts...)
	conn, err := grpc.NewClient(ep.target(), opts...)
	if err != nil {
		return nil, fmt.Errorf("cannot use Warren manager address %s: %w", ep, err)
	}
	return conn, nil
}

func (c *Client) isClosed() bool {
	c.mu.Lock()
	defer c.mu.Unlock()
	return c.closed
}

func (c *Client) closeAll() error {
	c.mu.Lock()
	defer c.mu.Unlock()
	var errs []error
	for _, h := range c.all {
		if h.conn != nil {
			errs = append(errs, h.conn.Close())
			h.conn = nil
		}
	}
	return errors.Join(errs...)
}

// translatedStream translates the errors of a stream's sends and receives,
// naming the manager it runs on. io.EOF passes unchanged.
type translatedStream struct {
	grpc.ClientStream
	c    *Client
	host string
}

func (s *translatedStream) SendMsg(m any) error {
	return s.c.translateOn(s.host, s.ClientStream.SendMsg(m))
}

func (s *translatedStream) RecvMsg(m any) error {
	return s.c.translateOn(s.host, s.ClientStream.RecvMsg(m))
}

// mayRetry tells whether a call that failed as unavailable may go to
// another manager: a read may, and so may a write that surely changed
// nothing (no connection was made, or the manager said it has no leader).
func mayRetry(method string, err error) bool {
	name := method[strings.LastIndex(method, "/")+1:]
	for _, p := range []string{"Get", "List", "Inspect"} {
		if strings.HasPrefix(name, p) {
			return true
		}
	}
	st, _ := status.FromError(err)
	if st.Code() == codes.DeadlineExceeded {
		return true // unavailable() let it through only as a connect timeout
	}
	for _, s := range []string{"connection refused", "no such file or directory", "Error while dialing", "name resolver", "no Raft leader"} {
		if strings.Contains(st.Message(), s) {
			return true
		}
	}
	return false
}
