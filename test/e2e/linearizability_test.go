package e2e

import (
	"context"
	"fmt"
	"math"
	"math/rand/v2"
	"os/exec"
	"slices"
	"strconv"
	"strings"
	"sync"
	"testing"
	"time"

	"github.com/anishathalye/porcupine"
	"google.golang.org/grpc/codes"
	"google.golang.org/grpc/metadata"
	"google.golang.org/grpc/status"

	"github.com/warren-project/warren/api"
	"github.com/warren-project/warren/internal/manager"
	"github.com/warren-project/warren/internal/testutil"
)

// registerInput is one operation on a service's "register" label, used as
// a register: a put sets it (UpdateService), a get reads it (GetService,
// as a consistent read).
type registerInput struct {
	key   string
	put   bool
	value uint64
}

// registerModel is a register per service; porcupine checks each service
// apart.
var registerModel = porcupine.Model{
	Partition: func(history []porcupine.Operation) [][]porcupine.Operation {
		byKey := map[string][]porcupine.Operation{}
		for _, op := range history {
			k := op.Input.(registerInput).key
			byKey[k] = append(byKey[k], op)
		}
		var out [][]porcupine.Operation
		for _, ops := range byKey {
			out = append(out, ops)
		}
		return out
	},
	Init: func() any { return uint64(0) },
	Step: func(state, input, output any) (bool, any) {
		in := input.(registerInput)
		if in.put {
			return true, in.value
		}
		return output.(uint64) == state.(uint64), state
	},
	DescribeOperation: func(input, output any) string {
		in := input.(registerInput)
		if in.put {
			return fmt.Sprintf("put(%s, %d)", in.key, in.value)
		}
		return fmt.Sprintf("get(%s) → %v", in.key, output)
	},
}

// history records operations as porcupine wants them; a put whose outcome
// is unknown (any error: it may have been applied) returns "never", so it
// may take effect at any point after its call.
type history struct {
	mu    sync.Mutex
	start time.Time
	ops   []porcupine.Operation
}

func (h *history) add(client int, in registerInput, out any, call, ret time.Time) {
	h.mu.Lock()
	defer h.mu.Unlock()
	r := int64(math.MaxInt64)
	if !ret.IsZero() {
		r = ret.Sub(h.start).Nanoseconds()
	}
	h.ops = append(h.ops, porcupine.Operation{ClientId: client, Input: in, Call: call.Sub(h.start).Nanoseconds(), Output: out, Return: r})
}

// serviceSpec is a service with no task whose label "register" holds
// value: a change of it is a Raft write with nothing to run.
func serviceSpec(name string, value uint64) *api.ServiceSpec {
	return &api.ServiceSpec{
		Name:   name,
		Labels: map[string]string{"register": strconv.FormatUint(value, 10)},
		Mode:   &api.ServiceSpec_Replicated{Replicated: &api.ReplicatedService{Replicas: 0}},
		Task:   &api.TaskSpec{Container: &api.ContainerSpec{Image: testImage, Network: "host"}},
	}
}

// registerOf reads the value serviceSpec stored.
func registerOf(s *api.Service) uint64 {
	v, _ := strconv.ParseUint(s.GetSpec().GetLabels()["register"], 10, 64)
	return v
}

// Three managers, each a host of its own (a network namespace): clients
// write and read a label of services through all of them while the
// leader is killed with SIGKILL ten times and a manager is cut off from
// the others twice. The history of operations is linearizable
// (porcupine), and every acknowledged write is present afterwards.
func TestLinearizableUnderLeaderKillsAndPartitions(t *testing.T) {
	testutil.RequireRoot(t, "containerd", "containerd-shim-runc-v2", "runc", "busybox", "ip", "nsenter")
	h := newHosts(t, 3)
	a := h.addrs[0]
	c := newClusterIn(t, h.names[0], "--overlay=false", "--listen-addr", a+":2377", "--advertise-addr", a, "--raft-addr", a+":2379")
	c.importBusybox(testImage)
	ms := []*haManager{c.founder(), c.joinManagerIn("m1", h.names[1], h.addrs[1]), c.joinManagerIn("m2", h.names[2], h.addrs[2])}

	keys := []string{"k0", "k1", "k2"}
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		_, err := c.client.CreateService(ctx, &api.CreateServiceRequest{Spec: serviceSpec(k, 0)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
	}

	// Commit latency of a service update through a follower and through
	// the leader, before any chaos.
	var lat []time.Duration
	for i := range 100 {
		start := time.Now()
		ctx, cancel := context.WithTimeout(context.Background(), 5*time.Second)
		_, err := ms[i%3].client.UpdateService(ctx, &api.UpdateServiceRequest{Service: "k0", Spec: serviceSpec("k0", uint64(1000+i))})
		cancel()
		if err != nil {
			t.Fatalf("update %d: %v", i, err)
		}
		lat = append(lat, time.Since(start))
	}
	slices.Sort(lat)
	t.Logf("FIGURE raft: service update acknowledged by a 3-manager cluster (any manager): p50 %v, p99 %v over %d updates",
		lat[len(lat)/2].Round(time.Microsecond), lat[len(lat)*99/100].Round(time.Microsecond), len(lat))

	hist := &history{start: time.Now()}
	// Each key starts from the value the latency loop left, written once
	// more inside the history.
	for _, k := range keys {
		ctx, cancel := context.WithTimeout(context.Background(), 10*time.Second)
		call := time.Now()
		_, err := c.client.UpdateService(ctx, &api.UpdateServiceRequest{Service: k, Spec: serviceSpec(k, 1)})
		cancel()
		if err != nil {
			t.Fatal(err)
		}
		hist.add(0, registerInput{key: k, put: true, value: 1}, nil, call, time.Now())
	}

	stop := make(chan struct{})
	var errOnce sync.Once
	var clients sync.WaitGroup
	for cl := 1; cl <= 3; cl++ {
		clients.Add(1)
		go func() {
			defer clients.Done()
			rng := rand.New(rand.NewPCG(uint64(cl), 7))
			for {
				select {
				case <-stop:
					return
				default:
				}
				m := ms[rng.IntN(len(ms))]
				k := keys[rng.IntN(len(keys))]
				ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
				call := time.Now()
				if rng.IntN(2) == 0 {
					v := 1 + rng.Uint64N(1<<40)
					_, err := m.client.UpdateService(ctx, &api.UpdateServiceRequest{Service: k, Spec: serviceSpec(k, v)})
					ret := time.Now()
					switch {
					case err != nil && neverApplied(err):
						// Refused, or the manager was down: nothing was proposed.
					case err != nil:
						hist.add(cl, registerInput{key: k, put: true, value: v}, nil, call, time.Time{}) // unknown outcome
						errOnce.Do(func() { t.Logf("a put failed (outcome unknown): %v", err) })
					default:
						hist.add(cl, registerInput{key: k, put: true, value: v}, nil, call, ret)
					}
				} else {
					ctx = metadata.AppendToOutgoingContext(ctx, manager.ConsistentReadHeader, "consistent")
					resp, err := m.client.GetService(ctx, &api.GetServiceRequest{Service: k})
					if err == nil {
						hist.add(cl, registerInput{key: k}, registerOf(resp.GetService()), call, time.Now())
					}
				}
				cancel()
				time.Sleep(time.Duration(rng.IntN(20)) * time.Millisecond)
			}
		}()
	}

	var failovers []time.Duration
	for round := 0; len(failovers) < 10; round++ {
		if round == 4 || round == 8 {
			// Cut a follower off from the others for a while, then heal.
			id := leaderID(ms)
			i := slices.IndexFunc(ms, func(m *haManager) bool { return m.nodeID != id })
			link := h.names[i]
			if out, err := exec.Command("ip", "link", "set", link, "down").CombinedOutput(); err != nil {
				t.Fatalf("partition %s: %v: %s", link, err, out)
			}
			time.Sleep(3 * time.Second)
			if out, err := exec.Command("ip", "link", "set", link, "up").CombinedOutput(); err != nil {
				t.Fatalf("heal %s: %v: %s", link, err, out)
			}
			time.Sleep(2 * time.Second)
			continue
		}
		id := leaderID(ms)
		i := slices.IndexFunc(ms, func(m *haManager) bool { return m.nodeID == id })
		if i < 0 {
			testutil.WaitFor(t, 30*time.Second, "a leader", func() bool { return leaderID(ms) != "" })
			continue
		}
		killed := time.Now()
		ms[i].kill()
		testutil.WaitFor(t, 30*time.Second, "a new leader after the kill", func() bool {
			id := leaderID(ms)
			return id != "" && id != ms[i].nodeID
		})
		failovers = append(failovers, time.Since(killed))
		time.Sleep(time.Second) // writes flow under the new leader
		ms[i].start()
		ms[i].waitAnswering(t)
	}
	time.Sleep(2 * time.Second)
	close(stop)
	clients.Wait()

	// Final reads, with everyone back.
	for _, k := range keys {
		testutil.WaitFor(t, 30*time.Second, "a final consistent read of "+k, func() bool {
			ctx, cancel := context.WithTimeout(context.Background(), 3*time.Second)
			defer cancel()
			ctx = metadata.AppendToOutgoingContext(ctx, manager.ConsistentReadHeader, "consistent")
			call := time.Now()
			resp, err := ms[0].client.GetService(ctx, &api.GetServiceRequest{Service: k})
			if err != nil {
				return false
			}
			hist.add(0, registerInput{key: k}, registerOf(resp.GetService()), call, time.Now())
			return true
		})
	}
	puts, unknown, gets := 0, 0, 0
	for _, op := range hist.ops {
		switch {
		case !op.Input.(registerInput).put:
			gets++
		case op.Return == math.MaxInt64:
			unknown++
		default:
			puts++
		}
	}
	res := porcupine.CheckOperationsTimeout(registerModel, hist.ops, 2*time.Minute)
	t.Logf("history: %d acknowledged puts, %d puts of unknown outcome, %d consistent reads; leader failovers %v", puts, unknown, gets, failovers)
	if res != porcupine.Ok {
		t.Fatalf("the history is not linearizable (porcupine: %v)", res)
	}
}

// neverApplied tells a write that surely changed nothing (refused as
// such, or sent to a manager that was down) from one whose outcome is
// unknown.
func neverApplied(err error) bool {
	switch status.Code(err) {
	case codes.InvalidArgument, codes.NotFound, codes.AlreadyExists, codes.FailedPrecondition, codes.PermissionDenied:
		return true
	case codes.Unavailable:
		msg := err.Error()
		return strings.Contains(msg, "connection refused") || strings.Contains(msg, "no such file")
	}
	return false
}
