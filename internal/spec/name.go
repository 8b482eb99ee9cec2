package spec

import "regexp"

// MaxNameLength is the longest service name: a DNS label, since services
// will be reachable by name.
const MaxNameLength = 63

var nameRE = regexp.MustCompile(`^[a-zA-Z0-9][a-zA-Z0-9_.-]*$`)

// ValidateServiceName checks a service name the way Docker does: 1 to 63
// characters, letters, digits, '-', '_' and '.', starting with a letter or
// a digit.
func ValidateServiceName(name string) error {
	if name == "" {
		return invalid("name", "a service name is required: use letters, digits, '-', '_' or '.', starting with a letter or digit, at most %d characters", MaxNameLength)
	}
	if len(name) > MaxNameLength || !nameRE.MatchString(name) {
		return invalid("name", "invalid service name %q: use letters, digits, '-', '_' or '.', starting with a letter or digit, at most %d characters", name, MaxNameLength)
	}
	return nil
}
