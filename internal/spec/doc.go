// Package spec validates service specs and parses the units people type
// (memory sizes, CPU counts). The CLI uses it to reject bad input before a
// call, and the API server uses it so that every client gets the same
// answers. Every error is one line that says what is wrong and what to do,
// and matches ErrInvalid, which the API server maps to InvalidArgument.
package spec
