package dns

import (
	"context"
	"log/slog"
	"net"
	"net/netip"
	"strings"

	mdns "github.com/miekg/dns"
)

// ednsSize is the UDP payload size this server advertises: the DNS Flag
// Day 2020 figure, safe from fragmentation on any path.
const ednsSize = 1232

// handler answers one query: from the table when the name is a cluster
// name, else from upstream.
type handler struct {
	ctx   context.Context
	table *Table
	zone  string // the cluster domain, lower case, with its trailing dot: "warren."
	ttl   uint32
	fwd   *forwarder
	log   *slog.Logger
}

func (h *handler) ServeDNS(w mdns.ResponseWriter, req *mdns.Msg) {
	resp := h.answer(req)
	resp.RecursionAvailable = true
	if _, udp := w.RemoteAddr().(*net.UDPAddr); udp {
		// A client asking over UDP gets what fits its buffer, with TC set
		// if anything was left out, so that it asks again over TCP.
		size := mdns.MinMsgSize
		if opt := req.IsEdns0(); opt != nil {
			size = int(opt.UDPSize())
		}
		resp.Truncate(size)
	} else {
		resp.Compress = true
	}
	if err := w.WriteMsg(resp); err != nil {
		h.log.Debug("dns: write answer", "dns.client", w.RemoteAddr().String(), "err", err)
	}
}

func (h *handler) answer(req *mdns.Msg) *mdns.Msg {
	resp := new(mdns.Msg)
	switch {
	case req.Opcode != mdns.OpcodeQuery:
		return resp.SetRcode(req, mdns.RcodeNotImplemented)
	case len(req.Question) != 1:
		return resp.SetRcode(req, mdns.RcodeFormatError)
	}
	if resp, ok := h.cluster(req); ok {
		return resp
	}
	up, err := h.fwd.exchange(h.ctx, req)
	if err != nil {
		return resp.SetRcode(req, mdns.RcodeServerFailure)
	}
	return up
}

// cluster answers req from the table if its name is the cluster's: any
// name under the zone (unknown ones get NXDOMAIN: they are never
// forwarded), and NAME or tasks.NAME outside it when NAME is a service.
// It returns false for a name to forward.
func (h *handler) cluster(req *mdns.Msg) (*mdns.Msg, bool) {
	q := req.Question[0]
	name := strings.ToLower(q.Name)
	rel, inZone := strings.CutSuffix(name, "."+h.zone)
	apex := name == h.zone
	e, tasks, found := h.lookup(strings.TrimSuffix(rel, "."))
	if !found && !inZone && !apex {
		return nil, false
	}
	resp := new(mdns.Msg).SetReply(req)
	resp.Authoritative = true
	if opt := req.IsEdns0(); opt != nil {
		resp.SetEdns0(ednsSize, false)
	}
	switch {
	case apex && q.Qtype == mdns.TypeSOA:
		resp.Answer = []mdns.RR{h.soa()}
	case apex:
		resp.Ns = []mdns.RR{h.soa()}
	case !found:
		resp.Rcode = mdns.RcodeNameError
		resp.Ns = []mdns.RR{h.soa()}
	default:
		resp.Answer = h.records(q, e, tasks)
		// NODATA (a name with no address of that type, or a service with
		// no task yet): NOERROR, so resolvers neither wait nor walk the
		// search list; the SOA lets them cache that for the TTL only.
		if len(resp.Answer) == 0 && inZone {
			resp.Ns = []mdns.RR{h.soa()}
		}
	}
	return resp, true
}

// lookup finds a service by name, or by tasks.NAME its tasks.
func (h *handler) lookup(name string) (e *entry, tasks, found bool) {
	if e, ok := h.table.lookup(name); ok {
		return e, false, true
	}
	if svc, ok := strings.CutPrefix(name, "tasks."); ok {
		if e, ok := h.table.lookup(svc); ok {
			return e, true, true
		}
	}
	return nil, false, false
}

// records are the A (or AAAA) records for q: the addresses of e's tasks,
// or of e itself.
func (h *handler) records(q mdns.Question, e *entry, tasks bool) []mdns.RR {
	if q.Qtype != mdns.TypeA && q.Qtype != mdns.TypeAAAA && q.Qtype != mdns.TypeANY {
		return nil
	}
	var addrs []netip.Addr
	if tasks {
		addrs = e.taskAddrs()
	} else {
		addrs = e.serviceAddrs()
	}
	rrs := make([]mdns.RR, 0, len(addrs))
	for _, a := range addrs {
		// The name as asked, case and all: some resolvers randomize the
		// case of queries (DNS 0x20) and check the answer keeps it.
		hdr := mdns.RR_Header{Name: q.Name, Class: mdns.ClassINET, Ttl: h.ttl}
		switch a = a.Unmap(); {
		case a.Is4() && q.Qtype != mdns.TypeAAAA:
			hdr.Rrtype = mdns.TypeA
			rrs = append(rrs, &mdns.A{Hdr: hdr, A: a.AsSlice()})
		case a.Is6() && q.Qtype != mdns.TypeA:
			hdr.Rrtype = mdns.TypeAAAA
			rrs = append(rrs, &mdns.AAAA{Hdr: hdr, AAAA: a.AsSlice()})
		}
	}
	return rrs
}

// soa stands for the cluster zone in negative answers. Its TTL and
// minimum are the answer TTL, so a resolver caches "no such name" no
// longer than it would cache an address.
func (h *handler) soa() *mdns.SOA {
	return &mdns.SOA{
		Hdr:     mdns.RR_Header{Name: h.zone, Rrtype: mdns.TypeSOA, Class: mdns.ClassINET, Ttl: h.ttl},
		Ns:      "ns." + h.zone,
		Mbox:    "hostmaster." + h.zone,
		Serial:  h.table.serial(),
		Refresh: 3600,
		Retry:   600,
		Expire:  86400,
		Minttl:  h.ttl,
	}
}
