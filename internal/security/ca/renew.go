package ca

import (
	"math/rand/v2"
	"time"
)

// RenewAt picks when to renew a certificate: a random point between 50% and
// 80% of its lifetime. Renewing early leaves room for a manager to be down a
// while; the jitter keeps a cluster's nodes, often joined together, from
// renewing all at once.
func RenewAt(notBefore, notAfter time.Time) time.Time {
	return renewAt(notBefore, notAfter, rand.Float64())
}

// RenewAtRand is RenewAt with the randomness supplied, for tests.
func RenewAtRand(notBefore, notAfter time.Time, r *rand.Rand) time.Time {
	return renewAt(notBefore, notAfter, r.Float64())
}

func renewAt(notBefore, notAfter time.Time, f float64) time.Time {
	life := notAfter.Sub(notBefore)
	if life <= 0 {
		return notBefore // already unusable: renew now
	}
	return notBefore.Add(time.Duration(float64(life) * (0.5 + 0.3*f)))
}
