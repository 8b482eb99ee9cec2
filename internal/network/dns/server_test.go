package dns

import (
	"fmt"
	"net"
	"slices"
	"strings"
	"testing"

	mdns "github.com/miekg/dns"
)

// clusterTable is the table most tests answer from.
func clusterTable() *Table {
	tb := NewTable()
	tb.Set([]Service{
		{Name: "web", VIP: addrs("10.201.0.5")[0], Tasks: addrs("10.200.1.2", "10.200.2.2")},
		{Name: "db", Tasks: addrs("10.200.1.7")}, // no VIP: NAME gives the tasks
		{Name: "idle", VIP: addrs("10.201.0.9")[0]},
		{Name: "v6", Tasks: addrs("fd00::7")},
	})
	return tb
}

func TestClusterAnswers(t *testing.T) {
	up := startUpstream(t, nil)
	addr := startServer(t, Config{Table: clusterTable(), Upstreams: []string{up.addr}})
	tests := []struct {
		name  string
		qtype uint16
		rcode int
		want  []string // sorted
	}{
		{"web.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.201.0.5"}},
		{"web.warren.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.201.0.5"}},
		{"WeB.WaRRen.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.201.0.5"}},
		{"WEB.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.201.0.5"}},
		{"tasks.web.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.200.1.2", "10.200.2.2"}},
		{"tasks.web.warren.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.200.1.2", "10.200.2.2"}},
		{"Tasks.Web.Warren.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.200.1.2", "10.200.2.2"}},
		{"db.warren.", mdns.TypeA, mdns.RcodeSuccess, []string{"10.200.1.7"}},
		{"v6.", mdns.TypeAAAA, mdns.RcodeSuccess, []string{"fd00::7"}},
		{"web.", mdns.TypeANY, mdns.RcodeSuccess, []string{"10.201.0.5"}},
		// Known names, nothing of that type: NOERROR and empty.
		{"web.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"web.warren.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"web.warren.", mdns.TypeMX, mdns.RcodeSuccess, nil},
		{"tasks.web.", mdns.TypeAAAA, mdns.RcodeSuccess, nil},
		{"v6.", mdns.TypeA, mdns.RcodeSuccess, nil},
		// A service with no task: tasks.NAME exists but has no address.
		{"tasks.idle.", mdns.TypeA, mdns.RcodeSuccess, nil},
		{"tasks.idle.warren.", mdns.TypeA, mdns.RcodeSuccess, nil},
		// Unknown names in the zone: NXDOMAIN from here.
		{"nope.warren.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"tasks.nope.warren.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"a.web.warren.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"tasks.warren.", mdns.TypeA, mdns.RcodeNameError, nil},
		{"nope.warren.", mdns.TypeAAAA, mdns.RcodeNameError, nil},
		// The zone itself exists.
		{"warren.", mdns.TypeA, mdns.RcodeSuccess, nil},
	}
	for _, tt := range tests {
		t.Run(fmt.Sprintf("%s_%s", tt.name, mdns.TypeToString[tt.qtype]), func(t *testing.T) {
			resp := query(t, "udp", addr, tt.name, tt.qtype)
			if resp.Rcode != tt.rcode {
				t.Fatalf("rcode %s, want %s", mdns.RcodeToString[resp.Rcode], mdns.RcodeToString[tt.rcode])
			}
			if !resp.Authoritative || !resp.RecursionAvailable {
				t.Errorf("AA=%v RA=%v, want both set", resp.Authoritative, resp.RecursionAvailable)
			}
			got := addrsOf(resp)
			slices.Sort(got)
			if !slices.Equal(got, tt.want) {
				t.Errorf("addresses %v, want %v", got, tt.want)
			}
			for _, rr := range resp.Answer {
				if rr.Header().Ttl != DefaultTTL || rr.Header().Name != tt.name {
					t.Errorf("record %v: want TTL %d and the name as asked", rr, DefaultTTL)
				}
			}
			if strings.HasSuffix(tt.name, "warren.") && len(resp.Answer) == 0 {
				soa, ok := soaOf(resp)
				if !ok || soa.Minttl != DefaultTTL || soa.Hdr.Ttl != DefaultTTL {
					t.Errorf("negative answer in the zone: want an SOA with TTL %d, got %v", DefaultTTL, resp.Ns)
				}
			}
		})
	}
	if n := up.queries.Load(); n != 0 {
		t.Errorf("upstream got %d queries for cluster names, want none", n)
	}
}

func soaOf(m *mdns.Msg) (*mdns.SOA, bool) {
	for _, rr := range m.Ns {
		if soa, ok := rr.(*mdns.SOA); ok {
			return soa, true
		}
	}
	return nil, false
}

func TestSetReplacesAnswersAtOnce(t *testing.T) {
	tb := clusterTable()
	addr := startServer(t, Config{Table: tb, Upstreams: []string{deadAddr(t)}, TTL: 5})
	if got := addrsOf(query(t, "udp", addr, "web.", mdns.TypeA)); !slices.Equal(got, []string{"10.201.0.5"}) {
		t.Fatalf("before Set: %v", got)
	}
	tb.Set([]Service{
		{Name: "web", Tasks: addrs("10.200.9.9")},
		{Name: "api", VIP: addrs("10.201.0.77")[0]},
	})
	// The very next queries see the new table: nothing cached in between.
	if got := addrsOf(query(t, "udp", addr, "web.", mdns.TypeA)); !slices.Equal(got, []string{"10.200.9.9"}) {
		t.Errorf("web after Set: %v, want the new task only", got)
	}
	if got := addrsOf(query(t, "udp", addr, "tasks.web.warren.", mdns.TypeA)); !slices.Equal(got, []string{"10.200.9.9"}) {
		t.Errorf("tasks.web after Set: %v, want the new task only", got)
	}
	resp := query(t, "udp", addr, "api.warren.", mdns.TypeA)
	if got := addrsOf(resp); !slices.Equal(got, []string{"10.201.0.77"}) || resp.Answer[0].Header().Ttl != 5 {
		t.Errorf("api after Set: %v, want 10.201.0.77 with the configured TTL 5", resp.Answer)
	}
	if resp := query(t, "udp", addr, "db.warren.", mdns.TypeA); resp.Rcode != mdns.RcodeNameError {
		t.Errorf("db removed by Set: rcode %s, want NXDOMAIN", mdns.RcodeToString[resp.Rcode])
	}
}

func TestTCP(t *testing.T) {
	up := startUpstream(t, map[string][]string{"example.test.": {"192.0.2.1"}})
	addr := startServer(t, Config{Table: clusterTable(), Upstreams: []string{up.addr}})
	if got := addrsOf(query(t, "tcp", addr, "web.warren.", mdns.TypeA)); !slices.Equal(got, []string{"10.201.0.5"}) {
		t.Errorf("cluster name over TCP: %v", got)
	}
	if got := addrsOf(query(t, "tcp", addr, "example.test.", mdns.TypeA)); !slices.Equal(got, []string{"192.0.2.1"}) {
		t.Errorf("forwarded name over TCP: %v", got)
	}
}

func TestTasksRotate(t *testing.T) {
	tb := NewTable()
	tb.Set([]Service{{Name: "web", Tasks: addrs("10.200.1.1", "10.200.1.2", "10.200.1.3")}})
	addr := startServer(t, Config{Table: tb, Upstreams: []string{deadAddr(t)}})
	firsts := map[string]bool{}
	for range 3 {
		got := addrsOf(query(t, "udp", addr, "tasks.web.", mdns.TypeA))
		if len(got) != 3 {
			t.Fatalf("want all 3 tasks in every answer, got %v", got)
		}
		firsts[got[0]] = true
	}
	if len(firsts) != 3 {
		t.Errorf("3 queries led with %v: want each task first once", firsts)
	}
}

// Many tasks do not fit a UDP answer: the client gets TC and then all of
// them over TCP.
func TestLargeAnswerTruncatedOverUDP(t *testing.T) {
	var tasks []string
	for i := range 200 {
		tasks = append(tasks, fmt.Sprintf("10.200.%d.%d", i/250, i%250+2))
	}
	tb := NewTable()
	tb.Set([]Service{{Name: "big", Tasks: addrs(tasks...)}})
	addr := startServer(t, Config{Table: tb, Upstreams: []string{deadAddr(t)}})
	resp := query(t, "udp", addr, "tasks.big.", mdns.TypeA)
	if !resp.Truncated || len(resp.Answer) == 0 || len(resp.Answer) >= 200 {
		t.Errorf("over UDP: TC=%v with %d records, want TC and a part", resp.Truncated, len(resp.Answer))
	}
	resp = query(t, "tcp", addr, "tasks.big.", mdns.TypeA)
	if resp.Truncated || len(resp.Answer) != 200 {
		t.Errorf("over TCP: TC=%v with %d records, want all 200", resp.Truncated, len(resp.Answer))
	}
}

func TestStartNamesAddressInUse(t *testing.T) {
	pc, err := net.ListenPacket("udp", "127.0.0.1:0")
	if err != nil {
		t.Fatal(err)
	}
	defer pc.Close()
	busy := pc.LocalAddr().String()
	s, err := New(Config{
		Addrs: []string{"127.0.0.1:0", busy}, Table: NewTable(), Upstreams: []string{deadAddr(t)},
		Logger: quietLogger(),
	})
	if err != nil {
		t.Fatal(err)
	}
	err = s.Start()
	if err == nil {
		s.Close()
		t.Fatal("Start on a port in use: no error")
	}
	if !strings.Contains(err.Error(), busy) || !strings.Contains(err.Error(), "in use") {
		t.Errorf("error %q should name %s and say it is in use", err, busy)
	}
	if len(s.Addrs()) != 0 {
		t.Errorf("failed Start left addresses bound: %v", s.Addrs())
	}
	if err := s.Close(); err != nil {
		t.Errorf("Close after failed Start: %v", err)
	}
}

func TestNewChecksConfig(t *testing.T) {
	for name, cfg := range map[string]Config{
		"no table":     {Addrs: []string{"127.0.0.1:0"}, Upstreams: []string{"127.0.0.1:53"}},
		"no addrs":     {Table: NewTable(), Upstreams: []string{"127.0.0.1:53"}},
		"bad addr":     {Table: NewTable(), Addrs: []string{"127.0.0.1"}, Upstreams: []string{"127.0.0.1:53"}},
		"bad upstream": {Table: NewTable(), Addrs: []string{"127.0.0.1:0"}, Upstreams: []string{"dns.example:53"}},
	} {
		if _, err := New(cfg); err == nil {
			t.Errorf("%s: New accepted %+v", name, cfg)
		}
	}
}
