package join

import (
	"context"
	"errors"
	"path/filepath"
	"sync"
	"sync/atomic"
	"testing"
	"time"

	"google.golang.org/grpc"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/security/ca"
)

// fakeCA is a NodeCA client that signs renewals locally, after failing the
// first `fail` calls.
type fakeCA struct {
	api.NodeCAClient
	ca     *ca.CA
	nodeID string

	mu    sync.Mutex
	fail  int
	calls int
}

func (f *fakeCA) RenewCertificate(_ context.Context, req *api.RenewCertificateRequest, _ ...grpc.CallOption) (*api.RenewCertificateResponse, error) {
	f.mu.Lock()
	defer f.mu.Unlock()
	f.calls++
	if f.calls <= f.fail {
		return nil, errors.New("manager unavailable")
	}
	cert, err := f.ca.IssueFromCSR(req.GetCsr(), f.nodeID, ca.RoleWorker, testCluster, 2*time.Minute)
	return &api.RenewCertificateResponse{Certificate: cert}, err
}

func (f *fakeCA) callCount() int {
	f.mu.Lock()
	defer f.mu.Unlock()
	return f.calls
}

// TestRenewerRetriesUntilItRenews: the first attempts fail, the back-off
// (shortened here) retries, and the renewal lands in memory and on disk.
func TestRenewerRetriesUntilItRenews(t *testing.T) {
	root := newCA(t)
	creds := testCreds(t, root, "node-1")
	dir := t.TempDir()
	must(t, creds.Save(dir))
	kp, err := creds.KeyPair()
	must(t, err)
	fake := &fakeCA{ca: root, nodeID: "node-1", fail: 3}
	renewed := make(chan time.Time, 1)
	pastRenewal := kp.NotAfter().Add(-time.Hour)
	var first atomic.Bool
	r := NewRenewer(RenewerConfig{
		KeyPair: kp, DataDir: dir,
		Client: func(context.Context) (api.NodeCAClient, error) { return fake, nil },
		Logger: discard(),
		// Past the renewal point until the first renewal, then real time.
		Now: func() time.Time {
			if first.Load() {
				return time.Now()
			}
			return pastRenewal
		},
		OnRenew: func(n time.Time) {
			first.Store(true)
			select {
			case renewed <- n:
			default:
			}
		},
		RetryMin: time.Millisecond, RetryMax: 4 * time.Millisecond,
	})
	done := make(chan error, 1)
	go func() { done <- r.Run(context.Background()) }()
	select {
	case <-renewed:
	case <-time.After(10 * time.Second):
		t.Fatalf("no renewal after %d attempts", fake.callCount())
	}
	r.Stop()
	if err := <-done; err != nil {
		t.Fatalf("Run = %v", err)
	}
	if fake.callCount() < 4 {
		t.Fatalf("renewed after %d calls, want 3 failures then a success", fake.callCount())
	}
	onDisk, err := ca.LoadKeyPair(filepath.Join(dir, CertsDir), KeyPairName)
	must(t, err)
	if onDisk.Leaf().SerialNumber.Cmp(kp.Leaf().SerialNumber) != 0 || string(kp.Leaf().Raw) == string(mustLeaf(t, creds.CertPEM).Raw) {
		t.Fatal("after renewal the key pair and the files should hold the same, new certificate")
	}
	if _, err := Load(dir); err != nil {
		t.Fatalf("Load after renewal: %v", err)
	}
}

func TestRenewRefusesAnotherIdentity(t *testing.T) {
	root := newCA(t)
	kp, err := testCreds(t, root, "node-1").KeyPair()
	must(t, err)
	before := kp.Leaf().SerialNumber
	fake := &fakeCA{ca: root, nodeID: "node-2"} // the manager mixed nodes up
	r := NewRenewer(RenewerConfig{KeyPair: kp, Logger: discard(),
		Client: func(context.Context) (api.NodeCAClient, error) { return fake, nil }})
	if err := r.RenewNow(ctxTimeout(t)); err == nil {
		t.Fatal("RenewNow accepted a certificate for another node")
	}
	if kp.Leaf().SerialNumber.Cmp(before) != 0 {
		t.Fatal("a refused renewal replaced the certificate")
	}
}

func TestNextDelay(t *testing.T) {
	root := newCA(t)
	kp, err := testCreds(t, root, "node-1").KeyPair()
	must(t, err)
	nb, na := kp.Leaf().NotBefore, kp.NotAfter()
	life := na.Sub(nb)
	margin := life / 10
	cases := []struct {
		name     string
		now      time.Time
		failures int
		min, max time.Duration
	}{
		{"fresh certificate waits for 50-80% of its life", nb, 0, life / 2, life * 8 / 10},
		{"past the renewal point renews now", na.Add(-time.Minute), 0, 0, 0},
		{"first retry", nb, 1, time.Second, time.Second},
		{"third retry doubles twice", nb, 3, 4 * time.Second, 4 * time.Second},
		{"back-off is capped", nb, 20, time.Minute, time.Minute},
		{"never past expiry minus the margin", na.Add(-margin - 10*time.Second), 20, 10 * time.Second, 10 * time.Second},
		{"inside the margin retries at the minimum", na.Add(-margin / 2), 20, time.Second, time.Second},
		{"expired retries at the minimum", na.Add(time.Hour), 20, time.Second, time.Second},
	}
	for _, tc := range cases {
		t.Run(tc.name, func(t *testing.T) {
			r := NewRenewer(RenewerConfig{KeyPair: kp, Now: func() time.Time { return tc.now }})
			if got := r.nextDelay(tc.failures); got < tc.min || got > tc.max {
				t.Fatalf("nextDelay(%d) at %v = %v, want %v..%v", tc.failures, tc.now, got, tc.min, tc.max)
			}
		})
	}
}

func TestStopBeforeRun(t *testing.T) {
	root := newCA(t)
	kp, err := testCreds(t, root, "node-1").KeyPair()
	must(t, err)
	r := NewRenewer(RenewerConfig{KeyPair: kp, Logger: discard()})
	r.Stop()
	r.Stop()
	if err := r.Run(context.Background()); err != nil {
		t.Fatalf("Run after Stop = %v", err)
	}
}
