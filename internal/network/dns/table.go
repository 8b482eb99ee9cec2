package dns

import (
	"net/netip"
	"slices"
	"strings"
	"sync/atomic"
)

// Service is one cluster name as the DNS server sees it.
type Service struct {
	// Name is the service's name; lookups ignore its case.
	Name string
	// VIP is the service's virtual IP, or the zero Addr when it has none
	// (then NAME answers with the task addresses instead).
	VIP netip.Addr
	// Tasks are the addresses of the service's healthy running tasks.
	Tasks []netip.Addr
}

// Table maps service names to addresses. The node's network controller
// replaces it whole with Set whenever the cluster's network map changes;
// every answer is read from the table current at that moment, so a
// restarted task never lingers in an answer (moby#42833). It is safe for
// concurrent use and lookups take no lock.
type Table struct {
	// An immutable snapshot swapped whole by Set: readers never block and
	// never see half of an update.
	cur     atomic.Pointer[snapshot]
	serials atomic.Uint32
}

type snapshot struct {
	serial   uint32
	services map[string]*entry
}

// entry is one service, ready to answer from.
type entry struct {
	vip   netip.Addr
	tasks []netip.Addr
	// next rotates the order in which task addresses are given out, so
	// clients that take the first address spread over the tasks.
	next atomic.Uint32
}

// NewTable returns an empty table.
func NewTable() *Table {
	t := &Table{}
	t.cur.Store(&snapshot{serial: t.serials.Add(1), services: map[string]*entry{}})
	return t
}

// Set replaces the whole table with services, at once: a lookup sees
// either the old table or the new one, never a mix. Names are matched
// without regard to case; of two services with the same name, the later
// one wins. Set copies what it keeps, so the caller may reuse services.
func (t *Table) Set(services []Service) {
	m := make(map[string]*entry, len(services))
	for _, s := range services {
		name := normalize(s.Name)
		if name == "" {
			continue
		}
		m[name] = &entry{vip: s.VIP, tasks: slices.Clone(s.Tasks)}
	}
	// The serial rides in the negative answers' SOA, so a resolver that
	// cares can see the zone changed.
	t.cur.Store(&snapshot{serial: t.serials.Add(1), services: m})
}

// lookup returns the entry for name (already normalized), if any.
func (t *Table) lookup(name string) (*entry, bool) {
	e, ok := t.cur.Load().services[name]
	return e, ok
}

// serial is a number that changes on every Set.
func (t *Table) serial() uint32 {
	return t.cur.Load().serial
}

// serviceAddrs are the addresses NAME answers with: the VIP, or with no
// VIP every task address, rotated.
func (e *entry) serviceAddrs() []netip.Addr {
	if e.vip.IsValid() {
		return []netip.Addr{e.vip}
	}
	return e.taskAddrs()
}

// taskAddrs are every task address, starting one further on each call.
func (e *entry) taskAddrs() []netip.Addr {
	n := len(e.tasks)
	if n == 0 {
		return nil
	}
	start := int((e.next.Add(1) - 1) % uint32(n))
	out := make([]netip.Addr, 0, n)
	out = append(out, e.tasks[start:]...)
	return append(out, e.tasks[:start]...)
}

// normalize makes a name comparable: lower case, no trailing dot.
func normalize(name string) string {
	return strings.TrimSuffix(strings.ToLower(name), ".")
}
