package ca

import (
	"context"
	"crypto/tls"
	"crypto/x509"
	"io"
	"net"
	"strings"
	"testing"
	"time"

	"google.golang.org/grpc"
	"google.golang.org/grpc/credentials"
	"google.golang.org/grpc/health"
	healthpb "google.golang.org/grpc/health/grpc_health_v1"
	"google.golang.org/grpc/peer"
)

// result is what each side of one loopback handshake saw.
type result struct {
	serverErr, clientErr error
	server               tls.ConnectionState // as the server saw the client
	client               tls.ConnectionState // as the client saw the server
}

// handshake runs one TLS connection over 127.0.0.1. After a successful
// handshake the server writes a byte and the client reads it: under TLS 1.3
// the client's Handshake returns before the server has judged the client's
// certificate, so a rejection only reaches the client on its first read.
func handshake(t *testing.T, serverCfg, clientCfg *tls.Config) result {
	t.Helper()
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	defer ln.Close()
	deadline := time.Now().Add(10 * time.Second)

	type srv struct {
		err   error
		state tls.ConnectionState
	}
	done := make(chan srv, 1)
	go func() {
		raw, err := ln.Accept()
		if err != nil {
			done <- srv{err: err}
			return
		}
		defer raw.Close()
		_ = raw.SetDeadline(deadline)
		conn := tls.Server(raw, serverCfg)
		if err := conn.Handshake(); err != nil {
			done <- srv{err: err}
			return
		}
		_, err = conn.Write([]byte{1})
		done <- srv{err: err, state: conn.ConnectionState()}
	}()

	var r result
	raw, err := net.Dial("tcp", ln.Addr().String())
	must(t, err)
	defer raw.Close()
	_ = raw.SetDeadline(deadline)
	conn := tls.Client(raw, clientCfg)
	if r.clientErr = conn.Handshake(); r.clientErr == nil {
		r.client = conn.ConnectionState()
		_, r.clientErr = io.ReadFull(conn, make([]byte, 1))
	}
	_ = conn.Close() // lets a server still waiting on the handshake finish
	s := <-done
	r.serverErr, r.server = s.err, s.state
	return r
}

func TestMutualTLS(t *testing.T) {
	c, other := newTestCA(t), newTestCA(t)
	manager := issuePair(t, c, "m1", RoleManager)
	worker := issuePair(t, c, "w1", RoleWorker)
	admin := issuePair(t, c, "admin-x", RoleAdmin)
	foreignClient := issuePair(t, other, "w1", RoleWorker)
	foreignServer := issuePair(t, other, "m1", RoleManager)
	expiredClient := expiredPair(t, c, "w2", RoleWorker)
	expiredServer := expiredPair(t, c, "m2", RoleManager)

	tests := []struct {
		name       string
		serverCert *KeyPair
		clientCert *KeyPair // nil: no client certificate
		serverName string
		wantErr    string // "" for success; else a substring of the rejecting side's error
		wantID     Identity
	}{
		{"worker client accepted", manager, worker, "127.0.0.1", "", Identity{"w1", RoleWorker, testCluster}},
		{"admin client accepted", manager, admin, "localhost", "", Identity{"admin-x", RoleAdmin, testCluster}},
		{"dial manager by node ID", manager, worker, "m1", "", Identity{"w1", RoleWorker, testCluster}},
		{"no client certificate", manager, nil, "127.0.0.1", "didn't provide a certificate", Identity{}},
		{"client from another CA", manager, foreignClient, "127.0.0.1", "unknown authority", Identity{}},
		{"server from another CA", foreignServer, worker, "127.0.0.1", "unknown authority", Identity{}},
		{"expired client", manager, expiredClient, "127.0.0.1", "expired", Identity{}},
		{"expired server", expiredServer, worker, "127.0.0.1", "expired", Identity{}},
		{"wrong server name", manager, worker, "m9", "not m9", Identity{}},
		{"worker cannot pose as a manager address", worker, admin, "127.0.0.1", "doesn't contain any IP SANs", Identity{}},
		{"admin certificate names no server", admin, worker, "admin-x", "Common Name", Identity{}},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			var clientGet func() *tls.Certificate
			if tt.clientCert != nil {
				clientGet = tt.clientCert.Certificate
			}
			r := handshake(t,
				ServerTLSConfig(c.Pool(), tt.serverCert.Certificate, true),
				ClientTLSConfig(c.Pool(), clientGet, tt.serverName))
			if tt.wantErr != "" {
				if r.serverErr == nil || r.clientErr == nil {
					t.Fatalf("connection should fail on both sides; server err = %v, client err = %v", r.serverErr, r.clientErr)
				}
				if both := r.serverErr.Error() + " | " + r.clientErr.Error(); !strings.Contains(both, tt.wantErr) {
					t.Errorf("errors %q do not say %q", both, tt.wantErr)
				}
				return
			}
			if r.serverErr != nil || r.clientErr != nil {
				t.Fatalf("server err = %v, client err = %v", r.serverErr, r.clientErr)
			}
			if r.server.Version != tls.VersionTLS13 {
				t.Errorf("TLS version %x, want 1.3", r.server.Version)
			}
			id, err := IdentityFromCert(r.server.VerifiedChains[0][0])
			if err != nil || id != tt.wantID {
				t.Errorf("server sees identity %+v (err %v), want %+v", id, err, tt.wantID)
			}
		})
	}
}

func TestOptionalClientCert(t *testing.T) {
	c, other := newTestCA(t), newTestCA(t)
	manager := issuePair(t, c, "m1", RoleManager)
	server := ServerTLSConfig(c.Pool(), manager.Certificate, false)

	r := handshake(t, server, ClientTLSConfig(c.Pool(), nil, "127.0.0.1"))
	if r.serverErr != nil || r.clientErr != nil {
		t.Fatalf("joining client without a certificate: server err %v, client err %v", r.serverErr, r.clientErr)
	}
	if len(r.server.VerifiedChains) != 0 {
		t.Error("server has a verified chain for a client that sent no certificate")
	}
	foreign := issuePair(t, other, "w1", RoleWorker)
	if r := handshake(t, server, ClientTLSConfig(c.Pool(), foreign.Certificate, "127.0.0.1")); r.serverErr == nil {
		t.Error("an offered certificate from another CA was accepted")
	}
}

func TestKeyPairReplaceServesNewCert(t *testing.T) {
	c := newTestCA(t)
	serverKP := issuePair(t, c, "m1", RoleManager)
	worker := issuePair(t, c, "w1", RoleWorker)
	server := ServerTLSConfig(c.Pool(), serverKP.Certificate, true)
	client := ClientTLSConfig(c.Pool(), worker.Certificate, "127.0.0.1")

	first := handshake(t, server, client)
	must(t, first.clientErr)
	oldSerial := serverKP.Leaf().SerialNumber
	if got := first.client.PeerCertificates[0].SerialNumber; got.Cmp(oldSerial) != 0 {
		t.Fatalf("first handshake served serial %v, want %v", got, oldSerial)
	}

	certPEM, keyPEM, err := c.Issue("m1", RoleManager, testCluster, 0, nil)
	must(t, err)
	must(t, serverKP.Replace(certPEM, keyPEM))
	newSerial := serverKP.Leaf().SerialNumber

	second := handshake(t, server, client)
	must(t, second.clientErr)
	if got := second.client.PeerCertificates[0].SerialNumber; got.Cmp(newSerial) != 0 {
		t.Errorf("after Replace the server served serial %v, want the new %v", got, newSerial)
	}

	if err := serverKP.Replace(certPEM, []byte("junk")); err == nil {
		t.Error("Replace with a bad key succeeded")
	}
	if serverKP.Leaf().SerialNumber.Cmp(newSerial) != 0 {
		t.Error("a failed Replace changed the served certificate")
	}
}

// TestIdentityFromContextOverGRPC proves IdentityFromContext reads what
// grpc's TLS credentials actually put in the context.
func TestIdentityFromContextOverGRPC(t *testing.T) {
	c := newTestCA(t)
	manager := issuePair(t, c, "m1", RoleManager)
	worker := issuePair(t, c, "w1", RoleWorker)

	seen := make(chan Identity, 1)
	srv := grpc.NewServer(
		grpc.Creds(credentials.NewTLS(ServerTLSConfig(c.Pool(), manager.Certificate, true))),
		grpc.UnaryInterceptor(func(ctx context.Context, req any, _ *grpc.UnaryServerInfo, h grpc.UnaryHandler) (any, error) {
			id, ok := IdentityFromContext(ctx)
			if !ok {
				t.Error("IdentityFromContext found no identity")
			}
			seen <- id
			return h(ctx, req)
		}))
	healthpb.RegisterHealthServer(srv, health.NewServer())
	ln, err := net.Listen("tcp", "127.0.0.1:0")
	must(t, err)
	go func() { _ = srv.Serve(ln) }()
	defer srv.Stop()

	conn, err := grpc.NewClient(ln.Addr().String(),
		grpc.WithTransportCredentials(credentials.NewTLS(ClientTLSConfig(c.Pool(), worker.Certificate, "127.0.0.1"))))
	must(t, err)
	defer conn.Close()
	ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
	defer cancel()
	if _, err := healthpb.NewHealthClient(conn).Check(ctx, &healthpb.HealthCheckRequest{}); err != nil {
		t.Fatalf("Check: %v", err)
	}
	if id, want := <-seen, (Identity{"w1", RoleWorker, testCluster}); id != want {
		t.Errorf("server saw %+v, want %+v", id, want)
	}
}

func TestIdentityFromContextWithoutVerifiedCert(t *testing.T) {
	c := newTestCA(t)
	leaf := issuePair(t, c, "w1", RoleWorker).Leaf()
	tests := []struct {
		name string
		ctx  context.Context
	}{
		{"no peer", context.Background()},
		{"not TLS", peer.NewContext(context.Background(), &peer.Peer{})},
		// A presented but unverified certificate must not count.
		{"unverified", peer.NewContext(context.Background(), &peer.Peer{
			AuthInfo: credentials.TLSInfo{State: tls.ConnectionState{PeerCertificates: []*x509.Certificate{leaf}}},
		})},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			if id, ok := IdentityFromContext(tt.ctx); ok {
				t.Errorf("got identity %+v, want none", id)
			}
		})
	}
}
