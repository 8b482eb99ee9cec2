// Package ca is Warren's certificate authority: the cluster's root
// certificate and key, the node and admin certificates it issues, and the
// TLS configurations every TCP connection in a cluster uses (mutual TLS 1.3).
//
// A node or admin certificate says who its holder is in three subject fields:
// CN is the node ID (or "admin-<random>"), OU the role, O the cluster ID.
// Authorization reads them back with IdentityFromCert / IdentityFromContext.
//
// Keys are ECDSA P-256 throughout. A node generates its own key and sends
// only a CSR, so private keys never cross the network.
package ca
