package lb

import (
	"net/netip"
	"slices"
)

// maxDraw bounds the numgen modulus. Weights summing past it are scaled
// down (each kept at 1 at least); the interval map's end key, the total,
// must fit in 32 bits.
const maxDraw = 1 << 31

// pickSlots turns backends into the slots of a weighted random draw:
//
//	numgen random mod Total -> [Lo, Hi] -> backend
//
// One draw per new connection, looked up in an interval map, gives each
// backend exactly Weight/Total of the connections (a 10/90 canary split is
// exact) in a single rule, where kube-proxy-style cascading probabilities
// (rule i taken with probability w_i / sum_{j>=i} w_j) need one rule and
// one draw per backend. Backends are sorted by address so the same set
// gives the same rules, and weights are divided by their greatest common
// divisor so 10/90 reads as mod 10 { 0 : a, 1-9 : b }. A backend listed
// twice gets the sum of its weights; addresses that are not IPv4 are left
// out (the table is of family ip), as the caller's Plan reports.
func pickSlots(backends []Backend) (total uint32, slots []slot) {
	weights := map[netip.Addr]uint64{}
	for _, b := range backends {
		if !b.Addr.Is4() {
			continue
		}
		w := uint64(b.Weight)
		if w == 0 {
			w = 1
		}
		weights[b.Addr] += w
	}
	if len(weights) == 0 {
		return 0, nil
	}
	addrs := make([]netip.Addr, 0, len(weights))
	for a := range weights {
		addrs = append(addrs, a)
	}
	slices.SortFunc(addrs, netip.Addr.Compare)
	ws := make([]uint64, len(addrs))
	for i, a := range addrs {
		ws[i] = weights[a]
	}
	ws = normalize(ws)
	var lo uint32
	for i, a := range addrs {
		w := uint32(ws[i])
		slots = append(slots, slot{Addr: a, Weight: w, Lo: lo, Hi: lo + w - 1})
		lo += w
	}
	return lo, slots
}

// normalize divides weights by their gcd and scales them under maxDraw.
func normalize(ws []uint64) []uint64 {
	var g, sum uint64
	for _, w := range ws {
		g = gcd(g, w)
	}
	for i := range ws {
		ws[i] /= g
		sum += ws[i]
	}
	if sum <= maxDraw-uint64(len(ws)) {
		return ws
	}
	// Floats are precise enough for shares this fine, and avoid overflow.
	for i, w := range ws {
		ws[i] = max(1, uint64(float64(w)/float64(sum)*float64(maxDraw-len(ws))))
	}
	return ws
}

func gcd(a, b uint64) uint64 {
	for b != 0 {
		a, b = b, a%b
	}
	return a
}
