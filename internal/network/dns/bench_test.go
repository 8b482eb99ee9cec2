package dns

import (
	"fmt"
	"testing"
	"time"

	mdns "github.com/miekg/dns"
)

// BenchmarkClusterQuery measures cluster-name answers over loopback UDP,
// from parallel clients, and prints queries per second.
func BenchmarkClusterQuery(b *testing.B) {
	tb := NewTable()
	var svcs []Service
	for i := range 1000 {
		svcs = append(svcs, Service{
			Name:  fmt.Sprintf("svc%d", i),
			VIP:   addrs(fmt.Sprintf("10.201.%d.%d", i/250, i%250+1))[0],
			Tasks: addrs("10.200.1.2", "10.200.2.2", "10.200.3.2"),
		})
	}
	tb.Set(svcs)
	addr := startServer(b, Config{Table: tb, Upstreams: []string{deadAddr(b)}})
	for _, name := range []string{"svc500.warren.", "tasks.svc500."} {
		b.Run(name, func(b *testing.B) {
			// Many clients in flight at once, as containers are: one
			// client per core would measure round trips, not the server.
			b.SetParallelism(16)
			start := time.Now()
			b.RunParallel(func(pb *testing.PB) {
				c := &mdns.Client{Timeout: 5 * time.Second}
				conn, err := c.Dial(addr)
				if err != nil {
					b.Error(err)
					return
				}
				defer conn.Close()
				m := new(mdns.Msg).SetQuestion(name, mdns.TypeA)
				for pb.Next() {
					resp, _, err := c.ExchangeWithConn(m, conn)
					if err != nil || len(resp.Answer) == 0 {
						b.Errorf("query %s: %v %v", name, resp, err)
						return
					}
				}
			})
			qps := float64(b.N) / time.Since(start).Seconds()
			b.ReportMetric(qps, "queries/s")
		})
	}
}

// BenchmarkHandler measures the answer alone, without the network.
func BenchmarkHandler(b *testing.B) {
	tb := NewTable()
	tb.Set([]Service{{Name: "web", VIP: addrs("10.201.0.5")[0]}})
	h := &handler{table: tb, zone: "warren.", ttl: DefaultTTL, log: quietLogger()}
	req := new(mdns.Msg).SetQuestion("web.warren.", mdns.TypeA)
	b.ReportAllocs()
	for b.Loop() {
		if resp := h.answer(req); len(resp.Answer) != 1 {
			b.Fatal(resp)
		}
	}
}
