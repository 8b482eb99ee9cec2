package ca

import (
	"math/rand/v2"
	"testing"
	"time"
)

func TestRenewAt(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	tests := []struct {
		name string
		life time.Duration
	}{
		{"default ttl", DefaultCertTTL},
		{"one minute", time.Minute},
		{"one hour", time.Hour},
	}
	for _, tt := range tests {
		t.Run(tt.name, func(t *testing.T) {
			end := start.Add(tt.life)
			lo, hi := start.Add(tt.life/2), start.Add(tt.life*8/10)
			r := rand.New(rand.NewPCG(1, 2))
			seen := map[time.Time]bool{}
			for range 200 {
				at := RenewAtRand(start, end, r)
				if at.Before(lo) || at.After(hi) {
					t.Fatalf("RenewAt = %v, outside [%v, %v]", at, lo, hi)
				}
				seen[at] = true
			}
			if len(seen) < 100 {
				t.Errorf("only %d distinct renewal times in 200: no jitter?", len(seen))
			}
			if at := RenewAt(start, end); at.Before(lo) || at.After(hi) {
				t.Errorf("RenewAt = %v, outside [%v, %v]", at, lo, hi)
			}
		})
	}
}

func TestRenewAtDeterministic(t *testing.T) {
	start := time.Date(2026, 1, 1, 0, 0, 0, 0, time.UTC)
	end := start.Add(DefaultCertTTL)
	a := RenewAtRand(start, end, rand.New(rand.NewPCG(7, 7)))
	b := RenewAtRand(start, end, rand.New(rand.NewPCG(7, 7)))
	if !a.Equal(b) {
		t.Errorf("same seed gave %v and %v", a, b)
	}
	if got := RenewAt(end, start); !got.Equal(end) {
		t.Errorf("inverted lifetime: RenewAt = %v, want notBefore (renew now)", got)
	}
}
